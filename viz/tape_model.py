"""Reading the tape into a picture model: the one module of ``viz`` that knows the engine's insides.

``read_tape(roots)`` walks the graph from the roots (an explicit stack: no recursion on long
unrolls) and returns plain records that the drawing modules work on:

* :class:`Op`: one node of the tape: its op, its place on the tape (``%seq``), its scope, its
  output shapes and names, its ‖δ‖, and its inputs as (source, output index) pairs;
* :class:`Leaf`: a tensor without a node: a parameter, another leaf that requires grad, a
  constant, or a detached copy of a value (a "cut", with what it was cut from);
* :class:`Tape`: the ops in tape order (a topological order) and the leaves in order of first use.

Every read of minigrad's internals (``Tensor._edge``, ``node.inputs``, ``Tensor._cut_from``, ...) is in
the section "The engine, read here only" below: when the engine's graph changes shape, those
few functions are what to adapt; the drawing modules see only the records.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from minigrad.nn import Parameter
from minigrad.tensor import Node, Tensor

__all__ = ["Op", "Leaf", "OutsideOp", "Tape", "read_tape", "op_inputs", "value_name"]


# ---------------------------------------------------------------------------------------------
# The picture model
# ---------------------------------------------------------------------------------------------
@dataclass(eq=False, slots=True)
class Op:
    """One op on the tape, as the picture sees it."""

    seq: int  # place on the tape: its line %seq in mg.format_tape
    op: str  # the op's name: "matmul", "tanh", ...
    scope: str  # the scope path it was made in ("l0/t=3"), "" outside every scope
    shape: tuple[int, ...]  # shape of its (first) output
    n_out: int  # how many outputs (split, unbind: several)
    grad_norm: float | None  # ‖δ‖ = ‖∂L/∂output‖ recorded by mg.record_grad_norms, else None
    inputs: list[tuple[Op | Leaf, int]] = field(default_factory=list)  # (source, its output index)
    names: dict[int, str] = field(default_factory=dict)  # output index -> the output tensor's name
    shapes: dict[int, tuple[int, ...]] = field(default_factory=dict)  # output index -> shape (outputs in use)
    value: np.ndarray | None = None  # the first output's array, if read_tape(values=True) found it alive
    is_root: bool = False  # one of the tensors draw_graph was given

    @property
    def id(self) -> str:
        """Its node id in the DOT text."""
        return f"n{self.seq}"

    def output_name(self, index: int) -> str | None:
        return self.names.get(index)

    def output_shape(self, index: int) -> tuple[int, ...]:
        return self.shapes[index]


@dataclass(eq=False, slots=True)
class Leaf:
    """A tensor without a node: a parameter, another leaf that requires grad, a constant,
    or a detached copy of a value (kind "cut")."""

    id: str  # its node id in the DOT text: v0, v1, ... in order of first use
    kind: str  # "param" | "leaf" | "const" | "cut"
    name: str | None
    shape: tuple[int, ...]
    value: np.ndarray  # a leaf keeps its array
    grad_norm: float | None = None  # ‖∂L/∂leaf‖ after backward (kinds "param" and "leaf")
    consumers: list[Op] = field(default_factory=list)  # the ops it feeds, once per use
    is_root: bool = False
    # kind "cut": the value it was detached from; None when that value was freed since
    cut_from: Op | Leaf | OutsideOp | None = None


class OutsideOp(NamedTuple):
    """The op a detach cut from, when that op is not part of the drawn graph."""

    seq: int
    op: str


@dataclass
class Tape:
    ops: list[Op]  # tape order (a topological order)
    leaves: list[Leaf]  # in order of first use


def op_inputs(op: Op) -> list[tuple[Op, int]]:
    """``op``'s inputs made by other ops, as (producer, output index); leaves left out."""
    return [(src, i) for src, i in op.inputs if isinstance(src, Op)]


def value_name(source: Op | Leaf, index: int) -> str | None:
    """The name of output ``index`` of ``source`` (a leaf's own name)."""
    return source.name if isinstance(source, Leaf) else source.output_name(index)


# ---------------------------------------------------------------------------------------------
# The engine, read here only
#
# A node's input is the leaf Tensor itself or, for a value another op made, the edge
# (producer node, output index); the producer keeps each output's shape and name. The graph
# keeps no intermediate tensor, so an intermediate's array is not reachable from it. Adapting
# the pictures to another graph representation means rewriting these functions, nothing else.
# ---------------------------------------------------------------------------------------------
class InputRef(NamedTuple):
    """One input of a node, as the engine records it."""

    source: Node | Tensor  # the node that made the value, or the leaf tensor itself
    index: int  # which output of that node (0 for a leaf)
    name: str | None  # the value's name (a name given after the node was made included)
    shape: tuple[int, ...]


def node_of(t: Tensor) -> tuple[Node, int] | None:
    """The node that made ``t`` and which of its outputs ``t`` is; None for a leaf."""
    return t._edge


def inputs_of(node: Node) -> list[InputRef]:
    """``node``'s inputs in order."""
    return [
        InputRef(x[0], x[1], x[0].output_name(x[1]), x[0].shapes[x[1]])
        if type(x) is tuple
        else InputRef(x, 0, x.name, x.shape)
        for x in node.inputs
    ]


