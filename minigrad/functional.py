"""Composite ops: built from the primitives in ops.py, so their gradients come for free."""

from __future__ import annotations

from typing import Any

import numpy as np

from .ops import _lift, getitem, log_softmax, mean, softmax
from .tensor import Tensor

__all__ = ["softmax", "log_softmax", "cross_entropy", "mse_loss", "one_hot"]


def cross_entropy(logits: Tensor, targets: Any) -> Tensor:
    """Mean negative log-likelihood of integer class ``targets``:

        L = −(1/N) Σ_n log softmax(z_n)[y_n]

    ``logits`` is (N, C) or (C,) for a single example; ``targets`` (N,) or a scalar.
    """
    logits = _lift(logits)
    y = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if y.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class indices, got dtype {y.dtype}")
    if logits.ndim == 1:
        logits, y = logits.reshape(1, -1), y.reshape(1)
    if logits.ndim != 2 or y.shape != (logits.shape[0],):
        raise ValueError(
            f"cross_entropy: expected logits (N, C) and targets (N,), got logits {logits.shape} and targets {y.shape}"
        )
    n, c = logits.shape
    if y.size and (y.min() < 0 or y.max() >= c):
        raise IndexError(f"cross_entropy: targets must lie in [0, {c}), got range [{y.min()}, {y.max()}]")
    picked = getitem(log_softmax(logits, axis=-1), (np.arange(n), y))
    return -mean(picked)


def mse_loss(pred: Tensor, target: Any) -> Tensor:
    """Mean squared error: L = (1/N) Σ (pred − target)²; the shapes must match."""
    pred, target = _lift(pred), _lift(target, pred)
    if pred.shape != target.shape:
        raise ValueError(f"mse_loss: pred has shape {pred.shape} but target has shape {target.shape}")
    d = pred - target
    return mean(d * d)


def one_hot(indices: Any, num_classes: int, dtype: Any = np.float64) -> Tensor:
    """A constant (…, num_classes) tensor with ones at ``indices``."""
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be a positive integer, got {num_classes!r}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):  # a negative index would wrap around silently
        raise IndexError(f"one_hot: indices must lie in [0, {num_classes}), got range [{idx.min()}, {idx.max()}]")
    return Tensor(np.eye(num_classes, dtype=dtype)[idx])
