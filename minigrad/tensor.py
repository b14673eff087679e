"""Tensor and the tape: reverse-mode autodiff in one file.

A ``Tensor`` wraps a numpy array. Every differentiable op (``ops.py``) records one ``Node``
on the tape: the op's name, its inputs, a VJP closure, a sequence number (its place on the
tape) and the scope it ran in. The graph keeps structure, not data. A node reaches

    an input that is a leaf (a parameter, a data tensor)   through the tensor itself
    an input made by another op                            through an edge (producer node, output index)

so an intermediate array lives only as long as a VJP closure saved it (or the user holds it).
Creation order is a topological order, so ``backward`` visits the nodes reachable from the
root from the newest to the oldest:

    δroot = 1
    for node in reverse tape order:              # a max-heap on the sequence number
        δinputs = node.vjp(δoutputs)             # the vector-Jacobian product of the op
        for input, δ in zip(node.inputs, δinputs):
            a leaf:  input.grad += δ
            an edge: the producer's δoutput[index] += δ

No recursion anywhere: a 100,000-step unroll backprops like a 10-step one.

What is not the idea lives next door and is entered from here by one call or one flag:
``checks.py`` (a freed graph, inputs written in place after use, anomaly mode),
``gradnorms.py`` (‖δ‖ per node, for pictures), ``accumulate.py`` (summing many δ in place) and
``hooks.py`` (``register_hook`` and ``mg.grad``); Python's protocols live in ``protocols.py``.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import accumulate, checks, gradnorms, hooks
from .arrays import as_array

__all__ = [
    "Tensor",
    "Node",
    "tensor",
    "backward",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "scope",
    "current_scope",
]


# ---------------------------------------------------------------------------
# Recording state: grad mode, the current scope (both per thread, as in PyTorch) and the tape
# counter (shared: one tape order for every thread)
# ---------------------------------------------------------------------------
class _Recording(threading.local):
    """Each thread sees its own copy: a ``no_grad`` in one thread leaves the others recording."""

    grad_enabled = True
    scope = ""  # the current scope path, e.g. "l0/t=3"


_rec = _Recording()
_seq = itertools.count()  # next(_seq): a new node's place on the tape


def is_grad_enabled() -> bool:
    """Whether ops are being recorded (False inside ``no_grad``)."""
    return _rec.grad_enabled


@contextmanager
def no_grad() -> Iterator[None]:
    """Run ops without recording them: results have no node and need no grad."""
    previous, _rec.grad_enabled = _rec.grad_enabled, False
    try:
        yield
    finally:
        _rec.grad_enabled = previous


@contextmanager
def enable_grad() -> Iterator[None]:
    """Record ops again inside a ``no_grad`` block."""
    previous, _rec.grad_enabled = _rec.grad_enabled, True
    try:
        yield
    finally:
        _rec.grad_enabled = previous


class scope:  # noqa: N801 (used like a function: with mg.scope("t=3"))
    """Name every node made inside; scopes nest as "l0/t=3".

    with mg.scope("t=3"):
        h = (x @ W + h @ U).tanh()      # each node records scope "t=3"
    """

    __slots__ = ("name", "_outer")

    def __init__(self, name: str):
        name = str(name)
        if not name or "/" in name:
            raise ValueError(f"scope name must be non-empty and contain no '/': got {name!r}")
        self.name = name

    def __enter__(self) -> None:
        self._outer = outer = _rec.scope  # restored on exit
        _rec.scope = f"{outer}/{self.name}" if outer else self.name

    def __exit__(self, *exc: object) -> None:
        _rec.scope = self._outer


def current_scope() -> str:
    """The scope path new nodes are recorded in, in this thread ("" outside every scope)."""
    return _rec.scope


# ---------------------------------------------------------------------------
# The tape record
# ---------------------------------------------------------------------------
class Node:
    """One op application on the tape.

    ``inputs``: per input, the leaf tensor or the edge ``(producer node, output index)``.
    ``vjp`` maps the gradient of the output (the list of them when ``many``, for multi-output
    ops such as ``split``) to a tuple of gradients, one per input (``None`` where an input gets
    none). It closes over the arrays its formula needs; ``backward`` drops it afterwards, which
    frees them.
    """

    __slots__ = (
        "op", "inputs", "vjp", "seq", "scope", "shapes", "many", "names",
        "pending", "retained", "grad_norm", "version", "__weakref__",
    )  # fmt: skip

    def __init__(self, op: str, inputs: tuple, vjp: Callable, shapes: tuple, many: bool = False):
        self.op = op
        self.inputs = inputs
        self.vjp = vjp
        self.seq = next(_seq)
        self.scope = _rec.scope
        self.shapes = shapes  # the shape of each output
        self.many = many  # vjp takes the list of output gradients (split, unbind)
        self.names: dict[int, str] | None = None  # output index -> name, for pictures and format_tape
        self.pending: list | None = None  # δ of each output, summed while backward runs
        self.retained: list | None = None  # (output index, tensor) pairs that asked retain_grad
        self.grad_norm: float | None = None  # ‖δoutput‖, under gradnorms.record_grad_norms()
        self.version = checks.writes  # in-place writes before this node (see checks.py)

    @property
    def n_out(self) -> int:
        return len(self.shapes)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the (first) output."""
        return self.shapes[0] if self.shapes else ()

    def output_name(self, index: int = 0) -> str | None:
        """The name given to output ``index`` (``t.name = "h"``), or None."""
        return None if self.names is None else self.names.get(index)

    def __repr__(self) -> str:
        where = f" scope {self.scope}" if self.scope else ""
        return f"<Node %{self.seq} {self.op} shape {self.shape}{where}>"


