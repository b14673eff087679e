"""Finite-difference check of reverse-mode gradients."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .checks import LeafShapeError
from .tensor import Tensor

__all__ = ["gradcheck", "GradcheckError", "numerical_grad"]


class GradcheckError(AssertionError):
    """backward and finite differences disagree."""


def _scalar(out: Tensor, weights: np.ndarray | None) -> float:
    """The scalar the check differentiates: out itself, or Σ out ⊙ w for a non-scalar out."""
    return float(np.sum(out.data)) if weights is None else float(np.sum(out.data * weights))


def numerical_grad(fn: Callable[..., Tensor], inputs: Sequence[Tensor], i: int, eps: float, weights) -> np.ndarray:
    """Central differences ∂f/∂x_i ≈ (f(x + ε e_j) − f(x − ε e_j)) / 2ε, entry by entry."""
    x = inputs[i].data
    g = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view: editing it edits the input in place
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + eps
        f_plus = _scalar(fn(*inputs), weights)
        flat[j] = old - eps
        f_minus = _scalar(fn(*inputs), weights)
        flat[j] = old
        g.reshape(-1)[j] = (f_plus - f_minus) / (2 * eps)
    return g


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-8,
    rtol: float = 1e-6,
    seed: int = 0,
) -> bool:
    """Compare ``backward`` of ``fn(*inputs)`` with central differences.

    Every input with ``requires_grad`` is checked. A non-scalar output is
    reduced with fixed random weights (Σ out ⊙ w), so every output entry counts.
    Returns True, or raises GradcheckError naming the worst entry (or the input whose
    gradient came back with the wrong shape).

    Tolerances: |backward − numeric| ≤ atol + rtol |numeric|. Central differences in float64 with
    ε = 1e-6 err by ~ε² |f⁽³⁾| / 6 (truncation) plus ~1e-16 |f| / ε (rounding): ~1e-10 on ordinary
    values, and up to ~6e-7 relative (log and sqrt near 0) or ~8e-8 absolute (logits of ±1000) on
    the op sweep's hardest cases. atol 1e-8, rtol 1e-6 pass those and still catch a backward that
    is wrong by 1e-5 relative (tests/test_gradcheck_oracle.py).
    """
    inputs = list(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences need float64 "
                "(with eps=1e-6, float32 rounding swamps the difference)"
            )
        inputs[i].zero_grad()

    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    weights = None
    try:
        if out.size != 1:
            weights = np.random.default_rng(seed).standard_normal(out.shape)
            (out * weights).sum().backward()
        else:
            out.backward()
    except LeafShapeError as e:  # the inputs' data did not change here: a VJP returned the wrong shape
        raise GradcheckError(f"gradcheck: backward returned a gradient of the wrong shape ({e})") from None

    for i in checked:
        x = inputs[i]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad
        numeric = numerical_grad(fn, inputs, i, eps, weights)
        err = np.abs(analytic - numeric)
        bad = err > atol + rtol * np.abs(numeric)
        if bad.any():
            j = np.unravel_index(np.argmax(err - rtol * np.abs(numeric)), x.shape)
            name = f" ({x.name})" if x.name else ""
            raise GradcheckError(
                f"gradcheck failed for input {i}{name} of shape {x.shape}: {int(bad.sum())} of {x.size} "
                f"entries differ; worst at index {tuple(int(k) for k in j)}: backward {analytic[j]:.10g}, "
                f"finite differences {numeric[j]:.10g} (|diff| {err[j]:.3g}, atol {atol}, rtol {rtol})"
            )
    return True
