"""One global random generator, as ``torch.manual_seed`` gives: the room for reproducibility.

    mg.manual_seed(0)                      # every later draw that was given no rng= is reproducible
    g = mg.seeding.default_generator()     # the numpy Generator they draw from

``np.random.seed`` does not reach it (numpy's legacy global state is a different generator):
seed minigrad with ``mg.manual_seed``. Code that takes ``rng=`` (modules, ``mg.randn``) uses
the generator it is given and leaves this one alone.
"""

from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "default_generator"]

_generator = np.random.default_rng()  # fresh entropy until someone seeds it


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator (like ``torch.manual_seed``) and return it."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise TypeError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator() -> np.random.Generator:
    """The global generator that draws given no ``rng=`` use (reseeded by ``manual_seed``)."""
    return _generator
