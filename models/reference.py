"""Hand-written backpropagation through time in pure numpy (no minigrad).

This is the reference the generic reverse mode is checked against, written to be read next to
the lecture notes. Notation, for one layer and steps t = 1..T:

    a_t  = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh      pre-activations (G*H stacked gates)
    h_t  = φ(a_t)                                      Elman RNN (GRU and LSTM below)
    L    = Σ_t ℓ_t,   ℓ_t = <dout_t, h_t>   (+ <dh_n, h_T>, + <dc_n, c_T> for the LSTM)
    δh_t = dL/dh_t    total derivative of the state h_t (through every later step)
    δa_t = dL/da_t    = diag(φ'(a_t)) δh_t

Arrays are batched as in PyTorch: x (T, B, I), h (B, H), parameters as rows, so "W h" is
``h @ W.T`` and a sum Σ_t δa_t x_tᵀ over steps and batch rows is one GEMM over T*B rows.
Internally time-indexed arrays have T+1 entries so that index t is the notes' t (hs[0] = h_0).

Shared conventions of every function here:

* params: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``/``bias_hh`` (G*H,) with
  G = 1 (RNN), 3 (GRU: r, z, n), 4 (LSTM: i, f, g, o). Missing biases are zero and get no grad.
* dout, the upstream gradient ∂ℓ_t/∂h_t: an array (T, B, H), None (zero), or a callable
  ``dl_dh(t, h_t) -> (B, H)`` for losses that are not linear in h; t is the 0-based row of
  ``out`` (e.g. ``half_sq_norm`` for ℓ_t = ½‖h_t‖²).
* truncate=k (None = full BPTT): the state carried from step t into step t+1 is a constant
  (detached) whenever t is a positive multiple of k; for the LSTM both h and c are cut. h_0 is
  never cut and h_n = h_T always receives dh_n. k >= T is full BPTT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray
Upstream = Array | Callable[[int, Array], Array] | None
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@dataclass
class BPTTResult:
    """Forward outputs and gradients of one layer over one sequence.

    out (T, B, H) = h_1..h_T;  h_n (B, H) = h_T;  c_n (B, H) = c_T (LSTM, else None).
    grads: dL/dθ under the params' own keys (absent biases get no entry).
    dx (T, B, I);  dh0 (B, H);  dc0 (B, H) (LSTM, else None).
    dh (T, B, H): δh_t = dL/dh_t of the un-detached state h_t (minigrad's retain_grad on h_t).
    dc (T, B, H): δc_t = dL/dc_t (LSTM, else None).
    """

    out: Array
    h_n: Array
    grads: dict[str, Array]
    dx: Array
    dh0: Array
    dh: Array
    c_n: Array | None = None
    dc0: Array | None = None
    dc: Array | None = None


@dataclass
class StackedResult:
    """Forward outputs and gradients of a multi-layer (bidirectional) network.

    out (T, B, D*H);  h_n, c_n, dh0, dc0 (L*D, B, H) in PyTorch's order (layer-major, index k*D + d).
    grads: dL/dθ under every state_dict key.  dx (T, B, I).
    dh, dc: {"l0": δh, "l0_reverse": δh, ...}, each (T, B, H) in the original time order, so
    dh["l0_reverse"][t] is dL/d(the reverse state written to out[t, :, H:]).  c_n, dc0, dc: LSTM only.
    """

    out: Array
    h_n: Array
    grads: dict[str, Array]
    dx: Array
    dh0: Array
    dh: dict[str, Array]
    c_n: Array | None = None
    dc0: Array | None = None
    dc: dict[str, Array] | None = None


# ----------------------------------------------------------------------------- helpers


def sigmoid(a: Array) -> Array:
    """σ(a) = 1 / (1 + e^{-a}), written through tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


_PHI = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0), "identity": lambda a: a}
_PHI["linear"] = _PHI["identity"]


def _dphi(nonlinearity: str, a: Array, h: Array) -> Array:
    """φ'(a_t), from a_t or from h_t = φ(a_t); relu'(0) = 0."""
    if nonlinearity == "tanh":
        return 1.0 - h * h
    if nonlinearity == "relu":
        return (a > 0).astype(a.dtype)
    return np.ones_like(a)


def half_sq_norm(t: int, h: Array) -> Array:
    """∂ℓ_t/∂h_t = h_t for ℓ_t = ½‖h_t‖² (usable as ``dout``)."""
    return h


def _cut(truncate: int | None, t: int) -> bool:
    """Is the state h_t carried from step t into step t+1 detached? (h_0 never is.)"""
    return truncate is not None and t > 0 and t % truncate == 0


def _upstream(dout: Upstream, out: Array) -> Array:
    """∂ℓ_t/∂h_t for every t as one (T, B, H) array."""
    if dout is None:
        return np.zeros_like(out)
    if callable(dout):
        return np.stack([np.asarray(dout(t, out[t])) for t in range(len(out))])
    return np.asarray(dout)


