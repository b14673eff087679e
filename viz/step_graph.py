"""``level="step"``: one box per time step and the states flowing between them, for long unrolls.

Each step scope (``t=…``) becomes one box; the ops of a scope outside the steps become one box
per phase (before, between or after its steps), unscoped ops (usually the loss) one box each.
The steps of one family stand side by side on one rank in time order; an edge between two
steps of a family is the carried state, labelled with its shapes once per row. Parameters are
drawn once with an edge into every step that uses them; a detach is one dashed edge.
"""

from __future__ import annotations

from collections import Counter

from .picture import Picture
from .scopes import common_scope, step_families, step_of_ops
from .style import (
    CUT_EDGE,
    OP_BOX,
    RECUR_EDGE,
    STEP_BOX,
    GradScale,
    esc,
    fmt_shape,
    label,
    leaf_attrs,
    norm_line,
)
from .tape_model import Op, Tape, op_inputs

__all__ = ["draw_steps"]


def draw_steps(tape: Tape, scale: GradScale | None) -> Picture:
    """One box per time step; the ops outside the steps as boxes per scope and phase (before or
    after the steps), and unscoped ops (usually the loss) one by one."""
    pic = Picture()
    families = step_families(tape.ops)
    step_of = step_of_ops(families)
    span = {
        p: (min(ops[0].seq for ops in st.values()), max(ops[-1].seq for ops in st.values()))
        for p, st in families.items()
    }

    def group_of(op: Op) -> str:
        if op.seq in step_of:
            return step_of[op.seq]
        if not op.scope:
            return f"%{op.seq}"  # an unscoped op: drawn on its own
        if op.scope in span:  # ops of a scope that also holds steps: before or after them
            lo, hi = span[op.scope]
            return op.scope + ("/(before)" if op.seq < lo else "/(after)" if op.seq > hi else "/(between)")
        return op.scope

    groups: dict[str, list[Op]] = {}
    for op in tape.ops:
        groups.setdefault(group_of(op), []).append(op)
    gid = {g: f"g{i}" for i, g in enumerate(groups)}

    def where(g: str) -> str:  # the cluster a group's box sits in
        return "" if g.startswith("%") else g.rpartition("/")[0]

    for g, ops in groups.items():
        pic.node(where(g), gid[g], **_group_attrs(g, ops, scale))

    # the steps of one scope side by side on one rank, in time order (flat edges keep the order)
    for steps in families.values():
        if len(steps) > 1:
            pic.rows.append((next(iter(steps)).rpartition("/")[0], [gid[s] for s in steps]))

    # values crossing from one group into another; between two steps: the carried state
    crossing: dict[tuple[str, str], dict[tuple[int, int], tuple[int, ...]]] = {}
    for op in tape.ops:
        for src, index in op_inputs(op):
            a, b = group_of(src), group_of(op)
            if a != b:
                crossing.setdefault((a, b), {})[(src.seq, index)] = src.output_shape(index)
    labelled: set[str] = set()
    for (a, b), values in crossing.items():
        attrs = {}
        if a in step_of.values() and b in step_of.values() and a.rpartition("/")[0] == b.rpartition("/")[0]:
            attrs.update(RECUR_EDGE)
            if a.rpartition("/")[0] not in labelled:  # the state's shapes, once per row
                labelled.add(a.rpartition("/")[0])
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
                if (gid[src], gid[u]) not in pic.linked:  # h and c cut together: one dashed edge
                    pic.edge(gid[src], gid[u], **CUT_EDGE, label="cut")
            continue
        pic.node(common_scope(where(u) for u in users), lf.id, **leaf_attrs(lf, scale, False))
        for u in users:
            attrs = {}
            if scale is not None:
                attrs["color"] = scale.edge_color(lf.grad_norm)
            pic.edge(lf.id, gid[u], **attrs)
    return pic


def _group_attrs(g: str, ops: list[Op], scale: GradScale | None) -> dict[str, str]:
    """The box of one group: a step, a phase of a scope ("l0: ops before the steps"), or one op."""
    out = ops[-1]  # the group's last op: for a step, the one that makes its state h_t
    attrs = dict(STEP_BOX)
    if g.startswith("%"):
        name = out.output_name(0)
        title, lines = (esc(name) if name else esc(out.op)), [f"{fmt_shape(out.shape)} · %{out.seq}"]
        attrs.update(OP_BOX)
    else:
        parent, _, last = g.rpartition("/")
        title = f"{esc(parent.rpartition('/')[2])}: ops {last[1:-1]} the steps" if last.startswith("(") else esc(last)
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
