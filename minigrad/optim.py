"""Optimizers: SGD (momentum, weight decay), Adam; and gradient-norm clipping."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "clip_grad_norm_"]


class Optimizer:
    def __init__(self, params: Iterable[Tensor], lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list (did you pass model.parameters()?)")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad or not p.is_leaf:
                raise TypeError(f"{type(self).__name__}: parameter {i} is not a leaf tensor with requires_grad=True")
        if not (isinstance(lr, int | float) and math.isfinite(lr) and lr >= 0):
            raise ValueError(f"{type(self).__name__}: learning rate must be a finite number ≥ 0, got lr={lr!r}")
        self.lr = lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """v ← μ v + (g + λ θ);  θ ← θ − lr v   (PyTorch's form; μ = 0 is plain SGD)."""

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: momentum and weight_decay must be ≥ 0, got {momentum}, {weight_decay}")
        self.momentum, self.weight_decay = momentum, weight_decay
        self.velocity: list[np.ndarray | None] = [None] * len(self.params)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            g = p._grad
            if g is None:
                continue
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            if self.momentum:
                v = self.velocity[i]
                if v is None:
                    v = self.velocity[i] = np.array(g)
                else:
                    v *= self.momentum
                    v += g
                g = v
            p.data -= self.lr * g
            p.mark_modified()


class Adam(Optimizer):
    """m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  θ ← θ − lr m̂ / (√v̂ + ε), with bias-corrected m̂, v̂."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.t = 0
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            g = p._grad
            if g is None:
                continue
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p.data -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)
            p.mark_modified()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Moments and step count as arrays (for .npz checkpoints)."""
        d = {"t": np.asarray(self.t)}
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            d[f"m.{i}"], d[f"v.{i}"] = m.copy(), v.copy()
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            for key, buf in ((f"m.{i}", m), (f"v.{i}", v)):
                if key not in d or np.shape(d[key]) != buf.shape:
                    raise KeyError(f"Adam.load_state_dict: {key} missing or of the wrong shape (want {buf.shape})")
        self.t = int(d["t"])
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            m[...], v[...] = d[f"m.{i}"], d[f"v.{i}"]


def clip_grad_norm_(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients together so their global norm is at most ``max_norm``.

    Returns the norm before clipping (as PyTorch does), useful to log.
    """
    grads = [p._grad for p in params if p._grad is not None]
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= scale
    return total
