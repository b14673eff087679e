"""The hand-written BPTT references against numpy central finite differences.

The finite differences run on an independent, plain step-by-step forward written here. A truncated
gradient is the exact gradient of a surrogate in which every cut state is a constant, so for
truncate=k the surrogate forward takes the carried states at the cuts as fixed inputs (their values
from a first, unperturbed forward) and the finite differences are taken of that surrogate.
δh_t / δc_t are checked by differentiating with respect to an additive bump on h_t / c_t.
"""

import numpy as np
import pytest

from models.reference import (
    gru_bptt,
    half_sq_norm,
    lstm_bptt,
    path_sum_grads,
    rnn_bptt,
    rnn_forward,
    rtrl_grads,
    stacked_bptt,
    stacked_forward,
    worked_example,
)

T, B, I, H = 5, 2, 3, 4
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
PHI = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0), "identity": lambda a: a}


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


# ----------------------------------------------------------------------------- independent forward


def step(mode, p, x_t, h, c, nl, bump_c):
    """One step of the plain (un-hoisted) cell; bump_c is added to c_t before h_t is formed."""
    a_i = x_t @ p["weight_ih"].T + p.get("bias_ih", 0.0)
    a_h = h @ p["weight_hh"].T + p.get("bias_hh", 0.0)
    n_h = h.shape[1]
    if mode == "rnn":
        return PHI[nl](a_i + a_h), None
    if mode == "gru":
        r = sig(a_i[:, :n_h] + a_h[:, :n_h])
        z = sig(a_i[:, n_h : 2 * n_h] + a_h[:, n_h : 2 * n_h])
        n = np.tanh(a_i[:, 2 * n_h :] + r * a_h[:, 2 * n_h :])
        return (1 - z) * n + z * h, None
    a = a_i + a_h
    s = sig(a)  # i, f, o = s[:, :H], s[:, H:2H], s[:, 3H:];  g = tanh(a[:, 2H:3H])
    c = s[:, n_h : 2 * n_h] * c + s[:, :n_h] * np.tanh(a[:, 2 * n_h : 3 * n_h]) + bump_c
    return s[:, 3 * n_h :] * np.tanh(c), c


def run_layer(mode, p, x, h, c, nl, truncate, fixed=None, bump_h=None, bump_c=None):
    """Returns out, h_n, c_n and the states carried across each cut ({t: (h_t, c_t)}).

    With ``fixed`` the carried state at each cut is replaced by the constant fixed[t]."""
    outs, carried, n_t = [], {}, len(x)
    for t in range(1, n_t + 1):
        h, c = step(mode, p, x[t - 1], h, c, nl, 0.0 if bump_c is None else bump_c[t - 1])
        if bump_h is not None:
            h = h + bump_h[t - 1]
        outs.append(h)
        if truncate is not None and t % truncate == 0 and t < n_t:
            carried[t] = (h, c)
            if fixed is not None:
                h, c = fixed[t]
    return np.stack(outs), h, c, carried