def _check(params: dict[str, Array], nonlinearity: str = "tanh") -> None:
    if nonlinearity not in _PHI:
        raise ValueError(f"nonlinearity must be tanh, relu or identity, got {nonlinearity!r}")
    if "weight_ih" not in params or "weight_hh" not in params:
        raise KeyError("params need 'weight_ih' and 'weight_hh' (PyTorch names)")


def _zeros_state(params: dict[str, Array], x: Array, s: Array | None) -> Array:
    """The initial state as given, or zeros (B, H) when None."""
    if s is not None:
        return np.asarray(s)
    return np.zeros((x.shape[1], params["weight_hh"].shape[1]), dtype=x.dtype)


def _input_proj(params: dict[str, Array], x: Array) -> Array:
    """All input projections at once: x_t W_ihᵀ + b_ih for every t as ONE (T*B, I) GEMM."""
    T, B, I = x.shape
    xw = x.reshape(T * B, I) @ params["weight_ih"].T + params.get("bias_ih", 0.0)
    return xw.reshape(T, B, -1)


def _weight_grads(
    params: dict[str, Array], x: Array, h_prev: Array, da_i: Array, da_h: Array
) -> tuple[dict[str, Array], Array]:
    """Parameter grads and dx from the stacked pre-activation grads, each ONE GEMM over T*B rows.

    ∂L/∂W_ih = Σ_t δa_t x_tᵀ,  ∂L/∂W_hh = Σ_t δa^h_t h_{t-1}ᵀ,  ∂L/∂b_ih = Σ_t δa_t,
    ∂L/∂b_hh = Σ_t δa^h_t,  ∂L/∂x_t = W_ihᵀ δa_t.  (δa^h = δa except in the GRU's n gate.)
    """
    T, B, I = x.shape
    Ai, Ah = da_i.reshape(T * B, -1), da_h.reshape(T * B, -1)
    grads = {
        "weight_ih": Ai.T @ x.reshape(T * B, I),  # Σ_t δa_t x_tᵀ
        "weight_hh": Ah.T @ h_prev.reshape(T * B, -1),  # Σ_t δa^h_t h_{t-1}ᵀ
    }
    if "bias_ih" in params:
        grads["bias_ih"] = Ai.sum(0)  # Σ_t δa_t
    if "bias_hh" in params:
        grads["bias_hh"] = Ah.sum(0)  # Σ_t δa^h_t
    dx = (Ai @ params["weight_ih"]).reshape(T, B, I)  # ∂L/∂x_t = W_ihᵀ δa_t
    return grads, dx


# ----------------------------------------------------------------------------- Elman RNN


def _rnn_steps(params: dict[str, Array], x: Array, h0: Array, nonlinearity: str) -> dict:
    phi, xw = _PHI[nonlinearity], _input_proj(params, x)
    W_hh, b_hh = params["weight_hh"], params.get("bias_hh", 0.0)
    T, (B, H) = len(x), h0.shape
    hs, a = np.empty((T + 1, B, H), xw.dtype), np.empty((T + 1, B, H), xw.dtype)
    hs[0] = h0
    for t in range(1, T + 1):  # x_t is x[t-1]
        a[t] = xw[t - 1] + hs[t - 1] @ W_hh.T + b_hh  # a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
        hs[t] = phi(a[t])  # h_t = φ(a_t)
    return {"hs": hs, "a": a, "nonlinearity": nonlinearity}


def _rnn_backward(params, x, cache, dh, dc, truncate):
    hs, a, W_hh = cache["hs"], cache["a"], params["weight_hh"]
    dphi = _dphi(cache["nonlinearity"], a, hs)
    da = np.zeros_like(a)
    for t in range(len(x), 0, -1):  # dh[t] holds ∂ℓ_t/∂h_t + everything from later steps
        da[t] = dphi[t] * dh[t]  # δa_t = diag(φ'(a_t)) δh_t
        if not _cut(truncate, t - 1):
            dh[t - 1] += da[t] @ W_hh  # δh_{t-1} = ∂ℓ_{t-1}/∂h_{t-1} + W_hhᵀ δa_t
    return _weight_grads(params, x, hs[:-1], da[1:], da[1:])


def rnn_forward(
    params: dict[str, Array], x: Array, h0: Array | None = None, nonlinearity: str = "tanh"
) -> tuple[Array, Array]:
    """Elman RNN forward h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); returns (out, h_n)."""
    _check(params, nonlinearity)
    x = np.asarray(x)
    hs = _rnn_steps(params, x, _zeros_state(params, x, h0), nonlinearity)["hs"]
    return hs[1:], hs[-1]


