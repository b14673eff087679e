"""``level="step"``: one box per time step and the states flowing between them, for long unrolls.

Each step scope (``t=…``) becomes one box; the ops of a scope outside the steps become one box
per phase (before, between or after its steps), unscoped ops (usually the loss) one box each.
Step t of every layer and direction stands in column t (see picture.py): time runs left to
right, stacked layers line up, a reverse direction's state arrows point back in time. An edge
between two steps of a family is the carried state, labelled with its shapes once per family.
Parameters are drawn once with an edge into every step that uses them; a detach is one dashed
edge.

Long unrolls are elided: a family of more than ``steps_shown`` steps is drawn as its first and
last ``steps_shown // 2`` steps with one box "… 180 steps, 17 cuts …" between them (the
detach cuts inside it counted), so a 200-step
picture stays about as wide as a 10-step one. Everything is one pass over the ops and their
inputs, with dictionary look-ups: drawing 20,000 steps takes well under the time to unroll them.
"""

from __future__ import annotations

from collections import Counter

from .picture import Picture
from .scopes import common_scope, leaf_column, op_columns, shown_path, step_families, step_times
from .style import (
    CUT_EDGE,
    ELIDED_BOX,
    OP_BOX,
    RECUR_EDGE,
    STEP_BOX,
    GradScale,
    esc,
    fmt_norm,
    fmt_shape,
    label,
    leaf_attrs,
    norm_line,
)
from .tape_model import Op, Tape, op_inputs

__all__ = ["draw_steps", "DEFAULT_STEPS_SHOWN"]

DEFAULT_STEPS_SHOWN = 8  # columns of steps in a picture before the middle is elided


