"""Scopes and time steps: the scope paths ops were made in, read as clusters and as runs of steps.

A scope path such as ``"l0/t=3"`` files an op under nested boxes (layer ``l0``, step ``t=3``).
A component ``t=…`` marks one time step; the steps under one parent scope form a *family*
(``"l0"``: ``t=1 … t=T``), drawn side by side in time order. For ``collapse=True``, a run of
structurally identical steps in a family folds onto its first step, the representative.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable

from .tape_model import Op

__all__ = [
    "is_step_scope",
    "common_scope",
    "step_families",
    "step_of_ops",
    "fold_identical_steps",
    "is_reverse_family",
    "step_times",
    "shown_path",
    "op_columns",
    "leaf_column",
]

_STEP_RE = re.compile(r"^t\s*=")
_STEP_NUMBER = re.compile(r"^t\s*=\s*(-?\d+)$")


def is_step_scope(component: str) -> bool:
    """Scope components such as ``t=3`` mark one time step."""
    return bool(_STEP_RE.match(component))


def common_scope(scopes: Iterable[str]) -> str:
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


def step_families(ops: list[Op]) -> dict[str, dict[str, list[Op]]]:
    """{parent scope: {step scope: its ops in tape order}} for scopes whose last part is ``t=…``.

    Ops in scopes nested inside a step (e.g. "l0/t=3/gates") belong to that step.
    """
    families: dict[str, dict[str, list[Op]]] = {}
    step_list: dict[str, list[Op] | None] = {}  # scope -> its step's op list (None: not in a step), once per scope
    for op in ops:
        found = step_list.get(op.scope, False)
        if found is False:
            found = step_list[op.scope] = _step_list(op.scope, families)
        if found is not None:
            found.append(op)
    return families


def _step_list(scope: str, families: dict[str, dict[str, list[Op]]]) -> list[Op] | None:
    """The list in ``families`` that collects the ops of ``scope``'s innermost step (made on first
    use), or None when ``scope`` is inside no step."""
    parts = scope.split("/") if scope else []
    for i in range(len(parts) - 1, -1, -1):  # innermost step component
        if is_step_scope(parts[i]):
            parent, step = "/".join(parts[:i]), "/".join(parts[: i + 1])
            return families.setdefault(parent, {}).setdefault(step, [])
    return None


def step_of_ops(families: dict[str, dict[str, list[Op]]]) -> dict[int, str]:
    """seq of every op inside a step -> that step's scope."""
    return {op.seq: step for steps in families.values() for step, ops in steps.items() for op in ops}


def is_reverse_family(parent: str) -> bool:
    """A family of steps that runs backwards in time: PyTorch's ``_reverse`` direction of a
    bidirectional layer (``models.rnn`` scopes it ``l0_reverse``; its ``t=1`` reads x_T)."""
    return parent.rpartition("/")[2].endswith("_reverse")


def step_times(families: dict[str, dict[str, list[Op]]]) -> dict[str, int]:
    """Step scope -> the time index it is drawn at (1 … T), for every family.

    A forward family's ``t=k`` is time k. A reverse family counts its steps in processing order
    (its ``t=1`` reads x_T), so its ``t=k`` is drawn at time T + 1 - k: every layer and direction
    then has step t in the same column, and the reverse direction's state arrows point back in
    time. A step component that is not ``t=<integer>`` takes its place in tape order.
    """
    times: dict[str, int] = {}
    for parent, steps in families.items():
        n = len(steps)
        numbers = [_STEP_NUMBER.match(s.rpartition("/")[2]) for s in steps]
        if all(numbers) and sorted(int(m.group(1)) for m in numbers) == list(range(1, n + 1)):
            ks = [int(m.group(1)) for m in numbers]
        else:  # not numbered 1 … n: tape order
            ks = list(range(1, n + 1))
        for step, k in zip(steps, ks):
            times[step] = n + 1 - k if is_reverse_family(parent) else k
    return times


def shown_path(step: str, time: int) -> str:
    """The scope path a step is labelled with: its time index (``l0_reverse/t=1`` of 6 steps is
    shown as ``l0_reverse/t=6``: it reads x_6)."""
    parent, _, _ = step.rpartition("/")
    return f"{parent}/t={time}" if parent else f"t={time}"