def rnn_bptt(
    params: dict[str, Array],
    x: Array,
    h0: Array | None,
    dout: Upstream,
    dh_n: Array | None = None,
    nonlinearity: str = "tanh",
    truncate: int | None = None,
) -> BPTTResult:
    """BPTT for the Elman RNN h_t = φ(a_t), a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh.

    Backward recursion, t = T..1 (δh_{T+1} = 0; δh_T also gets dh_n):
        δh_t = ∂ℓ_t/∂h_t + W_hhᵀ diag(φ'(a_{t+1})) δh_{t+1}     (2nd term 0 if h_t → t+1 is cut)
        δa_t = diag(φ'(a_t)) δh_t
        ∂L/∂W_hh = Σ_t diag(φ'(a_t)) δh_t h_{t-1}ᵀ,   ∂L/∂W_ih = Σ_t δa_t x_tᵀ,   ∂L/∂b = Σ_t δa_t
        ∂L/∂x_t = W_ihᵀ δa_t,   ∂L/∂h_0 = W_hhᵀ δa_1
    The input projections and the weight gradients are one GEMM each; only the recurrence loops.
    """
    return _layer("rnn", params, x, h0, None, dout, dh_n, None, truncate, nonlinearity)


# ----------------------------------------------------------------------------- GRU


def _gru_steps(params: dict[str, Array], x: Array, h0: Array) -> dict:
    xw = _input_proj(params, x)  # [W_ir x + b_ir | W_iz x + b_iz | W_in x + b_in]
    W_hh, b_hh = params["weight_hh"], params.get("bias_hh", 0.0)
    T, (B, H) = len(x), h0.shape
    hs = np.empty((T + 1, B, H), xw.dtype)
    gates = np.empty((T + 1, B, 3 * H), xw.dtype)
    hn = np.empty((T + 1, B, H), xw.dtype)  # hn_t = W_hn h_{t-1} + b_hn (saved for ∂/∂r)
    r, z, n = np.split(gates, 3, axis=-1)  # views into gates
    hs[0] = h0
    for t in range(1, T + 1):
        gi, gh = xw[t - 1], hs[t - 1] @ W_hh.T + b_hh
        r[t] = sigmoid(gi[:, :H] + gh[:, :H])  # r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z[t] = sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])  # z_t = σ(W_iz x_t + ... + b_hz)
        hn[t] = gh[:, 2 * H :]
        n[t] = np.tanh(gi[:, 2 * H :] + r[t] * hn[t])  # n_t = tanh(W_in x_t + b_in + r_t ⊙ hn_t)
        hs[t] = (1 - z[t]) * n[t] + z[t] * hs[t - 1]  # h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}
    return {"hs": hs, "gates": gates, "hn": hn}


def _gru_backward(params, x, cache, dh, dc, truncate):
    hs, hn, W_hh = cache["hs"], cache["hn"], params["weight_hh"]
    r, z, n = np.split(cache["gates"], 3, axis=-1)
    da_i = np.zeros_like(cache["gates"])  # δa_t = [δa^r | δa^z | δa^n]  (input side)
    da_h = np.zeros_like(cache["gates"])  # δa^h_t = [δa^r | δa^z | r_t ⊙ δa^n]  (hidden side)
    dar, daz, dan = np.split(da_i, 3, axis=-1)
    for t in range(len(x), 0, -1):
        dan[t] = dh[t] * (1 - z[t]) * (1 - n[t] ** 2)  # δa^n_t = (1 − z_t) ⊙ tanh'(·) ⊙ δh_t
        daz[t] = dh[t] * (hs[t - 1] - n[t]) * z[t] * (1 - z[t])  # δa^z_t = (h_{t-1} − n_t) ⊙ σ'
        dar[t] = dan[t] * hn[t] * r[t] * (1 - r[t])  # δa^r_t = (δa^n_t ⊙ hn_t) ⊙ σ'
        da_h[t] = np.concatenate([dar[t], daz[t], r[t] * dan[t]], axis=-1)
        if not _cut(truncate, t - 1):
            dh[t - 1] += z[t] * dh[t] + da_h[t] @ W_hh  # δh_{t-1} = ∂ℓ/∂h + z_t ⊙ δh_t + W_hhᵀ δa^h_t
    return _weight_grads(params, x, hs[:-1], da_i[1:], da_h[1:])


def gru_forward(params: dict[str, Array], x: Array, h0: Array | None = None) -> tuple[Array, Array]:
    """GRU forward (PyTorch equations, gates r, z, n); returns (out, h_n)."""
    _check(params)
    x = np.asarray(x)
    hs = _gru_steps(params, x, _zeros_state(params, x, h0))["hs"]
    return hs[1:], hs[-1]