def draw_steps(tape: Tape, show_grads: bool, steps_shown: int | None = DEFAULT_STEPS_SHOWN) -> Picture:
    """One box per time step (the middle of long families elided into one box); the ops outside
    the steps as boxes per scope and phase, and unscoped ops (usually the loss) one by one.
    With ``show_grads`` the colour scale is fitted to the norms of the boxes drawn."""
    pic = Picture()
    families = step_families(tape.ops)
    times = step_times(families)
    n_times = max(times.values(), default=0)
    keep = n_times if steps_shown is None or n_times <= steps_shown else max(1, steps_shown // 2)
    elided = keep < n_times  # times keep+1 … n_times-keep are drawn as one box per family

    def column_of_time(t: int) -> int:  # 1 … keep, the elision column, then the last steps
        if not elided or t <= keep:
            return t
        return keep + 1 if t <= n_times - keep else t - (n_times - 2 * keep) + 1

    step_group: dict[str, str] = {}  # step scope -> its group: itself, or its family's elision box
    for step, t in times.items():
        parent = step.rpartition("/")[0]
        step_group[step] = f"{parent}/(elided)" if elided and keep < t <= n_times - keep else step
    step_of = {op.seq: step_group[step] for step, ops in _steps(families) for op in ops}
    op_column = op_columns(tape.ops, families, times)
    pic.bands = {parent: i for i, parent in enumerate(families)}  # l0, l0_reverse, l1, …: top to bottom
    last_column = column_of_time(n_times) + 1
    span = {
        p: (min(ops[0].seq for ops in st.values()), max(ops[-1].seq for ops in st.values()))
        for p, st in families.items()
    }

    def group_of(op: Op) -> str:
        g = step_of.get(op.seq)
        if g is not None:
            return g
        if not op.scope:
            return f"%{op.seq}"  # an unscoped op: drawn on its own
        if op.scope in span:  # ops of a scope that also holds steps: before or after them
            lo, hi = span[op.scope]
            return op.scope + ("/(before)" if op.seq < lo else "/(after)" if op.seq > hi else "/(between)")
        return op.scope

    steps = set(step_group.values())  # the step boxes (and elision boxes)
    groups: dict[str, list[Op]] = {}
    group_column: dict[str, int] = {}
    for op in tape.ops:
        g = group_of(op)
        groups.setdefault(g, []).append(op)
        c = op_column.get(op.seq)
        if g in steps:
            continue
        if c is not None:  # a phase box: the column of its first op (0 before, last after)
            group_column.setdefault(g, 0 if c == 0 else last_column if c > n_times else column_of_time(c))
    for step, t in times.items():
        g = step_group[step]
        group_column[g] = column_of_time(t)
    gid = {g: f"g{i}" for i, g in enumerate(groups)}
    elided_times: dict[str, list[int]] = {}  # elision box -> the times it stands for
    elided_norms: dict[str, list[float | None]] = {}  # elision box -> ‖δh_t‖ of those steps
    for step, ops in _steps(families):
        if step_group[step] != step:
            elided_times.setdefault(step_group[step], []).append(times[step])
            elided_norms.setdefault(step_group[step], []).append(ops[-1].grad_norm)

    cut_steps: dict[str, set[str]] = {}  # elision box -> the steps in it that read a detached state
    if elided:
        step_at = {op.seq: step for step, ops in _steps(families) for op in ops}
        for lf in tape.leaves:
            if lf.kind == "cut" and lf.consumers and lf.consumers[0].seq in step_at:
                step = step_at[lf.consumers[0].seq]
                if step_group[step] != step:  # h and c cut at one step: one cut
                    cut_steps.setdefault(step_group[step], set()).add(step)

    def where(g: str) -> str:  # the cluster a group's box sits in
        return "" if g.startswith("%") else g.rpartition("/")[0]

    scale = None
    if show_grads:  # fitted to what is drawn: each box's output, and the parameters
        drawn = [ops[-1].grad_norm for ops in groups.values()] + [v for n in elided_norms.values() for v in n]
        drawn += [lf.grad_norm for lf in tape.leaves if lf.kind in ("param", "leaf")]
        scale = GradScale(drawn)

    for g, ops in groups.items():
        if g in elided_times:
            n_cuts = len(cut_steps.get(g, ()))
            attrs = _elided_attrs(sorted(elided_times[g]), elided_norms[g], len(ops), scale, n_cuts)
        else:
            attrs = _group_attrs(g, ops, scale, times)
        pic.node(where(g), gid[g], group_column.get(g), **attrs)

    # values crossing from one group into another; between two steps of a family: the carried state
    crossing: dict[tuple[str, str], dict[tuple[int, int], tuple[int, ...]]] = {}
    for op in tape.ops:
        b = group_of(op)
        for src, index in op_inputs(op):
            a = group_of(src)
            if a != b:
                crossing.setdefault((a, b), {})[(src.seq, index)] = src.output_shape(index)
    labelled: set[str] = set()
    for (a, b), values in crossing.items():
        attrs = {}
        family = a.rpartition("/")[0]
        if a in steps and b in steps and family == b.rpartition("/")[0]:
            attrs.update(RECUR_EDGE)
            if family not in labelled:  # the state's shapes, once per family
                labelled.add(family)
                shapes = Counter(values.values())  # h, or h and c
                attrs["label"] = " + ".join(
                    fmt_shape(s) if m == 1 else f"{m} × {fmt_shape(s)}" for s, m in shapes.items()
                )
        if scale is not None:
            attrs["color"] = scale.edge_color(groups[a][-1].grad_norm)
        pic.edge(gid[a], gid[b], **attrs)

    for lf in tape.leaves:
        if lf.kind == "const":
            continue
        users = list(dict.fromkeys(group_of(op) for op in lf.consumers))
        if lf.kind == "cut":
            if not isinstance(lf.cut_from, Op):  # cut from a leaf, from outside, or freed: not drawn
                continue
            src = group_of(lf.cut_from)
            for u in users:
                if src != u and (gid[src], gid[u]) not in pic.linked:  # h and c cut together: one edge
                    pic.edge(gid[src], gid[u], **CUT_EDGE, label="cut")
            continue
        col = leaf_column(group_column[u] for u in users if u in group_column)
        pic.node(common_scope(where(u) for u in users), lf.id, col, **leaf_attrs(lf, scale, False))
        for u in users:
            attrs = {}
            if scale is not None:
                attrs["color"] = scale.edge_color(lf.grad_norm)
            pic.edge(lf.id, gid[u], **attrs)
    pic.scale = scale
    return pic


def _steps(families: dict[str, dict[str, list[Op]]]):
    for steps in families.values():
        yield from steps.items()


def _group_attrs(g: str, ops: list[Op], scale: GradScale | None, times: dict[str, int]) -> dict[str, str]:
    """The box of one group: a step, a phase of a scope ("l0: ops before the steps"), or one op."""
    out = ops[-1]  # the group's last op: for a step, the one that makes its state h_t
    attrs = dict(STEP_BOX)
    if g.startswith("%"):
        name = out.output_name(0)
        title, lines = (esc(name) if name else esc(out.op)), [fmt_shape(out.shape)]
        attrs.update(OP_BOX)
    else:
        parent, _, last = g.rpartition("/")
        if g in times:
            shown = shown_path(g, times[g])
            title = esc(shown.rpartition("/")[2])
            attrs["id"] = esc(f"step {shown}")
        elif last.startswith("("):
            title = f"{esc(parent.rpartition('/')[2])}: ops {last[1:-1]} the steps"
        else:
            title = esc(last)
        lines = [f"{len(ops)} op{'s' if len(ops) != 1 else ''}"]
        kinds = Counter(op.op for op in ops)
        attrs["tooltip"] = esc(", ".join(f"{kind} × {m}" if m > 1 else kind for kind, m in kinds.items()))
    if scale is not None:
        lines.append(norm_line("‖δ out‖", out.grad_norm))
        attrs["fillcolor"] = scale.color(out.grad_norm)
    if any(op.is_root for op in ops):
        attrs.update(peripheries="2")
    attrs["label"] = label(title, *lines)
    return attrs


def _elided_attrs(
    times: list[int], norms: list[float | None], n_ops: int, scale: GradScale | None, n_cuts: int = 0
) -> dict[str, str]:
    """The box standing for the middle of a long family: "… 180 steps, 17 cuts …" (the detach
    cuts inside it, which no edge shows), t=6 … t=185, and the range of ‖δh_t‖ over them;
    filled with the colour of their middle step."""
    attrs = dict(ELIDED_BOX)
    lines = [f"t={times[0]} … t={times[-1]}"]
    if scale is not None:
        seen = [v for v in norms if v is not None and v > 0]
        if seen:
            lines.append(f"‖δ out‖ {fmt_norm(min(seen))} … {fmt_norm(max(seen))}")
        attrs["fillcolor"] = scale.color(norms[len(norms) // 2])
    cuts = f", {n_cuts} cut{'s' if n_cuts != 1 else ''}" if n_cuts else ""
    attrs["label"] = label(f"… {len(times)} steps{cuts} …", *lines)
    attrs["tooltip"] = esc(f"{len(times)} steps not drawn (steps_shown); {n_ops} ops")
    return attrs
