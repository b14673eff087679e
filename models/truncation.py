"""Truncated backpropagation through time: where the gradient path through the state is cut.

Steps are numbered t = 1..T. A truncation policy decides, after step t, what state is
carried into step t+1:

* full BPTT (``truncate=None``): h_t itself, no cut;
* fixed blocks (``truncate=k`` or ``FixedTruncation(k)``): h_t.detach() whenever t is a
  positive multiple of k (t = k, 2k, …), h_t otherwise. h_0 is never cut; for the LSTM
  both h and c are cut; a reverse direction counts steps in its own processing order.
  A loss at step t then reaches back (t − 1) mod k steps: 0 to k − 1, by its place in the
  block. This is not the lecture notes' sliding window of k steps, where every loss reaches
  back exactly k − 1 steps; that one is ``tbptt_train(k1=1, k2=k)``;
* randomized (``RandomTruncation(p, rng)``): at each step keep the path with probability p
  and scale its gradient by 1/p (``scale_grad``), cut it otherwise. Every gradient path
  through s carried states picks up Π b_j / p with independent b_j ~ Bernoulli(p), whose
  expectation is 1, so E[gradient] = full-BPTT gradient (unbiased, at the price of variance).

Across calls (training on a long stream chunk by chunk) the user cuts the carried state with
``detach_state``; ``tbptt_train`` does this for a whole sequence with k1/k2 windows, and
``checkpointed`` trades compute for memory with exact full-BPTT gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

import minigrad as mg
from minigrad.tensor import Tensor

__all__ = [
    "TruncationPolicy",
    "FixedTruncation",
    "RandomTruncation",
    "as_truncation",
    "detach_state",
    "reset_state",
    "map_state",
    "tbptt_train",
    "TBPTTResult",
    "checkpointed",
    "default_segments",
]

State = Any  # a Tensor, an (h, c) tuple, or nested lists/tuples of them (None allowed)


# ---------------------------------------------------------------------------
# Walking a nested state
# ---------------------------------------------------------------------------
def map_state(fn: Callable[..., Tensor], state: State, *others: State) -> State:
    """Apply ``fn(tensor, *matching parts of others)`` to every tensor in a nested state.

    Lists stay lists, tuples stay tuples, None stays None. Each of ``others`` has the same
    nesting, or is one value (or None) shared by every part. (Recursion here follows how a
    state is written in code, (h, c) or a list of layers' states, never the length of a graph.)
    """
    if isinstance(state, list | tuple):
        parts = [map_state(fn, s, *(_part(o, i, state) for o in others)) for i, s in enumerate(state)]
        return tuple(parts) if isinstance(state, tuple) else parts
    return None if state is None else fn(state, *others)


def _part(other: State, i: int, like: Sequence) -> Any:
    if isinstance(other, list | tuple):
        if len(other) != len(like):
            raise ValueError(f"state structures differ: {len(like)} parts against {len(other)}")
        return other[i]
    return other  # one tensor/array/mask shared by every part


def detach_state(state: State, reset: Any = None, initial: State = None) -> State:
    """Cut the gradient path through a carried recurrent state (tensor, (h, c), nested lists).

    Use it between windows of truncated BPTT: ``state = models.detach_state(state)``.
    ``reset``, a boolean mask (B,), marks the batch rows whose sequence ends here: those rows
    restart from ``initial`` (same structure, or one tensor/array for all parts; zeros when
    None). The batch axis of a state is its second-to-last axis, as in (B, H) or (L*D, B, H).
    """
    mask = _mask(reset)
    if mask is None:
        return map_state(lambda s: s.detach(), state)
    return map_state(lambda s, init: Tensor(_where_rows(mask, s, init)), state, initial)


def reset_state(state: State, reset: Any, initial: State = None) -> State:
    """Like ``detach_state(state, reset, initial)`` but without the cut: rows where ``reset``
    is True restart from ``initial`` (zeros by default) and the other rows keep their gradient
    path (``mg.where``). For sequence boundaries inside a window of backpropagation."""
    mask = _mask(reset)
    if mask is None:
        return state

    def one(s: Tensor, init: Any) -> Tensor:
        m = _row_mask(mask, s)
        fresh = np.zeros_like(s.data) if init is None else init
        return mg.where(m, fresh, s)

    return map_state(one, state, initial)


def _mask(reset: Any) -> np.ndarray | None:
    if reset is None:
        return None
    m = np.asarray(reset.data if isinstance(reset, Tensor) else reset)
    if m.dtype != bool or m.ndim != 1:
        raise ValueError(f"reset must be a boolean mask of shape (B,), got dtype {m.dtype} and shape {m.shape}")
    return m if m.any() else None


def _row_mask(mask: np.ndarray, s: Tensor) -> np.ndarray:
    """The (B,) mask as (B, 1) against a state (…, B, H)."""
    if s.ndim < 2 or s.shape[-2] != mask.shape[0]:
        raise ValueError(
            f"reset mask of shape {mask.shape} does not match a state of shape {s.shape} "
            "(the batch axis of a state is its second-to-last axis: (B, H) or (L*D, B, H))"
        )
    return mask[:, None]


def _where_rows(mask: np.ndarray, s: Tensor, init: Any) -> np.ndarray:
    m = _row_mask(mask, s)
    if init is None:
        return np.where(m, 0, s.data).astype(s.dtype, copy=False)
    init = np.asarray(init.data if isinstance(init, Tensor) else init, dtype=s.dtype)
    return np.where(m, init, s.data)


# ---------------------------------------------------------------------------
# Policies: what is carried from step t into step t+1
# ---------------------------------------------------------------------------
class TruncationPolicy(Protocol):
    """Anything with ``carry(t, state) -> state``, called after step t (1-based) for t < T."""

    def carry(self, t: int, state: State) -> State: ...


class FixedTruncation:
    """Fixed blocks: detach the state after steps t = k, 2k, … (``truncate=k`` on the layers).

    A loss at step t reaches back (t − 1) mod k steps (0 to k − 1). The notes' sliding window,
    every loss exactly k − 1 steps back, is ``tbptt_train(k1=1, k2=k)`` instead."""

    def __init__(self, k: int):
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"truncate must be a positive integer number of steps (or None for full BPTT), got {k!r}")
        self.k = int(k)

    def carry(self, t: int, state: State) -> State:
        return detach_state(state) if t % self.k == 0 else state

    def __repr__(self) -> str:
        return f"FixedTruncation({self.k})"


class RandomTruncation:
    """Randomized truncation, unbiased in expectation.

    After each step, with probability p keep the path and scale its gradient by 1/p
    (h ← scale_grad(h, 1/p)), otherwise cut it (h ← h.detach()). A gradient path through s
    carried states is multiplied by Π_j b_j/p, b_j ~ Bernoulli(p) independent, E[Π b_j/p] = 1.
    ``rng``: a numpy Generator or a seed. ``cuts`` counts the cuts made so far.
    """

    def __init__(self, p: float, rng: np.random.Generator | int | None = None):
        if isinstance(p, bool) or not (isinstance(p, int | float | np.integer | np.floating) and 0 < p <= 1):
            raise ValueError(f"RandomTruncation: keep probability p must lie in (0, 1], got {p!r}")
        self.p = float(p)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.cuts = 0

    def carry(self, t: int, state: State) -> State:
        if self.rng.random() < self.p:
            xi = 1.0 / self.p
            return map_state(lambda s: mg.scale_grad(s, xi) if s.requires_grad else s, state)
        self.cuts += 1
        return detach_state(state)

    def __repr__(self) -> str:
        return f"RandomTruncation(p={self.p})"


def as_truncation(truncate: int | TruncationPolicy | None) -> TruncationPolicy | None:
    """``truncate=`` of the layers: None (full BPTT), an int k (FixedTruncation(k)), or a policy."""
    if truncate is None or hasattr(truncate, "carry"):
        return truncate
    return FixedTruncation(truncate)


# ---------------------------------------------------------------------------
# TBPTT(k1, k2) over one long sequence
# ---------------------------------------------------------------------------
@dataclass
class TBPTTResult:
    """losses: the loss of every update (floats); state: the carried state after the last step
    (detached); updates: number of optimizer steps (= len(losses))."""

    losses: list[float] = field(default_factory=list)
    state: State = None

    @property
    def updates(self) -> int:
        return len(self.losses)


def tbptt_train(
    model: Callable[[Tensor, State], tuple[Tensor, State]],
    x: Any,
    targets: Any,
    loss_fn: Callable[[Tensor, Any], Tensor],
    optimizer: Any = None,
    k1: int = 20,
    k2: int | None = None,
    state: State = None,
    resets: Any = None,
    max_norm: float | None = None,
    progress: Callable[[int, float], None] | None = None,
    compile: bool = False,  # noqa: A002 (the flag's name is the feature's)
) -> TBPTTResult:
    """Train on one long time-major sequence with truncated BPTT(k1, k2).

    Every k1 steps (and at the end) one update: the loss of the steps since the previous
    update, ``loss_fn(out, targets[t-k1:t])``, is backpropagated through a window of the last
    k2 steps (those k1 steps and k2 − k1 before them), which the model runs from the state
    saved, detached, at the window's start; then ``optimizer.step()``. With k2 = k1 (the
    default) windows do not overlap, every step runs forward once, and the gradients are
    those of ``truncate=k1``; with k2 > k1 the overlap is recomputed with the current parameters.
    k1 = 1, k2 = k is the lecture notes' sliding window: every step's loss is backpropagated
    through exactly its last k steps.
    (A last, shorter chunk keeps the k2 − k1 steps of look-back.)

    model(x_chunk, state) -> (out, state), time-major (T, B, …), like the layers here.
    x: (T, B, I) array/Tensor; targets: indexable along time (first axis).
    resets: optional boolean (T, B): True at [t, b] when row b starts a new sequence at step t
    (0-based); that row's state restarts from zeros there (graph-preserving inside a window).
    optimizer None: gradients only accumulate (for checking the semantics).
    max_norm: clip the gradient norm before each step (``mg.optim.clip_grad_norm_``).
    progress(update_index, loss): called after every update.
    compile: run each window (forward, loss, backward) as ``mg.compile`` replays it (k2 = k1, no
    resets); the same gradients, the clipping and the optimizer step stay outside.
    """
    if compile:
        return _tbptt_compiled(model, x, targets, loss_fn, optimizer, k1, k2, state, resets, max_norm, progress)
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"tbptt_train: needs a time-major sequence with at least one step, got shape {x.shape}")
    T = x.shape[0]
    k1 = FixedTruncation(k1).k  # same validation as truncate=k
    k2 = k1 if k2 is None else FixedTruncation(k2).k
    if k2 < k1:
        raise ValueError(
            f"tbptt_train: k2 (steps backpropagated) must be ≥ k1 (steps between updates) so that "
            f"every step's loss lies inside a window, got k1={k1}, k2={k2}"
        )
    if len(targets) != T:
        raise ValueError(f"tbptt_train: x has {T} steps but targets has {len(targets)}")
    reset_rows = None
    if resets is not None:
        reset_rows = np.asarray(resets, dtype=bool)
        if reset_rows.ndim != 2 or reset_rows.shape[0] != T:
            raise ValueError(f"tbptt_train: resets must be a boolean (T, B) = ({T}, B) mask, got {reset_rows.shape}")
    params = optimizer.params if optimizer is not None else None

    saved = {0: state}  # detached states before step s, for windows that start at s
    result = TBPTTResult(state=state)
    ends = list(range(k1, T, k1)) + [T]
    for u, end in enumerate(ends):
        start_loss = ends[u - 1] if u else 0  # the steps since the previous update carry the loss
        start = max(0, start_loss - (k2 - k1))  # the window reaches k2 − k1 steps further back
        next_start = max(0, end - (k2 - k1)) if u + 1 < len(ends) else None
        # cut the window where a saved state is needed or rows restart
        cuts = {start_loss, end}
        if next_start is not None and next_start > start:
            cuts.add(next_start)
        if reset_rows is not None:
            cuts.update(s for s in range(start + 1, end) if reset_rows[s].any())
        bounds = sorted(c for c in cuts if start < c <= end)

        s, st, outs = start, saved[start], []
        for b in bounds:
            if reset_rows is not None and st is not None:
                st = reset_state(st, reset_rows[s])
            out, st = model(x[s:b], st)
            if s >= start_loss:
                outs.append(out)
            if b == next_start:
                saved[b] = detach_state(st)
            s = b
        out = outs[0] if len(outs) == 1 else mg.concat(outs, axis=0)
        loss = loss_fn(out, targets[start_loss:end])
        if optimizer is not None:
            optimizer.zero_grad()
        loss.backward()
        if optimizer is not None:
            if max_norm is not None:
                mg.optim.clip_grad_norm_(params, max_norm)
            optimizer.step()
        result.losses.append(float(loss.data))
        if next_start is not None:  # forget the states no later window starts from
            saved = {k: v for k, v in saved.items() if k >= next_start}
        result.state = detach_state(st)
        if progress is not None:
            progress(u, result.losses[-1])
    return result


def _tbptt_compiled(model, x, targets, loss_fn, optimizer, k1, k2, state, resets, max_norm, progress) -> TBPTTResult:
    """tbptt_train(compile=True): one compiled window step, the state passed in and out flat."""
    if (k2 is not None and k2 != k1) or resets is not None:
        raise ValueError("tbptt_train(compile=True): supports k2 = k1 without resets; run it without compile")
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    k1, T = FixedTruncation(k1).k, x.shape[0]
    if len(targets) != T:
        raise ValueError(f"tbptt_train: x has {T} steps but targets has {len(targets)}")
    shape: dict[str, State] = {}  # the state's nesting, in and out (seen while the step is traced)

    def window(x_w: Tensor, t_w: Any, *flat: Tensor) -> tuple:
        if optimizer is not None:
            optimizer.zero_grad()
        out, st = model(x_w, _rebuild(shape["in"], list(flat)) if flat else None)
        loss = loss_fn(out, t_w)
        loss.backward()
        shape["out"] = st
        return (loss, *_flatten(st))

    step, result = mg.compile(window), TBPTTResult(state=state)
    for u, s in enumerate(range(0, T, k1)):
        shape["in"] = state
        loss, *flat = step(x[s : s + k1], targets[s : s + k1], *_flatten(detach_state(state)))
        state = _rebuild(shape["out"], flat)
        if optimizer is not None:
            if max_norm is not None:
                mg.optim.clip_grad_norm_(optimizer.params, max_norm)
            optimizer.step()
        result.losses.append(float(loss.data))
        result.state = state
        if progress is not None:
            progress(u, result.losses[-1])
    return result


# ---------------------------------------------------------------------------
# Checkpointing over time: keep √T states, recompute the rest in backward
# ---------------------------------------------------------------------------
def default_segments(T: int) -> int:
    """≈ √T segments for checkpointing over time."""
    return max(1, round(math.sqrt(T)))


def checkpointed(
    model: Callable[[Tensor, State], tuple[Tensor, State]],
    x: Any,
    state: State = None,
    segments: int | None = None,
    params: Sequence[Tensor] | None = None,
) -> tuple[Tensor, State]:
    """Run ``model`` over time in segments, keeping only the states at segment boundaries.

    Forward: each segment runs under ``no_grad`` (no graph, no saved activations); the tape
    gets one "checkpoint" node per segment. Backward: that node reruns its segment with the
    graph on, from the saved boundary state, and backpropagates through it. Memory ≈ √T
    steps' activations instead of T, for about one extra forward pass; the gradients are
    those of full BPTT (the same ops run in the same order).

    model(x_seg, state) -> (out_seg, state), time-major, deterministic (a RandomTruncation
    policy inside would draw differently when recomputed). ``params``: the tensors to
    differentiate besides x and the state (default: ``model.parameters()``).
    Returns (out, state) like the model over the whole of x.
    """
    if getattr(model, "bidirectional", False):
        raise ValueError(
            "checkpointed: a bidirectional model cannot run in time segments (its reverse "
            "direction reads the whole sequence first); checkpoint a unidirectional one"
        )
    if getattr(model, "batch_first", False):
        raise ValueError(
            "checkpointed: segments are cut along the first axis; use a time-major model (batch_first=False)"
        )
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"checkpointed: needs a time-major sequence with at least one step, got shape {x.shape}")
    T = x.shape[0]
    n = default_segments(T) if segments is None else FixedTruncation(segments).k
    n = min(n, T)
    if params is None:
        if not hasattr(model, "parameters"):
            raise TypeError("checkpointed: pass params=... (the model has no .parameters())")
        params = model.parameters()
    params = [p for p in params if p.requires_grad]
    bounds = np.linspace(0, T, n + 1).round().astype(int)
    outs = []
    for s, e in zip(bounds[:-1], bounds[1:]):
        out, state = _checkpoint_segment(model, x[int(s) : int(e)], state, params)
        outs.append(out)
    return (outs[0] if len(outs) == 1 else mg.concat(outs, axis=0)), state


def _flatten(state: State) -> list[Tensor]:
    flat: list[Tensor] = []
    map_state(lambda s: flat.append(s) or s, state)
    return flat


def _rebuild(state: State, values: list) -> State:
    it = iter(values)
    return map_state(lambda _: next(it), state)


def _checkpoint_segment(model, x_seg: Tensor, state: State, params: list[Tensor]) -> tuple[Tensor, State]:
    """One segment as one multi-output node: outputs (out, *state tensors)."""
    with mg.no_grad():
        out, new_state = model(x_seg, state)
    flat_in, flat_out = _flatten(state), _flatten(new_state)
    inputs = (x_seg, *flat_in, *params)

    def vjp(gs: list) -> tuple:
        # rerun the segment with the graph on, from leaf copies of the saved inputs
        with mg.enable_grad():
            x_leaf = Tensor(x_seg.data, requires_grad=x_seg.requires_grad)
            leaves = [Tensor(s.data, requires_grad=s.requires_grad) for s in flat_in]
            re_out, re_state = model(x_leaf, _rebuild(state, leaves))
            outputs = [re_out, *_flatten(re_state)]
            terms = [(o * g).sum() for o, g in zip(outputs, gs) if g is not None and o.requires_grad]
        saved = [p._grad for p in params]  # collect this segment's parameter grads on their own
        for p in params:
            p._grad = None
        try:
            if terms:
                total = terms[0]
                for term in terms[1:]:
                    total = total + term
                total.backward()  # Σ <δoutput, output>: its gradient is the VJP we need
            param_grads = [p._grad for p in params]
        finally:
            for p, g in zip(params, saved):
                p._grad = g
        x_grad = x_leaf._grad if x_seg.requires_grad else None
        return (x_grad, *(leaf._grad for leaf in leaves), *param_grads)

    results = Tensor._make_many([out.data, *(s.data for s in flat_out)], "checkpoint", inputs, vjp)
    return results[0], _rebuild(new_state, list(results[1:]))