def gru_bptt(
    params: dict[str, Array],
    x: Array,
    h0: Array | None,
    dout: Upstream,
    dh_n: Array | None = None,
    truncate: int | None = None,
) -> BPTTResult:
    """BPTT for the GRU.

    Forward: r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr),  z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz),
             n_t = tanh(W_in x_t + b_in + r_t ⊙ hn_t),  hn_t = W_hn h_{t-1} + b_hn,
             h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}.
    Backward, t = T..1:
        δa^n_t = (1 − z_t) ⊙ (1 − n_t²) ⊙ δh_t,   δa^z_t = (h_{t-1} − n_t) ⊙ z_t(1 − z_t) ⊙ δh_t,
        δa^r_t = hn_t ⊙ δa^n_t ⊙ r_t(1 − r_t),
        input side δa_t = [δa^r, δa^z, δa^n],  hidden side δa^h_t = [δa^r, δa^z, r_t ⊙ δa^n],
        δh_{t-1} = ∂ℓ_{t-1}/∂h_{t-1} + z_t ⊙ δh_t + W_hhᵀ δa^h_t      (last two 0 if cut)
        ∂L/∂W_ih = Σ_t δa_t x_tᵀ,  ∂L/∂W_hh = Σ_t δa^h_t h_{t-1}ᵀ,  ∂L/∂b_ih = Σ_t δa_t,  ∂L/∂b_hh = Σ_t δa^h_t.
    """
    return _layer("gru", params, x, h0, None, dout, dh_n, None, truncate, "tanh")


# ----------------------------------------------------------------------------- LSTM


def _lstm_steps(params: dict[str, Array], x: Array, h0: Array, c0: Array) -> dict:
    xw = _input_proj(params, x)
    W_hh, b_hh = params["weight_hh"], params.get("bias_hh", 0.0)
    T, (B, H) = len(x), h0.shape
    hs, cs, tc = (np.empty((T + 1, B, H), xw.dtype) for _ in range(3))  # tc_t = tanh(c_t)
    gates = np.empty((T + 1, B, 4 * H), xw.dtype)
    i, f, g, o = np.split(gates, 4, axis=-1)  # views into gates
    hs[0], cs[0] = h0, c0
    for t in range(1, T + 1):
        a = xw[t - 1] + hs[t - 1] @ W_hh.T + b_hh  # a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
        i[t], f[t] = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H])  # i_t, f_t = σ(a^i_t), σ(a^f_t)
        g[t], o[t] = np.tanh(a[:, 2 * H : 3 * H]), sigmoid(a[:, 3 * H :])  # g_t = tanh, o_t = σ
        cs[t] = f[t] * cs[t - 1] + i[t] * g[t]  # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        tc[t] = np.tanh(cs[t])
        hs[t] = o[t] * tc[t]  # h_t = o_t ⊙ tanh(c_t)
    return {"hs": hs, "cs": cs, "tc": tc, "gates": gates}


def _lstm_backward(params, x, cache, dh, dc, truncate):
    hs, cs, tc, W_hh = cache["hs"], cache["cs"], cache["tc"], params["weight_hh"]
    i, f, g, o = np.split(cache["gates"], 4, axis=-1)
    da = np.zeros_like(cache["gates"])
    dai, daf, dag, dao = np.split(da, 4, axis=-1)
    for t in range(len(x), 0, -1):
        dc[t] += o[t] * (1 - tc[t] ** 2) * dh[t]  # δc_t = f_{t+1} ⊙ δc_{t+1} + o_t ⊙ tanh'(c_t) ⊙ δh_t
        dai[t] = dc[t] * g[t] * i[t] * (1 - i[t])  # δa^i_t = g_t ⊙ σ' ⊙ δc_t
        daf[t] = dc[t] * cs[t - 1] * f[t] * (1 - f[t])  # δa^f_t = c_{t-1} ⊙ σ' ⊙ δc_t
        dag[t] = dc[t] * i[t] * (1 - g[t] ** 2)  # δa^g_t = i_t ⊙ tanh' ⊙ δc_t
        dao[t] = dh[t] * tc[t] * o[t] * (1 - o[t])  # δa^o_t = tanh(c_t) ⊙ σ' ⊙ δh_t
        if not _cut(truncate, t - 1):
            dh[t - 1] += da[t] @ W_hh  # δh_{t-1} = ∂ℓ_{t-1}/∂h_{t-1} + W_hhᵀ δa_t
            dc[t - 1] += f[t] * dc[t]  # first term of δc_{t-1}: f_t ⊙ δc_t
    return _weight_grads(params, x, hs[:-1], da[1:], da[1:])


def lstm_forward(
    params: dict[str, Array], x: Array, h0: Array | None = None, c0: Array | None = None
) -> tuple[Array, tuple[Array, Array]]:
    """LSTM forward (PyTorch equations, gates i, f, g, o); returns (out, (h_n, c_n))."""
    _check(params)
    x = np.asarray(x)
    cache = _lstm_steps(params, x, _zeros_state(params, x, h0), _zeros_state(params, x, c0))
    return cache["hs"][1:], (cache["hs"][-1], cache["cs"][-1])


