"""Tensor and the tape: the whole reverse-mode machinery, and nothing else.

A ``Tensor`` wraps a numpy array. Every differentiable op (see ``ops.py``)
records one ``Node`` on the tape: the op name, its inputs, a VJP closure, a
sequence number (its place on the tape) and the active scope. An input made
by another op is kept as a ``GraphInput`` (where it came from, its shape, a
weak reference to its data): the tape holds the graph, and only the arrays a
VJP closure saved stay alive with it.
Creation order is a valid topological order, so ``backward`` only has to
visit the nodes reachable from the root from the newest to the oldest:

    δroot = 1
    for node in reverse tape order:          # a max-heap on the sequence number
        δinputs = node.vjp(δoutputs)         # vector-Jacobian product
        for x, δx in zip(node.inputs, δinputs):
            δx accumulates into x            # a leaf's .grad, or x's node

No recursion anywhere: a 100,000-step unroll backprops like a 10-step one.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = [
    "Tensor",
    "Node",
    "tensor",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "scope",
    "current_scope",
    "gc_paused",
    "tape",
    "format_tape",
    "record_grad_norms",
    "GraphFreedError",
    "AnomalyError",
    "detect_anomaly",
]

DEFAULT_DTYPE = np.float64
_FLOAT_DTYPES = (np.float64, np.float32, np.float16)


class GraphFreedError(RuntimeError):
    """backward reached a node whose saved arrays were freed by an earlier backward."""


class AnomalyError(FloatingPointError):
    """Under detect_anomaly(): an op produced, or a VJP returned, NaN or Inf."""


# ---------------------------------------------------------------------------
# Global recording state: grad mode, the scope stack and the tape counter.
# Plain module globals: reading one costs a dictionary lookup, nothing more.
# ---------------------------------------------------------------------------
_grad_enabled = True
_scope = ""  # the current scope path, "l0/t=3", kept ready so recording a node costs one read
_seq = itertools.count()  # next(_seq): the node's place on the tape
_norms_enabled = False
_anomaly = False  # detect_anomaly(): check every op's output and every gradient for NaN/Inf
_writes = 0  # in-place writes so far (optimizer steps, loads): see Tensor.mark_modified


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextmanager
def no_grad() -> Iterator[None]:
    """Run ops without recording them: results have no node and need no grad."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


@contextmanager
def enable_grad() -> Iterator[None]:
    """Record ops again inside a ``no_grad`` block."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, True
    try:
        yield
    finally:
        _grad_enabled = previous


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (it is restored as it was).

    Graph objects form no reference cycles, so reference counting alone frees them; but a long
    unroll makes tens of thousands of them, and every collection the collector starts meanwhile
    walks them all again, together with everything else alive in the process. ``backward`` and
    the recurrent layers' loop run under this: it saves a T=1000 RNN step about 18% of its time,
    and keeps the cost of a step linear in T.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class scope:  # noqa: N801 (used like a function: with mg.scope("t=3"))
    """Name every node made inside; scopes nest as "layer0/t=3".

        with mg.scope("t=3"):
            h = (x @ W + h @ U).tanh()      # each node records scope "t=3"

    A small class rather than a @contextmanager generator: an RNN enters one
    scope per time step, and this costs a fraction of a generator's set-up.
    """

    __slots__ = ("name", "_outer")

    def __init__(self, name: str):
        name = str(name)
        if not name or "/" in name:
            raise ValueError(f"scope name must be non-empty and contain no '/': got {name!r}")
        self.name = name

    def __enter__(self) -> None:
        global _scope
        self._outer = _scope  # restored on exit
        _scope = f"{_scope}/{self.name}" if _scope else self.name

    def __exit__(self, *exc: object) -> None:
        global _scope
        _scope = self._outer


def current_scope() -> str:
    return _scope


@contextmanager
def record_grad_norms() -> Iterator[None]:
    """During ``backward`` inside this block, store ‖δoutput‖ on every node
    (``node.grad_norm``), for pictures that colour the graph by gradient size."""
    global _norms_enabled
    previous, _norms_enabled = _norms_enabled, True
    try:
        yield
    finally:
        _norms_enabled = previous


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise at the first op whose output, or whose input gradient in backward,
    holds NaN or Inf, naming the op, its scope (e.g. ``t=37``) and the shapes.
    Costs a pass over every array: a debugging aid, off by default."""
    global _anomaly
    previous, _anomaly = _anomaly, True
    try:
        yield
    finally:
        _anomaly = previous


