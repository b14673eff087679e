"""Data guards: where library code decides its structure from the *values* of an array.

Most ops do the same thing whatever numbers flow through them, which is what lets ``mg.compile``
record a step twice and replay it. A few decide something in Python from the data itself:

* ``cross_entropy(..., ignore_index=k)`` builds the mask of ignored rows, the count of counted
  rows and an ``if`` from the targets' values, and raises IndexError on a target out of range;
* ``max(x, dim=d)`` / ``min`` / ``argmax`` / ``argmin`` compute integer indices from forward
  values: fine as the picked positions of a gradient, wrong as data baked into a replay.

They say so here, so that the compiler can keep its promise (a replay equals the eager call, or
the step runs eagerly, or it is refused) without knowing each op:

    if dataguards.recording is not None:                  # one flag read when nothing is traced
        dataguards.depends_on(y, facts, "cross_entropy's targets")   # facts(y): what the code decided
        dataguards.replaced(safe, y, -100, 0)             # safe = y with its -100s set to 0: recomputable
    if dataguards.recording is not None:
        dataguards.derived(idx, "max(dim=)'s indices")    # made from forward values: not data to bake

While ``mg.compile`` traces a call, ``recording`` is a ``Recording``; otherwise it is None and
nothing else runs. The tracer maps each guarded array to the step's argument it is, and the replay
evaluates every ``facts`` on the fresh argument before it runs: any difference (ignored positions
moved, a target out of range) runs that call eagerly, which gives eager's loss and eager's errors.
An array ``replaced`` from an argument is recomputed from the fresh argument by the replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Guard", "Recording", "recording", "depends_on", "derived", "replaced", "same"]


@dataclass
class Guard:
    """``facts(array)`` was ``value`` when the call was traced; ``what`` names the array for messages."""

    array: np.ndarray
    facts: Callable[[np.ndarray], Any]
    value: Any
    what: str

    def holds(self, array: np.ndarray) -> bool:
        """Do the facts of a fresh ``array`` equal the traced ones (one comparison per fact)?"""
        return same(self.facts(array), self.value)


@dataclass
class Recording:
    """What one traced call declared: its guards, and the arrays made from forward values."""

    guards: list[Guard] = field(default_factory=list)
    derived: list[tuple[np.ndarray, str]] = field(default_factory=list)
    replaced: list[tuple[np.ndarray, np.ndarray, Any, Any]] = field(default_factory=list)  # (out, source, value, by)

    def derived_from(self, a: np.ndarray) -> str | None:
        """The name of the derived array ``a`` is (or shares memory with), newest first, or None."""
        for d, what in reversed(self.derived):
            if a is d or np.may_share_memory(a, d):
                return what
        return None


recording: Recording | None = None  # set by mg.compile's tracer for the length of one traced call


def depends_on(array: np.ndarray, facts: Callable[[np.ndarray], Any], what: str) -> None:
    """Declare that the code's structure is ``facts(array)`` (arrays, bools, numbers, tuples of them)."""
    if recording is not None:
        recording.guards.append(Guard(array, facts, facts(array), what))


def derived(array: np.ndarray, what: str) -> None:
    """Declare ``array`` computed from forward values (indices of an extreme): a replay may not bake it."""
    if recording is not None:
        recording.derived.append((array, what))


def replaced(out: np.ndarray, source: np.ndarray, value: Any, by: Any) -> None:
    """Declare ``out = np.where(source == value, by, source)`` (cross_entropy's safe index)."""
    if recording is not None:
        recording.replaced.append((out, source, value, by))


def same(a: Any, b: Any) -> bool:
    """Equal facts: arrays by shape and content, tuples element by element, the rest by ==."""
    if type(a) is tuple:
        return type(b) is tuple and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool((np.asarray(a) == b).all())
    return bool(a == b)
