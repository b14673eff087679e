"""``level="op"``: one box per op, every (visible) leaf, the states carried between steps.

What the picture shows:

* every op as a rounded box: the tensor's name when it has one, else the op; below it the
  output shape and ``%seq``, the op's line in ``mg.format_tape``;
* every parameter ONCE (yellow), in the scope that holds all its users, with an edge to every
  op that uses it: the weights shared across time steps;
* a ``detach`` as a dashed red edge labelled "cut" from the value to its detached copy;
* with ``collapse=True`` one representative step of each run of identical steps, its edges
  counted "× m", a state edge folded back into it as "to next step".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from .picture import Picture
from .scopes import (
    common_scope,
    fold_identical_steps,
    leaf_column,
    op_columns,
    shown_path,
    step_families,
    step_of_ops,
    step_times,
)
from .style import (
    CUT_COLOR,
    CUT_EDGE,
    OP_BOX,
    RECUR_COLOR,
    RECUR_EDGE,
    GradScale,
    compact_label,
    esc,
    fmt_shape,
    fmt_values,
    label,
    leaf_attrs,
    norm_line,
)
from .tape_model import Leaf, Op, Tape, op_inputs, value_name

__all__ = ["draw_ops"]


def draw_ops(
    tape: Tape,
    scale: GradScale | None,
    show_data: bool,
    show_constants: bool | str,
    collapse: bool,
    compact: bool = False,
) -> Picture:
    """Every op (with collapse, only the representatives of folded steps), every visible leaf,
    the edges between them, and the invisible edges that keep the steps' feeders above them."""
    pic = Picture()
    families = step_families(tape.ops)
    step_of = step_of_ops(families)
    times = step_times(families)
    for step, t in times.items():
        pic.shown[step] = shown_path(step, t)
    column = op_columns(tape.ops, families, times)
    pic.bands = {parent: i for i, parent in enumerate(families)}  # l0, l0_reverse, l1, …: top to bottom
    rep_of, runs = fold_identical_steps(families) if collapse else ({}, {})
    folded = set(rep_of)  # ops drawn by their representative
    in_run = folded | {op.seq for op in rep_of.values()}  # ops of folded steps and their representatives
    for first, (last, count) in runs.items():
        pic.titles[first] = _folded_title(pic.shown.get(first, first), pic.shown.get(last, last), count)

    def rep(op: Op) -> Op:
        return rep_of.get(op.seq, op)

    for op in tape.ops:  # op nodes (representatives only, when collapsed)
        if op.seq not in folded:
            pic.node(op.scope, op.id, column.get(op.seq), **_op_attrs(op, scale, show_data, compact))
            pic.place[op.id] = (op.seq, 1)
    _op_edges(pic, tape, rep, step_of, in_run, scale)
    folded_cuts = _leaves(
        pic,
        tape,
        rep,
        folded,
        scale,
        show_data,
        show_constants,
        column,
        step_of,
        max(times.values(), default=None),
        compact,
    )
    for path in runs:  # each run says how many cuts ITS folded steps hold (not every layer's)
        n = folded_cuts[path.rpartition("/")[0]]
        if n:
            pic.titles[path] += (
                f'<br/><font point-size="9" color="{CUT_COLOR}">+ {n} detach cuts in the folded steps</font>'
            )

    return pic


def _op_attrs(op: Op, scale: GradScale | None, show_data: bool, compact: bool = False) -> dict[str, str]:
    name = op.output_name(0) if op.n_out == 1 else None  # several outputs: names go on the edges
    if name is None and op.op == "transpose" and len(op.shape) == 2:
        transposed = value_name(*op.inputs[0])
        if transposed:
            name = transposed + "ᵀ"  # W_hhᵀ, transposed once for all steps
    title = esc(name) if name else esc(op.op)
    sub = f"{esc(op.op)} · " if name else ""
    lines = [f"{sub}{fmt_shape(op.shape)} · %{op.seq}"]
    if op.n_out > 1:
        lines[0] = f"{esc(op.op)} → {op.n_out} outputs · %{op.seq}"
    if show_data and op.value is not None:
        vals = fmt_values(op.value)
        if vals:
            lines.append("= " + esc(vals))
    attrs = dict(OP_BOX)
    if scale is not None:
        lines.append(norm_line("‖δ‖", op.grad_norm))
        attrs["fillcolor"] = scale.color(op.grad_norm)
    if compact:  # the name (or op) and the shape on one line; %seq stays in the tooltip
        lines[0] = f"→ {op.n_out} outputs" if op.n_out > 1 else fmt_shape(op.shape)
        attrs["label"] = compact_label(title, *lines)
    else:
        attrs["label"] = label(title, *lines)
    attrs["tooltip"] = esc(f"%{op.seq} = {op.op}  shape {op.shape}  scope {op.scope or '-'}")
    if op.is_root:
        attrs.update(peripheries="2", penwidth="1.5")
    return attrs


def _folded_title(first: str, last: str, count: int) -> str:
    lo, hi = first.rpartition("/")[2], last.rpartition("/")[2]
    return (
        f"<b>{esc(lo)} … {esc(hi)}</b>"
        f'<br/><font point-size="9">one step drawn for {count} identical steps (× {count})</font>'
    )


