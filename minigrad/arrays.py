"""Turning user data into the arrays tensors hold: the dtype rules, and clear errors.

float64 is the default (exact comparisons against hand-written references): Python floats and
lists of them become float64; numpy arrays keep their dtype (float32 stays float32).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DEFAULT_DTYPE", "as_array"]

DEFAULT_DTYPE = np.float64


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Turn user data into a numeric numpy array, or say clearly why not."""
    if isinstance(data, np.ndarray) and dtype is None:
        arr = data
    else:
        try:
            arr = np.asarray(data, dtype=dtype)
        except (ValueError, TypeError) as e:
            raise TypeError(
                f"cannot make a Tensor from {type(data).__name__} data: {e} "
                "(ragged nested lists and non-numeric values are not tensors)"
            ) from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(
            f"cannot make a Tensor from an array of dtype {arr.dtype} (need float, int, unsigned or bool values)"
        )
    if dtype is None and not isinstance(data, np.ndarray | np.generic) and arr.dtype.kind == "f":
        arr = arr.astype(DEFAULT_DTYPE, copy=False)  # Python floats → float64, the default
    return arr
