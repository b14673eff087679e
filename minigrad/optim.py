"""Optimizers (SGD with momentum and weight decay, Adam), learning-rate schedulers and gradient clipping.

    opt = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt = mg.optim.Adam([{"params": enc.parameters()}, {"params": head.parameters(), "lr": 1e-2}], lr=1e-3)
    sched = mg.optim.StepLR(opt, step_size=10, gamma=0.5)   # CosineAnnealingLR, LinearLR (warm-up) too
    for epoch in ...: ...; opt.step(); sched.step()
    mg.optim.clip_grad_norm_(model.parameters(), 1.0)

As in torch: ``param_groups`` is a list of dicts ("params" and each hyper-parameter; a group's own
value overrides the optimizer's default), the schedulers set ``group["lr"]`` by torch's own
recurrences (so the sequence of learning rates is torch's to the last bit), and a parameter listed
twice is refused (ValueError). Every hyper-parameter is checked when the optimizer is built, with
an error naming it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "clip_grad_norm_", "LRScheduler", "StepLR", "CosineAnnealingLR", "LinearLR"]


def _number(
    owner: str, name: str, value: Any, low: float = 0.0, below: float | None = None, what: str | None = None
) -> float:
    """``value`` as a float, or a ValueError naming the argument: a finite real ≥ ``low`` (and < ``below``)."""
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and value >= low and (below is None or value < below)
    if not ok:
        where = f"in [{low:g}, {below:g})" if below is not None else f"≥ {low:g}"
        raise ValueError(f"{owner}: {what or name} must be a finite number {where}, got {name}={value!r}")
    return value


class Optimizer:
    """What every optimizer shares: ``param_groups``, validation, ``zero_grad``.

    ``params``: an iterable of leaf tensors, or of dicts ``{"params": [...], "lr": ..., ...}``
    (one param group each, as torch). ``defaults``: the hyper-parameters a group does not set.
    Subclasses check a group's values in ``_check_group`` and keep per-parameter state by the
    parameter's position in ``self.params`` (all groups' parameters, in order).
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of tensors or of dicts, got one Tensor")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list (did you pass model.parameters()?)")
        for group in params if isinstance(params[0], Mapping) else [{"params": params}]:
            self.add_param_group(group)

    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add one group ``{"params": [...], hyper-parameter: value, ...}``; missing values take the defaults."""
        name = type(self).__name__
        if not isinstance(group, Mapping) or "params" not in group:
            raise TypeError(f"{name}: a param group is a dict with a 'params' entry, got {type(group).__name__}")
        unknown = set(group) - {"params", *self.defaults}
        if unknown:
            raise ValueError(f"{name}: unknown hyper-parameter(s) {sorted(unknown)} in a param group")
        ps = group["params"]
        ps = [ps] if isinstance(ps, Tensor) else list(ps)
        seen = {id(p) for p in self.params}
        for i, p in enumerate(ps):
            if not isinstance(p, Tensor) or not p.requires_grad or not p.is_leaf:
                raise TypeError(f"{name}: parameter {i} is not a leaf tensor with requires_grad=True")
            if id(p) in seen:  # torch: a warning inside a group, an error across groups
                what = repr(p.name) if p.name else f"of shape {p.shape}"
                raise ValueError(
                    f"{name}: parameter {what} appears more than once (some parameters appear in more than one "
                    "parameter group, or twice in one): each would be updated twice per step"
                )
            seen.add(id(p))
        full = {**self.defaults, **group, "params": ps}
        self._check_group(full)
        self.param_groups.append(full)

    def _check_group(self, group: dict[str, Any]) -> None:
        group["lr"] = _number(type(self).__name__, "lr", group["lr"], what="learning rate")

    @property
    def params(self) -> list[Tensor]:
        """Every group's parameters, in order (the index the per-parameter state uses)."""
        return [p for g in self.param_groups for p in g["params"]]

    @property
    def lr(self) -> float:
        """The first group's learning rate; setting it sets every group's."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        value = _number(type(self).__name__, "lr", value, what="learning rate")
        for g in self.param_groups:
            g["lr"] = value

    def _groups(self) -> Iterable[tuple[int, Tensor, dict[str, Any]]]:
        """(flat index, parameter, its group) for every parameter."""
        i = 0
        for g in self.param_groups:
            for p in g["params"]:
                yield i, p, g
                i += 1

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """v ← μ v + (g + λ θ);  θ ← θ − lr v   (PyTorch's form; μ = 0 is plain SGD)."""

    def __init__(self, params: Iterable[Any], lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})
        self.velocity: list[np.ndarray | None] = [None] * len(self.params)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        for key in ("momentum", "weight_decay"):
            group[key] = _number("SGD", key, group[key])

    @property
    def momentum(self) -> float:
        return self.param_groups[0]["momentum"]

    @property
    def weight_decay(self) -> float:
        return self.param_groups[0]["weight_decay"]

    def step(self) -> None:
        for i, p, group in self._groups():
            g = p._grad
            if g is None:
                continue
            if group["weight_decay"]:
                g = g + group["weight_decay"] * p.data
            if group["momentum"]:
                v = self.velocity[i]
                if v is None:
                    v = self.velocity[i] = np.array(g)
                else:
                    v *= group["momentum"]
                    v += g
                g = v
            p.data -= group["lr"] * g
            p.mark_modified()


