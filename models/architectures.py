"""Architectures from the lecture notes: residual RNN, orthogonal W_hh, skip connections, attention.

Each changes how gradients travel back in time:

* residual:   h_t = h_{t-1} + α φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
              ∂h_t/∂h_{t-1} = I + α diag(φ') W_hh: the identity keeps δh_t from vanishing.
* orthogonal W_hh: all singular values 1, so W_hhᵀ neither shrinks nor stretches δh on its own.
* skip:       h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh + W_skip h_{t-d})
              a second edge h_{t-d} → h_t: a gradient reaches d steps back in one hop.
* attention:  c_t = Σ_{k<t} α_{t,k} h_k gives step t a path of length 1 to every earlier state.
* attention over the inputs (the notes' form): c_t = Σ_{k≤t} α_{t,k} x_k next to the
              recurrence, so ∂ℓ_t/∂x_s = (recurrent path) + (shortcut through c_t).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import minigrad as mg
from minigrad.nn import Module, Parameter, init
from minigrad.tensor import Tensor

from .cells import NONLINEARITIES, _as_input, _float_dtype, _positive_int
from .rnn import RNN
from .truncation import TruncationPolicy, as_truncation

__all__ = ["ResidualRNN", "SkipRNN", "AttentionRNN", "InputAttentionRNN", "orthogonal_init_"]


def orthogonal_init_(module: Module, gain: float = 1.0, rng: np.random.Generator | int | None = None) -> Module:
    """Make every recurrent weight (names starting ``weight_hh``) orthogonal, gate block by gate
    block: each (H, H) block W satisfies Wᵀ W = gain² I. Returns the module."""
    rng = init._rng(rng)
    found = False
    for name, p in module.named_parameters():
        if not name.split(".")[-1].startswith("weight_hh"):
            continue
        found = True
        H = p.shape[1]
        for g in range(p.shape[0] // H):  # one orthogonal block per gate (r, z, n / i, f, g, o)
            block = Tensor(np.empty((H, H), p.dtype))
            init.orthogonal_(block, gain, rng)
            p.data[g * H : (g + 1) * H] = block.data
        p.mark_modified()
    if not found:
        raise ValueError(f"orthogonal_init_: {type(module).__name__} has no weight_hh parameters")
    return module


def _time_major(
    owner: str, x: Any, h0: Any, I: int, H: int, dtype: np.dtype, batch_first: bool
) -> tuple[Tensor, Tensor, bool]:
    """A one-layer model's input as (T, B, I) and its initial state as (B, H) (zeros when None),
    checked, and whether the input was batched."""
    x = _as_input(owner, "input", x, dtype)
    if x.ndim not in (2, 3) or x.shape[-1] != I or 0 in x.shape:
        layout = f"(B, T, {I})" if batch_first else f"(T, B, {I})"
        raise ValueError(f"{owner}: expected input of shape {layout} (or (T, {I}) unbatched), got {x.shape}")
    batched = x.ndim == 3
    x = (mg.transpose(x, 1, 0, 2) if batch_first else x) if batched else x.reshape(x.shape[0], 1, I)
    B = x.shape[1]
    if h0 is None:
        return x, Tensor(np.zeros((B, H), dtype)), batched
    h0 = _as_input(owner, "h0", h0, dtype)
    want = (1, B, H) if batched else (1, H)
    if h0.shape != want:
        raise ValueError(f"{owner}: expected h0 of shape {want}, got {h0.shape}")
    return x, h0.reshape(B, H), batched


def _outputs(hs: list[Tensor], batched: bool, batch_first: bool) -> tuple[Tensor, Tensor]:
    """(out, h_n) from the states h_1 … h_T (each (B, H)), in the layout the input came in."""
    out, h_n = mg.stack(hs), hs[-1].reshape(1, *hs[-1].shape)
    if not batched:
        return out.reshape(len(hs), -1), h_n.reshape(1, -1)
    return (mg.transpose(out, 1, 0, 2) if batch_first else out), h_n


def _uniform_parameters(module: Module, shapes: dict[str, tuple[int, ...]], rng: Any) -> None:
    """One Parameter per name, each U(−k, k) with k = 1/√H (PyTorch's init for recurrent weights)."""
    rng, k = init._rng(rng), 1.0 / math.sqrt(module.hidden_size)
    for name, shape in shapes.items():
        setattr(module, name, Parameter(rng.uniform(-k, k, shape).astype(module.dtype)))


class ResidualRNN(RNN):
    """Residual Elman RNN: h_t = h_{t-1} + α φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    Same call, shapes, options and parameter names as ``RNN`` (so also layers, bidirectional,
    truncation); ``alpha`` scales the update; ``orthogonal=True`` starts W_hh orthogonal
    (``gain`` times an orthogonal matrix) instead of uniform.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        alpha: float = 1.0,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        orthogonal: bool = True,
        gain: float = 1.0,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float64,
    ):
        rng = init._rng(rng)
        super().__init__(
            input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, bidirectional, rng, dtype
        )
        self.alpha = float(alpha)
        if orthogonal:
            orthogonal_init_(self, gain, rng)

    def _step(self, xw: Tensor, h: Tensor, W_hhT: Tensor, out: np.ndarray | None = None) -> Tensor:
        f = NONLINEARITIES[self.nonlinearity](mg.addmm(xw, h, W_hhT))  # f = φ(W_ih x_t + b + W_hh h_{t-1})
        return mg.add(h, f if self.alpha == 1.0 else self.alpha * f, out=out)  # h_t = h_{t-1} + α f

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", alpha={self.alpha}" if self.alpha != 1.0 else "")


class SkipRNN(Module):
    """An Elman RNN with a skip connection across time, from h_{t-d} straight into h_t:

        h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh + W_skip h_{t-d})      (d = ``skip``, default 2)

    with h_s = h_0 for every s ≤ 0. The unrolled graph then has two edges into each step, so

        δh_t = ∂ℓ_t/∂h_t + W_hhᵀ δa_{t+1} + W_skipᵀ δa_{t+d},     δa_t = φ'(a_t) ⊙ δh_t

    and a loss at T reaches h_{T-m} in about m/d hops instead of m: the shortcut path.

    Parameters weight_ih (H, I), weight_hh (H, H), weight_skip (H, H), bias_ih, bias_hh, all
    uniform ±1/√H (a W_skip of zeros gives back ``models.RNN``). ``forward(x, h0=None,
    cut=None, return_states=False)`` → (out (T, B, H), h_n (1, B, H)) (+ the list of the T
    states h_1 … h_T, for ``retain_grad``). Input (T, B, I), (B, T, I) with batch_first, or
    (T, I). ``cut="recurrent"`` detaches every h_{t-1} → h_t edge and ``cut="skip"`` every
    h_{t-d} → h_t edge (the forward values stay the same), to see the two paths apart.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        skip: int = 2,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float64,
    ):
        super().__init__()
        self.input_size = _positive_int("SkipRNN", "input_size", input_size)
        self.hidden_size = H = _positive_int("SkipRNN", "hidden_size", hidden_size)
        self.skip = _positive_int("SkipRNN", "skip", skip)
        if self.skip < 2:
            raise ValueError(f"SkipRNN: skip must be at least 2 (skip=1 is the recurrent edge itself), got {skip}")
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"SkipRNN: nonlinearity must be one of {sorted(NONLINEARITIES)}, got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.batch_first, self.bias = bool(batch_first), bool(bias)
        self.dtype = _float_dtype("SkipRNN", dtype)
        shapes = {"weight_ih": (H, self.input_size), "weight_hh": (H, H), "weight_skip": (H, H)}
        if self.bias:
            shapes.update(bias_ih=(H,), bias_hh=(H,))
        _uniform_parameters(self, shapes, rng)

    def forward(self, x: Any, h0: Any = None, cut: str | None = None, return_states: bool = False) -> tuple:
        I, H, d = self.input_size, self.hidden_size, self.skip
        if cut not in (None, "recurrent", "skip"):
            raise ValueError(f'SkipRNN: cut must be None, "recurrent" or "skip", got {cut!r}')
        x, h, batched = _time_major("SkipRNN", x, h0, I, H, self.dtype, self.batch_first)
        T, B, _ = x.shape
        phi = NONLINEARITIES[self.nonlinearity]

        with mg.scope("l0"):
            xw = x.reshape(T * B, I) @ self.weight_ih.T  # all input projections at once
            if self.bias:
                xw = xw + (self.bias_ih + self.bias_hh)
            xws = mg.unbind(xw.reshape(T, B, H))
            W_hhT, W_skipT = self.weight_hh.T, self.weight_skip.T
            history = [h] * d  # h_{t-d} … h_{t-1}, with h_s = h_0 for s ≤ 0
            hs = []
            for t, xw_t in enumerate(xws, start=1):
                with mg.scope(f"t={t}"):
                    h_prev, h_skip = history[-1], history[-d]
                    if cut == "recurrent":
                        h_prev = h_prev.detach()
                    elif cut == "skip":
                        h_skip = h_skip.detach()
                    a = (
                        mg.addmm(xw_t, h_prev, W_hhT) + h_skip @ W_skipT
                    )  # a_t = W_ih x_t + b + W_hh h_{t-1} + W_skip h_{t-d}
                    h_t = phi(a)  # h_t = φ(a_t)
                    h_t.name = "h"
                hs.append(h_t)
                history = history[1:] + [h_t]
        out, h_n = _outputs(hs, batched, self.batch_first)
        return (out, h_n, hs) if return_states else (out, h_n)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, skip={self.skip}, nonlinearity={self.nonlinearity!r}, bias={self.bias}"


