"""Scopes and time steps: the scope paths ops were made in, read as clusters and as runs of steps.

A scope path such as ``"l0/t=3"`` files an op under nested boxes (layer ``l0``, step ``t=3``).
A component ``t=…`` marks one time step; the steps under one parent scope form a *family*
(``"l0"``: ``t=1 … t=T``), drawn side by side in time order. For ``collapse=True``, a run of
structurally identical steps in a family folds onto its first step, the representative.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from .tape_model import Op

__all__ = ["is_step_scope", "common_scope", "step_families", "step_of_ops", "fold_identical_steps"]

_STEP_RE = re.compile(r"^t\s*=")


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
    for op in ops:
        parts = op.scope.split("/") if op.scope else []
        for i in range(len(parts) - 1, -1, -1):  # innermost step component
            if is_step_scope(parts[i]):
                parent, step = "/".join(parts[:i]), "/".join(parts[: i + 1])
                families.setdefault(parent, {}).setdefault(step, []).append(op)
                break
    return families


def step_of_ops(families: dict[str, dict[str, list[Op]]]) -> dict[int, str]:
    """seq of every op inside a step -> that step's scope."""
    return {op.seq: step for steps in families.values() for step, ops in steps.items() for op in ops}


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