def _op_edges(
    pic: Picture,
    tape: Tape,
    rep: Callable[[Op], Op],
    step_of: dict[int, str],
    in_run: set[int],
    scale: GradScale | None,
) -> None:
    """Edges between ops.

    A state carried from one step into the next runs from column t to column t + 1 (see
    picture.py: the columns, not these edges, put the steps in time order).
    Folded edges are counted and drawn once, "× m"; a state edge between two folded steps
    becomes a "to next step" edge back into the representative.
    """
    count: Counter = Counter()
    first: dict[tuple, tuple[Op, Op, set[int]]] = {}
    for op in tape.ops:
        for producer, index in op_inputs(op):
            src, dst = rep(producer), rep(op)
            a, b = step_of.get(producer.seq), step_of.get(op.seq)
            recur = a is not None and b is not None and a != b and a.rpartition("/")[0] == b.rpartition("/")[0]
            folded = src.seq in in_run or dst.seq in in_run
            key = (src.seq, dst.seq, None if folded else index, recur)
            count[key] += 1
            first.setdefault(key, (src, dst, set()))[2].add(index)
    for key, m in count.items():
        src, dst, indices = first[key]
        recur = key[3]
        labels = []
        if src.n_out > 1 and len(indices) == 1:  # which output: its name (r, z of a GRU) or its index
            i = next(iter(indices))
            labels.append(src.output_name(i) or f"[{i}]")
        inside_run = src.seq in in_run and dst.seq in in_run and not recur
        if m > 1 and not inside_run:  # inside a folded step every edge is there × T: no need to say so
            labels.append(f"× {m}")
        attrs: dict[str, str] = {}
        if recur:  # a state flowing from one step into the next
            attrs.update(RECUR_EDGE)
            if src.scope == dst.scope:  # folded back onto the representative
                attrs["fontcolor"] = RECUR_COLOR
                labels.insert(0, "to next step")
        if scale is not None:
            attrs["color"] = scale.edge_color(src.grad_norm)
        if labels:
            attrs["xlabel"] = " ".join(labels)  # xlabel: placed after layout, adds no ranks
        pic.edge(src.id, dst.id, **attrs)


def _leaves(
    pic: Picture,
    tape: Tape,
    rep: Callable[[Op], Op],
    folded: set[int],
    scale: GradScale | None,
    show_data: bool,
    show_constants: bool | str,
    column: dict[int, int],
    step_of: dict[int, str],
    n_times: int | None,
    compact: bool = False,
) -> Counter:
    """Leaves: each drawn once, in the scope that holds all its users, with an edge to each
    user. Returns, per family of steps (its parent scope), how many detach cuts were left out
    because they belong to its folded steps."""
    folded_cuts: Counter = Counter()
    step_paths = set(step_of.values())
    for lf in tape.leaves:
        if lf.kind == "const" and (show_constants is False or (show_constants == "named" and not lf.name)):
            continue
        if lf.kind in ("const", "cut") and lf.consumers and all(op.seq in folded for op in lf.consumers):
            if lf.kind == "cut":  # belongs to a folded step: not drawn, counted for its family
                folded_cuts[step_of[lf.consumers[0].seq].rpartition("/")[0]] += 1
            continue
        users = [rep(op) for op in lf.consumers]
        cols = {column[op.seq] for op in users if op.seq in column}
        col = leaf_column(cols, n_times)
        path = common_scope(op.scope for op in users)
        if n_times and len(cols) == 1 and 1 <= col <= n_times and path in step_paths:
            # a step's own input (x_t, target_t, h_0, a detached state): in the step's box, in a
            # column of its own just left of its users, so its edge runs straight across
            col -= 0.25
        pic.node(path, lf.id, col, **leaf_attrs(lf, scale, show_data, compact))
        # right above its first user in its column (or beside it, in its own column)
        pic.place[lf.id] = (min(op.seq for op in users), 0, len(pic.place))
        for seq, m in Counter(op.seq for op in users).items():
            attrs = {"xlabel": f"× {m}"} if m > 1 else {}
            if scale is not None and lf.kind in ("param", "leaf"):
                attrs["color"] = scale.edge_color(lf.grad_norm)
            pic.edge(lf.id, f"n{seq}", **attrs)
        if lf.kind == "cut":
            _cut_edge(pic, lf, rep)
    return folded_cuts


def _cut_edge(pic: Picture, lf: Leaf, rep: Callable[[Op], Op]) -> None:
    """Dashed edge from the value a detach cut from, to the detached copy."""
    origin = lf.cut_from
    attrs = dict(CUT_EDGE, xlabel="cut", penwidth="1.3")  # from step t into step t + 1, like a carried state
    if origin is None:
        src = f"{lf.id}_gone"
        pic.node("", src, label=label("(freed)", "value before the cut", bold=False), shape="plaintext")
    elif isinstance(origin, Leaf):
        src = origin.id
    elif isinstance(origin, Op):
        src = rep(origin).id
    else:  # an op outside this graph
        src = f"{lf.id}_from"
        text = label(esc(origin.op), f"%{origin.seq} · outside this graph", bold=False)
        pic.node("", src, label=text, shape="box", style="dotted,rounded", color=CUT_COLOR)
    pic.edge(src, lf.id, **attrs)