def lstm_bptt(
    params: dict[str, Array],
    x: Array,
    h0: Array | None,
    c0: Array | None,
    dout: Upstream,
    dh_n: Array | None = None,
    dc_n: Array | None = None,
    truncate: int | None = None,
) -> BPTTResult:
    """BPTT for the LSTM.

    Forward: [i, f, g, o]_t = [σ, σ, tanh, σ](W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),
             c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t,   h_t = o_t ⊙ tanh(c_t).
    Backward, t = T..1 (δc_{T+1} = 0; δh_T gets dh_n, δc_T gets dc_n):
        δc_t = f_{t+1} ⊙ δc_{t+1} + o_t ⊙ (1 − tanh²c_t) ⊙ δh_t      (1st term 0 if cut)
        δa_t = [g_t ⊙ δc_t ⊙ i_t(1−i_t),  c_{t-1} ⊙ δc_t ⊙ f_t(1−f_t),  i_t ⊙ δc_t ⊙ (1−g_t²),
                tanh(c_t) ⊙ δh_t ⊙ o_t(1−o_t)]
        δh_{t-1} = ∂ℓ_{t-1}/∂h_{t-1} + W_hhᵀ δa_t                          (2nd term 0 if cut)
        ∂L/∂W_ih = Σ_t δa_t x_tᵀ,  ∂L/∂W_hh = Σ_t δa_t h_{t-1}ᵀ,  ∂L/∂b = Σ_t δa_t.
    """
    return _layer("lstm", params, x, h0, c0, dout, dh_n, dc_n, truncate, "tanh")


# ----------------------------------------------------------------------------- drivers

_STEPS = {
    "rnn": lambda p, x, h0, c0, nl: _rnn_steps(p, x, h0, nl),
    "gru": lambda p, x, h0, c0, nl: _gru_steps(p, x, h0),
    "lstm": lambda p, x, h0, c0, nl: _lstm_steps(p, x, h0, c0),
}
_BACKWARD = {"rnn": _rnn_backward, "gru": _gru_backward, "lstm": _lstm_backward}


def _backward(mode, params, x, cache, g, dh_n, dc_n, truncate) -> BPTTResult:
    """Backward of one layer given ∂ℓ_t/∂h_t as an array g (T, B, H)."""
    hs, lstm = cache["hs"], mode == "lstm"
    dh = np.zeros_like(hs)
    dh[1:] = g  # dh[t] starts as ∂ℓ_t/∂h_t and becomes δh_t
    if dh_n is not None:
        dh[-1] += dh_n
    dc = np.zeros_like(hs) if lstm else None
    if lstm and dc_n is not None:
        dc[-1] += dc_n
    grads, dx = _BACKWARD[mode](params, x, cache, dh, dc, truncate)
    return BPTTResult(
        out=hs[1:], h_n=hs[-1], grads=grads, dx=dx, dh0=dh[0], dh=dh[1:],
        c_n=cache["cs"][-1] if lstm else None,
        dc0=dc[0] if lstm else None,
        dc=dc[1:] if lstm else None,
    )  # fmt: skip


def _layer(mode, params, x, h0, c0, dout, dh_n, dc_n, truncate, nonlinearity) -> BPTTResult:
    _check(params, nonlinearity)
    x = np.asarray(x)
    h0 = _zeros_state(params, x, h0)
    c0 = _zeros_state(params, x, c0) if mode == "lstm" else None
    cache = _STEPS[mode](params, x, h0, c0, nonlinearity)
    g = _upstream(dout, cache["hs"][1:])
    return _backward(mode, params, x, cache, g, dh_n, dc_n, truncate)


def _layer_params(state_dict: dict[str, Array], tag: str) -> dict[str, Array]:
    """{"weight_ih": state_dict["weight_ih_" + tag], ...} for tag "l{k}" or "l{k}_reverse"."""
    return {n: state_dict[f"{n}_{tag}"] for n in PARAM_NAMES if f"{n}_{tag}" in state_dict}


def _stacked_forward(mode, state_dict, x, h0, c0, num_layers, bidirectional, nonlinearity):
    """Run every layer/direction; returns out, h_n, c_n and [(tag, params, input, cache)]."""
    mode = mode.lower()
    if mode not in _STEPS:
        raise ValueError(f"mode must be 'rnn', 'gru' or 'lstm', got {mode!r}")
    x, D = np.asarray(x), 2 if bidirectional else 1
    H = state_dict["weight_hh_l0"].shape[1]
    shape = (num_layers * D, x.shape[1], H)
    h0 = np.zeros(shape, x.dtype) if h0 is None else np.asarray(h0)
    c0 = (np.zeros(shape, x.dtype) if c0 is None else np.asarray(c0)) if mode == "lstm" else None
    layers, inp = [], x
    for k in range(num_layers):
        outs = []
        for d in range(D):
            tag = f"l{k}_reverse" if d else f"l{k}"
            p = _layer_params(state_dict, tag)
            _check(p, nonlinearity)
            xi = inp[::-1] if d else inp  # the reverse direction runs over reversed time
            cache = _STEPS[mode](p, xi, h0[k * D + d], None if c0 is None else c0[k * D + d], nonlinearity)
            layers.append((tag, p, xi, cache))
            outs.append(cache["hs"][:0:-1] if d else cache["hs"][1:])
        inp = np.concatenate(outs, axis=-1)  # layer k+1's input is layer k's output
    h_n = np.stack([c["hs"][-1] for *_, c in layers])
    c_n = np.stack([c["cs"][-1] for *_, c in layers]) if mode == "lstm" else None
    return inp, h_n, c_n, layers


