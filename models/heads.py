"""Readouts and losses for sequence tasks, on top of a layer's output (T, B, H).

y_t = W_hy h_t + b_y                       Readout: the same Linear at every step
L = −(1/N) Σ_{t,b} log softmax(y_t,b)[target_t,b]     sequence_cross_entropy (N counted positions)
L = (1/(B·O)) Σ_b ‖W h_T,b + b − target_b‖²           LastStepRegression: only the last step matters
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import minigrad as mg
from minigrad.nn import Module, Parameter, init
from minigrad.tensor import Tensor

from .cells import _as_input, _positive_int

__all__ = ["Readout", "sequence_cross_entropy", "last_step", "LastStepRegression"]


class Readout(Module):
    """Per-step linear readout y_t = W h_t + b over (…, H) → (…, O), as ONE matmul over all steps.

    weight (O, H), bias (O,), uniform ±1/√H (as torch.nn.Linear).
    """

    def __init__(
        self,
        hidden_size: int,
        output_size: int,
        bias: bool = True,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float64,
    ):
        super().__init__()
        self.hidden_size = _positive_int("Readout", "hidden_size", hidden_size)
        self.output_size = _positive_int("Readout", "output_size", output_size)
        self.dtype = np.dtype(dtype)
        rng, k = init._rng(rng), 1.0 / math.sqrt(self.hidden_size)
        self.weight = Parameter(rng.uniform(-k, k, (self.output_size, self.hidden_size)).astype(self.dtype))
        self.bias = Parameter(rng.uniform(-k, k, (self.output_size,)).astype(self.dtype)) if bias else None

    def forward(self, h: Any) -> Tensor:
        h = _as_input("Readout", "input", h, self.dtype)
        if h.ndim == 0 or h.shape[-1] != self.hidden_size:
            raise ValueError(f"Readout: expected input of shape (..., {self.hidden_size}), got {h.shape}")
        lead = h.shape[:-1]
        y = h.reshape(-1, self.hidden_size) @ self.weight.T  # all steps and rows in one GEMM
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.output_size)

    def extra_repr(self) -> str:
        return f"{self.hidden_size}, {self.output_size}, bias={self.bias is not None}"


def sequence_cross_entropy(logits: Tensor, targets: Any, mask: Any = None) -> Tensor:
    """Mean cross-entropy over every step and batch row (a vocabulary of V classes):

        L = −(1/N) Σ_{counted (t, b)} log softmax(logits_t,b)[targets_t,b]

    logits (…, V) (e.g. (T, B, V)), integer targets (…) of the same leading shape. ``mask``
    (…) boolean: only True positions count (padding, finished sequences); N = their number.
    """
    y = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if logits.ndim < 1 or y.shape != logits.shape[:-1]:
        raise ValueError(
            f"sequence_cross_entropy: logits (..., V) and targets (...) must share the leading shape, "
            f"got logits {logits.shape} and targets {y.shape}"
        )
    V = logits.shape[-1]
    flat, y = logits.reshape(-1, V), y.reshape(-1)
    if mask is None:
        return mg.cross_entropy(flat, y)
    m = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if m.dtype != bool or m.shape != logits.shape[:-1]:
        raise ValueError(
            f"sequence_cross_entropy: mask must be boolean of shape {logits.shape[:-1]}, got {m.dtype} {m.shape}"
        )
    keep = np.flatnonzero(m.reshape(-1))
    if keep.size == 0:
        raise ValueError("sequence_cross_entropy: the mask selects no position, the mean is undefined")
    return mg.cross_entropy(flat[keep], y[keep])  # the mean over the counted positions only


def last_step(out: Tensor, batch_first: bool = False) -> Tensor:
    """The output of the last step: out[-1] (time-major) or out[:, -1] (batch_first)."""
    return out[:, -1] if batch_first else out[-1]


class LastStepRegression(Module):
    """Regression from the last step: ŷ = W h_T + b (B, O); ``loss(out, target)`` is the MSE.

    For sequence-to-one tasks (classify or predict from the whole sequence).
    """

    def __init__(
        self,
        hidden_size: int,
        output_size: int = 1,
        batch_first: bool = False,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float64,
    ):
        super().__init__()
        self.batch_first = bool(batch_first)
        self.readout = Readout(hidden_size, output_size, rng=rng, dtype=dtype)

    def forward(self, out: Tensor) -> Tensor:
        return self.readout(last_step(out, self.batch_first))

    def loss(self, out: Tensor, target: Any) -> Tensor:
        """L = mean over rows and outputs of (ŷ − target)²."""
        pred = self(out)
        target = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=pred.dtype)
        if target.shape != pred.shape:
            raise ValueError(f"LastStepRegression.loss: prediction has shape {pred.shape}, target has {target.shape}")
        return mg.mse_loss(pred, target)