def live_values() -> dict[int, np.ndarray]:
    """id(node) -> the array of its first output, for every op result still alive.

    The graph keeps edges, never tensors, so it cannot reach an intermediate's array; for
    ``show_data`` the garbage collector lists the tensors that are still alive (the user holds
    them). One pass over all live objects: paid only when a picture asks for values.
    """
    return {
        id(o._edge[0]): o.data
        for o in gc.get_objects()
        # type(o), not isinstance: isinstance asks o for __class__, which wakes lazy modules' warnings
        if issubclass(type(o), Tensor) and o._edge is not None and o._edge[1] == 0
    }


def op_record(node: Node) -> Op:
    """The record of ``node`` (its inputs are filled in by read_tape)."""
    return Op(node.seq, node.op, node.scope, node.shape, node.n_out, node.grad_norm)


def leaf_kind(t: Tensor) -> str:
    if isinstance(t, Parameter):
        return "param"
    if t.requires_grad:
        return "leaf"
    if t._cut_from is not None:
        return "cut"
    return "const"


def leaf_grad_norm(t: Tensor) -> float | None:
    g = t._grad  # not .grad: leaves only, and no warning for non-leaves
    return None if g is None else float(np.linalg.norm(g))


def leaf_record(t: Tensor, leaf_id: str) -> Leaf:
    kind = leaf_kind(t)
    norm = leaf_grad_norm(t) if kind in ("param", "leaf") else None
    return Leaf(leaf_id, kind, t.name, t.shape, t.data, norm)


def cut_origin(t: Tensor) -> Node | Tensor | None:
    """What the detached tensor ``t`` was cut from: the node that made that value, or the leaf
    itself; None when the value is gone (the graph it belonged to was freed)."""
    ref, _ = t._cut_from  # (weak reference to the producer node or to the leaf, output index)
    return ref()


# ---------------------------------------------------------------------------------------------
# Walking the tape: which ops, which leaves, and who uses what
# ---------------------------------------------------------------------------------------------
def flatten_roots(roots: Any) -> list[Tensor]:
    """A tensor, or any nesting of lists/tuples of tensors (e.g. ``out, (h_n, c_n)``)."""
    found: list[Tensor] = []
    stack = [roots]
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            found.append(item)
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))
        elif item is not None:
            raise TypeError(f"draw_graph: expected Tensors (or lists/tuples of them), got {type(item).__name__}")
    if not found:
        raise ValueError("draw_graph: no tensors to draw (pass the loss, or a list of tensors)")
    return found


def read_tape(roots: Any, *, values: bool = False) -> Tape:
    """The graph that produced ``roots`` (a tensor, or lists/tuples of them) as a :class:`Tape`.

    values: also look up each op's first output array (``Op.value``), where it is still alive.
    """
    roots = flatten_roots(roots)
    found: dict[int, tuple[Op, list[InputRef], Node]] = {}  # id(node) -> its record, inputs, node
    stack = [made[0] for made in map(node_of, roots) if made is not None]
    while stack:  # explicit stack: no recursion on long unrolls
        node = stack.pop()
        if id(node) in found:
            continue
        refs = inputs_of(node)
        found[id(node)] = (op_record(node), refs, node)
        stack.extend(r.source for r in refs if not isinstance(r.source, Tensor) and id(r.source) not in found)
    walked = sorted(found.values(), key=lambda f: f[0].seq)  # tape order
    record = {key: op for key, (op, _, _) in found.items()}

    leaves: list[Leaf] = []
    tensors: list[Tensor] = []  # the tensor of each leaf record
    leaf_of: dict[int, Leaf] = {}  # id(tensor) -> its record

    def leaf(t: Tensor) -> Leaf:
        lf = leaf_of.get(id(t))
        if lf is None:
            lf = leaf_of[id(t)] = leaf_record(t, f"v{len(leaves)}")
            leaves.append(lf)
            tensors.append(t)
        return lf

    alive = live_values() if values else {}
    for op, refs, node in walked:  # leaves in order of first use; names and shapes of the outputs
        op.value = alive.get(id(node))  # None once the tensor was freed: its box shows no values
        for ref in refs:
            if isinstance(ref.source, Tensor):
                lf = leaf(ref.source)
                lf.consumers.append(op)
                op.inputs.append((lf, 0))
                continue
            src = record[id(ref.source)]
            op.inputs.append((src, ref.index))
            src.shapes.setdefault(ref.index, ref.shape)
            if ref.name:
                src.names.setdefault(ref.index, ref.name)
    for r in roots:  # marked; a root's name and array come from the tensor itself
        made = node_of(r)
        if made is None:
            leaf(r).is_root = True
            continue
        op, index = record[id(made[0])], made[1]
        op.is_root = True
        if values and index == 0:
            op.value = r.data
        if r.name:
            op.names[index] = r.name
    for lf, t in list(zip(leaves, tensors)):  # a detached value: find what it was cut from
        if lf.kind != "cut":
            continue
        orig = cut_origin(t)
        if orig is None:  # freed: cut_from stays None
            continue
        if isinstance(orig, Tensor):
            lf.cut_from = leaf(orig)  # a detached parameter: draw the parameter it was cut from
        elif id(orig) in record:
            lf.cut_from = record[id(orig)]
        else:
            outside = op_record(orig)
            lf.cut_from = OutsideOp(outside.seq, outside.op)
    return Tape([op for op, _, _ in walked], leaves)