def stacked_forward(
    mode: str,
    state_dict: dict[str, Array],
    x: Array,
    h0: Array | None = None,
    c0: Array | None = None,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    nonlinearity: str = "tanh",
) -> tuple[Array, Array] | tuple[Array, tuple[Array, Array]]:
    """Forward of a PyTorch-style stack; (out, h_n), or (out, (h_n, c_n)) for mode "lstm"."""
    out, h_n, c_n, _ = _stacked_forward(mode, state_dict, x, h0, c0, num_layers, bidirectional, nonlinearity)
    return (out, h_n) if c_n is None else (out, (h_n, c_n))


def stacked_bptt(
    mode: str,
    state_dict: dict[str, Array],
    x: Array,
    h0: Array | None,
    dout: Upstream,
    dh_n: Array | None = None,
    c0: Array | None = None,
    dc_n: Array | None = None,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    truncate: int | None = None,
    nonlinearity: str = "tanh",
) -> StackedResult:
    """BPTT through a stack of layers ("rnn", "gru" or "lstm"), optionally bidirectional.

    Keys ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (+ ``_reverse``);
    h0, c0, dh_n, dc_n are (num_layers*D, B, H); out and dout are (T, B, D*H) (dout may be a
    callable dl_dh(t, out_t)). The reverse direction is a layer run on reversed time (its truncation
    counts its own steps). Layers are differentiated top-down: each direction gets its slice of
    ∂L/∂out_k, and Σ_directions ∂L/∂(input of layer k) is the upstream gradient of layer k−1:
        ∂L/∂out_{k-1} = Σ_d dx_{k,d}.
    """
    out, h_n, c_n, layers = _stacked_forward(mode, state_dict, x, h0, c0, num_layers, bidirectional, nonlinearity)
    mode, D, H = mode.lower(), 2 if bidirectional else 1, h_n.shape[-1]
    g = _upstream(dout, out)  # ∂L/∂out of the top layer
    grads, dh, dc = {}, {}, {}
    dh0, dc0 = np.zeros_like(h_n), None if c_n is None else np.zeros_like(c_n)
    for k in range(num_layers - 1, -1, -1):
        g_in = 0.0
        for d in range(D):
            j = k * D + d
            tag, p, xi, cache = layers[j]
            gd = g[..., d * H : (d + 1) * H]
            res = _backward(
                mode, p, xi, cache, gd[::-1] if d else gd,
                None if dh_n is None else dh_n[j], None if dc_n is None else dc_n[j], truncate,
            )  # fmt: skip
            flip = (lambda a: a[::-1]) if d else (lambda a: a)  # back to the original time order
            grads.update({f"{name}_{tag}": v for name, v in res.grads.items()})
            dh[tag], dh0[j] = flip(res.dh), res.dh0
            if c_n is not None:
                dc[tag], dc0[j] = flip(res.dc), res.dc0
            g_in = g_in + flip(res.dx)
        g = g_in  # dx of layer k is the dout of layer k-1
    return StackedResult(
        out=out, h_n=h_n, grads=grads, dx=g, dh0=dh0, dh=dh, c_n=c_n, dc0=dc0, dc=dc if c_n is not None else None
    )


# ----------------------------------------------------------------------------- lecture-notes extras