# ---------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------
class Tensor:
    """An n-d array that remembers how it was made.

    ``data`` is the numpy array. A tensor with ``requires_grad`` and no node is a leaf:
    ``backward`` accumulates dL/d(leaf) into its ``.grad``. A tensor made by an op keeps the
    edge to the node that made it (``_edge`` = (node, output index)) unless grad mode is off
    or no input needs a gradient.
    """

    __slots__ = ("data", "requires_grad", "_grad", "_edge", "_name", "_cut_from", "_version", "__weakref__")
    __array_priority__ = 1000  # numpy defers `ndarray @ Tensor` etc. to our reflected ops

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None, dtype: Any = None):
        arr = as_array(data.data if isinstance(data, Tensor) else data, dtype)
        if requires_grad and arr.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require grad, got dtype {arr.dtype} "
                "(pass dtype=float, or np.float64/np.float32 data)"
            )
        _init(self, arr, bool(requires_grad), None)
        self.name = name

    # -- construction from an op (the only place nodes are made) ------------
    @staticmethod
    def _make(data: np.ndarray, op: str, inputs: tuple, vjp: Callable) -> Tensor:
        """Wrap an op's result; record a node when a gradient can flow to it."""
        if checks.anomaly:
            checks.check_finite((data,), op, _rec.scope, inputs, "output")
        out = Tensor.__new__(Tensor)  # no __init__: an op's result is a checked array already
        if _rec.grad_enabled:
            for x in inputs:
                if x.requires_grad:  # a gradient can flow: record the node
                    node = Node(op, tuple([t._edge or t for t in inputs]), vjp, (data.shape,))
                    _init(out, data, True, (node, 0))
                    return out
        _init(out, data, False, None)
        return out

    @staticmethod
    def _make_many(datas: Sequence[np.ndarray], op: str, inputs: tuple, vjp: Callable) -> tuple[Tensor, ...]:
        """``_make`` for an op with several outputs (split, unbind): one node, whose vjp
        receives the list of output gradients (None where none arrived)."""
        if checks.anomaly:
            checks.check_finite(datas, op, _rec.scope, inputs, "output")
        node = None
        if _rec.grad_enabled and any(x.requires_grad for x in inputs):
            node = Node(op, tuple([t._edge or t for t in inputs]), vjp, tuple(d.shape for d in datas), many=True)
        outs = tuple(Tensor.__new__(Tensor) for _ in datas)
        for i, (t, d) in enumerate(zip(outs, datas)):
            _init(t, d, node is not None, None if node is None else (node, i))
        return outs

    # -- the name (the graph remembers it for pictures, even after the tensor is gone) --
    @property
    def name(self) -> str | None:
        return self._name

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value
        if self._edge is not None:
            node, index = self._edge
            if node.names is None:
                node.names = {}
            node.names[index] = value

    # -- array-like properties ----------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def _node(self) -> Node | None:
        """The node that made this tensor (None for leaves and constants)."""
        return None if self._edge is None else self._edge[0]

    @property
    def is_leaf(self) -> bool:
        return self._edge is None

    @property
    def op(self) -> str | None:
        """Name of the op that made this tensor (None for leaves and constants)."""
        return None if self._edge is None else self._edge[0].op

    def __repr__(self) -> str:
        extra = f", name={self.name!r}" if self.name else ""
        if self._edge is not None:
            extra += f", op={self.op}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        body = np.array2string(self.data, precision=4, threshold=20, prefix="Tensor(")
        return f"Tensor({body}{extra})"

    # -- gradients ----------------------------------------------------------
    @property
    def grad(self) -> np.ndarray | None:
        """dL/d(self) after ``backward``: a numpy array, for leaves and for tensors that
        called ``retain_grad()``."""
        if self._edge is not None and self._grad is None and not self._retains():
            warnings.warn(
                f"reading .grad of a non-leaf tensor (made by {self.op!r}); it stays None "
                "because backward keeps gradients only for leaves. Call .retain_grad() on it "
                "before backward to keep dL/d(this tensor).",
                UserWarning,
                stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value: np.ndarray | None) -> None:
        if value is not None:
            value = np.asarray(value, dtype=self.data.dtype)
            if value.shape != self.data.shape:
                raise ValueError(f"grad shape {value.shape} does not match tensor shape {self.data.shape}")
        self._grad = value

    def _retains(self) -> bool:
        node = None if self._edge is None else self._edge[0]
        return node is not None and node.retained is not None and any(t is self for _, t in node.retained)

    def retain_grad(self) -> Tensor:
        """Keep dL/d(self) in ``.grad`` after backward although self is not a leaf (δh_t)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        if self._edge is not None and not self._retains():
            node, index = self._edge
            if node.retained is None:
                node.retained = []
            node.retained.append((index, self))  # the one tensor a node keeps: backward fills its .grad
        return self

    def zero_grad(self) -> None:
        self._grad = None

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if self._edge is not None:
            raise RuntimeError("requires_grad_ can only change leaves; this tensor was made by an op")
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got dtype {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    def mark_modified(self) -> None:
        """Record an in-place write to ``data`` (optimizers and loaders call this): a backward
        through a node that saved the old value then raises instead of returning a wrong gradient."""
        checks.mark_modified(self)

    def detach(self) -> Tensor:
        """The same data with no history: no gradient flows back through it.

        The result remembers, weakly, where it was cut (``_cut_from``), so a picture can draw
        the cut as a dashed edge without keeping the old graph alive.
        """
        out = Tensor.__new__(Tensor)
        _init(out, self.data, False, None)
        out._name = self._name
        if self._edge is not None:
            node, index = self._edge
            out._cut_from = (weakref.ref(node), index)
        elif self.requires_grad:
            out._cut_from = (weakref.ref(self), 0)
        return out

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Reverse mode from this tensor: accumulate dL/dx into ``.grad`` of every leaf x
        (and retained tensor) this one depends on."""
        with hooks.walk():  # leaves with hooks: their δ summed over the walk, then through the hooks
            backward(self, grad, retain_graph)

    # Operators and methods such as .tanh() and .sum() are attached in ops.py, next to their
    # derivative rules; Python's and numpy's protocols (bool, len, ==, +=, np.exp(x)) in protocols.py.


def _init(t: Tensor, data: np.ndarray, requires_grad: bool, edge: tuple | None) -> None:
    """Fill every slot of a new tensor (op results skip ``__init__``'s checks)."""
    t.data, t.requires_grad, t._edge = data, requires_grad, edge
    t._grad = t._name = t._cut_from = None
    t._version = 0  # the write count at this tensor's last in-place write (see checks.py)


def tensor(data: Any, requires_grad: bool = False, name: str | None = None, dtype: Any = None) -> Tensor:
    """``mg.tensor(...)``: the same as ``Tensor(...)``."""
    return Tensor(data, requires_grad=requires_grad, name=name, dtype=dtype)


# ---------------------------------------------------------------------------
# Reverse mode
# ---------------------------------------------------------------------------
def backward(root: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """Walk the nodes reachable from ``root`` newest first, one VJP each."""
    grad = _seed(root, grad)
    if root._edge is None:  # the root is itself a leaf
        return _accumulate(root, grad)
    node, index = root._edge
    node.pending = [grad if i == index else None for i in range(len(node.shapes))]
    heap = [(-node.seq, node)]  # newest first; sequence numbers are unique, so nodes are never compared
    sums: set = set()  # (seq, output index) of the pending gradients this walk summed (accumulate.py)
    try:
        while heap:
            node = heapq.heappop(heap)[1]
            grads_out, node.pending = node.pending, None  # δ of each output, summed over its consumers
            if node.vjp is None:
                raise checks.GraphFreedError.at(node)
            if node.version != checks.writes:  # something was written in place since the node was made
                checks.check_unmodified(node)
            if node.retained is not None:
                _keep_retained(node, grads_out)
            if gradnorms.recording:
                gradnorms.record(node, grads_out)
            grads_in = node.vjp(grads_out) if node.many else node.vjp(grads_out[0])  # the VJP: δ of each input
            if not retain_graph:
                node.vjp = None  # drop the closure: frees the arrays it saved
            if checks.anomaly:
                checks.check_gradients(node, grads_in)
            for x, g in zip(node.inputs, grads_in):  # pass each input's δ on
                if g is None:
                    continue
                if type(x) is tuple:  # an edge: δ joins the producer's output gradient
                    producer, i = x
                    pending = producer.pending
                    if pending is None:  # the first δ to reach the producer: schedule it
                        pending = producer.pending = [None] * len(producer.shapes)
                        heapq.heappush(heap, (-producer.seq, producer))
                    pending[i] = g if pending[i] is None else accumulate.add(pending[i], g, sums, (producer.seq, i))
                elif x.requires_grad:  # a leaf: parameters keep their gradient, constants drop it
                    _accumulate(x, g)
    finally:
        for _, left in heap:  # after an error mid-walk: unschedule what is left
            left.pending = None


def _seed(root: Tensor, grad: Any) -> np.ndarray:
    """δroot: 1 for a scalar root, else the ``grad`` the caller gives (checked)."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a tensor that does not require grad: nothing it depends on "
            "has requires_grad=True (or it was made under no_grad / detached)"
        )
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward() on a non-scalar tensor of shape {root.shape} needs an explicit "
                "grad= of the same shape (dL/d(root)); or reduce it first, e.g. .sum()"
            )
        return np.ones_like(root.data)
    grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=root.data.dtype)
    if grad.shape != root.shape:
        raise ValueError(f"backward(grad=...) has shape {grad.shape}, root has shape {root.shape}")
    return grad


def _accumulate(x: Tensor, g: np.ndarray) -> None:
    """x.grad += g for a leaf (its own copy first: g may be shared with other nodes)."""
    if g.shape != x.data.shape:  # x.data was replaced by an array of another shape after the forward
        raise checks.LeafShapeError.at(x, g)
    if hooks.active and (g := hooks.at_leaf(x, g)) is None:  # register_hook, mg.grad (hooks.py)
        return
    if x._grad is None:
        x._grad = np.array(g, dtype=x.data.dtype)
    else:
        x._grad += g


def _keep_retained(node: Node, grads_out: list) -> None:
    """t.grad += δ for the outputs of ``node`` that called ``retain_grad()``; hooks on them
    (``register_hook``, hooks.py) sit first in the list and may replace δ."""
    for i, t in node.retained:
        g = grads_out[i]
        if g is None:
            continue
        if type(t) is not Tensor:  # a hook
            grads_out[i] = t(g)
        elif not hooks.collecting:  # mg.grad writes no .grad
            t._grad = np.array(g) if t._grad is None else t._grad + g
