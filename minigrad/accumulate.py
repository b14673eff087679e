"""Summing the gradients that reach one value, without a new array for every addend.

A value used by many ops gets one δ from each: W_hhᵀ, shared by all T steps of a recurrent
layer, receives T gradients of its full size. ``backward`` sums them as they arrive. The first
addend may be shared with other nodes (``add`` passes the same δ to both of its inputs), so it
is never written into; the sum made for the second one is a new array that only this walk
holds, and every later addend goes into it in place.

What it saves: at (B, H) = (32, 512) an LSTM step's W_hhᵀ gradient is 8 MiB; a new array per
addend would allocate (and page-fault) 8 MiB per time step and briefly hold two of them.
What it costs: one set lookup per addend after the first.
"""

from __future__ import annotations

import numpy as np

__all__ = ["add"]


def add(acc: np.ndarray, g: np.ndarray, ours: set, key: tuple[int, int]) -> np.ndarray:
    """acc + g, written into acc when acc is a sum this walk made (``key`` in ``ours``)."""
    if key in ours:
        acc += g
        return acc
    ours.add(key)
    total = acc + g  # a new array, ours from now on
    return total if total.ndim else np.asarray(total)  # 0-d + 0-d gives a numpy scalar: keep an array
