"""``out=``: writing an op's result into an array the caller gives (numpy's convention).

``add``, ``sub``, ``mul``, ``lerp``, ``tanh``, ``sigmoid``, ``relu`` and ``stack`` accept
``out=``: an array of exactly the result's shape and dtype, which then *is* the result's data.
This module holds all of that machinery, so that each row of ops.py only passes ``out=out`` to
its numpy call.

What it saves: the recurrent layers (models/rnn.py) allocate their (T, B, H) output once and
write each h_t straight into row t of it (``mg.tanh(a, out=rows[t])``, and ``mg.lerp`` / ``mg.mul``
/ ``mg.add`` for the GRU, the LSTM and the residual RNN). ``mg.stack(hs, out=rows)`` then finds
every h_t already in its slot and copies nothing: the states live in memory once, not twice (the
T separate (B, H) arrays, which the VJPs keep alive, plus their stacked copy), and the layer makes
one pass over them fewer.

What it costs: with ``out=``, the checks below on every call, about 8,000 machine instructions
(~1 µs) on a (1, 32) ``tanh``, less than half of what the op costs; the layers pass ``out=`` only
for outputs of 64 KiB and more (``RNN.output_rows_min_bytes``), where that is small next to the
copy it saves. Without ``out=``, one extra Python call per call of an op that accepts it (the
wrapper ``accepts_out`` makes): about 300 of the ~18,600 instructions of a ``tanh`` on a (1, 32)
tensor, 1.6%; operators (``a + b``) skip it, as they cannot pass ``out=``. And one rule for the
caller: an array written through ``out=`` holds a result the graph may have saved, so it must
not be written again while a backward may still read it (the layers give every step its own row).

The checks, each a ValueError that names the op: ``out`` is a numpy array of the result's shape
(the broadcast of the tensor arguments' shapes) and dtype (``np.result_type`` of their data, what
the op computes in), it is writeable, and it shares no memory with any input (a VJP may have saved
that input: writing the result over it would corrupt the gradient). ``stack`` alone accepts inputs
inside ``out``, each in its own slot (``stack_into``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np

from .tensor import Tensor

__all__ = ["accepts_out", "check_out", "stack_into"]

Op = TypeVar("Op", bound=Callable[..., Tensor])


def accepts_out(op: Op) -> Op:
    """Give ``op`` numpy's ``out=``, checked before anything is written.

    ``op`` is an ops.py row ``op(x, out=None)``, ``op(a, b, out=None)`` or ``op(a, b, w, out=None)``
    that passes ``out`` to its numpy call. Without ``out`` the wrapper calls the row unchanged;
    with it, the wrapper checks ``out`` against the row's tensor arguments (``check_out``) first.
    """
    name, params = op.__name__, tuple(inspect.signature(op).parameters)
    # One wrapper per signature, with plain positional parameters: the plain path is one Python
    # call more, where a generic (*args, out=None) wrapper would cost about three times as much.
    if params == ("x", "out"):

        def call(x, out=None):
            if out is None:
                return op(x)
            (x,) = _tensors((x,))
            check_out(name, out, x.shape, x.dtype, (x,))
            return op(x, out=out)
    elif params == ("a", "b", "out"):

        def call(a, b, out=None):
            return op(a, b) if out is None else _into(op, name, (a, b), out)
    elif params == ("a", "b", "w", "out"):

        def call(a, b, w, out=None):
            return op(a, b, w) if out is None else _into(op, name, (a, b, w), out)
    else:
        raise TypeError(f"accepts_out: {name}{params} is not (x, out), (a, b, out) or (a, b, w, out)")
    return cast(Op, functools.wraps(op)(call))


def _into(op: Callable[..., Tensor], name: str, args: tuple[Any, ...], out: Any) -> Tensor:
    """``op(*args, out=out)`` once ``out`` has passed ``check_out``."""
    # plain loops, no generator expressions: this runs once per step in the layers, and each
    # generator expression costs ~2,600 machine instructions (as much as the checks themselves)
    tensors = _tensors(args)
    datas = [t.data for t in tensors]
    shape = datas[0].shape
    for d in datas:
        if d.shape != shape:
            try:
                shape = np.broadcast_shapes(*[t.shape for t in tensors])
            except ValueError:
                return op(*tensors)  # the shapes do not broadcast: the op raises its own error, as without out=
            break
    check_out(name, out, shape, np.result_type(*datas), tensors)
    return op(*tensors, out=out)


def _tensors(args: tuple[Any, ...]) -> tuple[Tensor, ...]:
    """The arguments as the tensors the op makes of them (a Python number takes the dtype of the tensor it meets)."""
    for a in args:
        if not isinstance(a, Tensor):
            from .ops import _lift  # the op's own rule; imported here, as ops.py imports this module

            like = next((a for a in args if isinstance(a, Tensor)), None)
            return tuple(_lift(a, like) for a in args)
    return args


def check_out(op: str, out: Any, shape: tuple[int, ...], dtype: np.dtype, inputs: Sequence[Tensor]) -> None:
    """Raise unless ``out`` is a writeable array of exactly ``shape`` and ``dtype`` that overlaps no input."""
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype:
        got = f"shape {out.shape}, dtype {out.dtype}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"{op}: out= must be a numpy array of shape {shape} and dtype {dtype}, got {got}")
    if not out.flags.writeable:
        raise ValueError(f"{op}: out= is read-only")
    for x in inputs:
        if np.may_share_memory(out, x.data):
            raise ValueError(f"{op}: out= overlaps an input of shape {x.shape}; write the result elsewhere")


def stack_into(tensors: Sequence[Tensor], axis: int, out: np.ndarray) -> np.ndarray:
    """``np.stack`` of the tensors' data into ``out``, leaving each tensor already in its slot there.

    A tensor that some op wrote into its slot of ``out`` (the layers' ``tanh(..., out=rows[t])``)
    is not copied; any other tensor is. A tensor inside ``out``'s memory but not in its own slot
    is refused: copying the others could overwrite it before it is read.
    For different shapes or an axis out of range it raises what ``np.stack`` raises (ops.stack
    words both errors the same way with or without ``out``).
    """
    first = tensors[0]
    if any(t.shape != first.shape for t in tensors):  # before any copy: a slot would broadcast a row silently
        raise ValueError("all input arrays must have the same shape")
    axis = np.lib.array_utils.normalize_axis_index(axis, first.ndim + 1)  # np.exceptions.AxisError, as np.stack
    shape = (*first.shape[:axis], len(tensors), *first.shape[axis:])
    check_out("stack", out, shape, np.result_type(*(t.data for t in tensors)), ())
    slots = np.moveaxis(out, axis, 0)
    start, step = out.__array_interface__["data"][0], out.strides[axis]
    for i, t in enumerate(tensors):
        d = t.data
        if np.may_share_memory(d, out):  # inside out's memory: only its own slot is allowed
            if d.__array_interface__["data"][0] != start + i * step or d.strides != slots[i].strides:
                raise ValueError(f"stack: tensor {i} lies inside out= but not in its own slot {i}; write it elsewhere")
            continue  # already in place: nothing to copy
        slots[i] = d
    return out