def run_stacked(mode, sd, x, h0, c0, nl, num_layers, D, truncate, fixed=None, bumps=None):
    """The stacked network from run_layer; bumps/fixed keyed by "l{k}" / "l{k}_reverse"."""
    inp, carried, hn, cn = x, {}, [], []
    for k in range(num_layers):
        outs = []
        for d in range(D):
            tag = f"l{k}_reverse" if d else f"l{k}"
            p = {n: sd[f"{n}_{tag}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            flip = (lambda a: a[::-1]) if d else (lambda a: a)
            bh, bc = (None, None) if bumps is None else (flip(bumps[tag][0]), flip(bumps[tag][1]))
            o, h, c, carried[tag] = run_layer(
                mode, p, flip(inp), h0[k * D + d], None if c0 is None else c0[k * D + d], nl, truncate,
                None if fixed is None else fixed[tag], bh, bc,
            )  # fmt: skip
            outs.append(flip(o))
            hn.append(h)
            cn.append(c)
        inp = np.concatenate(outs, axis=-1)
    return inp, np.stack(hn), None if c0 is None else np.stack(cn), carried


# ----------------------------------------------------------------------------- finite differences


def num_grad(f, arr, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of arr (mutated in place)."""
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        fp = f()
        arr[idx] = old - eps
        fm = f()
        arr[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    return g


def assert_fd(analytic, numeric, what):
    scale = max(1.0, np.abs(numeric).max())
    err = np.abs(analytic - numeric).max()
    assert err <= 1e-7 * scale, f"{what}: max abs error {err:.3g} (scale {scale:.3g})"


def make_params(rng, mode, n_in, bias=True, suffix="", n_h=H):
    """PyTorch-style init U(-1/√H, 1/√H) under PyTorch names (+ suffix)."""
    G, s = GATES[mode], 1 / np.sqrt(n_h)
    p = {
        "weight_ih" + suffix: rng.uniform(-s, s, (G * n_h, n_in)),
        "weight_hh" + suffix: rng.uniform(-s, s, (G * n_h, n_h)),
    }
    if bias:
        p["bias_ih" + suffix] = rng.uniform(-s, s, G * n_h)
        p["bias_hh" + suffix] = rng.uniform(-s, s, G * n_h)
    return p


def check_layer(mode, nl, truncate, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    p = make_params(rng, mode, I, bias)
    x, h0, c0 = rng.normal(size=(T, B, I)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    dout, dh_n, dc_n = rng.normal(size=(T, B, H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    if mode == "rnn":
        res = rnn_bptt(p, x, h0, dout, dh_n, nonlinearity=nl, truncate=truncate)
    elif mode == "gru":
        res = gru_bptt(p, x, h0, dout, dh_n, truncate=truncate)
    else:
        res = lstm_bptt(p, x, h0, c0, dout, dh_n, dc_n, truncate=truncate)
    c0 = c0 if mode == "lstm" else None

    out, h_n, c_n, fixed = run_layer(mode, p, x, h0, c0, nl, truncate)
    np.testing.assert_allclose(res.out, out, rtol=0, atol=1e-13)
    np.testing.assert_allclose(res.h_n, h_n, rtol=0, atol=1e-13)
    if mode == "lstm":
        np.testing.assert_allclose(res.c_n, c_n, rtol=0, atol=1e-13)

    bh, bc = np.zeros((T, B, H)), np.zeros((T, B, H))

    def loss():
        o, hn, cn, _ = run_layer(mode, p, x, h0, c0, nl, truncate, fixed, bh, bc)
        L = np.sum(o * dout) + np.sum(hn * dh_n)
        return L + np.sum(cn * dc_n) if mode == "lstm" else L

    assert set(res.grads) == set(p)
    for name in p:
        assert_fd(res.grads[name], num_grad(loss, p[name]), name)
    assert_fd(res.dx, num_grad(loss, x), "dx")
    assert_fd(res.dh0, num_grad(loss, h0), "dh0")
    assert_fd(res.dh, num_grad(loss, bh), "dh (δh_t)")
    if mode == "lstm":
        assert_fd(res.dc0, num_grad(loss, c0), "dc0")
        assert_fd(res.dc, num_grad(loss, bc), "dc (δc_t)")


TRUNCATIONS = [None, 1, 2, T]


# ----------------------------------------------------------------------------- single layers


@pytest.mark.parametrize("truncate", TRUNCATIONS)
@pytest.mark.parametrize("nl", ["tanh", "relu", "identity"])
def test_rnn_bptt_matches_finite_differences(nl, truncate):
    check_layer("rnn", nl, truncate)


@pytest.mark.parametrize("truncate", TRUNCATIONS)
def test_gru_bptt_matches_finite_differences(truncate):
    check_layer("gru", None, truncate)


@pytest.mark.parametrize("truncate", TRUNCATIONS)
def test_lstm_bptt_matches_finite_differences(truncate):
    check_layer("lstm", None, truncate)


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_bptt_without_biases_returns_no_bias_grads_and_matches_finite_differences(mode):
    check_layer(mode, "tanh", 2, bias=False, seed=1)


def _run(mode, p, x, h0, c0, dout, dh_n, dc_n, truncate):
    if mode == "rnn":
        return rnn_bptt(p, x, h0, dout, dh_n, truncate=truncate)
    if mode == "gru":
        return gru_bptt(p, x, h0, dout, dh_n, truncate=truncate)
    return lstm_bptt(p, x, h0, c0, dout, dh_n, dc_n, truncate=truncate)


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_truncation_with_k_at_least_T_equals_full_bptt(mode):
    rng = np.random.default_rng(2)
    p = make_params(rng, mode, I)
    args = [rng.normal(size=s) for s in [(T, B, I), (B, H), (B, H), (T, B, H), (B, H), (B, H)]]
    full = _run(mode, p, *args, truncate=None)
    for k in (T, T + 3):
        cut = _run(mode, p, *args, truncate=k)
        for name in p:
            np.testing.assert_array_equal(cut.grads[name], full.grads[name])
        for field in ("dx", "dh0", "dh", "dc0", "dc"):
            np.testing.assert_array_equal(getattr(cut, field), getattr(full, field))


def test_truncate_1_leaves_only_the_local_gradient_in_dh():
    rng = np.random.default_rng(3)
    p = make_params(rng, "rnn", I)
    x, h0, dout, dh_n = rng.normal(size=(T, B, I)), rng.normal(size=(B, H)), rng.normal(size=(T, B, H)), None
    res = rnn_bptt(p, x, h0, dout, dh_n, truncate=1)
    np.testing.assert_array_equal(res.dh, dout)  # δh_t = ∂ℓ_t/∂h_t: nothing flows back from t+1
    assert np.abs(res.dh0).max() > 0  # h_0 is never cut


def test_callable_dout_gives_the_gradient_of_half_squared_norm_loss():
    rng = np.random.default_rng(4)
    p = make_params(rng, "rnn", I)
    x, h0 = rng.normal(size=(T, B, I)), rng.normal(size=(B, H))
    res = rnn_bptt(p, x, h0, half_sq_norm, nonlinearity="identity")

    def loss():
        return 0.5 * np.sum(rnn_forward(p, x, h0, "identity")[0] ** 2)  # Σ_t ½‖h_t‖²

    for name in p:
        assert_fd(res.grads[name], num_grad(loss, p[name]), name)
    assert_fd(res.dh0, num_grad(loss, h0), "dh0")


# ----------------------------------------------------------------------------- stacked


@pytest.mark.parametrize("mode,truncate", [("rnn", None), ("rnn", 2), ("gru", 2), ("lstm", 2)])
def test_stacked_two_layer_bidirectional_matches_finite_differences(mode, truncate):
    rng = np.random.default_rng(5)
    L, D, n_t, n_i, n_h = 2, 2, 4, 2, 3  # smaller than the single-layer tests: every key is differenced
    sd = {}
    for k in range(L):
        for suffix in ("", "_reverse"):
            sd |= make_params(rng, mode, n_i if k == 0 else D * n_h, suffix=f"_l{k}{suffix}", n_h=n_h)
    x = rng.normal(size=(n_t, B, n_i))
    h0, c0, dh_n, dc_n = (rng.normal(size=(L * D, B, n_h)) for _ in range(4))
    dout = rng.normal(size=(n_t, B, D * n_h))
    lstm = mode == "lstm"
    c0 = c0 if lstm else None
    res = stacked_bptt(
        mode, sd, x, h0, dout, dh_n, c0, dc_n if lstm else None,
        num_layers=L, bidirectional=True, truncate=truncate,
    )  # fmt: skip

    out, h_n, c_n, fixed = run_stacked(mode, sd, x, h0, c0, "tanh", L, D, truncate)
    np.testing.assert_allclose(res.out, out, rtol=0, atol=1e-13)
    np.testing.assert_allclose(res.h_n, h_n, rtol=0, atol=1e-13)
    fwd = stacked_forward(mode, sd, x, h0, c0, num_layers=L, bidirectional=True)
    np.testing.assert_array_equal(fwd[0], res.out)
    if lstm:
        np.testing.assert_allclose(res.c_n, c_n, rtol=0, atol=1e-13)

    bumps = {tag: (np.zeros((n_t, B, n_h)), np.zeros((n_t, B, n_h))) for tag in res.dh}

    def loss():
        o, hn, cn, _ = run_stacked(mode, sd, x, h0, c0, "tanh", L, D, truncate, fixed, bumps)
        total = np.sum(o * dout) + np.sum(hn * dh_n)
        return total + np.sum(cn * dc_n) if lstm else total

    assert set(res.grads) == set(sd)
    for name in sd:
        assert_fd(res.grads[name], num_grad(loss, sd[name]), name)
    assert_fd(res.dx, num_grad(loss, x), "dx")
    assert_fd(res.dh0, num_grad(loss, h0), "dh0")
    assert set(res.dh) == {"l0", "l0_reverse", "l1", "l1_reverse"}
    for tag, (bh, bc) in bumps.items():
        assert_fd(res.dh[tag], num_grad(loss, bh), f"dh[{tag}]")
        if lstm:
            assert_fd(res.dc[tag], num_grad(loss, bc), f"dc[{tag}]")
    if lstm:
        assert_fd(res.dc0, num_grad(loss, c0), "dc0")


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_stacked_single_layer_equals_the_single_layer_function(mode):
    rng = np.random.default_rng(6)
    p = make_params(rng, mode, I)
    x, h0, c0 = rng.normal(size=(T, B, I)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    dout, dh_n, dc_n = rng.normal(size=(T, B, H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    one = _run(mode, p, x, h0, c0, dout, dh_n, dc_n, truncate=2)
    lstm = mode == "lstm"
    st = stacked_bptt(
        mode, {f"{k}_l0": v for k, v in p.items()}, x, h0[None], dout, dh_n[None],
        c0[None] if lstm else None, dc_n[None] if lstm else None, truncate=2,
    )  # fmt: skip
    for name in p:
        np.testing.assert_array_equal(st.grads[f"{name}_l0"], one.grads[name])
    np.testing.assert_array_equal(st.dx, one.dx)
    np.testing.assert_array_equal(st.dh0[0], one.dh0)
    np.testing.assert_array_equal(st.dh["l0"], one.dh)


# ----------------------------------------------------------------------------- path sum, RTRL


def _close(a, b, what):
    err = np.abs(a - b).max()
    assert err <= 1e-10 * max(1.0, np.abs(b).max()), f"{what}: {err:.3g}"


@pytest.mark.parametrize("truncate", [None, 3])
@pytest.mark.parametrize("n_t", [1, 5, 12])
@pytest.mark.parametrize("nl", ["tanh", "relu", "identity"])
def test_path_sum_and_rtrl_equal_bptt(nl, n_t, truncate):
    rng = np.random.default_rng(7)
    p = make_params(rng, "rnn", I)
    x, h0 = rng.normal(size=(n_t, B, I)), rng.normal(size=(B, H))
    dout, dh_n = rng.normal(size=(n_t, B, H)), rng.normal(size=(B, H))
    ref = rnn_bptt(p, x, h0, dout, dh_n, nonlinearity=nl, truncate=truncate)
    ps = path_sum_grads(p, x, h0, dout, dh_n, nonlinearity=nl, truncate=truncate)
    rt = rtrl_grads(p, x, h0, dout, dh_n, nonlinearity=nl, truncate=truncate)
    for name in p:
        _close(ps.grads[name], ref.grads[name], f"path sum {name}")
        _close(rt[name], ref.grads[name], f"RTRL {name}")
    for field in ("dx", "dh0", "dh"):
        _close(getattr(ps, field), getattr(ref, field), f"path sum {field}")
    _close(rt["h0"], ref.dh0, "RTRL h0")


def test_path_sum_and_rtrl_accept_the_half_squared_norm_loss():
    rng = np.random.default_rng(8)
    p = make_params(rng, "rnn", I, bias=False)
    x, h0 = rng.normal(size=(12, B, I)), np.zeros((B, H))
    ref = rnn_bptt(p, x, h0, half_sq_norm, nonlinearity="identity")
    ps = path_sum_grads(p, x, h0, half_sq_norm, nonlinearity="identity")
    rt = rtrl_grads(p, x, h0, half_sq_norm, nonlinearity="identity")
    assert set(rt) == set(p) | {"h0"}
    for name in p:
        _close(ps.grads[name], ref.grads[name], f"path sum {name}")
        _close(rt[name], ref.grads[name], f"RTRL {name}")


def test_worked_example_reproduces_the_lecture_notes_numbers():
    r = worked_example()
    expected = {
        "dL/dW_hy": -12.875,
        "dL/dW_hh": -3.25,
        "dL/dW_xh": -25.75,
        "dL/dh_2": -6.5,
        "dL/dh_1": -12.75,
    }
    assert abs(r["L"] - 12.8125) <= 1e-12
    for key, value in expected.items():
        assert abs(r[key] - value) <= 1e-12, key
        assert abs(r["path_sum"][key] - value) <= 1e-12, f"path sum {key}"