class AttentionRNN(Module):
    """An Elman RNN that also reads an attention context over its earlier states:

        α_{t,k} = softmax_k( h_{t-1} · h_k / √H ),  k = 0 … t-1      (scores of the last state)
        c_t     = Σ_k α_{t,k} h_k                                    (context)
        h_t     = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh + W_ch c_t)

    Parameters weight_ih (H, I), weight_hh (H, H), weight_ch (H, H), bias_ih, bias_hh, uniform
    ±1/√H. ``forward(x, h0=None, truncate=None, return_attention=False)`` → (out (T, B, H),
    h_n (1, B, H)) (+ the attention weights: a list of T arrays (B, t)). Input (T, B, I),
    (B, T, I) with batch_first, or (T, I). ``truncate`` cuts only the recurrent path
    h_{t-1} → h_t; the attention keeps its direct paths to every earlier state.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        batch_first: bool = False,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float64,
    ):
        super().__init__()
        self.input_size = _positive_int("AttentionRNN", "input_size", input_size)
        self.hidden_size = H = _positive_int("AttentionRNN", "hidden_size", hidden_size)
        self.batch_first, self.bias = bool(batch_first), bool(bias)
        self.dtype = _float_dtype("AttentionRNN", dtype)
        shapes = {"weight_ih": (H, self.input_size), "weight_hh": (H, H), "weight_ch": (H, H)}
        if self.bias:
            shapes.update(bias_ih=(H,), bias_hh=(H,))
        _uniform_parameters(self, shapes, rng)

    def forward(
        self,
        x: Any,
        h0: Any = None,
        truncate: int | TruncationPolicy | None = None,
        return_attention: bool = False,
    ) -> tuple:
        I, H = self.input_size, self.hidden_size
        x, h, batched = _time_major("AttentionRNN", x, h0, I, H, self.dtype, self.batch_first)
        T, B, _ = x.shape
        policy = as_truncation(truncate)

        with mg.scope("l0"):
            xw = x.reshape(T * B, I) @ self.weight_ih.T  # all input projections at once
            if self.bias:
                xw = xw + (self.bias_ih + self.bias_hh)
            xws = mg.unbind(xw.reshape(T, B, H))
            W_hhT, W_chT, scale = self.weight_hh.T, self.weight_ch.T, 1.0 / math.sqrt(H)
            memory, hs, weights = [h], [], []
            for t, xw_t in enumerate(xws, start=1):
                with mg.scope(f"t={t}"):
                    M = mg.stack(memory, axis=1)  # (B, t, H): h_0 … h_{t-1}
                    scores = (M @ h.reshape(B, H, 1)).reshape(B, t) * scale  # h_{t-1} · h_k / √H
                    alpha = mg.softmax(scores, axis=-1)  # α_{t,k}
                    c = (alpha.reshape(B, 1, t) @ M).reshape(B, H)  # c_t = Σ_k α_{t,k} h_k
                    h_t = mg.tanh(xw_t + h @ W_hhT + c @ W_chT)  # h_t = tanh(W_ih x_t + b + W_hh h + W_ch c_t)
                hs.append(h_t)
                memory.append(h_t)
                weights.append(alpha.data)
                h = policy.carry(t, h_t) if policy is not None and t < T else h_t
        out, h_n = _outputs(hs, batched, self.batch_first)
        return (out, h_n, weights) if return_attention else (out, h_n)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class InputAttentionRNN(Module):
    """The lecture notes' attention RNN: an Elman RNN whose output also reads the inputs.

        h_t     = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)            (the recurrence)
        α_{t,k} = softmax_k( (W_q h_t) · x_k / √I ),  k = 1 … t           (scores of x_k for step t)
        c_t     = Σ_{k≤t} α_{t,k} x_k                                     (context: the inputs themselves)
        y_t     = W_hy h_t + W_cy c_t + b_y                               (the output)

    x_k is both key and value: the cache of step t is x_1 … x_t. A loss ℓ_t(y_t) then reaches x_s
    two ways: through h_s → … → h_t (the recurrent path, a product of t − s step Jacobians) and
    through c_t directly (the shortcut, one hop for any t − s).

    Parameters weight_ih (H, I), weight_hh (H, H), weight_q (I, H), weight_hy (O, H),
    weight_cy (O, I), bias_ih, bias_hh, bias_y, uniform ±1/√H. ``forward(x, h0=None,
    truncate=None, cut=None, detach_cache=False, return_attention=False)`` → (y (T, B, O), h_n
    (1, B, H)) (+ the attention weights: T arrays (B, t)). Input (T, B, I), (B, T, I) with
    batch_first, or (T, I). The forward values never change; only where gradients flow:

    * ``truncate`` cuts the recurrent path h_{t-1} → h_t as in the layers;
    * ``cut="recurrent"`` feeds the recurrence x.detach() (only the shortcut reaches x),
      ``cut="shortcut"`` feeds the attention x.detach() (only the recurrent path reaches x):
      the two input gradients add up to the full one;
    * ``detach_cache=True`` reads the cache entries x_k, k < t, as constants (a KV cache kept
      from earlier steps, not differentiated), while step t's own x_t stays live.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int | None = None,
        bias: bool = True,
        batch_first: bool = False,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float64,
    ):
        super().__init__()
        self.input_size = I = _positive_int("InputAttentionRNN", "input_size", input_size)
        self.hidden_size = H = _positive_int("InputAttentionRNN", "hidden_size", hidden_size)
        O = H if output_size is None else output_size  # noqa: E741
        self.output_size = O = _positive_int("InputAttentionRNN", "output_size", O)  # noqa: E741
        self.batch_first, self.bias = bool(batch_first), bool(bias)
        self.dtype = _float_dtype("InputAttentionRNN", dtype)
        shapes = {
            "weight_ih": (H, I),
            "weight_hh": (H, H),
            "weight_q": (I, H),
            "weight_hy": (O, H),
            "weight_cy": (O, I),
        }
        if self.bias:
            shapes.update(bias_ih=(H,), bias_hh=(H,), bias_y=(O,))
        _uniform_parameters(self, shapes, rng)

    def forward(
        self,
        x: Any,
        h0: Any = None,
        truncate: int | TruncationPolicy | None = None,
        cut: str | None = None,
        detach_cache: bool = False,
        return_attention: bool = False,
    ) -> tuple:
        if cut not in (None, "recurrent", "shortcut"):
            raise ValueError(f"InputAttentionRNN: cut must be None, 'recurrent' or 'shortcut', got {cut!r}")
        I, H = self.input_size, self.hidden_size
        x, h, batched = _time_major("InputAttentionRNN", x, h0, I, H, self.dtype, self.batch_first)
        T, B, _ = x.shape
        policy = as_truncation(truncate)
        x_rec = x.detach() if cut == "recurrent" else x  # what the recurrence reads
        x_att = x.detach() if cut == "shortcut" else x  # what the attention reads
        with mg.scope("l0"):
            xw = x_rec.reshape(T * B, I) @ self.weight_ih.T  # all input projections at once
            if self.bias:
                xw = xw + (self.bias_ih + self.bias_hh)
            xws, xs = mg.unbind(xw.reshape(T, B, H)), mg.unbind(x_att)
            frozen = mg.unbind(x_att.detach()) if detach_cache else xs  # the cache kept as constants
            W_hhT, W_qT, scale = self.weight_hh.T, self.weight_q.T, 1.0 / math.sqrt(I)
            ys, hs, weights = [], [], []
            for t, xw_t in enumerate(xws, start=1):
                with mg.scope(f"t={t}"):
                    h_t = mg.tanh(xw_t + h @ W_hhT)  # h_t = tanh(W_ih x_t + b + W_hh h_{t-1})
                    cache = mg.stack([*frozen[: t - 1], xs[t - 1]], axis=1)  # (B, t, I): x_1 … x_t
                    q = (h_t @ W_qT).reshape(B, I, 1)  # q_t = W_q h_t
                    alpha = mg.softmax((cache @ q).reshape(B, t) * scale, axis=-1)  # α_{t,k}
                    c = (alpha.reshape(B, 1, t) @ cache).reshape(B, I)  # c_t = Σ_k α_{t,k} x_k
                    y = h_t @ self.weight_hy.T + c @ self.weight_cy.T  # y_t = W_hy h_t + W_cy c_t + b_y
                    if self.bias:
                        y = y + self.bias_y
                ys.append(y)
                hs.append(h_t)
                weights.append(alpha.data)
                h = policy.carry(t, h_t) if policy is not None and t < T else h_t
        out, _ = _outputs(ys, batched, self.batch_first)
        _, h_n = _outputs(hs, batched, self.batch_first)
        return (out, h_n, weights) if return_attention else (out, h_n)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, output_size={self.output_size}, bias={self.bias}"
