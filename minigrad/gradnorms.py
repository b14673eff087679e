"""Gradient norms on the tape, for pictures that colour the graph by ‖δ‖.

    with mg.record_grad_norms():
        loss.backward()              # every node visited gets node.grad_norm = ‖∂L/∂output‖

Inside the block ``backward`` calls ``record`` once per node: one dot product per output
gradient. Outside it costs one flag read per node.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["record_grad_norms"]

recording = False  # read by backward on every node


@contextmanager
def record_grad_norms() -> Iterator[None]:
    """During ``backward`` inside this block, store ‖δoutput‖ on every node (``node.grad_norm``)."""
    global recording
    previous, recording = recording, True
    try:
        yield
    finally:
        recording = previous


def record(node: Any, grads_out: list) -> None:
    """node.grad_norm = ‖(δ of every output)‖, the outputs taken together."""
    node.grad_norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads_out if g is not None)))