class Adam(Optimizer):
    """m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  θ ← θ − lr m̂ / (√v̂ + ε), with bias-corrected m̂, v̂."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        self.t = 0
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        betas = group["betas"]
        if not (isinstance(betas, tuple | list) and len(betas) == 2):
            raise ValueError(f"Adam: betas must be a pair (β₁, β₂), got betas={betas!r}")
        group["betas"] = (
            _number("Adam", "betas[0]", betas[0], below=1.0),
            _number("Adam", "betas[1]", betas[1], below=1.0),
        )
        group["eps"] = _number("Adam", "eps", group["eps"])
        group["weight_decay"] = _number("Adam", "weight_decay", group["weight_decay"])

    @property
    def betas(self) -> tuple[float, float]:
        return self.param_groups[0]["betas"]

    @property
    def eps(self) -> float:
        return self.param_groups[0]["eps"]

    @property
    def weight_decay(self) -> float:
        return self.param_groups[0]["weight_decay"]

    def step(self) -> None:
        self.t += 1
        for i, p, group in self._groups():
            g = p._grad
            if g is None:
                continue
            b1, b2 = group["betas"]
            c1, c2 = 1 - b1**self.t, 1 - b2**self.t
            if group["weight_decay"]:
                g = g + group["weight_decay"] * p.data
            m, v = self.m[i], self.v[i]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p.data -= group["lr"] * (m / c1) / (np.sqrt(v / c2) + group["eps"])
            p.mark_modified()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Moments and step count as arrays (for .npz checkpoints)."""
        d = {"t": np.asarray(self.t)}
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            d[f"m.{i}"], d[f"v.{i}"] = m.copy(), v.copy()
        return d

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore ``state_dict()``'s moments and step count; everything is checked before anything changes."""
        if not isinstance(d, Mapping):
            raise TypeError(
                f"Adam.load_state_dict expects the dict Adam.state_dict() made, got {type(d).__name__}"
                + (" (to load a file: opt.load_state_dict(mg.load(path)))" if isinstance(d, str) else "")
            )
        if "t" not in d or np.ndim(d["t"]) != 0:
            raise KeyError(
                "Adam.load_state_dict: no step count 't' (a 0-d integer) in the dict; it needs the whole "
                "Adam.state_dict(), 't' and the moments 'm.0', 'v.0', … (a Module's state_dict does not fit)"
            )
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            for key, buf in ((f"m.{i}", m), (f"v.{i}", v)):
                if key not in d or np.shape(d[key]) != buf.shape:
                    raise KeyError(f"Adam.load_state_dict: {key} missing or of the wrong shape (want {buf.shape})")
        self.t = int(d["t"])
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            m[...], v[...] = d[f"m.{i}"], d[f"v.{i}"]


