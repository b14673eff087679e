"""Multi-step recurrent layers RNN, GRU, LSTM: a Python loop over time on minigrad ops.

The layers follow torch.nn.RNN/GRU/LSTM: input (T, B, I), (B, T, I) with ``batch_first``, or
unbatched (T, I); ``num_layers`` stacked layers, each optionally ``bidirectional``; parameters
``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (+ ``_reverse``), so a
PyTorch state_dict (as numpy arrays) loads unchanged, and back.

Backpropagation through time needs no code here: the loop records the unrolled graph and
``backward`` walks it. What the loop does per layer and direction:

    xw = x W_ihᵀ + b            ONE matmul for all T steps (in scope "l0"), split per step by unbind
                                (for T·B over 256 rows: one per chunk of ~256 rows, made as the loop
                                reaches it, so the whole sequence's projection never sits in memory)
    W_hhᵀ                       transposed once
    for t = 1..T:               scope "l0/t=1", …, "l0/t=T"
        h_t = step(xw_t, h_{t-1})         only the recurrent product and the gate math,
                                          h_t written straight into row t of out's array
        h_{t} → carried state   (detached at truncation points: see truncation.py)
    out = stack(h_1..h_T)       ONE node, and no copy: the rows are already in place

The reverse direction (scope "l0_reverse") runs the same loop over reversed time; its step
scopes and truncation count its own processing order (its "t=1" reads x_T).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

import minigrad as mg
from minigrad.nn import Module, Parameter, _probability, dropout, init
from minigrad.tensor import Tensor

from .cells import NONLINEARITIES, _as_input, _float_dtype, _positive_int, gru_biases, gru_step, lstm_step, rnn_step
from .truncation import TruncationPolicy, as_truncation

__all__ = ["RNN", "GRU", "LSTM", "StepStates"]


@dataclass
class StepStates:
    """The per-step state tensors of the last forward, for δh_t = dL/dh_t.

    h["l0"], h["l0_reverse"], …: lists of the T state tensors h_t (B, H) in the input's time
    order (h["l0_reverse"][t] is what out[t, :, H:] holds); c likewise for the LSTM (else None).
    These are the carried states before any truncation cut, the same tensors as in ``out``.
    Unbatched input gives B = 1.

        out, h_n, states = rnn(x, return_states=True)
        states.retain_grad(); loss.backward(); states.grads()["l0"]   # (T, B, H) array of δh_t
    """

    h: dict[str, list[Tensor]]
    c: dict[str, list[Tensor]] | None = None

    def retain_grad(self) -> StepStates:
        """Ask backward to keep dL/dh_t (and dL/dc_t) of every step."""
        for group in (self.h, self.c or {}):
            for states in group.values():
                for s in states:
                    if s.requires_grad:
                        s.retain_grad()
        return self

    def grads(self, which: str = "h") -> dict[str, np.ndarray]:
        """{"l0": (T, B, H) array of δh_t, …} after backward (zeros where none arrived)."""
        group = self.h if which == "h" else self.c
        if group is None:
            raise ValueError("StepStates.grads('c'): only the LSTM has cell states")
        return {
            k: np.stack([np.zeros_like(s.data) if s._grad is None else s._grad for s in v]) for k, v in group.items()
        }


class _RecurrentLayers(Module):
    """What RNN, GRU and LSTM share: parameters, input checks, the loop over layers and directions."""

    gates = 1
    has_cell = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float64,
        dropout: float = 0.0,
    ):
        super().__init__()
        name = type(self).__name__
        self.dropout = _probability(name, dropout)  # on every layer's output but the last, in training
        if self.dropout and num_layers == 1:
            warnings.warn(
                f"{name}: dropout={dropout} does nothing with num_layers=1 (as in torch, it acts between layers)",
                UserWarning,
                stacklevel=2,
            )
        self.input_size = _positive_int(name, "input_size", input_size)
        self.hidden_size = _positive_int(name, "hidden_size", hidden_size)
        self.num_layers = _positive_int(name, "num_layers", num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.dtype = _float_dtype(name, dtype)
        rng = init._rng(rng)
        G, H, D = self.gates, self.hidden_size, self.num_directions
        k = 1.0 / np.sqrt(H)  # PyTorch's default: every parameter uniform in ±1/√H
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else D * H
            for d in range(D):
                tag = self._tag(layer, d)
                shapes = {"weight_ih": (G * H, in_size), "weight_hh": (G * H, H)}
                if self.bias:
                    shapes.update(bias_ih=(G * H,), bias_hh=(G * H,))
                for pname, shape in shapes.items():  # PyTorch's parameter order
                    setattr(self, f"{pname}_{tag}", Parameter(rng.uniform(-k, k, shape).astype(self.dtype)))

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @staticmethod
    def _tag(layer: int, direction: int) -> str:
        return f"l{layer}_reverse" if direction else f"l{layer}"

    def _weights(self, tag: str) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        if self.bias:
            return (
                getattr(self, f"weight_ih_{tag}"),
                getattr(self, f"weight_hh_{tag}"),
                getattr(self, f"bias_ih_{tag}"),
                getattr(self, f"bias_hh_{tag}"),
            )
        return getattr(self, f"weight_ih_{tag}"), getattr(self, f"weight_hh_{tag}"), None, None

    # -- checks -------------------------------------------------------------
    def _check_input(self, x: Any) -> tuple[Tensor, bool]:
        """x as a time-major (T, B, I) Tensor, and whether it was batched."""
        name, I = type(self).__name__, self.input_size
        given = x
        x = _as_input(name, "input", x, self.dtype)
        if x is not given and x.name is None:
            x.name = "x"  # made here from the user's array: named, so pictures show it as the input x
        layout = "(B, T, {I})" if self.batch_first else "(T, B, {I})"
        if x.ndim not in (2, 3) or x.shape[-1] != I or 0 in x.shape:
            raise ValueError(
                f"{name}: expected input of shape {layout.format(I=I)} (or (T, {I}) unbatched), got {x.shape}"
            )
        if x.ndim == 2:
            return x.reshape(x.shape[0], 1, I), False
        return (mg.transpose(x, 1, 0, 2) if self.batch_first else x), True

    def _check_state(self, s: Any, B: int, batched: bool, what: str) -> Tensor | None:
        """An initial state (L*D, B, H) (or (L*D, H) unbatched) as (L*D, B, H), or None."""
        if s is None:
            return None
        name, LD, H = type(self).__name__, self.num_layers * self.num_directions, self.hidden_size
        s = _as_input(name, what, s, self.dtype)
        want = (LD, B, H) if batched else (LD, H)
        if s.shape != want:
            kind = f"input with batch size {B}" if batched else "unbatched input"
            raise ValueError(
                f"{name}: expected {what} of shape {want} (num_layers*num_directions, "
                f"{'B, ' if batched else ''}hidden_size) for {kind}, got {s.shape}"
            )
        return s if batched else s.reshape(LD, 1, H)

    # -- forward --------------------------------------------------------------
    def _run(
        self, x: Any, h0: Any, c0: Any, truncate: int | TruncationPolicy | None
    ) -> tuple[Tensor, Tensor, Tensor | None, StepStates, bool]:
        x, batched = self._check_input(x)
        T, B, _ = x.shape
        h0 = self._check_state(h0, B, batched, "h0")
        c0 = self._check_state(c0, B, batched, "c0") if self.has_cell else None
        policy = as_truncation(truncate)
        D, H = self.num_directions, self.hidden_size
        zeros = Tensor(np.zeros((B, H), self.dtype), name="h0, c0" if self.has_cell else "h0")  # named for pictures
        h0s = [zeros] * (self.num_layers * D) if h0 is None else mg.unbind(h0)  # one node for all (layer, dir)
        c0s = None
        if self.has_cell:
            c0s = [zeros] * (self.num_layers * D) if c0 is None else mg.unbind(c0)

        states = StepStates({}, {} if self.has_cell else None)
        h_n, c_n, inp = [], [], x
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                tag, j = self._tag(layer, d), layer * D + d
                rows = self._output_rows(T, B)
                with mg.scope(tag):
                    init_state = h0s[j] if c0s is None else (h0s[j], c0s[j])
                    hs, cs, last = self._direction(inp, self._weights(tag), init_state, policy, d == 1, rows)
                states.h[tag] = hs
                if cs is not None:
                    states.c[tag] = cs
                outs.append(mg.stack(hs, out=rows))  # (T, B, H): ONE node gathers the outputs
                if self.has_cell:
                    h_n.append(last[0])
                    c_n.append(last[1])
                else:
                    h_n.append(last)
            inp = outs[0] if D == 1 else mg.concat(outs, axis=-1)  # (T, B, D*H): next layer's input
            if self.dropout and layer < self.num_layers - 1:  # torch: dropout between layers, not after the last
                inp = dropout(inp, self.dropout, self.training)
        out = inp
        # read-only at every size: above output_rows_min_bytes its rows ARE the h_t the VJPs saved,
        # so a write would change the gradients; below it, a copy. The same code must not behave
        # differently by size: writing into out.data raises, always (out.data.copy() to edit)
        out.data.flags.writeable = False
        h_n = mg.stack(h_n)  # (L*D, B, H)
        c_n = mg.stack(c_n) if self.has_cell else None
        if not batched:
            out = out.reshape(T, D * H)
            h_n = h_n.reshape(-1, H)
            c_n = c_n.reshape(-1, H) if c_n is not None else None
        elif self.batch_first:
            out = mg.transpose(out, 1, 0, 2)
        return out, h_n, c_n, states, batched

    # outputs smaller than this are stacked by copying (cheaper than checking rows in place)
    output_rows_min_bytes = 1 << 16

    def _output_rows(self, T: int, B: int) -> np.ndarray | None:
        """The (T, B, H) array a direction's h_1 … h_T are written into, row by row, so that
        ``stack`` finds them in place: one copy of the states fewer in memory. None for small
        outputs (under ``output_rows_min_bytes``)."""
        H = self.hidden_size
        if T * B * H * self.dtype.itemsize < self.output_rows_min_bytes:
            return None
        return np.empty((T, B, H), self.dtype)

    @staticmethod
    def _projection(x: Tensor, W_ih: Tensor, b: Tensor | None) -> Tensor:
        """W_ih x_t + b for all steps of x (T, B, I) at once: one (T*B, I) @ (I, G*H) product → (T, B, G*H).

        With a bias it is one addmm node: one (T*B, G*H) array instead of two (product, sum).
        """
        T, B, I = x.shape
        x2 = x.reshape(T * B, I)
        if x2.name is None:
            x2.name = x.name  # pictures draw the (T*B, I) rows of the input x as x
        xw = x2 @ W_ih.T if b is None else mg.addmm(b, x2, W_ih.T)
        return xw.reshape(T, B, W_ih.shape[0])

    # rows of x (steps × batch) per input-projection matmul: enough for BLAS to run near full speed,
    # few enough that a chunk's projection is a small part of a step's memory
    projection_rows = 256

    def _projected_steps(
        self, x: Tensor, W_ih: Tensor, b: Tensor | None, reverse: bool, per_step: Any = mg.unbind
    ) -> Iterator:
        """The per-step inputs W_ih x_t + b in processing order, projected lazily, chunk by chunk.

        x (T, B, I) is cut into chunks of about ``projection_rows`` rows (T·B rows in all; one
        chunk when T·B ≤ projection_rows, PyTorch's single projection). Each chunk is ONE matmul
        (``_projection``), split per step by ``per_step``. A chunk is projected when the loop
        reaches its first step and freed once its steps have run, and backward meets its nodes
        right after those steps: neither pass ever holds the (T, B, G·H) projection of the whole
        sequence, which for an LSTM is as big as four of its saved states.
        """
        T, B, _ = x.shape
        chunks = -(-T * B // self.projection_rows)  # ⌈T·B / rows⌉
        size = -(-T // chunks)  # steps per chunk (at least one: a long batch of few steps stays whole)
        cuts = list(range(size, T, size))
        pieces = mg.split(x, cuts) if cuts else (x,)
        for piece in pieces:
            piece.name = piece.name or x.name  # a chunk of the input x is drawn as x
        for piece in reversed(pieces) if reverse else pieces:
            steps = per_step(self._projection(piece, W_ih, b))
            yield from reversed(steps) if reverse else steps

    def forward(
        self, x: Any, h0: Any = None, truncate: int | TruncationPolicy | None = None, return_states: bool = False
    ) -> tuple:
        """(out, h_n), or (out, h_n, StepStates) with ``return_states`` (LSTM overrides: h0 = (h_0, c_0))."""
        out, h_n, _, states, _ = self._run(x, h0, None, truncate)
        return (out, h_n, states) if return_states else (out, h_n)

    def _direction(self, x, weights, state, policy, reverse, rows):  # pragma: no cover - per subclass
        raise NotImplementedError

    @staticmethod
    def _unroll(
        inputs: Iterable,
        T: int,
        state: Any,
        step: Any,
        policy: TruncationPolicy | None,
        rows: np.ndarray | None,
        reverse: bool,
    ) -> list:
        """The loop over time, written once for every layer type:

            state_t = step(input_t, state_{t-1}, row_t)      in scope "t=1" … "t=T"

        ``inputs``: the T per-step inputs in processing order (made lazily: ``_projected_steps``).
        ``row_t``: where h_t may be written (the row of ``rows`` for step t's time; None when
        rows is None). The state carried into step t+1 passes through the truncation policy
        (detached, or rescaled); the list keeps each state_t itself, before any cut, for the
        outputs and δh_t. ``reverse``: inputs and states run in reversed time.
        """
        states = []
        if rows is None:
            rows = [None] * T
        elif reverse:
            rows = rows[::-1]
        with mg.gc_paused():  # thousands of graph objects, freed by reference counts: no collector passes
            for t, (inp, row) in enumerate(zip(inputs, rows), start=1):
                with mg.scope(f"t={t}"):
                    state = step(inp, state, row)
                states.append(state)
                if policy is not None and t < T:
                    state = policy.carry(t, state)  # cut (or rescale) what step t+1 receives
        return states

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.dtype != np.float64:
            s += f", dtype={self.dtype}"
        return s


class RNN(_RecurrentLayers):
    """Elman RNN layers: h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), φ = tanh, relu or identity.

    ``rnn(x, h0=None, truncate=None, return_states=False)`` → (out, h_n): out (T, B, D*H)
    (batch_first: (B, T, D*H); unbatched: (T, D*H)), h_n (L*D, B, H) (unbatched: (L*D, H)).
    ``truncate``: None (full BPTT), k (detach every k steps) or a policy (RandomTruncation).
    ``return_states=True`` adds a third result, the per-step states (StepStates) for δh_t.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float64,
        dropout: float = 0.0,
    ):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: nonlinearity must be one of {sorted(NONLINEARITIES)}, got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional, rng, dtype, dropout)
        self.nonlinearity = nonlinearity

    def _direction(self, x, weights, h, policy, reverse, rows):
        W_ih, W_hh, b_ih, b_hh = weights
        xws = self._projected_steps(x, W_ih, None if b_ih is None else b_ih + b_hh, reverse)  # b = b_ih + b_hh
        W_hhT, step = W_hh.T, self._step

        def rnn_t(xw, h, row):  # h_t = φ(W_ih x_t + b + W_hh h_{t-1})
            return step(xw, h, W_hhT, row)

        hs = self._unroll(xws, len(x), h, rnn_t, policy, rows, reverse)
        return (hs[::-1] if reverse else hs), None, hs[-1]

    def _step(self, xw: Tensor, h: Tensor, W_hhT: Tensor, out: np.ndarray | None = None) -> Tensor:
        """One step given the projected input (subclasses change the recurrence here); ``out``: see rnn_step."""
        return rnn_step(xw, h, W_hhT, NONLINEARITIES[self.nonlinearity], out)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else "")


