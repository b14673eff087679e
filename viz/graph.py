"""Pictures of the tape: the unrolled graph as Graphviz DOT, built without running anything.

    g = viz.draw_graph(loss)                  # a graphviz.Digraph; g.source is the DOT text
    viz.render_graph(g, "rnn.svg")            # or render_graph(loss, "rnn.svg"), see render.py

What the picture shows at ``level="op"``:

* every op on the tape as a rounded box: the tensor's name when it has one, else the op;
  below it the output shape and ``%seq``, the op's line in ``mg.format_tape``;
* scopes as nested boxes, e.g. a layer ``l0`` holding the steps ``t=1 … t=T``; time runs
  left to right;
* every parameter ONCE (yellow), with an edge to every op that uses it: the weights shared
  across time steps;
* a ``detach`` as a dashed red edge labelled "cut" from the value to its detached copy:
  no gradient flows back along it;
* with ``show_grads=True`` (after ``loss.backward()`` inside ``mg.record_grad_norms()``)
  fill colours by ‖δ‖ = ‖∂L/∂output‖ on a log scale: vanishing gradients fade to blue,
  exploding ones glow red.

For long unrolls: ``level="step"`` draws one box per scope (per time step) with the states
that flow between them, and ``collapse=True`` draws one representative step "× T".
Graphs above ``max_nodes`` raise :class:`GraphTooLargeError` instead of handing ``dot``
something it would chew on for minutes.

Every walk here uses an explicit stack: a 100,000-step graph does not hit the recursion limit.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import graphviz
import numpy as np

from minigrad.nn import Parameter
from minigrad.tensor import Node, Tensor

__all__ = ["draw_graph", "GraphTooLargeError", "step_grad_norms", "is_step_scope"]

DEFAULT_MAX_NODES = 3000

# -- colours and fonts: one place, so every picture looks alike -----------------------------
FONT = "Helvetica"
OP_FILL, OP_LINE = "#eaf1fb", "#5b7db1"
PARAM_FILL, PARAM_LINE = "#fff2cc", "#c9a227"
CONST_FILL, CONST_LINE = "#f4f4f4", "#a0a0a0"
CUT_COLOR = "#c0392b"
STEP_FILL, STEP_LINE = "#f7f9fc", "#9fb4cc"
RECUR_COLOR = "#2c7fb8"
MUTED = "#6b6b6b"
NO_GRAD_FILL = "#eeeeee"
# ‖δ‖ colours, small (blue) → large (red): the light middle of ColorBrewer RdYlBu for fills, so
# black text stays readable on every fill, and darker shades of the same hues for edges
GRAD_PALETTE = ["#91bfdb", "#b7d7e8", "#dcebf2", "#f5f5d0", "#fee8a0", "#fdc77e", "#fb9f67", "#f4735a"]
GRAD_EDGE_PALETTE = ["#2c7bb6", "#5a9bc9", "#84b4cf", "#a3a38a", "#d4a537", "#e08a2c", "#dd5f26", "#c9271c"]

_STEP_RE = re.compile(r"^t\s*=")


class GraphTooLargeError(ValueError):
    """The picture would have more nodes than ``max_nodes``."""


def is_step_scope(component: str) -> bool:
    """Scope components such as ``t=3`` mark one time step."""
    return bool(_STEP_RE.match(component))


# ---------------------------------------------------------------------------------------------
# 1. Walking the tape: which ops, which leaves, and who uses what
# ---------------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Leaf:
    """A tensor without a node: a parameter, another leaf that requires grad, a constant,
    or a detached copy of a value (kind "cut")."""

    tensor: Tensor
    id: str
    kind: str  # "param" | "leaf" | "const" | "cut"
    consumers: list[Node] = field(default_factory=list)


@dataclass
class _Walk:
    nodes: list[Node]  # tape order (a topological order)
    leaves: list[_Leaf]  # in order of first use
    leaf_of: dict[int, _Leaf]  # id(tensor) -> leaf
    names: dict[tuple[int, int], str]  # (node seq, output index) -> the output tensor's name
    root_ids: set[str]  # drawing ids of the roots
    root_data: dict[tuple[int, int], np.ndarray]  # (node seq, output index) -> a root's array
    present: set[int]  # seq of every node in the graph


def _flatten(roots: Any) -> list[Tensor]:
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


def _leaf_kind(t: Tensor) -> str:
    if isinstance(t, Parameter):
        return "param"
    if t.requires_grad:
        return "leaf"
    if t._cut_from is not None:
        return "cut"
    return "const"


def _walk(roots: list[Tensor]) -> _Walk:
    seen: dict[int, Node] = {}
    stack = [r._node for r in roots if r._node is not None]
    while stack:  # explicit stack: no recursion on long unrolls
        node = stack.pop()
        if node.seq in seen:
            continue
        seen[node.seq] = node
        stack.extend(x._node for x in node.inputs if x._node is not None and x._node.seq not in seen)
    nodes = sorted(seen.values(), key=lambda n: n.seq)

    leaves: list[_Leaf] = []
    leaf_of: dict[int, _Leaf] = {}
    names: dict[tuple[int, int], str] = {}

    def leaf(t: Tensor) -> _Leaf:
        lf = leaf_of.get(id(t))
        if lf is None:
            lf = leaf_of[id(t)] = _Leaf(t, f"v{len(leaves)}", _leaf_kind(t))
            leaves.append(lf)
        return lf

    for node in nodes:
        for x in node.inputs:
            if x._node is None:
                leaf(x).consumers.append(node)
            elif x.name:
                names.setdefault((x._node.seq, x._index), x.name)
    root_ids = set()
    root_data = {}
    for r in roots:
        if r._node is None:
            root_ids.add(leaf(r).id)
        else:
            root_ids.add(f"n{r._node.seq}")
            root_data[(r._node.seq, r._index)] = r.data
            if r.name:
                names[(r._node.seq, r._index)] = r.name
    for lf in list(leaves):  # a detached parameter: draw the parameter it was cut from
        orig = lf.tensor._cut_from() if lf.kind == "cut" else None
        if orig is not None and orig._node is None:
            leaf(orig)
    return _Walk(nodes, leaves, leaf_of, names, root_ids, root_data, set(seen))


def _common_scope(scopes: Iterable[str]) -> str:
    """The deepest scope containing all of ``scopes`` ("l0/t=2", "l0/t=3" -> "l0")."""
    common: list[str] | None = None
    for s in scopes:
        parts = s.split("/") if s else []
        if common is None:
            common = parts
        else:
            n = 0
            while n < min(len(common), len(parts)) and common[n] == parts[n]:
                n += 1
            del common[n:]
        if not common:
            break
    return "/".join(common or [])


# ---------------------------------------------------------------------------------------------
# 2. Labels: HTML-like labels, every user string escaped (quotes, <, >, {, } are all safe)
# ---------------------------------------------------------------------------------------------
def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "scalar" if not shape else "×".join(str(n) for n in shape)


def _fmt_norm(v: float) -> str:
    return "0" if v == 0 else f"{v:.2g}" if 1e-2 <= v < 1e3 else f"{v:.1e}"


def _fmt_values(a: np.ndarray) -> str | None:
    """Values of small arrays (≤ 4 numbers), for show_data."""
    if a.size > 4:
        return None
    if a.ndim == 0:
        return f"{a.item():.4g}"
    return "[" + ", ".join(f"{v:.4g}" for v in np.asarray(a).ravel()) + "]"


def _label(title: str, *lines: str, bold: bool = True) -> str:
    """<b>title</b> over smaller grey lines, as a Graphviz HTML-like label (inputs pre-escaped)."""
    head = f"<b>{title}</b>" if bold else title
    rest = "".join(f'<br/><font point-size="8" color="{MUTED}">{ln}</font>' for ln in lines if ln)
    return f"<{head}{rest}>"


# ---------------------------------------------------------------------------------------------
# 3. Gradient colours: ‖δ‖ on a log scale
# ---------------------------------------------------------------------------------------------
class _GradScale:
    """Maps a gradient norm to a palette colour by log10, between the smallest and largest norm drawn."""

    def __init__(self, norms: Iterable[float | None]):
        logs = [math.log10(v) for v in norms if v is not None and v > 0 and math.isfinite(v)]
        self.lo = min(logs) if logs else 0.0
        self.hi = max(logs) if logs else 0.0

    def color(self, v: float | None, palette: list[str] = GRAD_PALETTE) -> str:
        if v is None or not math.isfinite(v) or v <= 0:  # no gradient reached it (or exactly zero): grey
            return NO_GRAD_FILL if palette is GRAD_PALETTE else "#bbbbbb"
        span = self.hi - self.lo
        u = 0.5 if span < 1e-12 else (math.log10(v) - self.lo) / span
        return palette[min(len(palette) - 1, max(0, int(u * len(palette))))]

    def legend_label(self) -> str:
        """A colour bar with ‖δ‖ ticks, as an HTML table."""
        n = len(GRAD_PALETTE)
        cells = "".join(f'<td bgcolor="{c}" width="18" height="12"></td>' for c in GRAD_PALETTE)
        lo, hi = 10**self.lo, 10**self.hi
        return (
            '<<table border="0" cellborder="0" cellspacing="0" cellpadding="2">'
            f'<tr><td colspan="{n}"><b>‖δ‖ = ‖∂L/∂value‖, log scale, blue → red</b></td></tr>'
            f"<tr>{cells}</tr>"
            f'<tr><td colspan="{n // 2}" align="left"><font point-size="8">small: {_fmt_norm(lo)}</font></td>'
            f'<td colspan="{n - n // 2}" align="right"><font point-size="8"> large: {_fmt_norm(hi)}</font></td></tr>'
            f'<tr><td colspan="{n}" align="left"><font point-size="8">grey: no gradient (cut off, or 0)</font></td></tr>'
            "</table>>"
        )


def _leaf_grad_norm(t: Tensor) -> float | None:
    g = t._grad  # not .grad: leaves only, and no warning for non-leaves
    return None if g is None else float(np.linalg.norm(g))


# ---------------------------------------------------------------------------------------------
# 4. Assembling nested clusters into a Digraph (bottom-up, no recursion)
# ---------------------------------------------------------------------------------------------
class _Picture:
    """Nodes filed under scope paths, edges, and cluster titles; ``build`` makes the Digraph."""

    def __init__(self) -> None:
        self.members: dict[str, list[tuple[str, dict[str, str]]]] = {}
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.titles: dict[str, str] = {}  # path -> HTML label body overriding the default
        self.rows: list[tuple[str, list[str]]] = []  # (cluster path, nodes kept on one rank, left to right)
        self.n_nodes = 0
        self.linked: set[tuple[str, str]] = set()  # (a, b) pairs with an edge

    def node(self, path: str, node_id: str, **attrs: str) -> None:
        self.members.setdefault(path, []).append((node_id, attrs))
        self.n_nodes += 1

    def edge(self, a: str, b: str, **attrs: str) -> None:
        self.edges.append((a, b, attrs))
        self.linked.add((a, b))

    def build(self, graph_attr: dict[str, str]) -> graphviz.Digraph:
        order: dict[str, int] = {}  # cluster paths in order of first appearance
        for path in self.members:
            parts = path.split("/") if path else []
            for i in range(1, len(parts) + 1):
                order.setdefault("/".join(parts[:i]), len(order))
        children: dict[str, list[str]] = {}
        for p in order:
            children.setdefault(p.rpartition("/")[0], []).append(p)

        built: dict[str, graphviz.Digraph] = {}
        for p in sorted(order, key=lambda q: (-q.count("/"), order[q])):  # deepest first
            sub = graphviz.Digraph(name=f"cluster_{order[p]}")
            sub.attr(**self._cluster_attrs(p))
            for node_id, attrs in self.members.get(p, []):
                sub.node(node_id, **attrs)
            self._add_rows(sub, p)
            for c in children.get(p, []):
                sub.subgraph(built.pop(c))
            built[p] = sub

        g = graphviz.Digraph(
            "minigrad",
            graph_attr=graph_attr,
            node_attr={"fontname": FONT, "fontsize": "10", "margin": "0.08,0.03", "height": "0.3"},
            edge_attr={"fontname": FONT, "fontsize": "8", "arrowsize": "0.6", "color": "#555555"},
        )
        for node_id, attrs in self.members.get("", []):
            g.node(node_id, **attrs)
        self._add_rows(g, "")
        for c in children.get("", []):
            g.subgraph(built.pop(c))
        for a, b, attrs in self.edges:
            g.edge(a, b, **attrs)
        return g

    def _add_rows(self, g: graphviz.Digraph, path: str) -> None:
        """Same rank, and flat invisible edges that keep the order (time left to right)."""
        for where, row in self.rows:
            if where != path:
                continue
            with g.subgraph() as r:
                r.attr(rank="same")
                for node_id in row:
                    r.node(node_id)
                for a, b in zip(row, row[1:]):
                    if (a, b) not in self.linked:
                        r.edge(a, b, style="invis")

    def _cluster_attrs(self, path: str) -> dict[str, str]:
        last = path.rpartition("/")[2]
        title = self.titles.get(path, f"<b>{_esc(last)}</b>")
        if is_step_scope(last):
            return {
                "label": f"<{title}>",
                "style": "rounded,filled",
                "fillcolor": STEP_FILL,
                "color": STEP_LINE,
                "fontname": FONT,
                "fontsize": "11",
                "fontcolor": "#2b4a6f",
                "labeljust": "l",
                "id": _esc(f"scope {path}"),
            }
        return {
            "label": f"<{title}>",
            "style": "rounded,dashed",
            "color": "#8c8c8c",
            "fontname": FONT,
            "fontsize": "12",
            "fontcolor": "#444444",
            "labeljust": "l",
            "id": _esc(f"scope {path}"),
        }


# ---------------------------------------------------------------------------------------------
# 5. The public entry point
# ---------------------------------------------------------------------------------------------
def draw_graph(
    roots: Tensor | Iterable[Tensor],
    level: str = "op",
    *,
    show_data: bool = False,
    show_grads: bool = False,
    show_constants: bool | str = "named",
    collapse: bool = False,
    max_nodes: int = DEFAULT_MAX_NODES,
    title: str | None = None,
) -> graphviz.Digraph:
    """The graph that produced ``roots`` as a ``graphviz.Digraph``; nothing is executed.

    roots: a tensor (the loss) or several (a list/tuple, nested allowed).
    level: "op" draws every op; "step" draws one box per scope (per time step).
    show_data: print the values of small tensors (≤ 4 numbers) in their boxes.
    show_grads: colour by ‖δ‖ on a log scale; run ``backward`` inside ``mg.record_grad_norms()`` first.
    show_constants: True draws every constant, False none, "named" only those with a ``name``.
    collapse: at level "op", draw one representative step of each run of identical steps, "× T".
    max_nodes: refuse (GraphTooLargeError) to draw more nodes than this.
    title: a caption at the top.

    The DOT text is ``draw_graph(...).source``; rendering it needs Graphviz, see ``render_graph``.
    """
    if level not in ("op", "step"):
        raise ValueError(f'draw_graph: level must be "op" or "step", got {level!r}')
    if show_constants not in (True, False, "named"):
        raise ValueError(f'draw_graph: show_constants must be True, False or "named", got {show_constants!r}')
    if collapse and level != "op":
        raise ValueError('draw_graph: collapse=True applies to level="op" (level="step" is already one box a step)')
    walk = _walk(_flatten(roots))

    scale = None
    if show_grads:
        norms = [n.grad_norm for n in walk.nodes] + [
            _leaf_grad_norm(lf.tensor) for lf in walk.leaves if lf.kind in ("param", "leaf")
        ]
        if all(v is None for v in norms):
            raise ValueError(
                "draw_graph(show_grads=True): no gradients recorded on this graph. Run the backward "
                "inside `with mg.record_grad_norms(): loss.backward()` first."
            )
        scale = _GradScale(norms)

    pic = _draw_steps(walk, scale) if level == "step" else _draw_ops(walk, scale, show_data, show_constants, collapse)
    if pic.n_nodes > max_nodes:
        n_steps = len({n.scope for n in walk.nodes}) + sum(lf.kind in ("param", "leaf") for lf in walk.leaves)
        hint = (
            f'use level="step" (one box per time step: about {n_steps} nodes here), or collapse=True '
            "(one representative step drawn × T), or pass a larger max_nodes"
            if level == "op"
            else "pass a larger max_nodes"
        )
        raise GraphTooLargeError(
            f"draw_graph: the picture would have {pic.n_nodes} nodes, more than max_nodes={max_nodes}; "
            f"dot would take long and nobody could read it: {hint}."
        )
    if scale is not None:
        pic.node("", "grad_legend", label=scale.legend_label(), shape="plaintext", margin="0")

    graph_attr = {
        "rankdir": "TB",  # steps side by side (time left to right), each step's ops top to bottom
        "splines": "line",  # straight edges: a state carried into the next step is one clean diagonal
        "fontname": FONT,
        "nodesep": "0.18",
        "ranksep": "0.28",
        "bgcolor": "white",
    }
    if level == "step":  # few nodes, no edges back up: curved edges and more room between ranks read better
        del graph_attr["splines"]
        graph_attr["ranksep"] = "0.6"
    if title:
        graph_attr.update(label=f"<<b>{_esc(title)}</b>>", labelloc="t", labeljust="l", fontsize="14")
    return pic.build(graph_attr)


# ---------------------------------------------------------------------------------------------
# 6. level="op": every op, every (visible) leaf
# ---------------------------------------------------------------------------------------------
def _op_attrs(node: Node, walk: _Walk, scale: _GradScale | None, show_data: bool, data: Any = None) -> dict[str, str]:
    name = walk.names.get((node.seq, 0)) if node.n_out == 1 else None  # several outputs: names go on the edges
    if name is None and node.op == "transpose" and len(node.shape) == 2 and node.inputs[0].name:
        name = node.inputs[0].name + "ᵀ"  # W_hhᵀ, transposed once for all steps
    title = _esc(name) if name else _esc(node.op)
    sub = f"{_esc(node.op)} · " if name else ""
    lines = [f"{sub}{_fmt_shape(node.shape)} · %{node.seq}"]
    if node.n_out > 1:
        lines[0] = f"{_esc(node.op)} → {node.n_out} outputs · %{node.seq}"
    if show_data and data is not None:
        vals = _fmt_values(data)
        if vals:
            lines.append("= " + _esc(vals))
    attrs = {"shape": "box", "style": "rounded,filled", "color": OP_LINE, "fillcolor": OP_FILL}
    if scale is not None:
        lines.append("‖δ‖ " + ("—" if node.grad_norm is None else _fmt_norm(node.grad_norm)))
        attrs["fillcolor"] = scale.color(node.grad_norm)
    attrs["label"] = _label(title, *lines)
    attrs["tooltip"] = _esc(f"%{node.seq} = {node.op}  shape {node.shape}  scope {node.scope or '-'}")
    if f"n{node.seq}" in walk.root_ids:
        attrs.update(peripheries="2", penwidth="1.5")
    return attrs


def _leaf_attrs(lf: _Leaf, walk: _Walk, scale: _GradScale | None, show_data: bool) -> dict[str, str]:
    t = lf.tensor
    shape = _fmt_shape(t.shape)
    lines = []
    if lf.kind in ("param", "leaf"):
        title = _esc(t.name) if t.name else f"{'parameter' if lf.kind == 'param' else 'leaf'}"
        lines.append(shape if t.name else f"{shape} · {lf.id}")
        attrs = {"shape": "box", "style": "filled", "fillcolor": PARAM_FILL, "color": PARAM_LINE}
        if lf.kind == "leaf":
            attrs["style"] = "filled,rounded"
    elif lf.kind == "cut":
        title = f"detached {_esc(t.name)}" if t.name else "detached"
        lines.append(f"{shape} · no grad")
        attrs = {"shape": "box", "style": "dashed,rounded", "color": CUT_COLOR, "fontcolor": "#7b241c"}
    else:
        title = _esc(t.name) if t.name else "const"
        lines.append(shape)
        attrs = {"shape": "box", "style": "filled", "fillcolor": CONST_FILL, "color": CONST_LINE, "fontsize": "9"}
    if show_data:
        vals = _fmt_values(t.data)
        if vals:
            lines.append("= " + _esc(vals))
    if scale is not None and lf.kind in ("param", "leaf"):
        v = _leaf_grad_norm(t)
        lines.append("‖∂L/∂θ‖ " + ("—" if v is None else _fmt_norm(v)))
        attrs["fillcolor"] = scale.color(v)
    attrs["label"] = _label(title, *lines)
    if lf.id in walk.root_ids:
        attrs.update(peripheries="2")
    return attrs


def _output_data(walk: _Walk) -> dict[tuple[int, int], np.ndarray]:
    """Each node's output arrays that are still alive, found through its consumers' inputs (a node
    keeps neither its outputs nor, for an input made by another op, more than a weak reference to it)."""
    data = dict(walk.root_data)
    for node in walk.nodes:
        for x in node.inputs:
            if x._node is not None and (x._node.seq, x._index) not in data:
                value = x.data  # None once the tensor was freed: its box shows no values
                if value is not None:
                    data[(x._node.seq, x._index)] = value
    return data


def _step_families(walk: _Walk) -> dict[str, dict[str, list[Node]]]:
    """{parent scope: {step scope: its nodes in tape order}} for scopes whose last part is ``t=…``.

    Nodes in scopes nested inside a step (e.g. "l0/t=3/gates") belong to that step.
    """
    families: dict[str, dict[str, list[Node]]] = {}
    for node in walk.nodes:
        parts = node.scope.split("/") if node.scope else []
        for i in range(len(parts) - 1, -1, -1):  # innermost step component
            if is_step_scope(parts[i]):
                parent, step = "/".join(parts[:i]), "/".join(parts[: i + 1])
                families.setdefault(parent, {}).setdefault(step, []).append(node)
                break
    return families


def _collapse_map(families: dict[str, dict[str, list[Node]]]) -> tuple[dict[int, Node], dict[str, str]]:
    """For each run of structurally identical sibling steps: map every node of the later steps
    onto the node in the same position of the first one (the representative).

    Returns (seq -> representative node, representative step scope -> its cluster title).
    """
    rep_of: dict[int, Node] = {}
    titles: dict[str, str] = {}
    for steps in families.values():
        if len(steps) < 2:
            continue

        def signature(nodes: list[Node], step: str) -> tuple:
            pos = {n.seq: i for i, n in enumerate(nodes)}
            return tuple(
                (
                    n.op,
                    n.scope[len(step) :],
                    n.shape,
                    tuple(pos.get(x._node.seq, -1) if x._node else -1 for x in n.inputs),
                )
                for n in nodes
            )

        sigs = {step: signature(nodes, step) for step, nodes in steps.items()}
        common, count = Counter(sigs.values()).most_common(1)[0]
        if count < 2:
            continue
        members = [s for s in steps if sigs[s] == common]
        first = members[0]
        for s in members[1:]:
            for a, b in zip(steps[s], steps[first]):
                rep_of[a.seq] = b
        lo, hi = first.rpartition("/")[2], members[-1].rpartition("/")[2]
        titles[first] = (
            f"<b>{_esc(lo)} … {_esc(hi)}</b>"
            f'<br/><font point-size="9">one step drawn for {count} identical steps (× {count})</font>'
        )
    return rep_of, titles


def _draw_ops(
    walk: _Walk, scale: _GradScale | None, show_data: bool, show_constants: bool | str, collapse: bool
) -> _Picture:
    pic = _Picture()
    families = _step_families(walk)
    step_of = {n.seq: step for steps in families.values() for step, nodes in steps.items() for n in nodes}
    rep_of, titles = _collapse_map(families) if collapse else ({}, {})
    in_run = set(rep_of) | {n.seq for n in rep_of.values()}  # nodes of folded steps and their representatives
    pic.titles.update(titles)

    def rep(node: Node) -> Node:
        return rep_of.get(node.seq, node)

    data = _output_data(walk) if show_data else {}
    for node in walk.nodes:  # op nodes (representatives only, when collapsed)
        if node.seq not in rep_of:
            pic.node(node.scope, f"n{node.seq}", **_op_attrs(node, walk, scale, show_data, data.get((node.seq, 0))))

    # Edges between ops. A state carried from one step into the next does not push the next step
    # further down (constraint=false): all steps share the same ranks and stand side by side, time
    # running left to right, and edges from shared weights stay short (dot's time grows with the
    # ranks an edge spans, so a long unroll laid out along the ranks would take minutes).
    # Folded edges are counted and drawn once, "× m"; a state edge between two folded steps
    # becomes a "to next step" edge back into the representative.
    count: Counter = Counter()
    first: dict[tuple, tuple[Node, Node, set[int]]] = {}
    for node in walk.nodes:
        for x in node.inputs:
            if x._node is None:
                continue
            src, dst = rep(x._node), rep(node)
            a, b = step_of.get(x._node.seq), step_of.get(node.seq)
            recur = a is not None and b is not None and a != b and a.rpartition("/")[0] == b.rpartition("/")[0]
            folded = src.seq in in_run or dst.seq in in_run
            key = (src.seq, dst.seq, None if folded else x._index, recur)
            count[key] += 1
            first.setdefault(key, (src, dst, set()))[2].add(x._index)
    for key, m in count.items():
        src, dst, indices = first[key]
        recur = key[3]
        labels = []
        if src.n_out > 1 and len(indices) == 1:  # which output: its name (r, z of a GRU) or its index
            i = next(iter(indices))
            labels.append(walk.names.get((src.seq, i)) or f"[{i}]")
        inside_run = src.seq in in_run and dst.seq in in_run and not recur
        if m > 1 and not inside_run:  # inside a folded step every edge is there × T: no need to say so
            labels.append(f"× {m}")
        attrs: dict[str, str] = {}
        if recur:  # a state flowing from one step into the next
            attrs.update(color=RECUR_COLOR, penwidth="1.4", constraint="false")
            if src.scope == dst.scope:  # folded back onto the representative
                attrs["fontcolor"] = RECUR_COLOR
                labels.insert(0, "to next step")
        if scale is not None:
            attrs["color"] = _edge_color(scale, src.grad_norm)
        if labels:
            attrs["xlabel"] = " ".join(labels)  # xlabel: placed after layout, adds no ranks
        pic.edge(f"n{src.seq}", f"n{dst.seq}", **attrs)

    # leaves: each drawn once, in the scope that holds all its users
    folded_cuts = 0
    for lf in walk.leaves:
        if lf.kind == "const" and (show_constants is False or (show_constants == "named" and not lf.tensor.name)):
            continue
        if lf.kind in ("const", "cut") and lf.consumers and all(n.seq in rep_of for n in lf.consumers):
            folded_cuts += lf.kind == "cut"  # belongs to a folded step: not drawn
            continue
        users = [rep(n) for n in lf.consumers]
        pic.node(_common_scope(n.scope for n in users), lf.id, **_leaf_attrs(lf, walk, scale, show_data))
        for seq, m in Counter(n.seq for n in users).items():
            attrs = {"xlabel": f"× {m}"} if m > 1 else {}
            if scale is not None and lf.kind in ("param", "leaf"):
                attrs["color"] = _edge_color(scale, _leaf_grad_norm(lf.tensor))
            pic.edge(lf.id, f"n{seq}", **attrs)
        if lf.kind == "cut":
            _cut_edge(pic, walk, lf, rep)
    # Whatever feeds the steps from outside (weights, the input projection) sits above the steps,
    # not beside them: an invisible edge to every entry of every step (its ops without an input
    # from the same step, and the leaves drawn in it). The rendering pass that puts the steps in
    # time order (layout.py) moves whole step boxes sideways; nothing else shares their ranks.
    for steps in families.values():
        start = min(nodes[0].seq for nodes in steps.values())
        feeders = sorted(
            {
                x._node.seq
                for nodes in steps.values()
                for n in nodes
                for x in n.inputs
                if x._node is not None and x._node.seq < start and x._node.seq not in rep_of
            }
        )
        for step, nodes in steps.items():
            if not feeders or nodes[0].seq in rep_of:
                continue
            inside = {n.seq for n in nodes}
            entries = [
                f"n{n.seq}" for n in nodes if not any(x._node is not None and x._node.seq in inside for x in n.inputs)
            ]
            entries += [node_id for node_id, _ in pic.members.get(step, []) if node_id.startswith("v")]
            for seq in feeders:  # made before the steps, so no cycle
                for e in entries:
                    pic.edge(f"n{seq}", e, style="invis")
    if folded_cuts:
        note = f'<br/><font point-size="9" color="{CUT_COLOR}">+ {folded_cuts} detach cuts in the folded steps</font>'
        for path in titles:
            pic.titles[path] += note
    return pic


def _edge_color(scale: _GradScale, v: float | None) -> str:
    return scale.color(v, GRAD_EDGE_PALETTE)


def _cut_edge(pic: _Picture, walk: _Walk, lf: _Leaf, rep: Any) -> None:
    """Dashed edge from the value a detach cut from, to the detached copy."""
    orig = lf.tensor._cut_from()
    attrs = {
        "style": "dashed",
        "color": CUT_COLOR,
        "fontcolor": CUT_COLOR,
        "xlabel": "cut",
        "arrowhead": "tee",
        "penwidth": "1.3",
        "constraint": "false",  # like a carried state: keeps the steps side by side
    }
    if orig is None:
        src = f"{lf.id}_gone"
        pic.node("", src, label=_label("(freed)", "value before the cut", bold=False), shape="plaintext")
    elif orig._node is None:
        src = walk.leaf_of[id(orig)].id
    elif orig._node.seq in walk.present:
        src = f"n{rep(orig._node).seq}"
    else:
        src = f"{lf.id}_from"
        label = _label(_esc(orig._node.op), f"%{orig._node.seq} · outside this graph", bold=False)
        pic.node("", src, label=label, shape="box", style="dotted,rounded", color=CUT_COLOR)
    pic.edge(src, lf.id, **attrs)


# ---------------------------------------------------------------------------------------------
# 7. level="step": one box per scope, the states flowing between them
# ---------------------------------------------------------------------------------------------
def _draw_steps(walk: _Walk, scale: _GradScale | None) -> _Picture:
    """One box per time step; the ops outside the steps as boxes per scope and phase (before or
    after the steps), and unscoped ops (usually the loss) one by one."""
    pic = _Picture()
    families = _step_families(walk)
    step_of = {n.seq: step for steps in families.values() for step, nodes in steps.items() for n in nodes}
    span = {
        p: (min(ns[0].seq for ns in st.values()), max(ns[-1].seq for ns in st.values())) for p, st in families.items()
    }

    def group_of(node: Node) -> str:
        if node.seq in step_of:
            return step_of[node.seq]
        if not node.scope:
            return f"%{node.seq}"  # an unscoped op: drawn on its own
        if node.scope in span:  # ops of a scope that also holds steps: before or after them
            lo, hi = span[node.scope]
            return node.scope + ("/(before)" if node.seq < lo else "/(after)" if node.seq > hi else "/(between)")
        return node.scope

    groups: dict[str, list[Node]] = {}
    for node in walk.nodes:
        groups.setdefault(group_of(node), []).append(node)
    gid = {g: f"g{i}" for i, g in enumerate(groups)}

    def where(g: str) -> str:  # the cluster a group's box sits in
        return "" if g.startswith("%") else g.rpartition("/")[0]

    for g, nodes in groups.items():
        out = nodes[-1]  # the group's last op: for a step, the one that makes its state h_t
        attrs = {"shape": "box", "style": "rounded,filled", "fillcolor": STEP_FILL, "color": STEP_LINE}
        if g.startswith("%"):
            name = walk.names.get((out.seq, 0))
            title, lines = (_esc(name) if name else _esc(out.op)), [f"{_fmt_shape(out.shape)} · %{out.seq}"]
            attrs.update(fillcolor=OP_FILL, color=OP_LINE)
        else:
            parent, _, last = g.rpartition("/")
            title = (
                f"{_esc(parent.rpartition('/')[2])}: ops {last[1:-1]} the steps" if last.startswith("(") else _esc(last)
            )
            lines = [f"{len(nodes)} op{'s' if len(nodes) != 1 else ''}"]
            ops = Counter(n.op for n in nodes)
            attrs["tooltip"] = _esc(", ".join(f"{op} × {m}" if m > 1 else op for op, m in ops.items()))
        if scale is not None:
            lines.append("‖δ out‖ " + ("—" if out.grad_norm is None else _fmt_norm(out.grad_norm)))
            attrs["fillcolor"] = scale.color(out.grad_norm)
        if any(f"n{n.seq}" in walk.root_ids for n in nodes):
            attrs.update(peripheries="2")
        attrs["label"] = _label(title, *lines)
        pic.node(where(g), gid[g], **attrs)

    # the steps of one scope side by side on one rank, in time order (flat edges keep the order)
    for steps in families.values():
        if len(steps) > 1:
            pic.rows.append((next(iter(steps)).rpartition("/")[0], [gid[s] for s in steps]))

    # values crossing from one group into another; between two steps: the carried state
    crossing: dict[tuple[str, str], dict[tuple[int, int], tuple[int, ...]]] = {}
    for node in walk.nodes:
        for x in node.inputs:
            if x._node is not None:
                a, b = group_of(x._node), group_of(node)
                if a != b:
                    crossing.setdefault((a, b), {})[(x._node.seq, x._index)] = x.shape
    labelled: set[str] = set()
    for (a, b), values in crossing.items():
        attrs = {}
        if a in step_of.values() and b in step_of.values() and a.rpartition("/")[0] == b.rpartition("/")[0]:
            attrs.update(color=RECUR_COLOR, penwidth="1.4")
            if a.rpartition("/")[0] not in labelled:  # the state's shapes, once per row
                labelled.add(a.rpartition("/")[0])
                shapes = Counter(values.values())  # h, or h and c
                attrs["label"] = " + ".join(
                    _fmt_shape(s) if m == 1 else f"{m} × {_fmt_shape(s)}" for s, m in shapes.items()
                )
        if scale is not None:
            attrs["color"] = _edge_color(scale, groups[a][-1].grad_norm)
        pic.edge(gid[a], gid[b], **attrs)

    for lf in walk.leaves:
        if lf.kind == "const":
            continue
        users = list(dict.fromkeys(group_of(n) for n in lf.consumers))
        if lf.kind == "cut":
            orig = lf.tensor._cut_from()
            if orig is None or orig._node is None or orig._node.seq not in walk.present:
                continue
            src = group_of(orig._node)
            for u in users:
                if (gid[src], gid[u]) not in pic.linked:  # h and c cut together: one dashed edge
                    pic.edge(
                        gid[src],
                        gid[u],
                        style="dashed",
                        color=CUT_COLOR,
                        fontcolor=CUT_COLOR,
                        label="cut",
                        arrowhead="tee",
                    )
            continue
        pic.node(_common_scope(where(u) for u in users), lf.id, **_leaf_attrs(lf, walk, scale, False))
        for u in users:
            attrs = {}
            if scale is not None:
                attrs["color"] = _edge_color(scale, _leaf_grad_norm(lf.tensor))
            pic.edge(lf.id, gid[u], **attrs)
    return pic


# ---------------------------------------------------------------------------------------------
# 8. Numbers behind the colours: ‖δh_t‖ per step
# ---------------------------------------------------------------------------------------------
def step_grad_norms(roots: Tensor | Iterable[Tensor]) -> dict[str, np.ndarray]:
    """‖δ‖ of the last op of every step scope, per family of steps: {"l0": array over t, ...}.

    In the recurrent layers the last op of step t makes the state h_t, so this is
    ‖∂L/∂h_t‖ (the total derivative, through every later step), the curve that shows
    vanishing and exploding gradients. Needs ``backward`` inside ``mg.record_grad_norms()``.
    Families are keyed by the scope holding the steps ("" when the steps are top level).
    """
    walk = _walk(_flatten(roots))
    families = _step_families(walk)
    if not families:
        raise ValueError(
            "step_grad_norms: no step scopes (t=…) in this graph; build the unroll inside mg.scope('t=1') …"
        )
    result = {}
    for parent, steps in families.items():
        norms = [nodes[-1].grad_norm for nodes in steps.values()]
        if all(v is None for v in norms):
            raise ValueError(
                "step_grad_norms: no gradient norms recorded; run `with mg.record_grad_norms(): loss.backward()` first"
            )
        result[parent] = np.array([np.nan if v is None else v for v in norms])
    return result