def clip_grad_norm_(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients together so their global norm ‖g‖ = √(Σ_p ‖g_p‖²) is at most ``max_norm``:
    g ← g · max_norm / (‖g‖ + 10⁻⁶) when ‖g‖ > max_norm.

    Returns the norm before clipping (as PyTorch does), useful to log; ``max_norm=math.inf`` only
    measures it. A negative or NaN ``max_norm`` is a ValueError. A parameter listed twice
    (``a.parameters() + b.parameters()`` with a shared module) counts once. (torch counts it
    twice and scales its gradient twice, so its result is no longer at most max_norm.)
    """
    if max_norm != math.inf:  # max_norm = ∞ (allowed, as in torch) measures the norm and clips nothing
        max_norm = _number("clip_grad_norm_", "max_norm", max_norm)
    unique = {id(p): p for p in params}.values()
    grads = [p._grad for p in unique if p._grad is not None]
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= scale
    return total


# ---------------------------------------------------------------------------
# Learning-rate schedulers: torch's recurrences on group["lr"], step by step
# ---------------------------------------------------------------------------
class LRScheduler:
    """Sets every param group's ``lr`` after each ``step()`` (call it after ``optimizer.step()``).

    As torch: building one records ``initial_lr`` in every group (``base_lrs``) and takes step 0;
    ``last_epoch`` counts the steps; ``get_last_lr()`` is the list of learning rates set last.
    Subclasses give ``_next(group, base_lr) -> lr`` for step ``last_epoch`` (already advanced).
    """

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = -1
        self._initial = True
        self.step()
        self._initial = False

    def step(self) -> None:
        self.last_epoch += 1
        lrs = [self._next(g, base) for g, base in zip(self.optimizer.param_groups, self.base_lrs)]
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        self._last_lr = lrs

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def _next(self, group: dict[str, Any], base_lr: float) -> float:  # pragma: no cover - per subclass
        raise NotImplementedError


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {name}={value!r}")
    return int(value)


class StepLR(LRScheduler):
    """lr_e = base_lr · γ^⌊e / step_size⌋: multiply by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = _number("StepLR", "gamma", gamma)
        super().__init__(optimizer)

    def _next(self, group: dict[str, Any], base_lr: float) -> float:
        e = self.last_epoch
        return group["lr"] if e == 0 or e % self.step_size else group["lr"] * self.gamma  # torch's recurrence


class CosineAnnealingLR(LRScheduler):
    """lr_e = η_min + (base_lr − η_min) (1 + cos(π e / T_max)) / 2, by torch's recurrence
    (it goes on past T_max, back up, as torch's does)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803 (torch's name)
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = _number("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer)

    def _next(self, group: dict[str, Any], base_lr: float) -> float:
        e, T, lo, lr = self.last_epoch, self.T_max, self.eta_min, group["lr"]
        if self._initial:
            return lr
        if (e - 1 - T) % (2 * T) == 0:
            return lr + (base_lr - lo) * (1 - math.cos(math.pi / T)) / 2
        return (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (lr - lo) + lo


class LinearLR(LRScheduler):
    """Linear warm-up: lr_e = base_lr · (s + (f − s) · min(e, total_iters) / total_iters),
    s = ``start_factor``, f = ``end_factor``, by torch's recurrence."""

    def __init__(
        self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5
    ):
        if not (isinstance(start_factor, int | float | np.floating) and 0 < start_factor <= 1):
            raise ValueError(f"LinearLR: start_factor must lie in (0, 1], got start_factor={start_factor!r}")
        self.start_factor = float(start_factor)
        self.end_factor = _number("LinearLR", "end_factor", end_factor)
        if self.end_factor > 1:
            raise ValueError(f"LinearLR: end_factor must lie in [0, 1], got end_factor={end_factor!r}")
        self.total_iters = _positive_int("LinearLR", "total_iters", total_iters)
        super().__init__(optimizer)

    def _next(self, group: dict[str, Any], base_lr: float) -> float:
        e, s, f, n, lr = self.last_epoch, self.start_factor, self.end_factor, self.total_iters, group["lr"]
        if e == 0:
            return lr * s
        if e > n:
            return lr
        return lr * (1.0 + (f - s) / (n * s + (e - 1) * (f - s)))
