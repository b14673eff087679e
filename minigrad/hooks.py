"""Gradient hooks and ``mg.grad``: reading or replacing δ while backward computes it.

    h.register_hook(lambda g: g * 0.5)            # called with δh when backward reaches h
    dW, db = mg.grad(loss, [W, b])                # the gradients, and no .grad is touched

Gradients are numpy arrays here, as ``.grad`` is: a hook receives δ as an array and returns a
replacement (array or Tensor of the same shape) or None to keep it. As in PyTorch, the hooks
on a tensor run in the order they were registered, before a ``retain_grad()`` keeps δ, and a
leaf's hooks run before δ is added to its ``.grad``.

How the tape enters this room (two hook points in tensor.py):

* a non-leaf's hooks sit in its node's ``retained`` list, ahead of the tensors that asked
  ``retain_grad()``; backward already hands that list the δ of the node's outputs;
* a leaf's hooks are looked up in ``_accumulate`` while ``active`` is set (a leaf hook was
  registered, or ``mg.grad`` is collecting): one flag read per leaf gradient otherwise. A leaf
  used several times gets several δ in one walk: they are held and summed, and ``release``
  (called by ``Tensor.backward`` and ``mg.grad`` after the walk) runs the hooks once on the sum,
  as torch calls a leaf's hooks once per backward.

``mg.grad`` runs the ordinary backward with ``collecting`` set: leaves' δ go into its own
table instead of ``.grad`` (nobody's ``.grad``, not even other leaves'), non-leaf inputs are
read by a temporary hook, and retained tensors keep their old ``.grad``. Like ``backward``
it frees the graph unless ``retain_graph=True``. First-order only (no ``create_graph``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["register_hook", "grad", "RemovableHandle"]

active = False  # read by tensor._accumulate: a leaf hook exists, or mg.grad is collecting
collecting = False  # mg.grad is running: no .grad is written
# id(leaf) -> (weak reference to the leaf, [hook, …]). Keyed by id, not by the tensor: a
# WeakKeyDictionary compares keys with ==, which is elementwise on tensors.
_leaf_hooks: dict[int, tuple[weakref.ref, list]] = {}
_collected: dict[int, tuple[Any, np.ndarray | None]] = {}  # mg.grad: id(leaf input) -> (leaf, summed δ)
held: dict[int, tuple[Any, np.ndarray]] = {}  # a walk's δ of each hooked leaf, summed until ``release``


class _Hook:
    """One registered ``fn(δ) -> δ or None``, checked: a replacement must keep the shape."""

    __slots__ = ("fn", "shape", "what")

    def __init__(self, fn: Callable, shape: tuple, what: str):
        self.fn, self.shape, self.what = fn, shape, what

    def __call__(self, g: np.ndarray) -> np.ndarray:
        new = self.fn(g)
        if new is None:
            return g
        new = np.asarray(getattr(new, "data", new), dtype=g.dtype)
        if new.shape != g.shape:
            raise RuntimeError(
                f"a hook on {self.what} returned a gradient of shape {new.shape}; it must keep the shape {g.shape}"
            )
        return new


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` takes the hook off again.

    ``entries`` is the list the hook sits in (a leaf's hook list, or a node's ``retained``).
    """

    __slots__ = ("_entries", "_entry")

    def __init__(self, entries: list, entry: Any):
        self._entries, self._entry = entries, entry

    def remove(self) -> None:
        self._entries[:] = [e for e in self._entries if e is not self._entry]


def register_hook(t: Any, fn: Callable) -> RemovableHandle:
    """Call ``fn(δt)`` when backward computes the gradient of ``t``; a returned array replaces δt."""
    global active
    if not callable(fn):
        raise TypeError(f"register_hook: expected a function fn(grad) -> grad or None, got {type(fn).__name__}")
    if not t.requires_grad:
        raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
    what = f"tensor {t.name!r}" if t.name else f"a tensor of shape {t.shape}"
    if t._edge is None:  # a leaf: run from tensor._accumulate
        key = id(t)
        if key not in _leaf_hooks or _leaf_hooks[key][0]() is not t:
            _leaf_hooks[key] = (weakref.ref(t, lambda _, key=key: _leaf_hooks.pop(key, None)), [])
        hooks = _leaf_hooks[key][1]
        hooks.append(_Hook(fn, t.shape, what))
        active = True
        return RemovableHandle(hooks, hooks[-1])
    node, index = t._edge  # a non-leaf: an entry (index, hook) in its node's retained list
    if node.retained is None:
        node.retained = []
    entry = (index, _Hook(fn, t.shape, what))
    n_hooks = sum(1 for _, x in node.retained if type(x) is _Hook)
    node.retained.insert(n_hooks, entry)  # hooks first: retain_grad keeps the hooked δ, as torch
    return RemovableHandle(node.retained, entry)


