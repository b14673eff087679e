"""One step of a recurrent cell: RNNCell, GRUCell, LSTMCell (PyTorch's equations, names and init).

Every cell keeps its weights as rows, as PyTorch does, so "W x" is ``x @ W_ihᵀ``:

    weight_ih (G*H, I),  weight_hh (G*H, H),  bias_ih (G*H,),  bias_hh (G*H,)

with G = 1 (RNN), 3 (GRU: gates r, z, n) or 4 (LSTM: gates i, f, g, o), all initialised
uniform in ±1/√H. The step equations live in three small functions, ``rnn_step``,
``gru_step`` and ``lstm_step``, shared with the multi-step layers in ``rnn.py``: a layer
computes the input projection W_ih x_t + b of all steps with one matmul and then runs only
the recurrent part of these functions per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

import minigrad as mg
from minigrad.nn import Module, Parameter, _as_input, _positive_int, init  # one input and size rule for all modules
from minigrad.tensor import Tensor

__all__ = [
    "RNNCell",
    "GRUCell",
    "LSTMCell",
    "rnn_step",
    "gru_step",
    "lstm_step",
    "NONLINEARITIES",
]


def _identity(a: Tensor, out: np.ndarray | None = None) -> Tensor:
    return a  # no op, so nothing is written to out (the layer's stack then copies a in)


# φ for the Elman RNN, called φ(a, out=None); "identity" is the linear RNN of the lecture notes (no node at all).
NONLINEARITIES: dict[str, Callable[..., Tensor]] = {"tanh": mg.tanh, "relu": mg.relu, "identity": _identity}


# ---------------------------------------------------------------------------
# The step equations (the only place they are written down)
# ---------------------------------------------------------------------------
def rnn_step(xw: Tensor, h: Tensor, W_hhT: Tensor, phi: Callable[..., Tensor], out: np.ndarray | None = None) -> Tensor:
    """Elman step, given xw = W_ih x_t + b_ih + b_hh:

    h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)          (2 nodes: addmm, φ)

    ``mg.addmm(xw, h, W_hhT)`` is ``xw + h @ W_hhT`` recorded as one node (as torch.addmm).
    ``out`` (here and in the other steps): a (B, H) array h_t may be written into; the layers
    pass row t of their output, so that stacking h_1 … h_T afterwards copies nothing.
    """
    return phi(mg.addmm(xw, h, W_hhT), out=out)


def gru_step(
    xrz: Tensor, xn: Tensor, h: Tensor, W_hhT: Tensor, b_hn: Tensor | None, out: np.ndarray | None = None
) -> Tensor:
    """GRU step, given xrz = [W_ir x_t + b_ir + b_hr, W_iz x_t + b_iz + b_hz] and xn = W_in x_t + b_in:

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))     b_hn stays inside r_t ⊙ (…)
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}  =  n_t + z_t ⊙ (h_{t-1} − n_t)
    """
    gh_rz, gh_n = mg.split(h @ W_hhT, [2 * h.shape[-1]], axis=-1)  # [W_hr h, W_hz h], W_hn h
    r, z = mg.split(mg.sigmoid(xrz + gh_rz), 2, axis=-1)  # r and z from one sigmoid over (B, 2H)
    if b_hn is not None:
        gh_n = gh_n + b_hn
    n = mg.tanh(xn + r * gh_n)  # n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h = mg.lerp(n, h, z, out=out)  # h' = n + z ⊙ (h − n) = (1 − z) ⊙ n + z ⊙ h  (one node)
    r.name, z.name, n.name, h.name = "r", "z", "n", "h"  # the names pictures and the tape show
    return h


def lstm_step(xw: Tensor, h: Tensor, c: Tensor, W_hhT: Tensor, out: np.ndarray | None = None) -> tuple[Tensor, Tensor]:
    """LSTM step, given xw = W_ih x_t + b_ih + b_hh (gates stacked i, f, g, o):

    i_t = σ(·), f_t = σ(·), g_t = tanh(·), o_t = σ(·)   of  W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)
    """
    i, f, g, o = mg.split(mg.addmm(xw, h, W_hhT), 4, axis=-1)  # xw + h W_hhᵀ: one (B, 4H) node, one split
    i, f, g, o = mg.sigmoid(i), mg.sigmoid(f), mg.tanh(g), mg.sigmoid(o)
    c = f * c + i * g  # c_t = f ⊙ c_{t-1} + i ⊙ g
    h = mg.mul(o, mg.tanh(c), out=out)  # h_t = o ⊙ tanh(c_t)
    i.name, f.name, g.name, o.name, c.name, h.name = "i", "f", "g", "o", "c", "h"  # shown in pictures and the tape
    return h, c


# ---------------------------------------------------------------------------
# Shared construction and input checks
# ---------------------------------------------------------------------------
def _float_dtype(owner: str, dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{owner}: dtype must be a floating-point type (float64 or float32), got {dt}")
    return dt


class _CellBase(Module):
    """weight_ih (G*H, I), weight_hh (G*H, H), bias_ih, bias_hh (G*H,), uniform in ±1/√H."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool, rng: Any, dtype: Any):
        super().__init__()
        name = type(self).__name__
        self.input_size = _positive_int(name, "input_size", input_size)
        self.hidden_size = _positive_int(name, "hidden_size", hidden_size)
        self.bias = bool(bias)
        self.dtype = _float_dtype(name, dtype)
        rng = init._rng(rng)
        G, H, k = self.gates, self.hidden_size, 1.0 / math.sqrt(self.hidden_size)
        shapes = {"weight_ih": (G * H, self.input_size), "weight_hh": (G * H, H)}
        if self.bias:
            shapes.update(bias_ih=(G * H,), bias_hh=(G * H,))
        for pname, shape in shapes.items():  # PyTorch's order, one draw each
            setattr(self, pname, Parameter(rng.uniform(-k, k, shape).astype(self.dtype)))
        if not self.bias:
            self.bias_ih = self.bias_hh = None

    def _check_input(self, x: Any) -> tuple[Tensor, bool]:
        """x (B, I) or (I,) → (B, I), and whether it was batched."""
        name, I = type(self).__name__, self.input_size
        x = _as_input(name, "input", x, self.dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != I:
            raise ValueError(f"{name}: expected input of shape (B, {I}) (or ({I},) unbatched), got {x.shape}")
        return (x, True) if x.ndim == 2 else (x.reshape(1, I), False)

    def _check_state(self, s: Any, B: int, batched: bool, what: str = "h") -> Tensor:
        """A state (B, H) (or (H,) for unbatched input) → (B, H); zeros when None."""
        name, H = type(self).__name__, self.hidden_size
        if s is None:
            return Tensor(np.zeros((B, H), self.dtype))
        s = _as_input(name, what, s, self.dtype)
        want = (B, H) if batched else (H,)
        if s.shape != want:
            got = "batched" if batched else "unbatched"
            raise ValueError(f"{name}: expected {what} of shape {want} for {got} input, got {s.shape}")
        return s if batched else s.reshape(1, H)

    def _projection(self, x: Tensor, fold: Tensor | None) -> Tensor:
        """W_ih x + b_ih (+ the folded part of b_hh)."""
        xw = x @ self.weight_ih.T
        return xw if fold is None else xw + fold

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class RNNCell(_CellBase):
    """Elman cell: h' = φ(W_ih x + b_ih + W_hh h + b_hh), φ ∈ {tanh, relu, identity}.

    ``identity`` gives the linear RNN of the lecture notes. Input (B, I) or (I,); h (B, H) or (H,),
    zeros when None. Returns h'.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float64,
    ):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNNCell: nonlinearity must be one of {sorted(NONLINEARITIES)}, got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, rng, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, x: Any, h: Any = None) -> Tensor:
        x, batched = self._check_input(x)
        h = self._check_state(h, x.shape[0], batched)
        fold = self.bias_ih + self.bias_hh if self.bias else None
        h = rnn_step(self._projection(x, fold), h, self.weight_hh.T, NONLINEARITIES[self.nonlinearity])
        return h if batched else h.reshape(self.hidden_size)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class GRUCell(_CellBase):
    """GRU cell (gates r, z, n stacked in that order in weight_ih / weight_hh):

    r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h

    The gate convention: z weighs the OLD state, so z → 1 keeps h and z → 0 writes the
    candidate n. The lecture notes write it both ways (note 000: h' = (1 − z) ⊙ h + z ⊙ n;
    note 003: the form above); the two are the same model with z replaced by 1 − z, so the
    only thing that differs is the meaning of the weights. minigrad uses the form above
    because PyTorch's ``nn.GRU`` does: a ``state_dict`` then loads into torch unchanged and
    gives the same h'. For the other convention, read z as 1 − z (flip the signs of the z
    rows of weight_ih, weight_hh and their biases).
    """

    gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float64,
    ):
        super().__init__(input_size, hidden_size, bias, rng, dtype)

    def forward(self, x: Any, h: Any = None) -> Tensor:
        x, batched = self._check_input(x)
        h = self._check_state(h, x.shape[0], batched)
        fold, b_hn = gru_biases(self.bias_ih, self.bias_hh, self.hidden_size)
        xrz, xn = mg.split(self._projection(x, fold), [2 * self.hidden_size], axis=-1)
        h = gru_step(xrz, xn, h, self.weight_hh.T, b_hn)
        return h if batched else h.reshape(self.hidden_size)


def gru_biases(b_ih: Tensor | None, b_hh: Tensor | None, H: int) -> tuple[Tensor | None, Tensor | None]:
    """(b_ih + [b_hr, b_hz, 0], b_hn): the part of b_hh that folds into the input projection, and
    the part that cannot (b_hn is multiplied by r inside the n gate)."""
    if b_ih is None:
        return None, None
    keep_rz = np.concatenate([np.ones(2 * H, b_hh.dtype), np.zeros(H, b_hh.dtype)])
    return b_ih + b_hh * keep_rz, b_hh[2 * H :]


class LSTMCell(_CellBase):
    """LSTM cell (gates i, f, g, o stacked in that order):

    i = σ(·), f = σ(·), g = tanh(·), o = σ(·)  of  W_ih x + b_ih + W_hh h + b_hh
    c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c')

    ``forward(x, hx=None)`` with hx = (h, c); returns (h', c').
    """

    gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float64,
    ):
        super().__init__(input_size, hidden_size, bias, rng, dtype)

    def forward(self, x: Any, hx: tuple[Any, Any] | None = None) -> tuple[Tensor, Tensor]:
        if hx is not None and not (isinstance(hx, tuple | list) and len(hx) == 2):
            got = f"a {type(hx).__name__} of {len(hx)}" if isinstance(hx, tuple | list) else type(hx).__name__
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c) of 2 tensors, got {got}")
        h, c = (None, None) if hx is None else hx
        if (h is None) != (c is None):  # as the LSTM layer: one state given, the other zeros, is a slip
            raise ValueError("LSTMCell: give both h and c in hx (or hx=None for zeros)")
        x, batched = self._check_input(x)
        h = self._check_state(h, x.shape[0], batched, "h")
        c = self._check_state(c, x.shape[0], batched, "c")
        fold = self.bias_ih + self.bias_hh if self.bias else None
        h, c = lstm_step(self._projection(x, fold), h, c, self.weight_hh.T)
        if not batched:
            h, c = h.reshape(self.hidden_size), c.reshape(self.hidden_size)
        return h, c