def _check_finite(arrays: Sequence[Any], op: str, scope_name: str, inputs: tuple, what: str) -> None:
    for a in arrays:
        if a is not None and a.dtype.kind == "f" and not np.isfinite(a).all():
            kind = "NaN" if np.isnan(a).any() else "Inf"
            shapes = ", ".join(str(x.shape) for x in inputs)
            where = f" in scope {scope_name!r}" if scope_name else ""
            raise AnomalyError(f"{what} of op {op!r}{where} contains {kind} (input shapes {shapes})")


# ---------------------------------------------------------------------------
# The tape record
# ---------------------------------------------------------------------------
class Node:
    """One op application on the tape.

    ``vjp`` maps the gradient of the output (a list of them for multi-output
    ops such as ``split``) to a tuple of gradients, one per input (``None``
    where an input gets none). It closes over the arrays the backward pass
    needs; ``backward`` drops it afterwards, which frees them.
    """

    __slots__ = (
        "op",
        "inputs",
        "vjp",
        "seq",
        "scope",
        "n_out",
        "many",
        "pending",
        "retained",
        "shape",
        "grad_norm",
        "born",
        "owned",
        "__weakref__",
    )

    def __init__(self, op: str, inputs: tuple, vjp: Callable, n_out: int, shape: tuple):
        self.op = op
        self.inputs = inputs
        self.vjp = vjp
        self.seq = next(_seq)
        self.scope = _scope
        self.n_out = n_out
        self.many = False  # set by multi-output ops (split, unbind): vjp takes a list of gradients
        self.pending: list | None = None  # output gradients gathered during backward
        self.owned = 0  # bit i set: pending[i] is a buffer backward allocated (safe to add into)
        self.retained: list | None = None  # (output index, tensor) pairs that asked retain_grad
        self.shape = shape  # shape of (the first) output, for printing and pictures
        self.grad_norm: float | None = None
        self.born = _writes  # in-place writes before this node; later ones invalidate saved inputs

    def __repr__(self) -> str:
        where = f" scope {self.scope}" if self.scope else ""
        return f"<Node %{self.seq} {self.op} shape {self.shape}{where}>"


# ---------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------
def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Turn user data into a numeric numpy array, or say clearly why not."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray) and dtype is None:
        arr = data
    else:
        try:
            arr = np.asarray(data, dtype=dtype)
        except (ValueError, TypeError) as e:
            raise TypeError(
                f"cannot make a Tensor from {type(data).__name__} data: {e} "
                "(ragged nested lists and non-numeric values are not tensors)"
            ) from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(
            f"cannot make a Tensor from an array of dtype {arr.dtype} (need float, int, unsigned or bool values)"
        )
    if dtype is None and not isinstance(data, np.ndarray | np.generic) and arr.dtype.kind == "f":
        arr = arr.astype(DEFAULT_DTYPE, copy=False)  # Python floats → float64, the default
    return arr


