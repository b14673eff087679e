"""Safety checks the tape enters by one call each: none of them is part of the algorithm.

1. A freed graph. ``backward`` drops each VJP closure once it ran (that frees the arrays it
   saved); a second backward through the same nodes meets ``vjp is None`` and raises
   ``GraphFreedError`` with advice instead of failing obscurely. Costs one ``is None`` per node.
2. Inputs written in place after use. A VJP saved an input's array; an optimizer step (or a
   loader) writing into it before backward would make the gradient silently wrong. Writers call
   ``Tensor.mark_modified()``, which bumps a global write count; every node records the count it
   was born at, and backward looks at a node's inputs only when the count has moved since. It
   raises only if the node's VJP saved the written array (found in its closure): ``add``, which
   saves shapes, never minds. Costs one integer comparison per node; writes straight into
   ``.data[...]`` are not seen.
3. Anomaly mode (``detect_anomaly``): every op's output and every VJP's result is scanned for
   NaN/Inf, naming the first op that made one and its scope (e.g. ``t=37``). A pass over every
   array: a debugging aid, off by default (then it costs one flag read per op).
"""

from __future__ import annotations

import types
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["GraphFreedError", "LeafShapeError", "AnomalyError", "detect_anomaly"]


def describe(node: Any) -> str:
    """How error messages name a node: ``node %7 (tanh, shape (1, 4) in scope 't=3')``."""
    where = f" in scope {node.scope!r}" if node.scope else ""
    return f"node %{node.seq} ({node.op}, shape {node.shape}{where})"


# ---------------------------------------------------------------------------
# 1. A freed graph
# ---------------------------------------------------------------------------
class GraphFreedError(RuntimeError):
    """backward reached a node whose saved arrays were freed by an earlier backward."""

    @classmethod
    def at(cls, node: Any) -> GraphFreedError:
        """The error for ``node``, with what to do about it."""
        return cls(
            f"backward reached {describe(node)} whose saved arrays were already freed by "
            "an earlier backward. If this is a recurrent state carried over from the previous "
            "window (truncated BPTT), cut it first: state = models.detach_state(state). "
            "Otherwise pass retain_graph=True to the first backward (it keeps every saved "
            "array of the graph alive, so memory grows with each step)."
        )


# ---------------------------------------------------------------------------
# 2. Inputs written in place after use
# ---------------------------------------------------------------------------
writes = 0  # in-place writes so far; each Node records the value it was born at (node.version)
# node -> write count, for op results marked as written (a node's inputs are edges, not tensors)
_written_outputs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# id(array) -> (write count, weak reference to the array, its name, its shape): the arrays written
# in place and when, one entry per array (an optimizer writing the same parameters every step
# keeps the log at one entry per parameter)
_written_arrays: dict[int, tuple] = {}


def mark_modified(t: Any) -> None:
    """Count an in-place write into ``t.data``: a leaf remembers it, an op result's node does,
    and the write log remembers the array itself."""
    global writes
    writes += 1
    if t._edge is None:
        t._version = writes
    else:
        _written_outputs[t._edge[0]] = writes
    key = id(t.data)
    ref = weakref.ref(t.data, lambda _, key=key: _written_arrays.pop(key, None))
    _written_arrays[key] = (writes, ref, t.name, t.shape)


def check_unmodified(node: Any) -> None:
    """Raise if an array the VJP of ``node`` saved (an input, or a view of one such as Wᵀ) was
    written in place after the node was made. ``add`` saves only shapes: a write into its input
    harms nothing, and passes."""
    saved = _saved_arrays(node.vjp)
    if saved is False:  # the VJP holds something opaque (a module, a model): judge by the inputs
        return _check_inputs(node)
    for written, ref, name, shape in list(_written_arrays.values()):
        data = ref()
        if written > node.version and data is not None and any(np.may_share_memory(a, data) for a in saved):
            raise _stale(node, name, shape)


def _check_inputs(node: Any) -> None:
    """Raise if an input of ``node`` was written in place after the node used it."""
    for x in node.inputs:
        if type(x) is tuple:  # an edge (producer, index)
            producer, i = x
            written, name, shape = _written_outputs.get(producer, 0), producer.output_name(i), producer.shapes[i]
        else:
            written, name, shape = x._version, x.name, x.shape
        if written > node.version:
            raise _stale(node, name, shape)


def _stale(node: Any, name: str | None, shape: tuple) -> RuntimeError:
    what = f"{name!r}" if name else f"a tensor of shape {shape}"
    return RuntimeError(
        f"{what}, saved by {describe(node)} for its backward, was modified in place (e.g. by an "
        "optimizer step) after the op used it, so its saved value is stale. Call "
        "backward before updating parameters, or recompute the forward pass."
    )


