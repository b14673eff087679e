"""Modules and parameters: containers that find their parameters by attribute, like torch.nn."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import ops
from .tensor import Tensor

__all__ = ["Parameter", "Module", "Linear", "Embedding", "init", "ModuleList"]


class Parameter(Tensor):
    """A leaf tensor that requires grad and that a Module registers as its own."""

    __slots__ = ()

    def __init__(self, data: Any, name: str | None = None, dtype: Any = None):
        super().__init__(data, requires_grad=True, name=name, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor") :]


class Module:
    """Base class: assign Parameters and Modules as attributes; they are found in order."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting {name!r}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
            if value.name is None:
                value.name = name
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # -- parameters ---------------------------------------------------------
    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, each parameter once, in definition order."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:  # depth-first, children in definition order
            pre, m = stack.pop()
            for name, p in m._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield pre + name, p
            stack.extend(reversed([(f"{pre}{n}.", c) for n, c in m._modules.items()]))

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        stack: list[Module] = [self]
        while stack:
            m = stack.pop()
            yield m
            stack.extend(reversed(list(m._modules.values())))

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # -- state --------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """{name: a copy of the parameter's array}."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays into the parameters. Everything is checked first, so a
        failed load leaves the module unchanged."""
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        arrays = {}
        for k, p in own.items():
            if k not in state:
                continue
            v = state[k]
            v = np.asarray(v.data if isinstance(v, Tensor) else v)
            if v.shape != p.shape:
                problems.append(f"{k}: expected shape {p.shape}, got {v.shape}")
            elif v.dtype.kind not in "fiu":
                problems.append(f"{k}: expected a numeric array, got dtype {v.dtype}")
            else:
                arrays[k] = v
        if problems:
            raise KeyError(f"load_state_dict into {type(self).__name__} failed: " + "; ".join(problems))
        for k, v in arrays.items():
            own[k].data[...] = v  # in place: optimizers holding the parameter see the new values
            own[k].mark_modified()

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for n, m in self._modules.items():
            lines.append(f"  ({n}): " + repr(m).replace("\n", "\n  "))
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")

    def extra_repr(self) -> str:
        return ""


class ModuleList(Module):
    """A list of modules whose parameters are registered as "0.", "1.", …"""

    def __init__(self, modules: list[Module] | None = None):
        super().__init__()
        self._list: list[Module] = []
        for m in modules or []:
            self.append(m)

    def append(self, m: Module) -> None:
        setattr(self, str(len(self._list)), m)
        self._list.append(m)

    def __getitem__(self, i: int) -> Module:
        return self._list[i]

    def __len__(self) -> int:
        return len(self._list)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._list)


# ---------------------------------------------------------------------------
# Initialisation (in place on a Parameter's array)
# ---------------------------------------------------------------------------
class init:  # noqa: N801 (a namespace, spelled like torch.nn.init)
    """In-place initialisers: ``init.uniform_(p, -a, a, rng)``, ``init.orthogonal_(p, gain, rng)``, …"""

    @staticmethod
    def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
        return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    @staticmethod
    def uniform_(p: Tensor, low: float, high: float, rng: Any = None) -> Tensor:
        p.data[...] = init._rng(rng).uniform(low, high, p.shape)
        p.mark_modified()
        return p

    @staticmethod
    def normal_(p: Tensor, mean: float = 0.0, std: float = 1.0, rng: Any = None) -> Tensor:
        p.data[...] = init._rng(rng).normal(mean, std, p.shape)
        p.mark_modified()
        return p

    @staticmethod
    def zeros_(p: Tensor) -> Tensor:
        p.data[...] = 0
        p.mark_modified()
        return p

    @staticmethod
    def xavier_uniform_(p: Tensor, gain: float = 1.0, rng: Any = None) -> Tensor:
        fan_out, fan_in = p.shape[0], int(np.prod(p.shape[1:]))
        a = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return init.uniform_(p, -a, a, rng)

    @staticmethod
    def orthogonal_(p: Tensor, gain: float = 1.0, rng: Any = None) -> Tensor:
        """W with orthonormal rows or columns (QR of a Gaussian, signs fixed): all
        singular values equal ``gain``, so ‖W v‖ = gain ‖v‖ along W's range."""
        if p.ndim < 2:
            raise ValueError(f"orthogonal_ needs a matrix, got shape {p.shape}")
        rows, cols = p.shape[0], int(np.prod(p.shape[1:]))
        a = init._rng(rng).standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # makes the distribution uniform (Haar)
        if rows < cols:
            q = q.T
        p.data[...] = gain * q.reshape(p.shape)
        p.mark_modified()
        return p


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------
class Linear(Module):
    """y = x Wᵀ + b, W: (out_features, in_features), init uniform ±1/√in_features (as PyTorch)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, rng: Any = None, dtype: Any = np.float64
    ):
        for arg, v in (("in_features", in_features), ("out_features", out_features)):  # before numpy sees them
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"Linear: {arg} must be a positive integer, got {v!r}")
        super().__init__()
        rng = init._rng(rng)
        self.in_features, self.out_features = in_features, out_features
        k = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(rng.uniform(-k, k, (out_features, in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-k, k, (out_features,)).astype(dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: expected input with last dimension {self.in_features}, got shape {x.shape}")
        y = ops.matmul(x, ops.transpose(self.weight))
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """out[...] = W[idx[...]], W: (num_embeddings, dim), init N(0, 1) (as PyTorch)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, rng: Any = None, dtype: Any = np.float64):
        for arg, v in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):  # before numpy sees them
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"Embedding: {arg} must be a positive integer, got {v!r}")
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(init._rng(rng).standard_normal((num_embeddings, embedding_dim)).astype(dtype))

    def forward(self, idx: Any) -> Tensor:
        return ops.embedding(self.weight, idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
