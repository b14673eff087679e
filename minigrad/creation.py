"""Making tensors by shape, as PyTorch does: ``zeros``, ``ones``, ``full``, ``randn``, ``rand``,
``arange`` and their ``*_like`` forms.

    x = mg.zeros(2, 3)                                   # or mg.zeros((2, 3)); float64 by default
    w = mg.randn(3, 4, requires_grad=True)               # draws from mg.manual_seed's generator
    w = mg.randn(3, 4, generator=np.random.default_rng(0))   # or from the one given (an int seeds one)

Every helper takes ``dtype=`` (float64 unless the values say otherwise: ``arange`` and ``full``
of ints give int64, as torch does), ``requires_grad=`` and ``name=``. The results are leaves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import seeding
from .arrays import DEFAULT_DTYPE
from .tensor import Tensor

__all__ = [
    "zeros", "ones", "full", "randn", "rand", "arange",
    "zeros_like", "ones_like", "full_like", "randn_like", "rand_like",
]  # fmt: skip


def _size(op: str, size: tuple) -> tuple[int, ...]:
    """``f(2, 3)`` or ``f((2, 3))``: the shape, checked."""
    if len(size) == 1 and isinstance(size[0], tuple | list):
        size = tuple(size[0])
    for n in size:
        if isinstance(n, bool) or not isinstance(n, int | np.integer):
            raise TypeError(f"{op}: sizes must be ints, got {size!r}")
        if n < 0:
            raise ValueError(f"{op}: sizes must be non-negative, got {size!r}")
    return tuple(int(n) for n in size)


def _float_dtype(op: str, dtype: Any) -> np.dtype:
    dtype = np.dtype(DEFAULT_DTYPE if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"{op}: random values need a floating-point dtype, got {dtype}")
    return dtype


def _generator(op: str, generator: Any) -> np.random.Generator:
    """The generator to draw from: the one given, one seeded by an int, or the global one."""
    if generator is None:
        return seeding.default_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, int | np.integer) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"{op}: generator must be a numpy Generator, an int seed or None, got {type(generator).__name__}")


def _like(op: str, t: Any) -> tuple[tuple[int, ...], np.dtype]:
    if isinstance(t, Tensor | np.ndarray):
        return t.shape, t.dtype
    raise TypeError(f"{op}: expected a Tensor or a numpy array, got {type(t).__name__}")


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """A tensor of zeros of shape ``size`` (torch.zeros)."""
    return Tensor(np.zeros(_size("zeros", size), DEFAULT_DTYPE if dtype is None else dtype), requires_grad, name)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """A tensor of ones of shape ``size`` (torch.ones)."""
    return Tensor(np.ones(_size("ones", size), DEFAULT_DTYPE if dtype is None else dtype), requires_grad, name)


def full(
    size: Any, fill_value: Any, *, dtype: Any = None, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value`` (torch.full: an int fill gives int64)."""
    size = _size("full", (size,) if isinstance(size, int | np.integer) else (size,))
    if dtype is None:
        dtype = np.bool_ if isinstance(fill_value, bool) else np.int64 if isinstance(fill_value, int) else DEFAULT_DTYPE
    return Tensor(np.full(size, fill_value, dtype), requires_grad, name)


def randn(
    *size: Any, generator: Any = None, dtype: Any = None, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """Standard normal samples N(0, 1) of shape ``size`` (torch.randn)."""
    dtype = _float_dtype("randn", dtype)
    x = _generator("randn", generator).standard_normal(_size("randn", size)).astype(dtype, copy=False)
    return Tensor(x, requires_grad, name)


def rand(
    *size: Any, generator: Any = None, dtype: Any = None, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """Uniform samples on [0, 1) of shape ``size`` (torch.rand)."""
    dtype = _float_dtype("rand", dtype)
    x = _generator("rand", generator).random(_size("rand", size)).astype(dtype, copy=False)
    return Tensor(x, requires_grad, name)


def arange(
    start: Any,
    end: Any = None,
    step: Any = 1,
    *,
    dtype: Any = None,
    requires_grad: bool = False,
    name: str | None = None,
) -> Tensor:
    """start, start + step, … up to (not including) end; ``arange(n)`` is 0 … n − 1 (torch.arange).

    All ints give int64, any float gives float64, unless ``dtype`` says otherwise.
    """
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if dtype is None:
        ints = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (start, end, step))
        dtype = np.int64 if ints else DEFAULT_DTYPE
    return Tensor(np.arange(start, end, step, dtype=dtype), requires_grad, name)


def zeros_like(t: Any, *, dtype: Any = None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """Zeros of t's shape and (unless ``dtype`` is given) t's dtype."""
    shape, own = _like("zeros_like", t)
    return Tensor(np.zeros(shape, own if dtype is None else dtype), requires_grad, name)


def ones_like(t: Any, *, dtype: Any = None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """Ones of t's shape and (unless ``dtype`` is given) t's dtype."""
    shape, own = _like("ones_like", t)
    return Tensor(np.ones(shape, own if dtype is None else dtype), requires_grad, name)


def full_like(
    t: Any, fill_value: Any, *, dtype: Any = None, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """``fill_value`` in t's shape and (unless ``dtype`` is given) t's dtype."""
    shape, own = _like("full_like", t)
    return Tensor(np.full(shape, fill_value, own if dtype is None else dtype), requires_grad, name)


def randn_like(
    t: Any, *, generator: Any = None, dtype: Any = None, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """N(0, 1) samples of t's shape and (unless ``dtype`` is given) t's dtype."""
    shape, own = _like("randn_like", t)
    return randn(
        shape, generator=generator, dtype=own if dtype is None else dtype, requires_grad=requires_grad, name=name
    )


def rand_like(
    t: Any, *, generator: Any = None, dtype: Any = None, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """Uniform [0, 1) samples of t's shape and (unless ``dtype`` is given) t's dtype."""
    shape, own = _like("rand_like", t)
    return rand(
        shape, generator=generator, dtype=own if dtype is None else dtype, requires_grad=requires_grad, name=name
    )
