"""Modules and parameters: containers that find their parameters by attribute, like torch.nn.

    Module, Parameter                 registration as torch's (with errors/warnings where torch loses one)
    ModuleList, Sequential, ModuleDict, ParameterList, ParameterDict
    Linear, Embedding(padding_idx=), Dropout, LayerNorm
    init.uniform_ / normal_ / zeros_ / xavier_uniform_ / orthogonal_
    module.to(dtype) / .float() / .double(), train() / eval(), state_dict() / load_state_dict()

Random draws given no ``rng=`` come from ``mg.seeding.default_generator()`` (``mg.manual_seed``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import ops, seeding
from .tensor import Tensor

__all__ = [
    "Parameter",
    "Module",
    "StateDictError",
    "ModuleList",
    "Sequential",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "Linear",
    "Embedding",
    "Dropout",
    "dropout",
    "LayerNorm",
    "init",
]


class Parameter(Tensor):
    """A leaf tensor that requires grad and that a Module registers as its own."""

    __slots__ = ()

    def __init__(self, data: Any, name: str | None = None, dtype: Any = None):
        super().__init__(data, requires_grad=True, name=name, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor") :]


class StateDictError(KeyError, ValueError):
    """``load_state_dict`` refused the dict: missing or unexpected keys, or a shape or dtype that does
    not fit. A KeyError (older code catches that) and a ValueError (what a shape mismatch is)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # KeyError would print the message in quotes


def _lost_by_container(value: Any) -> bool:
    """Whether ``value`` is a plain list/tuple/dict that holds Parameters or Modules."""
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, list | tuple) and any(isinstance(v, Parameter | Module) for v in value)