class GRU(_RecurrentLayers):
    """GRU layers (gates r, z, n; PyTorch's equations):

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr),  z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn)),  h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    Call and results as ``RNN``.
    """

    gates = 3

    def _direction(self, x, weights, h, policy, reverse, rows):
        W_ih, W_hh, b_ih, b_hh = weights
        H = self.hidden_size
        fold, b_hn = gru_biases(b_ih, b_hh, H)  # b_hr, b_hz fold into the projection; b_hn cannot

        def per_step(xw):  # (steps, B, 3H) → per step (xrz_t, xn_t): [W_ir x + b_r, W_iz x + b_z], W_in x + b_in
            xrz, xn = mg.split(xw, [2 * H], axis=-1)
            return list(zip(mg.unbind(xrz), mg.unbind(xn)))

        inputs = self._projected_steps(x, W_ih, fold, reverse, per_step)
        W_hhT = W_hh.T

        def step(x_t, h, row):  # h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
            return gru_step(x_t[0], x_t[1], h, W_hhT, b_hn, row)

        hs = self._unroll(inputs, len(x), h, step, policy, rows, reverse)
        return (hs[::-1] if reverse else hs), None, hs[-1]


class LSTM(_RecurrentLayers):
    """LSTM layers (gates i, f, g, o; PyTorch's equations):

    i_t, f_t, o_t = σ(·), g_t = tanh(·) of W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t,   h_t = o_t ⊙ tanh(c_t)

    ``lstm(x, h0=None, truncate=None, return_states=False)`` with h0 = (h_0, c_0) or None;
    returns (out, (h_n, c_n)) (and StepStates with h and c). Truncation cuts h and c together.
    """

    gates = 4
    has_cell = True

    def forward(
        self, x: Any, h0: Any = None, truncate: int | TruncationPolicy | None = None, return_states: bool = False
    ) -> tuple:
        h, c = None, None
        if h0 is not None:
            if not (isinstance(h0, tuple | list) and len(h0) == 2):
                got = f"a {type(h0).__name__} of {len(h0)}" if isinstance(h0, tuple | list) else type(h0).__name__
                raise TypeError(f"LSTM: h0 must be a tuple (h_0, c_0) of 2 tensors or None, got {got}")
            h, c = h0
            if (h is None) != (c is None):
                raise ValueError("LSTM: give both h_0 and c_0 (or h0=None for zeros)")
        out, h_n, c_n, states, _ = self._run(x, h, c, truncate)
        return (out, (h_n, c_n), states) if return_states else (out, (h_n, c_n))

    def _direction(self, x, weights, state, policy, reverse, rows):
        W_ih, W_hh, b_ih, b_hh = weights
        xws = self._projected_steps(x, W_ih, None if b_ih is None else b_ih + b_hh, reverse)
        W_hhT = W_hh.T

        def step(xw, state, row):  # c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t); h and c are cut together
            return lstm_step(xw, state[0], state[1], W_hhT, row)

        states = self._unroll(xws, len(x), state, step, policy, rows, reverse)
        if reverse:
            states = states[::-1]
        return [h for h, _ in states], [c for _, c in states], states[0 if reverse else -1]
