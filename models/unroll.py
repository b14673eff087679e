"""Your own cell over time: ``unroll`` runs any step function the way the built-in layers run theirs.

    def mgu(x_t, h):                                   # any step: (input_t, state_{t-1}) -> state_t
        f = mg.sigmoid(mg.addmm(b_f, x_t, W_f) + h @ U_f)
        return (1 - f) * h + f * mg.tanh(x_t @ W_h + (f * h) @ U_h + b_h)

    out, h_T = models.unroll(mgu, x, h0, truncate=5)   # out (T, B, H), h_T the last state

What it gives a cell, the same as RNN/GRU/LSTM (models/rnn.py) get:

* each step made in scope ``"t=1" … "t=T"`` (inside ``scope=`` if given, as a layer's ``"l0"``),
  so ``viz.draw_graph(loss, level="step")`` draws one box per step;
* truncation after step t for t < T: ``truncate=k`` (detach every k steps), a policy such as
  ``RandomTruncation(p)``, or None (full BPTT) — ``as_truncation``, as the layers' ``truncate=``;
* the outputs stacked by ONE ``stack`` node into (T, B, H), from the states before any cut.

A state is a Tensor or a tuple/list of them (the LSTM's (h, c)); the output of a step is the
state, or its first part (``output=`` picks another). ``Unrolled(cell)`` wraps a cell Module as
``model(x, state) -> (out, state)``, the interface of ``tbptt_train`` and ``checkpointed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import minigrad as mg
from minigrad.nn import Module, ParameterList
from minigrad.tensor import Tensor

from .truncation import State, TruncationPolicy, as_truncation

__all__ = ["unroll", "Unrolled"]


def _first(state: State) -> Tensor:
    """A step's output: the state itself, or the first part of a tuple state ((h, c) → h)."""
    return state[0] if isinstance(state, tuple | list) else state


def unroll(
    cell: Callable[[Any, State], State],
    x: Any,
    h0: State,
    truncate: int | TruncationPolicy | None = None,
    *,
    scope: str | None = None,
    reverse: bool = False,
    output: Callable[[State], Tensor] | None = None,
) -> tuple[Tensor, State]:
    """Run ``state_t = cell(x_t, state_{t-1})`` for t = 1 … T; return (outputs (T, …), state_T).

    x: a (T, B, I) Tensor or array, time first (one ``unbind`` node gives the steps), or a
    sequence of the T per-step inputs (anything the cell takes: e.g. tuples of projections).
    h0: the initial state (a Tensor, or a tuple/list of them), handed to step 1 as it is.
    truncate: None, an int k or a policy; applied to the state step t+1 receives (t < T).
    scope: an outer scope for the whole loop (the layers use "l0"); steps are "t=1" … inside it.
    reverse: run from x_T down to x_1 (scopes and truncation count the processing order, as a
    layer's reverse direction); outputs are returned in the input's time order.
    output: state_t → the tensor stacked into the outputs (default: the state, or its first part).
    """
    if isinstance(x, Tensor | np.ndarray):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"unroll: x must have a time axis first, (T, B, I), with T ≥ 1; got shape {x.shape}")
        steps: Sequence = mg.unbind(x)
    elif isinstance(x, Sequence) and len(x) > 0:
        steps = x
    else:
        raise TypeError(f"unroll: x must be a (T, B, I) Tensor/array or a non-empty sequence of steps, got {x!r}")
    policy, pick = as_truncation(truncate), output or _first
    if reverse:
        steps = steps[::-1]
    with mg.scope(scope) if scope else _nothing():
        states = _loop(cell, steps, h0, policy)
    outs = [pick(s) for s in states]
    if reverse:
        outs = outs[::-1]
    return mg.stack(outs), states[-1]


def _loop(cell: Callable[[Any, State], State], steps: Sequence, state: State, policy: Any) -> list:
    """The loop over time, as ``_RecurrentLayers._unroll`` in rnn.py writes it (same scopes, same cuts)."""
    T, states = len(steps), []
    with mg.gc_paused():  # thousands of graph objects, freed by reference counts: no collector passes
        for t, inp in enumerate(steps, start=1):
            with mg.scope(f"t={t}"):
                state = cell(inp, state)
            states.append(state)
            if policy is not None and t < T:
                state = policy.carry(t, state)  # cut (or rescale) what step t+1 receives
    return states


class _nothing:  # noqa: N801 (a context manager that does nothing, for "no outer scope")
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class Unrolled(Module):
    """A cell as a sequence model: ``model(x, state=None, truncate=None) -> (out, state)``.

    The interface of ``tbptt_train`` and ``checkpointed`` (time-major x (T, B, I)). ``cell`` is a
    Module whose forward is ``(x_t, state) -> state`` (its parameters are this model's, under
    "cell."), or a plain function with its Parameters given as ``params`` (registered "params.0", …).
    With state None the unroll starts from ``initial_state(B)`` if given, else from zeros
    (B, ``hidden_size``). ``truncate`` set here is the default of every call.
    """

    def __init__(
        self,
        cell: Callable[[Any, State], State],
        hidden_size: int | None = None,
        initial_state: Callable[[int], State] | None = None,
        truncate: int | TruncationPolicy | None = None,
        params: Sequence[Any] | None = None,
        scope: str | None = None,
        dtype: Any = np.float64,
    ):
        super().__init__()
        if not callable(cell):
            raise TypeError(f"Unrolled: cell must be callable (x_t, state) -> state, got {type(cell).__name__}")
        if isinstance(cell, Module):
            self.cell = cell
        else:
            object.__setattr__(self, "cell", cell)
            if params is not None:
                self.params = ParameterList(params)
        if hidden_size is None and initial_state is None:
            raise ValueError("Unrolled: give hidden_size (zeros as the first state) or initial_state(batch) -> state")
        self.hidden_size, self.initial_state, self.truncate = hidden_size, initial_state, truncate
        self.scope, self.dtype = scope, np.dtype(dtype)
        as_truncation(truncate)  # refuse a bad truncate now, not at the first call

    def forward(
        self, x: Any, state: State = None, truncate: int | TruncationPolicy | None = None
    ) -> tuple[Tensor, State]:
        x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
        if state is None:
            B = x.shape[1] if x.ndim >= 3 else 1
            if self.initial_state is not None:
                state = self.initial_state(B)
            else:
                state = Tensor(np.zeros((B, self.hidden_size), self.dtype))
        return unroll(self.cell, x, state, self.truncate if truncate is None else truncate, scope=self.scope)

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}" + (f", truncate={self.truncate!r}" if self.truncate else "")