class LeafShapeError(RuntimeError):
    """backward reached a leaf whose ``.data`` changed shape after the forward pass used it."""

    @classmethod
    def at(cls, leaf: Any, g: np.ndarray) -> LeafShapeError:
        what = f"leaf {leaf.name!r}" if leaf.name else "a leaf tensor"
        return cls(
            f"{what} has shape {leaf.shape} now, but the forward pass used it with shape {g.shape}: "
            "its .data was replaced by an array of another shape after the forward. Recompute the "
            "forward pass after changing .data (or write the new values in place, same shape)."
        )


_PLAIN = (int, float, bool, str, bytes, slice, type(None), type(Ellipsis), np.generic, np.dtype)


def _saved_arrays(vjp: Any) -> list | bool:
    """The numpy arrays a VJP closure holds (through tuples, lists, tensors and inner closures),
    or False when it holds something else it might read values through (then: assume stale)."""
    found, todo, seen = [], [vjp], set()
    while todo:  # an explicit stack, no recursion
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, _PLAIN):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            found.append(obj)
        elif isinstance(obj, tuple | list):
            todo.extend(obj)
        elif type(obj).__name__ in ("Tensor", "Parameter"):
            found.append(obj.data)
        elif isinstance(obj, types.FunctionType):
            todo.extend(c.cell_contents for c in obj.__closure__ or () if c.cell_contents is not obj)
        else:
            return False
    return found


# ---------------------------------------------------------------------------
# 3. Anomaly mode
# ---------------------------------------------------------------------------
class AnomalyError(FloatingPointError):
    """Under detect_anomaly(): an op produced, or a VJP returned, NaN or Inf."""


anomaly = False  # read by the tape on every op and every VJP


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise at the first op whose output, or whose input gradient in backward, holds NaN or
    Inf, naming the op, its scope (e.g. ``t=37``) and the shapes."""
    global anomaly
    previous, anomaly = anomaly, True
    try:
        yield
    finally:
        anomaly = previous


def check_gradients(node: Any, grads_in: Sequence[Any]) -> None:
    """Raise AnomalyError if a gradient a VJP returned holds NaN or Inf."""
    check_finite(grads_in, node.op, node.scope, node.inputs, "gradient returned by the backward")


def check_finite(arrays: Sequence[Any], op: str, scope: str, inputs: tuple, what: str) -> None:
    """Raise AnomalyError if a float array in ``arrays`` holds NaN or Inf, saying where it sits."""
    for a in arrays:
        if a is not None and a.dtype.kind == "f" and not np.isfinite(a).all():
            kind = "NaN" if np.isnan(a).any() else "Inf"
            shapes = ", ".join(str(x[0].shapes[x[1]] if type(x) is tuple else x.shape) for x in inputs)
            where = f" in scope {scope!r}" if scope else ""
            raise AnomalyError(
                f"{what} of op {op!r}{where} contains {kind} (input shapes {shapes}) at {_positions(a)}"
                + _bad_inputs(inputs)
            )


def _positions(a: np.ndarray, most: int = 3) -> str:
    """Where the non-finite values of ``a`` sit: the first few indices, and their rows along axis 0."""
    bad = np.argwhere(~np.isfinite(a))
    if a.ndim == 0:
        return "the scalar"
    first = ", ".join(str(tuple(int(i) for i in b)) for b in bad[:most]) + (", …" if len(bad) > most else "")
    rows = np.unique(bad[:, 0])
    shown = ", ".join(str(int(r)) for r in rows[:8]) + (", …" if len(rows) > 8 else "")
    return f"index {first} ({len(bad)} of {a.size} entries; along axis 0 at position(s) {shown} of {a.shape[0]})"


def _bad_inputs(inputs: tuple) -> str:
    """For an op whose tensor inputs already hold NaN/Inf (an op before the loop over time, such as
    the layers' input projection): where they sit, with axis 0 read as time (steps t = position + 1)."""
    notes = []
    for k, x in enumerate(inputs):
        d = getattr(x, "data", None)  # tensors in forward; edges in backward carry no data
        if isinstance(d, np.ndarray) and d.dtype.kind == "f" and d.ndim and not np.isfinite(d).all():
            steps = np.unique(np.argwhere(~np.isfinite(d))[:, 0]) + 1
            ts = ", ".join(f"t={int(t)}" for t in steps[:8]) + (", …" if len(steps) > 8 else "")
            notes.append(
                f"; input {k} (shape {d.shape}) already holds it at {_positions(d)}: if axis 0 is time "
                f"(a time-major (T, B, …) sequence), the bad values are at step(s) {ts}"
            )
    return "".join(notes)