def path_sum_grads(
    params: dict[str, Array],
    x: Array,
    h0: Array | None,
    dout: Upstream,
    dh_n: Array | None = None,
    nonlinearity: str = "tanh",
    truncate: int | None = None,
) -> BPTTResult:
    """The naive path sum of the notes for the Elman RNN: O(T²) Jacobian products.

        ∂L/∂θ = Σ_t Σ_{s≤t} (∂ℓ_t/∂h_t) (∂h_t/∂h_{t−1} ⋯ ∂h_{s+1}/∂h_s) ∂⁺h_s/∂θ
    with the step Jacobian ∂h_s/∂h_{s−1} = diag(φ'(a_s)) W_hh and the immediate derivative
    ∂⁺h_s/∂θ = diag(φ'(a_s)) ∂⁺a_s/∂θ  (∂⁺a_s/∂W_hh ↔ h_{s−1}ᵀ, ∂⁺a_s/∂W_ih ↔ x_sᵀ, ∂⁺a_s/∂b = I).
    The explicit matrices ∂h_t/∂h_s (B, H, H) are built per (t, s); a path ends at a truncation cut.
    dh, dx and dh0 come from the same sums: δh_s = Σ_{t≥s} (∂ℓ_t/∂h_t) ∂h_t/∂h_s. Same result
    structure as ``rnn_bptt``; ``dh_n`` is part of ∂ℓ_T/∂h_T.
    """
    _check(params, nonlinearity)
    x = np.asarray(x)
    h0 = _zeros_state(params, x, h0)
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    cache = _rnn_steps(params, x, h0, nonlinearity)
    hs, a = cache["hs"], cache["a"]
    T, (B, H) = len(x), h0.shape
    dl = np.zeros_like(hs)
    dl[1:] = _upstream(dout, hs[1:])  # ∂ℓ_t/∂h_t
    if dh_n is not None:
        dl[-1] += dh_n
    dphi = _dphi(nonlinearity, a, hs)
    J = dphi[..., :, None] * W_hh  # J_s = ∂h_s/∂h_{s−1} = diag(φ'(a_s)) W_hh, (T+1, B, H, H)
    grads = {n: np.zeros_like(params[n]) for n in PARAM_NAMES if n in params}
    dh, dx = np.zeros_like(hs), np.zeros_like(x)
    for t in range(1, T + 1):
        M = np.broadcast_to(np.eye(H), (B, H, H))  # ∂h_t/∂h_t = I
        for s in range(t, -1, -1):
            v = np.einsum("bi,bij->bj", dl[t], M)  # (∂ℓ_t/∂h_t) ∂h_t/∂h_s
            dh[s] += v
            if s == 0:
                break
            da = dphi[s] * v  # (∂ℓ_t/∂h_t) ∂h_t/∂h_s diag(φ'(a_s)): the immediate ∂⁺h_s/∂θ follows
            grads["weight_hh"] += da.T @ hs[s - 1]  # ⋯ ∂⁺a_s/∂W_hh
            grads["weight_ih"] += da.T @ x[s - 1]  # ⋯ ∂⁺a_s/∂W_ih
            for b in ("bias_ih", "bias_hh"):
                if b in grads:
                    grads[b] += da.sum(0)  # ⋯ ∂⁺a_s/∂b
            dx[s - 1] += da @ W_ih  # ⋯ ∂⁺a_s/∂x_s
            if _cut(truncate, s - 1):
                break  # h_{s−1} is a constant in step s: no path continues
            M = M @ J[s]  # ∂h_t/∂h_{s−1} = ∂h_t/∂h_s ∂h_s/∂h_{s−1}
    return BPTTResult(out=hs[1:], h_n=hs[-1], grads=grads, dx=dx, dh0=dh[0], dh=dh[1:])


def rtrl_grads(
    params: dict[str, Array],
    x: Array,
    h0: Array | None,
    dout: Upstream,
    dh_n: Array | None = None,
    nonlinearity: str = "tanh",
    truncate: int | None = None,
) -> dict[str, Array]:
    """Real-time recurrent learning (forward mode) for the Elman RNN.

    Carries the sensitivities P^θ_t = ∂h_t/∂θ, shape (B, H, *θ.shape), forward in time:
        P^θ_0 = 0 (P^{h_0}_0 = I),
        P^θ_t = diag(φ'(a_t)) (∂⁺a_t/∂θ + W_hh P^θ_{t−1})      (W_hh P term 0 if h_{t−1} is cut)
        ∂L/∂θ = Σ_t (∂ℓ_t/∂h_t) P^θ_t
    with ∂⁺a_t/∂W_hh[j, k] = e_j h_{t−1}[k], ∂⁺a_t/∂W_ih[j, k] = e_j x_t[k], ∂⁺a_t/∂b_j = e_j.
    W_hh P^{W_hh} costs O(H⁴) per step and example. A callable ``dout`` is called at each step
    as h_t is produced (that is the "real time"). Returns the grads under the params' keys plus
    "h0": ∂L/∂h_0 (B, H).
    """
    _check(params, nonlinearity)
    x = np.asarray(x)
    h0 = _zeros_state(params, x, h0)
    phi, W_ih, W_hh = _PHI[nonlinearity], params["weight_ih"], params["weight_hh"]
    b = params.get("bias_ih", 0.0) + params.get("bias_hh", 0.0)
    T, (B, H) = len(x), h0.shape
    eye = np.eye(H)
    names = [n for n in PARAM_NAMES if n in params]
    P = {n: np.zeros((B, H) + params[n].shape) for n in names}
    P["h0"] = np.broadcast_to(eye, (B, H, H))  # ∂h_0/∂h_0 = I
    grads = {n: np.zeros_like(params[n]) for n in names} | {"h0": np.zeros_like(h0)}
    h = h0
    for t in range(1, T + 1):
        a = x[t - 1] @ W_ih.T + h @ W_hh.T + b  # a_t
        h_new = phi(a)  # h_t = φ(a_t)
        d = _dphi(nonlinearity, a, h_new)
        immediate = {  # ∂⁺a_t/∂θ as (B, H, *θ.shape)
            "weight_ih": eye[None, :, :, None] * x[t - 1][:, None, None, :],
            "weight_hh": eye[None, :, :, None] * h[:, None, None, :],
            "bias_ih": np.broadcast_to(eye, (B, H, H)),
            "bias_hh": np.broadcast_to(eye, (B, H, H)),
            "h0": 0.0,
        }
        carried = not _cut(truncate, t - 1)
        for n in P:
            rec = np.einsum("ij,bj...->bi...", W_hh, P[n]) if carried else 0.0  # W_hh P_{t−1}
            dd = d.reshape(d.shape + (1,) * (P[n].ndim - 2))
            P[n] = dd * (immediate[n] + rec)  # P_t = diag(φ'(a_t)) (∂⁺a_t/∂θ + W_hh P_{t−1})
        if callable(dout):
            dl = np.asarray(dout(t - 1, h_new))  # ∂ℓ_t/∂h_t, asked for in real time
        else:
            dl = np.zeros_like(h_new) if dout is None else np.asarray(dout)[t - 1]
        if t == T and dh_n is not None:
            dl = dl + dh_n
        for n in names:
            grads[n] += np.einsum("bi,bi...->...", dl, P[n])  # ∂L/∂θ += (∂ℓ_t/∂h_t) P^θ_t
        grads["h0"] += np.einsum("bi,bij->bj", dl, P["h0"])
        h = h_new
    return grads