def _step_signature(ops: list[Op], step: str) -> tuple:
    """What two steps must share to fold onto each other: op by op, the op, its scope below the
    step, its shape, and which earlier op of the same step each input comes from (-1: outside)."""
    pos = {op.seq: i for i, op in enumerate(ops)}
    return tuple(
        (
            op.op,
            op.scope[len(step) :],
            op.shape,
            tuple(pos.get(src.seq, -1) if isinstance(src, Op) else -1 for src, _ in op.inputs),
        )
        for op in ops
    )


def fold_identical_steps(
    families: dict[str, dict[str, list[Op]]],
) -> tuple[dict[int, Op], dict[str, tuple[str, int]]]:
    """For each run of structurally identical sibling steps: map every op of the later steps
    onto the op in the same position of the first one (the representative).

    Returns (seq -> representative op, representative step scope -> (last step folded onto it,
    number of steps drawn as one)).
    """
    rep_of: dict[int, Op] = {}
    runs: dict[str, tuple[str, int]] = {}
    for steps in families.values():
        if len(steps) < 2:
            continue
        sigs = {step: _step_signature(ops, step) for step, ops in steps.items()}
        common, count = Counter(sigs.values()).most_common(1)[0]
        if count < 2:
            continue
        members = [s for s in steps if sigs[s] == common]
        first = members[0]
        for s in members[1:]:
            for a, b in zip(steps[s], steps[first]):
                rep_of[a.seq] = b
        runs[first] = (members[-1], count)
    return rep_of, runs


def op_columns(ops: list[Op], families: dict[str, dict[str, list[Op]]], times: dict[str, int]) -> dict[int, int]:
    """seq -> column of every op: time t for the ops of step t, 0 for what comes before the
    steps (input projections, transposed weights), T + 1 for what comes after (stacking the
    outputs, the loss). An op of a scope holding steps, made between two of them (a lazily
    projected chunk of inputs), stands in the column of the next step. {} without steps."""
    if not families:
        return {}
    last = max(times.values()) + 1
    starts = {p: [ops_[0].seq for ops_ in st.values()] for p, st in families.items()}  # tape order
    first_step = min(s[0] for s in starts.values())
    step_of = step_of_ops(families)
    column: dict[int, int] = {}
    for op in ops:
        step = step_of.get(op.seq)
        if step is not None:
            column[op.seq] = times[step]
            continue
        parent = _family_parent(op.scope, families)
        if parent is None:
            column[op.seq] = 0 if op.seq < first_step else last
            continue
        seqs = starts[parent]
        i = bisect.bisect_left(seqs, op.seq)  # how many of the family's steps were made before it
        if i == 0:
            column[op.seq] = 0
        elif i == len(seqs) and op.seq > families[parent][list(families[parent])[-1]][-1].seq:
            column[op.seq] = last
        else:
            column[op.seq] = times[list(families[parent])[min(i, len(seqs) - 1)]]
    return column


def _family_parent(scope: str, families: dict) -> str | None:
    """The deepest scope holding steps that ``scope`` is inside ("" holds top-level steps)."""
    parts = scope.split("/") if scope else []
    for i in range(len(parts), -1, -1):
        p = "/".join(parts[:i])
        if p in families:
            return p
    return None


def leaf_column(user_columns: Iterable[int], n_times: int | None = None) -> float | None:
    """A leaf stands in the column of its users when they share one, else one column before the
    first of them (a weight used by every step: column 0, before the steps).

    With ``n_times`` (the op level), a leaf used only by ops of several steps (a weight the steps
    multiply by directly, as in the worked example) stands between the middle two of those steps
    instead (column t + 0.5): its edges reach both ways and stay short."""
    cols = set(user_columns)
    if not cols:
        return None
    if len(cols) == 1:
        return cols.pop()
    lo, hi = min(cols), max(cols)
    if n_times is not None and 1 <= lo and hi <= n_times:
        return (lo + hi) // 2 + 0.5
    return max(0, lo - 1)