def at_leaf(x: Any, g: np.ndarray) -> np.ndarray | None:
    """One contribution to a leaf's δ on its way into ``.grad``. A hooked leaf's contributions are
    held and summed (``release`` runs its hooks once on the sum, as torch does); under ``mg.grad``
    δ is collected. Returns None when nothing goes into ``.grad`` now."""
    entry = _leaf_hooks.get(id(x))
    if entry is not None and entry[0]() is x and entry[1]:
        key = id(x)
        if key in held:
            total = held[key][1]  # our own copy: added in place
            total += g
        else:
            held[key] = (x, np.array(g, dtype=x.dtype))
        return None
    return _collect(x, g)


@contextmanager
def walk() -> Iterator[None]:
    """``with hooks.walk(): backward(...)`` (Tensor.backward): after the walk, ``release``; after
    an error mid-walk, the held δ are dropped, so that no later walk adds them."""
    try:
        yield
    except BaseException:
        held.clear()
        raise
    if held:
        release()


def release() -> None:
    """After a backward walk: each hooked leaf's summed δ through its hooks (in order), into ``.grad``."""
    done = list(held.values())
    held.clear()
    for x, total in done:
        g = apply(x, total)
        if g is None:  # mg.grad collected it
            continue
        if x._grad is None:
            x._grad = np.array(g, dtype=x.data.dtype)  # its own copy: g may be an array a hook returned
        else:
            x._grad += g


def apply(x: Any, g: np.ndarray) -> np.ndarray | None:
    """A leaf's whole δ of one backward through its hooks (``mg.compile``'s replay has the sum too);
    None under ``mg.grad``, which collects it instead."""
    entry = _leaf_hooks.get(id(x))
    if entry is not None and entry[0]() is x:
        for hook in entry[1]:
            g = hook(g)
    return _collect(x, g)


def _collect(x: Any, g: np.ndarray) -> np.ndarray | None:
    if not collecting:
        return g
    key = id(x)
    if key in _collected:
        leaf, total = _collected[key]
        _collected[key] = (leaf, np.array(g, dtype=x.dtype) if total is None else total + g)
    return None


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool = False,
    allow_unused: bool = False,
    create_graph: bool = False,
) -> tuple[np.ndarray | None, ...]:
    """dL/d(input) for each input, summed over ``outputs`` (each weighted by its grad_output),
    as ``torch.autograd.grad``; returns numpy arrays and touches no ``.grad``."""
    from .tensor import Tensor, backward

    global active, collecting
    if create_graph:
        raise NotImplementedError(
            "mg.grad(create_graph=True): higher-order gradients are not supported (VJPs run on numpy arrays)"
        )
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    gos = [None] * len(outs) if grad_outputs is None else _as_list(grad_outputs, Tensor)
    if len(gos) != len(outs):
        raise ValueError(f"mg.grad: {len(outs)} outputs but {len(gos)} grad_outputs")
    for x in [*outs, *ins]:
        if not isinstance(x, Tensor):
            raise TypeError(f"mg.grad: outputs and inputs must be Tensors, got {type(x).__name__}")
    for k, x in enumerate(ins):
        if not x.requires_grad:
            raise RuntimeError(f"mg.grad: input {k} (shape {x.shape}) does not require grad")
    if collecting:
        raise RuntimeError("mg.grad: cannot be called inside another mg.grad (from a hook)")
    found: dict[int, np.ndarray] = {}  # non-leaf inputs, read by temporary hooks

    def reader(key: int) -> Callable:
        def read(g: np.ndarray) -> None:
            found[key] = np.array(g) if key not in found else found[key] + g

        return read

    handles = [register_hook(x, reader(id(x))) for x in ins if x._edge is not None]
    _collected.clear()
    _collected.update({id(x): (x, None) for x in ins if x._edge is None})
    previous = active
    active = collecting = True
    try:
        for k, (o, go) in enumerate(zip(outs, gos)):
            backward(o, go, retain_graph=retain_graph or k < len(outs) - 1)
        release()  # hooked leaves: their hooks once, on the δ summed over every output
        result = tuple(found.get(id(x)) if x._edge is not None else _collected[id(x)][1] for x in ins)
    finally:
        active, collecting = previous or bool(_leaf_hooks), False
        _collected.clear()
        held.clear()
        for h in handles:
            h.remove()
    unused = [k for k, g in enumerate(result) if g is None]
    if unused and not allow_unused:
        raise RuntimeError(
            f"mg.grad: input(s) {unused} were not used to compute the outputs (no gradient reaches them); "
            "pass allow_unused=True to get None for them"
        )
    return result


def _as_list(v: Any, tensor_type: type) -> list:
    if v is None or isinstance(v, tensor_type | np.ndarray):
        return [v]
    if isinstance(v, Sequence):
        return list(v)
    return [v]