def worked_example() -> dict:
    """The notes' 2-step linear RNN, by hand-written scalar BPTT and by ``path_sum_grads``.

        h_t = W_xh x_t + W_hh h_{t−1} (h_0 = 0, identity φ, no biases),  y_t = W_hy h_t,
        L = Σ_t (y_t − target_t)²,   x = [1, 2],  target = [2, 5],  W_xh = 0.5, W_hh = 1.5, W_hy = 1.0
    Forward: h = [0.5, 1.75], L = 1.5² + 3.25² = 12.8125.  ∂ℓ_t/∂y_t = 2 (y_t − target_t) = [−3, −6.5].
        ∂L/∂W_hy = Σ_t ∂ℓ_t/∂y_t h_t = −12.875
        δh_2 = W_hy ∂ℓ_2/∂y_2 = −6.5,   δh_1 = W_hy ∂ℓ_1/∂y_1 + W_hh δh_2 = −12.75
        ∂L/∂W_hh = Σ_t δh_t h_{t−1} = −3.25,   ∂L/∂W_xh = Σ_t δh_t x_t = −25.75
    Returns {"L", "dL/dW_hy", "dL/dW_hh", "dL/dW_xh", "dL/dh_1", "dL/dh_2"} as floats, plus
    "path_sum": the same gradient keys recomputed through the O(T²) path sum.
    """
    x, target = [1.0, 2.0], [2.0, 5.0]
    W_xh, W_hh, W_hy = 0.5, 1.5, 1.0
    T = len(x)
    h = [0.0]  # h_0
    for t in range(1, T + 1):
        h.append(W_xh * x[t - 1] + W_hh * h[t - 1])  # h_t = W_xh x_t + W_hh h_{t−1}
    y = [None] + [W_hy * h[t] for t in range(1, T + 1)]  # y_t = W_hy h_t
    L = sum((y[t] - target[t - 1]) ** 2 for t in range(1, T + 1))
    dy = [None] + [2 * (y[t] - target[t - 1]) for t in range(1, T + 1)]  # ∂ℓ_t/∂y_t
    dh = [0.0] * (T + 2)  # δh_{T+1} = 0
    for t in range(T, 0, -1):
        dh[t] = W_hy * dy[t] + W_hh * dh[t + 1]  # δh_t = ∂ℓ_t/∂h_t + W_hh δh_{t+1}
    result = {
        "L": L,
        "dL/dW_hy": sum(dy[t] * h[t] for t in range(1, T + 1)),  # Σ_t ∂ℓ_t/∂y_t h_t
        "dL/dW_hh": sum(dh[t] * h[t - 1] for t in range(1, T + 1)),  # Σ_t δh_t h_{t−1}
        "dL/dW_xh": sum(dh[t] * x[t - 1] for t in range(1, T + 1)),  # Σ_t δh_t x_t
        "dL/dh_1": dh[1],
        "dL/dh_2": dh[2],
    }
    ps = path_sum_grads(
        {"weight_ih": np.array([[W_xh]]), "weight_hh": np.array([[W_hh]])},
        np.array(x).reshape(T, 1, 1),
        np.zeros((1, 1)),
        np.array([W_hy * dy[t] for t in range(1, T + 1)]).reshape(T, 1, 1),  # ∂ℓ_t/∂h_t
        nonlinearity="identity",
    )
    result["path_sum"] = {
        "dL/dW_hy": float(np.sum(np.array(dy[1:]) * ps.out.ravel())),
        "dL/dW_hh": ps.grads["weight_hh"].item(),
        "dL/dW_xh": ps.grads["weight_ih"].item(),
        "dL/dh_1": ps.dh[0].item(),
        "dL/dh_2": ps.dh[1].item(),
    }
    return result
