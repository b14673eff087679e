"""``gc_paused``: no cyclic-garbage-collector passes while a long graph is built or walked.

Graph objects (nodes, tensors, VJP closures) form no reference cycles, so reference counting
alone frees them. But a long unroll makes tens of thousands of them, and every collection the
collector starts meanwhile walks them all again, together with everything else alive in the
process. ``backward`` and the recurrent layers' loop over time run under this context manager.
What it saves is measured by ``benchmarks/bench_rnn.py`` at T = 1000 (see benchmarks/README.md);
what it costs: cycles made by user code inside the block wait until the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (it is restored as it was)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
