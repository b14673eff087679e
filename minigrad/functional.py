"""Composite ops: built from the primitives in ops.py, so their gradients come for free."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import dataguards
from .ops import _lift, getitem, log_softmax, mean, softmax, sum
from .tensor import Tensor

__all__ = ["softmax", "log_softmax", "cross_entropy", "mse_loss", "one_hot"]


def cross_entropy(
    logits: Tensor,
    targets: Any,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Negative log-likelihood of integer class ``targets`` under softmax(logits), as torch's:

        ℓ_n = −(1 − ε) log p_n[y_n] − (ε / C) Σ_c log p_n[c],    p_n = softmax(z_n),  ε = label_smoothing
        L = Σ_n w_n ℓ_n / Σ_n w_n  ("mean"),  Σ_n w_n ℓ_n  ("sum"),  w_n ℓ_n per example  ("none")

    with w_n = 0 where y_n == ``ignore_index`` (those rows add nothing and are not counted;
    a mean over no rows is nan, as in torch), else 1.
    ``logits`` is (N, C) or (C,) for a single example; ``targets`` (N,) or a scalar.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not (isinstance(label_smoothing, int | float | np.floating) and 0.0 <= label_smoothing <= 1.0):
        raise ValueError(f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    logits = _lift(logits)
    y = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if y.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class indices, got dtype {y.dtype}")
    single = logits.ndim == 1
    if single:
        logits, y = logits.reshape(1, -1), y.reshape(1)
    if logits.ndim != 2 or y.shape != (logits.shape[0],):
        raise ValueError(
            f"cross_entropy: expected logits (N, C) and targets (N,), got logits {logits.shape} and targets {y.shape}"
        )
    n, c = logits.shape
    ignored, in_range = _target_facts(y, ignore_index, c)
    if dataguards.recording is not None:  # mg.compile: what follows is decided by y's values (dataguards.py)
        dataguards.depends_on(y, lambda t: _target_facts(t, ignore_index, c), "cross_entropy's targets")
    if not in_range:
        counted = y[~ignored]
        raise IndexError(
            f"cross_entropy: targets must lie in [0, {c}) (or equal ignore_index={ignore_index}), "
            f"got range [{counted.min()}, {counted.max()}]"
        )
    logp = log_softmax(logits, axis=-1)
    # y itself when nothing is ignored: mg.compile then sees the targets' own array and reads it fresh
    safe = np.where(ignored, 0, y) if ignored.any() else y
    if dataguards.recording is not None and safe is not y:  # a replay recomputes it from the fresh y
        dataguards.replaced(safe, y, ignore_index, 0)
    picked = getitem(logp, (np.arange(n), safe))  # log p_n[y_n] (row 0 where ignored)
    if not ignored.any() and label_smoothing == 0:
        if reduction == "mean":
            return -mean(picked)  # L = −(1/N) Σ_n log p_n[y_n]
        if reduction == "sum":
            return -sum(picked)
        return -picked[0] if single else -picked
    loss = -picked if label_smoothing == 0 else -(1 - label_smoothing) * picked - label_smoothing * mean(logp, axis=-1)
    if ignored.any():
        loss = loss * Tensor((~ignored).astype(loss.dtype))  # w_n ℓ_n
    if reduction == "none":
        return loss[0] if single else loss
    total = sum(loss)
    return total if reduction == "sum" else total / float(np.count_nonzero(~ignored))


def _target_facts(y: np.ndarray, ignore_index: int, c: int) -> tuple[np.ndarray, bool]:
    """What cross_entropy decides from the targets' values: which rows are ignored (y_n = ignore_index),
    and whether every other target lies in [0, C)."""
    ignored = y == ignore_index
    return ignored, bool(((y >= 0) & (y < c) | ignored).all())


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