class Module:
    """Base class: assign Parameters and Modules as attributes; they are found in order.

    Registration follows torch.nn.Module, and says so where a PyTorch user would otherwise lose a
    parameter without noticing:

    * ``m.w = m.w * 2`` (anything but a Parameter or None over a registered parameter) raises
      TypeError, as torch does; likewise a non-Module over a registered submodule;
    * a plain list, tuple or dict of Parameters/Modules that are not registered otherwise warns:
      its contents are invisible to ``parameters()`` (use ModuleList, ModuleDict, ParameterList,
      ParameterDict);
    * a ``Tensor(..., requires_grad=True)`` leaf that is not a Parameter warns (use nn.Parameter).
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting {name!r}")
        if name in self._parameters and value is not None and not isinstance(value, Parameter):
            raise TypeError(
                f"cannot assign {type(value).__name__!r} as parameter {name!r} (nn.Parameter or None expected); "
                f"to change its values in place: with mg.no_grad(): m.{name}.data[...] = new"
            )
        if name in self._modules and value is not None and not isinstance(value, Module):
            raise TypeError(
                f"cannot assign {type(value).__name__!r} as child module {name!r} (nn.Module or None expected)"
            )
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
            if value.name is None:
                value.name = name
        elif isinstance(value, Module):
            self._modules[name] = value
        elif isinstance(value, Tensor) and value.requires_grad and value.is_leaf:
            warnings.warn(
                f"{type(self).__name__}.{name} is a Tensor with requires_grad=True, not an nn.Parameter: "
                "parameters() will not list it and no optimizer built from them will update it "
                f"(write self.{name} = nn.Parameter(...))",
                UserWarning,
                stacklevel=2,
            )
        elif _lost_by_container(value) and not self._all_registered(value):
            kind = "dict" if isinstance(value, dict) else type(value).__name__
            fix = "nn.ModuleDict / nn.ParameterDict" if kind == "dict" else "nn.ModuleList / nn.ParameterList"
            warnings.warn(
                f"{type(self).__name__}.{name} is a plain {kind} holding Parameters or Modules: they are not "
                f"registered, so parameters(), state_dict() and the optimizer never see them (use {fix})",
                UserWarning,
                stacklevel=2,
            )
        object.__setattr__(self, name, value)

    def _all_registered(self, container: Any) -> bool:
        """Whether every Parameter/Module in ``container`` is already registered here (a shortcut list is fine)."""
        items = container.values() if isinstance(container, dict) else container
        known = {id(p) for p in self.parameters()} | {id(m) for m in self.modules()}
        return all(id(v) in known for v in items if isinstance(v, Parameter | Module))

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

    # -- dtype --------------------------------------------------------------
    def to(self, dtype: Any) -> Module:
        """Convert every parameter (and its .grad) to the floating dtype ``dtype``, in place.

        The Parameter objects stay the same (as in torch), so references to them stay valid; a
        module that records its ``dtype`` (the recurrent layers check inputs against it) is updated.
        Build optimizers after converting: their state keeps the old dtype.
        """
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: dtype must be floating-point (float64 or float32), got {dt}")
        for p in self.parameters():
            if p.data.dtype != dt:
                p.data = p.data.astype(dt)
                if p._grad is not None:
                    p._grad = p._grad.astype(dt)
                p.mark_modified()  # a graph that saved the old array is stale now
        for m in self.modules():
            if isinstance(m.__dict__.get("dtype"), np.dtype):
                object.__setattr__(m, "dtype", dt)
        return self

    def float(self) -> Module:
        """``to(np.float32)``."""
        return self.to(np.float32)

    def double(self) -> Module:
        """``to(np.float64)``."""
        return self.to(np.float64)

    # -- state --------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """{name: a copy of the parameter's array}."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy arrays into the parameters. Everything is checked first, so a
        failed load leaves the module unchanged (StateDictError, a KeyError and ValueError)."""
        if not isinstance(state, Mapping):
            hint = " To load a file: model.load_state_dict(mg.load(path))." if isinstance(state, str | Path) else ""
            raise TypeError(
                f"{type(self).__name__}.load_state_dict expects a dict {{name: array}}, "
                f"got {type(state).__name__}.{hint}"
            )
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
            raise StateDictError(f"load_state_dict into {type(self).__name__} failed: " + "; ".join(problems))
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


# ---------------------------------------------------------------------------
# Containers: a list or dict whose items are registered (as torch.nn's)
# ---------------------------------------------------------------------------
class ModuleList(Module):
    """A list of modules whose parameters are registered as "0.", "1.", …"""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        self._list: list[Module] = []
        for m in modules or []:
            self.append(m)

    def append(self, m: Module) -> ModuleList:
        if not isinstance(m, Module):
            raise TypeError(f"{type(self).__name__}.append: expected a Module, got {type(m).__name__}")
        setattr(self, str(len(self._list)), m)
        self._list.append(m)
        return self

    def __getitem__(self, i: int) -> Module:
        return self._list[i]

    def __len__(self) -> int:
        return len(self._list)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._list)


class Sequential(ModuleList):
    """``Sequential(m1, m2, …)(x) = … m2(m1(x))``; the parameters are "0.weight", "1.weight", … as torch's."""

    def __init__(self, *modules: Module):
        super().__init__(modules)

    def forward(self, x: Any) -> Any:
        for m in self._list:
            x = m(x)
        return x


class _KeyedModule(Module):
    """What ModuleDict and ParameterDict share: a dict view of one of the module's registries."""

    _registry = "_modules"  # or "_parameters": where the entries are registered

    def _check_key(self, key: Any) -> None:
        kind = type(self).__name__
        if not isinstance(key, str):
            raise TypeError(f"{kind}: keys must be str, got {key!r}")
        if hasattr(type(self), key) or key in ("_parameters", "_modules", "training"):
            raise KeyError(f"{kind}: key {key!r} would shadow a {kind} attribute; choose another name")

    def __getitem__(self, key: str) -> Any:
        return getattr(self, self._registry)[key]

    def __contains__(self, key: object) -> bool:
        return key in getattr(self, self._registry)

    def __len__(self) -> int:
        return len(getattr(self, self._registry))

    def __iter__(self) -> Iterator[str]:
        return iter(getattr(self, self._registry))

    def keys(self) -> Iterable[str]:
        return getattr(self, self._registry).keys()

    def values(self) -> Iterable[Any]:
        return getattr(self, self._registry).values()

    def items(self) -> Iterable[tuple[str, Any]]:
        return getattr(self, self._registry).items()


class ModuleDict(_KeyedModule):
    """A dict of modules registered under their keys (``"encoder.weight"``), in insertion order."""

    def __init__(self, modules: Mapping[str, Module] | None = None):
        super().__init__()
        for k, m in (modules or {}).items():
            self[k] = m

    def __setitem__(self, key: str, m: Module) -> None:
        if not isinstance(m, Module):
            raise TypeError(f"ModuleDict: expected str keys and Module values, got {key!r}: {type(m).__name__}")
        self._check_key(key)
        setattr(self, key, m)


class ParameterList(Module):
    """A list of Parameters registered as "0", "1", …; an array or Tensor is wrapped in a Parameter."""

    def __init__(self, params: Iterable[Any] | None = None):
        super().__init__()
        self._list: list[Parameter] = []
        for p in params or []:
            self.append(p)

    def append(self, p: Any) -> ParameterList:
        p = p if isinstance(p, Parameter) else Parameter(p)
        setattr(self, str(len(self._list)), p)
        self._list.append(p)
        return self

    def __getitem__(self, i: int) -> Parameter:
        return self._list[i]

    def __len__(self) -> int:
        return len(self._list)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._list)


