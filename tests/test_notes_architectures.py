"""SkipRNN (h_{t-d} → h_t) against hand-written numpy BPTT, finite differences and models.RNN."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import models

T, B, I, H = 7, 2, 3, 4


def numpy_skip_bptt(params: dict, x: np.ndarray, h0: np.ndarray, c: np.ndarray, d: int) -> dict:
    """Forward and BPTT of h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh + W_skip h_{t-d}), L = Σ_t ⟨c_t, h_t⟩,
    written out by hand: δh_t = c_t + W_hhᵀ δa_{t+1} + W_skipᵀ δa_{t+d}, δa_t = (1 − h_t²) ⊙ δh_t."""
    W_ih, W_hh, W_sk = params["weight_ih"], params["weight_hh"], params["weight_skip"]
    b = params["bias_ih"] + params["bias_hh"]
    Tn = x.shape[0]
    hist = {s: h0 for s in range(-d + 1, 1)}  # h_s = h_0 for s ≤ 0
    for t in range(1, Tn + 1):
        hist[t] = np.tanh(x[t - 1] @ W_ih.T + b + hist[t - 1] @ W_hh.T + hist[t - d] @ W_sk.T)
    da = {}
    dh = {}
    for t in range(Tn, 0, -1):
        g = c[t - 1].copy()
        if t + 1 <= Tn:
            g += da[t + 1] @ W_hh
        if t + d <= Tn:
            g += da[t + d] @ W_sk
        dh[t] = g
        da[t] = (1 - hist[t] ** 2) * g
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dh0 = np.zeros_like(h0)
    for t in range(1, Tn + 1):
        grads["weight_ih"] += da[t].T @ x[t - 1]
        grads["weight_hh"] += da[t].T @ hist[t - 1]
        grads["weight_skip"] += da[t].T @ hist[t - d]
        grads["bias_ih"] += da[t].sum(0)
        grads["bias_hh"] += da[t].sum(0)
        if t == 1:
            dh0 += da[t] @ W_hh
        if t - d <= 0:
            dh0 += da[t] @ W_sk
    out = np.stack([hist[t] for t in range(1, Tn + 1)])
    return {"out": out, "grads": grads, "dh": np.stack([dh[t] for t in range(1, Tn + 1)]), "dh0": dh0}


@pytest.mark.parametrize("d", [2, 3])
def test_skip_rnn_forward_and_gradients_equal_hand_written_bptt(d):
    rng = np.random.default_rng(0)
    net = models.SkipRNN(I, H, skip=d, rng=1)
    x, h0, c = rng.standard_normal((T, B, I)), rng.standard_normal((1, B, H)), rng.standard_normal((T, B, H))
    h0t = mg.Tensor(h0, requires_grad=True)
    out, h_n, states = net(x, h0t, return_states=True)
    for s in states:
        s.retain_grad()
    (out * c).sum().backward()
    ref = numpy_skip_bptt(net.state_dict(), x, h0[0], c, d)
    np.testing.assert_allclose(out.data, ref["out"], atol=1e-13)
    np.testing.assert_allclose(h_n.data[0], ref["out"][-1], atol=1e-13)
    for name, p in net.named_parameters():
        np.testing.assert_allclose(p.grad, ref["grads"][name], atol=1e-12, err_msg=name)
    np.testing.assert_allclose(np.stack([s.grad for s in states]), ref["dh"], atol=1e-12)
    np.testing.assert_allclose(h0t.grad[0], ref["dh0"], atol=1e-12)


def test_skip_rnn_passes_gradcheck_batch_first_and_relu():
    net = models.SkipRNN(I, H, skip=3, nonlinearity="relu", batch_first=True, rng=0)
    rng = np.random.default_rng(3)
    x = mg.Tensor(rng.standard_normal((B, T, I)), requires_grad=True)
    h0 = mg.Tensor(rng.standard_normal((1, B, H)), requires_grad=True)
    assert mg.gradcheck(lambda *_: net(x, h0)[0], [*net.parameters(), x, h0], atol=1e-6, rtol=1e-5)


def test_skip_rnn_with_zero_skip_weight_is_the_elman_rnn():
    net = models.SkipRNN(I, H, rng=0)
    net.weight_skip.data[...] = 0.0
    rnn = models.RNN(I, H, rng=5)
    rnn.load_state_dict({k + "_l0": v for k, v in net.state_dict().items() if k != "weight_skip"})
    x = np.random.default_rng(1).standard_normal((T, B, I))
    out_s, _ = net(x)
    out_r, _ = rnn(x)
    np.testing.assert_allclose(out_s.data, out_r.data, atol=1e-14)
    (out_s**2).sum().backward()
    (out_r**2).sum().backward()
    np.testing.assert_allclose(net.weight_hh.grad, rnn.weight_hh_l0.grad, atol=1e-12)


def test_cutting_the_recurrent_edge_leaves_only_hops_of_d_steps():
    net = models.SkipRNN(I, H, skip=2, rng=0)
    x = np.random.default_rng(2).standard_normal((T, B, I))
    out_full, _ = net(x)
    out, _, states = net(x, cut="recurrent", return_states=True)
    np.testing.assert_array_equal(out.data, out_full.data)  # the cut changes gradients, not values
    for s in states:
        s.retain_grad()
    out[T - 1].sum().backward()  # L reads h_T only
    reached = [float(np.abs(s.grad).max()) > 0 for s in states]
    assert reached == [(T - t) % 2 == 0 for t in range(1, T + 1)]  # only t = T, T−2, …


def test_cutting_the_skip_edge_gives_the_gradient_of_the_recurrent_path_only():
    net = models.SkipRNN(I, H, skip=2, rng=0)
    x = np.random.default_rng(2).standard_normal((T, B, I))
    out, _, states = net(x, cut="skip", return_states=True)
    for s in states:
        s.retain_grad()
    out[T - 1].sum().backward()
    dh = np.stack([s.grad for s in states])
    # by hand: only δh_{t} = W_hhᵀ δa_{t+1}, no W_skip term
    hs = out.data
    g = np.ones((B, H))
    for t in range(T - 1, -1, -1):
        np.testing.assert_allclose(dh[t], g, atol=1e-12)
        g = ((1 - hs[t] ** 2) * g) @ net.weight_hh.data


def test_skip_rnn_rejects_a_skip_of_one_and_an_unknown_cut():
    with pytest.raises(ValueError, match="at least 2"):
        models.SkipRNN(I, H, skip=1)
    with pytest.raises(ValueError, match="cut must be"):
        models.SkipRNN(I, H)(np.zeros((T, B, I)), cut="both")


# ---------------------------------------------------------------------------
# InputAttentionRNN: the notes' attention over the inputs, c_t = Σ_{k≤t} α_{t,k} x_k
# ---------------------------------------------------------------------------
def numpy_input_attention(params: dict, x: np.ndarray) -> np.ndarray:
    """The notes' equations written out in numpy: h_t = tanh(W_ih x_t + b + W_hh h_{t-1}),
    α_{t,k} = softmax_k((W_q h_t)·x_k/√I), c_t = Σ_{k≤t} α_{t,k} x_k, y_t = W_hy h_t + W_cy c_t + b_y."""
    Tn, Bn, In = x.shape
    h = np.zeros((Bn, params["weight_hh"].shape[0]))
    ys = []
    for t in range(Tn):
        h = np.tanh(x[t] @ params["weight_ih"].T + params["bias_ih"] + params["bias_hh"] + h @ params["weight_hh"].T)
        s = np.einsum("bki,bi->bk", x[: t + 1].transpose(1, 0, 2), h @ params["weight_q"].T) / np.sqrt(In)
        a = np.exp(s - s.max(1, keepdims=True))
        a /= a.sum(1, keepdims=True)
        c = np.einsum("bk,bki->bi", a, x[: t + 1].transpose(1, 0, 2))
        ys.append(h @ params["weight_hy"].T + c @ params["weight_cy"].T + params["bias_y"])
    return np.stack(ys)


def _input_grads(model, x: np.ndarray, t: int, **kw) -> np.ndarray:
    """∂ℓ_t/∂x (T, B, I) for ℓ_t = Σ y_t (one loss step)."""
    xt = mg.tensor(x, requires_grad=True)
    y, _ = model(xt, **kw)
    y[t].sum().backward()
    return xt.grad


def test_input_attention_rnn_computes_the_notes_equations():
    model = models.InputAttentionRNN(I, H, output_size=5, rng=0)
    x = np.random.default_rng(1).standard_normal((T, B, I))
    params = {k: v.data for k, v in model.named_parameters()}
    y, h_n = model(x)
    np.testing.assert_allclose(y.data, numpy_input_attention(params, x), rtol=1e-12, atol=1e-12)
    assert y.shape == (T, B, 5) and h_n.shape == (1, B, H)
    _, _, alphas = model(x, return_attention=True)
    assert [a.shape for a in alphas] == [(B, t) for t in range(1, T + 1)]  # step t attends over x_1 … x_t


def test_input_attention_rnn_gradients_pass_gradcheck_for_inputs_and_parameters():
    model = models.InputAttentionRNN(I, H, output_size=2, rng=0)
    x = mg.tensor(np.random.default_rng(2).standard_normal((5, B, I)), requires_grad=True)
    assert mg.gradcheck(lambda x, *ps: (model(x)[0] ** 2).sum(), [x, *model.parameters()])


def test_input_attention_recurrent_and_shortcut_parts_add_up_to_the_full_input_gradient():
    model = models.InputAttentionRNN(I, H, rng=0)
    x = np.random.default_rng(3).standard_normal((T, B, I))
    t = T - 1
    full = _input_grads(model, x, t)
    recurrent = _input_grads(model, x, t, cut="shortcut")  # only through h_s → … → h_t
    shortcut = _input_grads(model, x, t, cut="recurrent")  # only through c_t
    np.testing.assert_allclose(recurrent + shortcut, full, rtol=1e-12, atol=1e-14)
    assert np.abs(recurrent[:t]).max() > 0 and np.abs(shortcut[:t]).max() > 0  # both reach the past


def test_input_attention_detached_cache_with_window_one_leaves_only_each_losss_own_step():
    model = models.InputAttentionRNN(I, H, rng=0)
    x = np.random.default_rng(4).standard_normal((T, B, I))
    for t in range(T):
        g = _input_grads(model, x, t, truncate=1, detach_cache=True)
        assert np.all(g[:t] == 0) and np.abs(g[t]).max() > 0  # ∂ℓ_t/∂x_s = 0 for every s < t: window 1
        g_open = _input_grads(model, x, t, truncate=1)
        assert t == 0 or np.abs(g_open[:t]).max() > 0  # the cache, live, still reaches the past
    # without truncation the detached cache leaves exactly the recurrent part for s < t
    t = T - 1
    np.testing.assert_allclose(
        _input_grads(model, x, t, detach_cache=True)[:t], _input_grads(model, x, t, cut="shortcut")[:t], atol=1e-14
    )


def test_input_attention_rnn_refuses_an_unknown_cut():
    with pytest.raises(ValueError, match="cut must be None, 'recurrent' or 'shortcut'"):
        models.InputAttentionRNN(I, H)(np.zeros((T, B, I)), cut="skip")