class Tensor:
    """An n-d array that remembers how it was made.

    ``data`` is the numpy array. A tensor with ``requires_grad`` and no node is
    a leaf: ``backward`` accumulates dL/d(leaf) into its ``.grad``. A tensor made
    by an op records a ``Node`` (``_node``) unless grad mode is off or no input
    needs a gradient.
    """

    __slots__ = (
        "data",
        "requires_grad",
        "_grad",
        "_node",
        "_index",
        "_name",
        "_cut_from",
        "_written",
        "_in_graph",
        "__weakref__",
    )
    __array_priority__ = 1000  # numpy defers `ndarray @ Tensor` etc. to our reflected ops

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None, dtype: Any = None):
        arr = _as_array(data, dtype)
        if requires_grad and arr.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require grad, got dtype {arr.dtype} "
                "(pass dtype=float, or np.float64/np.float32 data)"
            )
        self.data: np.ndarray = arr
        self.requires_grad = bool(requires_grad)
        self._grad: np.ndarray | None = None
        self._node: Node | None = None
        self._index = 0  # which output of its node this tensor is
        self._in_graph: GraphInput | None = None  # with a node: how the nodes that consume this tensor see it
        self.name = name
        self._cut_from: weakref.ref | None = None  # set by detach(), for pictures
        self._written = 0  # value of the write counter at this tensor's last in-place write

    # -- construction from an op (the only place nodes are made) ------------
    @staticmethod
    def _make(data: np.ndarray, op: str, inputs: tuple, vjp: Callable) -> Tensor:
        """Wrap an op's result; record a node when a gradient can flow to it."""
        # Tensor.__new__ + direct slot writes: skips __init__'s validation,
        # which op results (numpy arrays already) do not need.
        out = Tensor.__new__(Tensor)
        out.data = data
        out._grad = None
        out._index = 0
        out._name = None
        out._cut_from = None
        out._written = 0
        if _anomaly:
            _check_finite((data,), op, _scope, inputs, "output")
        if _grad_enabled:
            for x in inputs:  # a plain loop: cheaper than any(<generator>) on the hot path
                if x.requires_grad:
                    out.requires_grad = True
                    shape = data.shape  # one tuple for the node and the GraphInput (each .shape call makes a new one)
                    out._node = Node(op, _graph_inputs(inputs), vjp, 1, shape)
                    # its GraphInput made now: each consumer just reads out._in_graph, no make-if-missing call
                    out._in_graph = _graph_input(out, shape)
                    return out
        out.requires_grad = False
        out._node = out._in_graph = None
        return out

    @staticmethod
    def _make_many(datas: Sequence[np.ndarray], op: str, inputs: tuple, vjp: Callable) -> tuple[Tensor, ...]:
        """Like ``_make`` for an op with several outputs (split, unbind): one node,
        whose vjp receives a list of output gradients (None where none arrived)."""
        if _anomaly:
            _check_finite(datas, op, _scope, inputs, "output")
        needs = _grad_enabled and any(x.requires_grad for x in inputs)
        node = None
        if needs:
            shapes = [d.shape for d in datas]
            node = Node(op, _graph_inputs(inputs), vjp, len(datas), shapes[0] if datas else ())
            node.many = True  # its vjp takes the list of output gradients, even when there is one output
        outs = []
        for i, d in enumerate(datas):
            t = Tensor.__new__(Tensor)
            t.data, t._grad, t._index, t._name, t._cut_from, t._written = d, None, i, None, None, 0
            t.requires_grad, t._node = needs, node
            t._in_graph = _graph_input(t, shapes[i]) if needs else None
            outs.append(t)
        return tuple(outs)

    # -- name (a property so the graph's view of a consumed tensor follows renames) --
    @property
    def name(self) -> str | None:
        return self._name

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value
        if self._in_graph is not None:
            self._in_graph.name = value

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
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def op(self) -> str | None:
        """Name of the op that made this tensor (None for leaves and constants)."""
        return self._node.op if self._node is not None else None

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def __float__(self) -> float:
        return float(self.data)

    def __repr__(self) -> str:
        extra = ""
        if self.name:
            extra += f", name={self.name!r}"
        if self._node is not None:
            extra += f", op={self._node.op}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        body = np.array2string(self.data, precision=4, threshold=20, prefix="Tensor(")
        return f"Tensor({body}{extra})"

    # -- gradients ----------------------------------------------------------
    @property
    def grad(self) -> np.ndarray | None:
        """dL/d(self) after ``backward``: a numpy array, for leaves and for
        tensors that called ``retain_grad()``."""
        if self._node is not None and self._grad is None and not self._retains():
            warnings.warn(
                f"reading .grad of a non-leaf tensor (made by {self._node.op!r}); it stays None "
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
        node = self._node
        return node is not None and node.retained is not None and any(t is self for _, t in node.retained)

    def retain_grad(self) -> Tensor:
        """Keep dL/d(self) in ``.grad`` after backward although self is not a leaf (δh_t)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        node = self._node
        if node is not None and not self._retains():
            if node.retained is None:
                node.retained = []
            node.retained.append((self._index, self))
        return self

    def zero_grad(self) -> None:
        self._grad = None

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if self._node is not None:
            raise RuntimeError("requires_grad_ can only change leaves; this tensor was made by an op")
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got dtype {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    def mark_modified(self) -> None:
        """Record an in-place write to ``data`` (optimizers and loaders call this).

        A backward that later reaches a node which saved this tensor before the
        write raises instead of returning a silently wrong gradient. (Writes
        straight into ``.data[...]`` by hand are not seen: call this after them.)
        """
        global _writes
        _writes += 1
        self._written = _writes
        if self._in_graph is not None:
            self._in_graph._written = _writes

    def detach(self) -> Tensor:
        """The same data with no history: no gradient flows back through it.

        The result remembers (weakly) what it was cut from, so a picture of the
        graph can draw the cut as a dashed edge without keeping the old graph alive.
        """
        out = Tensor.__new__(Tensor)
        out.data, out._grad, out._index, out._name, out._written = self.data, None, 0, self._name, 0
        out._in_graph = None
        out.requires_grad, out._node = False, None
        # remember the cut through the graph's view of self, which lives as long as
        # the graph does, even after the user dropped self
        cut = self if self._in_graph is None else self._in_graph
        out._cut_from = weakref.ref(cut) if self.requires_grad else None
        return out

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Reverse mode from this tensor: accumulate dL/dx into ``.grad`` of every
        leaf x (and retained tensor) this one depends on."""
        backward(self, grad, retain_graph)

    # Operators, methods such as .tanh() and .sum() are attached in ops.py,
    # next to their derivative rules.


class GraphInput(weakref.ref):
    """What a node keeps of an input made by another op: the graph, not the data.

    A node needs of such an input only where its gradient goes (``_node``,
    ``_index``) and, for printing and pictures, its name, shape and dtype. Its
    array is reached through a weak reference (a GraphInput is one: calling it
    gives the tensor, or None): the array stays alive only while the user holds
    the tensor or a VJP closure saved it (tanh saves its output, mul its inputs;
    the a in tanh(x @ W + b) nobody saves, so it is freed as soon as the forward
    pass moves on). ``data`` is None once it is gone.

    Leaves (parameters, inputs, constants) stay real Tensors in ``node.inputs``:
    backward accumulates into their ``.grad``. One GraphInput per tensor, made
    with its node (``t._in_graph``) and shared by every consumer.
    """

    __slots__ = ("_node", "_index", "shape", "dtype", "name", "_written", "__weakref__")
    requires_grad = True  # only tensors with a node get one, and those require grad
    _cut_from = None  # a detached tensor is a leaf, never a GraphInput
    __eq__, __hash__ = object.__eq__, object.__hash__  # by identity (a weakref would compare the tensors)

    @property
    def data(self) -> np.ndarray | None:
        """The tensor's array while it is alive, else None."""
        t = self()
        return None if t is None else t.data

    def __repr__(self) -> str:
        gone = "" if self() is not None else ", data freed"
        name = f" {self.name!r}" if self.name else ""
        return f"<GraphInput{name} output {self._index} of %{self._node.seq} {self._node.op}, shape {self.shape}{gone}>"


_new_ref = weakref.ref.__new__


def _graph_input(t: Tensor, shape: tuple) -> GraphInput:
    """A new GraphInput for op result ``t`` of shape ``shape`` (slot writes, no __init__: this is on every op's path)."""
    g = _new_ref(GraphInput, t)
    g._node, g._index, g.name, g._written = t._node, t._index, t._name, t._written
    g.shape, g.dtype = shape, t.data.dtype
    return g


def _graph_inputs(inputs: tuple) -> tuple:
    """``inputs`` as a node keeps them: leaves as they are, op results as their GraphInput."""
    if len(inputs) == 1:  # one-input ops (tanh, sum, reshape, …): no list comprehension
        g = inputs[0]._in_graph
        return inputs if g is None else (g,)
    return tuple([x if x._in_graph is None else x._in_graph for x in inputs])


def tensor(data: Any, requires_grad: bool = False, name: str | None = None, dtype: Any = None) -> Tensor:
    """``mg.tensor(...)``: the same as ``Tensor(...)``."""
    return Tensor(data, requires_grad=requires_grad, name=name, dtype=dtype)


# ---------------------------------------------------------------------------
# Reverse mode
# ---------------------------------------------------------------------------
def _describe(node: Node) -> str:
    where = f" in scope {node.scope!r}" if node.scope else ""
    return f"node %{node.seq} ({node.op}, shape {node.shape}{where})"


def backward(root: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """Walk the nodes reachable from ``root`` newest first, one VJP each."""
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
        grad = np.ones_like(root.data)
    else:
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=root.data.dtype)
        if grad.shape != root.shape:
            raise ValueError(f"backward(grad=...) has shape {grad.shape}, root has shape {root.shape}")

    node = root._node
    if node is None:  # the root is itself a leaf
        _accumulate_leaf(root, grad)
        return
    node.pending = [None] * node.n_out
    node.pending[root._index] = grad
    heap = [(-node.seq, node)]  # sequence numbers are unique, so nodes are never compared
    pop, push = heapq.heappop, heapq.heappush
    record_norms = _norms_enabled

    with gc_paused():  # the walk frees the graph by reference counting; no collections over it meanwhile
        try:
            while heap:
                node = pop(heap)[1]
                gs, node.pending, node.owned = node.pending, None, 0
                vjp = node.vjp
                if vjp is None:
                    raise GraphFreedError(
                        f"backward reached {_describe(node)} whose saved arrays were already freed by "
                        "an earlier backward. If this is a recurrent state carried over from the previous "
                        "window (truncated BPTT), cut it first: state = models.detach_state(state). "
                        "Otherwise pass retain_graph=True to the first backward (it keeps every saved "
                        "array of the graph alive, so memory grows with each step)."
                    )
                if node.born != _writes:  # something was written in place since this node was made
                    _check_unmodified(node)
                if node.retained is not None:
                    for i, t in node.retained:
                        if gs[i] is not None:
                            t._grad = gs[i].copy() if t._grad is None else t._grad + gs[i]
                if record_norms:
                    node.grad_norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in gs if g is not None)))
                if not retain_graph:
                    node.vjp = None  # drop the closure: frees the arrays it saved
                in_grads = vjp(gs) if node.many else vjp(gs[0])
                if _anomaly:
                    _check_finite(in_grads, node.op, node.scope, node.inputs, "gradient returned by the backward")

                for x, gx in zip(node.inputs, in_grads):
                    if gx is None:
                        continue
                    child = x._node
                    if child is None:  # a leaf: parameters and inputs keep their gradient, constants drop it
                        if x.requires_grad:
                            _accumulate_leaf(x, gx)
                        continue
                    pending = child.pending
                    if pending is None:  # first gradient to reach this node: schedule it
                        push(heap, (-child.seq, child))
                        if child.n_out == 1:  # the usual case: a list of just this gradient (no [None] * n, no store)
                            child.pending = [gx]
                            continue
                        pending = child.pending = [None] * child.n_out
                    i = x._index
                    acc = pending[i]
                    if acc is None:
                        pending[i] = gx  # not ours: other nodes may hold the same array (add passes g on)
                    elif child.owned >> i & 1:
                        acc += gx  # a buffer we made below: accumulate in place, no new array
                    else:
                        acc = acc + gx  # a fresh buffer, ours from now on
                        # (0-d + 0-d gives a numpy scalar, which `acc += gx` above would not update in place)
                        pending[i] = acc if acc.ndim else np.asarray(acc)
                        child.owned |= 1 << i
        finally:
            # on an error mid-walk, unschedule what is left so the next backward starts clean
            for _, left in heap:
                left.pending, left.owned = None, 0