class ParameterDict(_KeyedModule):
    """A dict of Parameters registered under their keys; an array or Tensor is wrapped in a Parameter."""

    _registry = "_parameters"

    def __init__(self, params: Mapping[str, Any] | None = None):
        super().__init__()
        for k, p in (params or {}).items():
            self[k] = p

    def __setitem__(self, key: str, p: Any) -> None:
        self._check_key(key)
        setattr(self, key, p if isinstance(p, Parameter) else Parameter(p))


# ---------------------------------------------------------------------------
# Initialisation (in place on a Parameter's array)
# ---------------------------------------------------------------------------
class init:  # noqa: N801 (a namespace, spelled like torch.nn.init)
    """In-place initialisers: ``init.uniform_(p, -a, a, rng)``, ``init.orthogonal_(p, gain, rng)``, …"""

    @staticmethod
    def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
        """A Generator as given, a new one from a seed, or (None) the global one of ``mg.manual_seed``.

        torch has no ``rng=``: a module draws from the global generator, so two modules built one
        after the other get different numbers and ``manual_seed`` makes the whole run repeat.
        rng=None here does the same. An explicit seed is a request for exactly that stream, so
        two modules given ``rng=0`` get the same numbers, on purpose (pass one Generator to both
        for different streams from one seed).
        """
        if rng is None:
            return seeding.default_generator()
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
def _positive_int(owner: str, name: str, value: Any) -> int:
    """``value`` as an int, or a ValueError naming the owner and the argument (sizes of modules)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _as_input(owner: str, what: str, value: Any, dtype: np.dtype) -> Tensor:
    """``value`` as a Tensor of the parameters' dtype, or a TypeError that says what to change
    (one rule for every module's input: nn.Linear here, the recurrent layers in models)."""
    try:
        t = value if isinstance(value, Tensor) else Tensor(value)
    except TypeError as e:  # ragged lists, strings, objects
        raise TypeError(f"{owner}: {what}: {e}") from None
    if t.dtype != dtype:
        raise TypeError(
            f"{owner}: {what} has dtype {t.dtype} but the parameters are {dtype} "
            f"(convert the data, e.g. x.astype(np.{dtype}), or the module, e.g. module.to(np.{t.dtype}))"
            if t.dtype.kind == "f"
            else f"{owner}: {what} must hold floating-point values ({dtype}), got dtype {t.dtype}"
        )
    return t


class Linear(Module):
    """y = x Wᵀ + b, W: (out_features, in_features), init uniform ±1/√in_features (as PyTorch).

    The input must have the parameters' dtype (a float64 x into a float32 layer is a TypeError,
    as in the recurrent layers, not a silent upcast).
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, rng: Any = None, dtype: Any = np.float64
    ):
        in_features = _positive_int("Linear", "in_features", in_features)  # checked before numpy sees them
        out_features = _positive_int("Linear", "out_features", out_features)
        super().__init__()
        rng = init._rng(rng)
        self.in_features, self.out_features = in_features, out_features
        k = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(rng.uniform(-k, k, (out_features, in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-k, k, (out_features,)).astype(dtype)) if bias else None

    def forward(self, x: Any) -> Tensor:
        x = _as_input("Linear", "input", x, self.weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: expected input with last dimension {self.in_features}, got shape {x.shape}")
        y = ops.matmul(x, ops.transpose(self.weight))
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """out[...] = W[idx[...]], W: (num_embeddings, dim), init N(0, 1) (as PyTorch).

    ``padding_idx`` (as torch): that row starts at zero and gets no gradient (δW[padding_idx] = 0),
    so it stays what it is; a negative index counts from the end.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        rng: Any = None,
        dtype: Any = np.float64,
    ):
        num_embeddings = _positive_int("Embedding", "num_embeddings", num_embeddings)  # checked before numpy sees them
        embedding_dim = _positive_int("Embedding", "embedding_dim", embedding_dim)
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, int | np.integer):
                raise TypeError(f"Embedding: padding_idx must be an int or None, got {padding_idx!r}")
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx must lie in [-{num_embeddings}, {num_embeddings}), got {padding_idx}"
                )
            padding_idx = int(padding_idx) % num_embeddings
        self.padding_idx = padding_idx
        self.weight = Parameter(init._rng(rng).standard_normal((num_embeddings, embedding_dim)).astype(dtype))
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, idx: Any) -> Tensor:
        out = ops.embedding(self.weight, idx)
        if self.padding_idx is None:
            return out
        pad = np.asarray(idx.data if isinstance(idx, Tensor) else idx) == self.padding_idx
        if not pad.any():
            return out
        row = Tensor(self.weight.data[self.padding_idx].copy())  # a constant: no gradient reaches W[pad]
        return ops.where(pad[..., None], row, out)  # out = W[idx], with δW[padding_idx] = 0

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


def dropout(x: Any, p: float, training: bool = True, rng: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout as a function (torch's ``F.dropout``): y = x ⊙ m / (1 − p), m_i ~ Bernoulli(1 − p),
    when ``training``; y = x otherwise. δx = δy ⊙ m / (1 − p). ``rng`` None: the global generator."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    if not training or p == 0:
        return x
    rng = rng if rng is not None else seeding.default_generator()
    keep = rng.random(x.shape) >= p  # m_i = 1 with probability 1 − p
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    return x * Tensor((keep * scale).astype(x.dtype))  # y = x ⊙ m / (1 − p)


def _probability(owner: str, p: Any) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float | np.integer | np.floating) or not 0 <= p <= 1:
        raise ValueError(f"{owner}: dropout probability p must lie in [0, 1], got {p!r}")
    return float(p)


class Dropout(Module):
    """Inverted dropout: in training y = x ⊙ m / (1 − p), m_i ~ Bernoulli(1 − p); in eval y = x.

    δx = δy ⊙ m / (1 − p). The mask is drawn at each call from ``rng`` (a Generator or a seed)
    or, when none is given, from ``mg.seeding.default_generator()`` (``mg.manual_seed`` makes it
    reproducible). p = 1 gives zeros, as torch.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None):
        super().__init__()
        self.p = _probability("Dropout", p)
        self.rng = None if rng is None else init._rng(rng)

    def forward(self, x: Any) -> Tensor:
        return dropout(x, self.p, self.training, self.rng)  # y = x ⊙ m / (1 − p) in training, x in eval

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerNorm(Module):
    """y = (x − μ) / √(σ² + ε) ⊙ γ + β over the last ``len(normalized_shape)`` axes (as torch).

    μ and σ² are the mean and the biased variance over those axes; γ (``weight``, ones) and β
    (``bias``, zeros) have shape ``normalized_shape`` when ``elementwise_affine``. Built from
    mean, sub, mul, sqrt and div, so its gradient is theirs.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: Any = np.float64,
    ):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int | np.integer) else tuple(normalized_shape)
        if not shape or any(isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1 for n in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive ints, got {normalized_shape!r}")
        if not (isinstance(eps, int | float | np.floating) and eps >= 0 and math.isfinite(eps)):
            raise ValueError(f"LayerNorm: eps must be a finite number ≥ 0, got {eps!r}")
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps = float(eps)
        self.weight = Parameter(np.ones(self.normalized_shape, dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype)) if elementwise_affine and bias else None

    def forward(self, x: Any) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        n = len(self.normalized_shape)
        if x.shape[x.ndim - n :] != self.normalized_shape or x.ndim < n:
            raise ValueError(
                f"LayerNorm: expected input whose last dimensions are {self.normalized_shape}, got shape {x.shape}"
            )
        axes = tuple(range(x.ndim - n, x.ndim))
        d = x - ops.mean(x, axis=axes, keepdims=True)  # x − μ
        var = ops.mean(d * d, axis=axes, keepdims=True)  # σ² (biased, as torch)
        y = d / ops.sqrt(var + self.eps)  # (x − μ) / √(σ² + ε)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.weight is not None}"