def _check_unmodified(node: Node) -> None:
    for x in node.inputs:
        if x._written > node.born:
            what = f"{x.name!r}" if x.name else f"a tensor of shape {x.shape}"
            raise RuntimeError(
                f"{what}, an input of {_describe(node)}, was modified in place (e.g. by an "
                "optimizer step) after the op used it, so its saved value is stale. Call "
                "backward before updating parameters, or recompute the forward pass."
            )


def _accumulate_leaf(x: Tensor, g: np.ndarray) -> None:
    if g.shape != x.data.shape:  # an op's VJP must return the input's shape
        raise RuntimeError(f"internal error: gradient of shape {g.shape} for a leaf of shape {x.data.shape}")
    if x._grad is None:
        x._grad = np.array(g, dtype=x.data.dtype)  # own copy: g may be shared with other tensors
    else:
        x._grad += g  # .grad is ours: accumulate in place


# ---------------------------------------------------------------------------
# Seeing the tape
# ---------------------------------------------------------------------------
def tape(*roots: Tensor) -> list[Node]:
    """The nodes that lead to ``roots``, in tape (creation) order."""
    seen: set[int] = set()
    nodes: list[Node] = []
    stack = [r._node for r in roots if r._node is not None]
    while stack:  # explicit stack: no recursion on long graphs
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(x._node for x in node.inputs if x._node is not None)
    nodes.sort(key=lambda n: n.seq)
    return nodes


def format_tape(*roots: Tensor) -> str:
    """The tape as a Wengert list, one line a node:

        %7 = tanh(%6)  shape (4, 8)  scope t=2

    Leaves print by name (or as ``leaf(shape)``), constants as ``const(shape)``.
    """
    lines = []
    for node in tape(*roots):
        args = []
        for x in node.inputs:
            if x._node is not None:
                args.append(f"%{x._node.seq}" + (f"[{x._index}]" if x._node.n_out > 1 else ""))
            elif x.requires_grad:
                args.append(x.name or f"leaf{x.shape}")
            else:
                args.append(x.name or f"const{x.shape}")
        line = f"%{node.seq} = {node.op}({', '.join(args)})  shape {node.shape}"
        if node.scope:
            line += f"  scope {node.scope}"
        lines.append(line)
    return "\n".join(lines)
