"""Python's and numpy's protocols on Tensor, with PyTorch's rules: the room for "it behaves
like a torch tensor" (attached to Tensor here, as ops.py attaches the operators).

Truth and conversion: ``bool(t)``, ``float(t)``, ``int(t)``, ``f"{t:.3f}"`` take the value of
a one-element tensor and raise a clear error for any other (``if loss < best`` works on a 0-d
loss; ``if mask:`` on many elements refuses, as torch does). ``operator.index`` takes a
one-element integer tensor.

Containers: ``len(t)`` and ``iter(t)`` walk dim 0 (a 0-d tensor raises TypeError, as torch);
iterating is differentiable (one ``unbind`` node). ``x in t`` is ``(t == x).any()``.

Comparisons: ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` give constant boolean masks
(``mg.where(x == 2, 1.0, 0.0)``). Hashing stays by identity, as torch's: tensors work as
dict keys and set members; use ``is`` (not ``in`` / ``.index``) to find a tensor in a list.

In place: ``+=  -=  *=  /=  **=`` (and ``add_``, ``sub_``, ``mul_``, ``div_``, ``pow_``) follow PyTorch:

* nothing to record (grad mode off, or no operand requires grad): the array is written in
  place (``with mg.no_grad(): p -= lr * p.grad`` trains) and the write is counted
  (``checks.mark_modified``), so a backward through a node that saved the old value raises;
* a leaf that requires grad, with grad mode on: RuntimeError, as torch;
* otherwise (an op result, or a constant given a gradient-carrying operand): the op is recorded
  and the tensor becomes its result, keeping its identity (``h += x`` in a forward pass, ``acc +=
  loss``). Its array is then a new one: numpy views of the old value keep the old value (a torch
  view would follow it), and the nodes that saved the old value keep it, so gradients are right.

``fill_(v)`` and ``zero_()`` write in place outside the graph only (under ``no_grad``, or on a
tensor that takes no gradient); on a tensor that requires grad with grad mode on they raise.

numpy: ``np.asarray(t)`` is ``t``'s values, detached (no gradient flows through numpy; torch
refuses this for tensors that require grad, minigrad documents it instead, so that plotting and
printing parameters just work). numpy ufuncs and functions on tensors dispatch to the minigrad
op of the same meaning (``np.exp(x)`` is ``mg.exp(x)``, ``np.zeros_like(x)`` is
``mg.zeros_like(x)``); predicates and shape queries (``np.isfinite``, ``np.allclose``,
``np.shape``) run on the values; anything else raises a TypeError naming the function and the
way out. No call ever makes an array of dtype object.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from . import checks, creation, hooks, ops
from .tensor import Tensor, is_grad_enabled

__all__: list[str] = []  # nothing to import: importing this module attaches the protocols


# ---------------------------------------------------------------------------
# Truth, conversion, formatting
# ---------------------------------------------------------------------------
def _one(t: Tensor, what: str, error: type = RuntimeError) -> Any:
    """The Python value of a one-element tensor, or the error torch gives."""
    if t.data.size == 1:
        return t.data.item()
    if what == "bool":
        n = "no values" if t.data.size == 0 else f"more than one value (shape {t.shape})"
        raise RuntimeError(
            f"Boolean value of a Tensor with {n} is ambiguous: use (t).any() or (t).all(), or compare one element"
        )
    raise error(f"only one-element tensors can be converted to a Python {what}, got shape {t.shape}")


def _index(t: Tensor) -> int:
    if t.data.dtype.kind not in "iu" or t.data.size != 1:
        raise TypeError(
            f"only integer tensors of a single element can be used as an index, got dtype {t.dtype} shape {t.shape}"
        )
    return int(t.data.item())


def _format(t: Tensor, spec: str) -> str:
    if t.data.size == 1:
        return format(t.data.item(), spec)
    if not spec:
        return str(t)
    raise TypeError(
        f"format spec {spec!r} needs a one-element tensor, got shape {t.shape}: "
        "format its elements (t.tolist()) or reduce it first (e.g. t.mean())"
    )


# ---------------------------------------------------------------------------
# Containers: dim 0
# ---------------------------------------------------------------------------
def _len(t: Tensor) -> int:
    if t.ndim == 0:
        raise TypeError("len() of a 0-d tensor")
    return t.shape[0]


def _iter(t: Tensor) -> Any:
    if t.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return iter(ops.unbind(t, 0))  # one node for all rows; each row's δ flows back


def _contains(t: Tensor, v: Any) -> bool:
    return bool(np.any((t == v).data))


# ---------------------------------------------------------------------------
# Comparisons: boolean masks (constants)
# ---------------------------------------------------------------------------
def _comparison(symbol: str, f: Callable) -> Callable:
    def compare(self: Tensor, other: Any) -> Any:
        try:
            o = ops._lift(other, self)
        except TypeError:  # None, a string, an object: Python falls back to identity (== is False)
            return NotImplemented
        try:
            return Tensor(f(self.data, o.data))
        except ValueError:
            raise ValueError(f"{symbol}: shapes {self.shape} and {o.shape} do not broadcast") from None

    compare.__name__ = f.__name__
    return compare


# ---------------------------------------------------------------------------
# In-place operators
# ---------------------------------------------------------------------------
def _inplace(symbol: str, op: Callable, ufunc: np.ufunc) -> Callable:
    def method(self: Tensor, other: Any) -> Tensor:
        other_grad = isinstance(other, Tensor) and other.requires_grad
        if not (is_grad_enabled() and (self.requires_grad or other_grad)):
            _write(self, symbol, ufunc, other)
            return self
        if self._edge is None and self.requires_grad:
            raise RuntimeError(
                f"a leaf tensor that requires grad is being used in an in-place operation ({symbol}). "
                "To update a parameter write it under no_grad: with mg.no_grad(): p -= lr * p.grad; "
                f"to build a new value write x = x {symbol[:-1]} y"
            )
        base = self if self._edge is not None else self.detach()  # a constant: the op's input is its old value
        out = op(base, other)
        if out.shape != self.shape:
            raise ValueError(f"{symbol}: the result's shape {out.shape} differs from the tensor's {self.shape}")
        if out.dtype != self.dtype:
            if not np.can_cast(out.dtype, self.dtype, "same_kind"):
                raise TypeError(f"{symbol}: the result's dtype {out.dtype} cannot be stored in a {self.dtype} tensor")
            out = ops.to(out, self.dtype)
        self.data, self.requires_grad, self._edge, self._grad = out.data, out.requires_grad, out._edge, None
        self.name = self._name  # the new node carries the name (pictures)
        return self

    method.__name__ = f"__i{ufunc.__name__}__"
    return method


def _fill(t: Tensor, value: Any) -> Tensor:
    """``t.fill_(v)`` / ``t.zero_()``: every element set to v in place, outside the graph only."""
    if is_grad_enabled() and t.requires_grad:
        what = "a leaf tensor that requires grad" if t._edge is None else "a tensor made by an op"
        raise RuntimeError(f"fill_/zero_ on {what} while grad mode is on: do it under mg.no_grad()")
    _write(t, "fill_", lambda a, v, out, casting: np.copyto(out, v, casting=casting), value)
    return t


def _write(t: Tensor, symbol: str, ufunc: np.ufunc, other: Any) -> None:
    """t.data ∘= other in place (nothing is recorded), counted as a write (checks.py)."""
    o = other.data if isinstance(other, Tensor) else other
    try:
        if isinstance(t.data, np.ndarray):
            ufunc(t.data, o, out=t.data, casting="same_kind")
        else:  # a numpy scalar (the 0-d result of a full reduction): no other tensor shares it
            r = np.asarray(np.broadcast_to(o, ()) if symbol == "fill_" else ufunc(t.data, o))
            if r.shape != () or not np.can_cast(r.dtype, t.dtype, "same_kind"):
                raise ValueError(f"the result has shape {r.shape} and dtype {r.dtype}")
            t.data = r.astype(t.dtype)
    except (ValueError, TypeError) as e:  # numpy's UFuncTypeError is a TypeError
        shape = getattr(o, "shape", ())
        raise (TypeError if isinstance(e, TypeError) else ValueError)(
            f"{symbol} in place on a tensor of shape {t.shape} and dtype {t.dtype} with an operand of shape "
            f"{shape}: {e} (the result must keep the tensor's shape and dtype)"
        ) from None
    checks.mark_modified(t)


# ---------------------------------------------------------------------------
# numpy: values out, ufuncs and functions dispatched
# ---------------------------------------------------------------------------
def _array(t: Tensor, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
    """``np.asarray(t)``: the values, detached (no gradient flows through numpy)."""
    a = np.asarray(t.data)
    if dtype is not None and np.dtype(dtype) != a.dtype:
        if copy is False:
            raise ValueError(f"np.asarray(t, dtype={dtype}, copy=False): the values are {a.dtype}; a cast copies")
        return a.astype(dtype)
    return a.copy() if copy else a


_UFUNCS: dict[str, Callable] = {
    "add": ops.add, "subtract": ops.sub, "multiply": ops.mul, "divide": ops.div, "power": ops.pow,
    "negative": ops.neg, "matmul": ops.matmul, "exp": ops.exp, "log": ops.log, "tanh": ops.tanh,
    "sqrt": ops.sqrt, "absolute": ops.abs, "maximum": ops.maximum, "minimum": ops.minimum,
    "equal": operator.eq, "not_equal": operator.ne, "less": operator.lt, "less_equal": operator.le,
    "greater": operator.gt, "greater_equal": operator.ge,
}  # fmt: skip
_VALUE_UFUNCS = {"isfinite", "isnan", "isinf", "signbit", "logical_not", "logical_and", "logical_or", "logical_xor"}


def _values(v: Any) -> Any:
    """Tensors inside v (lists and tuples too) as their arrays."""
    if isinstance(v, Tensor):
        return v.data
    if isinstance(v, list | tuple):
        return type(v)(_values(x) for x in v)
    return v


def _array_ufunc(t: Tensor, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    name = ufunc.__name__
    if method != "__call__" or kwargs:
        how = f"numpy.{name}.{method}" if method != "__call__" else f"numpy.{name} with {sorted(kwargs)}"
        raise TypeError(
            f"{how} is not supported on minigrad Tensors (out=, where=, dtype= and ufunc methods are not): "
            f"use minigrad ops, or numpy on the values: np.{name}(t.numpy())"
        )
    if name in _VALUE_UFUNCS:  # a predicate: no gradient to lose
        return Tensor(ufunc(*_values(inputs)))
    op = _UFUNCS.get(name)
    if op is None:
        raise TypeError(
            f"numpy.{name} has no minigrad op, so it cannot take gradients through a Tensor: "
            f"use a minigrad op (see help(minigrad)), or np.{name}(t.numpy()) for the values without gradient"
        )
    if op in (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge):
        inputs = tuple(ops._lift(x) for x in inputs)  # numpy's side too: Tensor's comparison runs
    return op(*inputs)


def _keywords(f: Callable, **renames: str) -> Callable:
    """f with numpy's keyword names mapped to minigrad's (``a_min`` → ``lo``)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("out") is not None:
            raise TypeError(f"numpy's out= cannot write a Tensor; call mg.{f.__name__} and use its result")
        kwargs.pop("out", None)
        return f(*args, **{renames.get(k, k): v for k, v in kwargs.items()})

    call.__name__ = f.__name__
    return call


def _transpose(x: Any, axes: Any = None) -> Tensor:
    return ops.transpose(x) if axes is None else ops.transpose(x, tuple(axes))


def _squeeze(x: Any, axis: Any = None) -> Tensor:
    return ops.squeeze(x, axis)


def _argm(f: Callable) -> Callable:
    return lambda x, axis=None, keepdims=False: f(x, axis, keepdim=keepdims)


_FUNCTIONS: dict[Any, Callable] = {
    np.sum: _keywords(ops.sum), np.mean: _keywords(ops.mean), np.max: _keywords(ops.max),
    np.amax: _keywords(ops.max), np.min: _keywords(ops.min), np.amin: _keywords(ops.min),
    np.argmax: _argm(ops.argmax), np.argmin: _argm(ops.argmin),
    np.concatenate: _keywords(ops.concat), np.stack: _keywords(ops.stack),
    np.where: ops.where, np.clip: _keywords(ops.clip, a_min="lo", a_max="hi", min="lo", max="hi"),
    np.reshape: _keywords(ops.reshape, newshape="shape"), np.transpose: _transpose,
    np.squeeze: _squeeze, np.expand_dims: ops.unsqueeze,
    np.zeros_like: creation.zeros_like, np.ones_like: creation.ones_like, np.full_like: creation.full_like,
}  # fmt: skip
_VALUE_FUNCTIONS = {
    np.shape, np.ndim, np.size, np.allclose, np.isclose, np.array_equal, np.array_equiv,
    np.count_nonzero, np.any, np.all, np.argsort, np.nonzero, np.result_type, np.iscomplexobj,
    np.isrealobj, np.round, np.around,
}  # fmt: skip


def _array_function(t: Tensor, func: Callable, types: Any, args: tuple, kwargs: dict) -> Any:
    if func in _VALUE_FUNCTIONS:  # a query or a predicate: it runs on the values
        return func(*_values(args), **_values(kwargs))
    f = _FUNCTIONS.get(func)
    if f is None:
        name = getattr(func, "__name__", str(func))
        raise TypeError(
            f"numpy.{name} is not supported on minigrad Tensors (it would lose the gradient): use a minigrad "
            f"op (see help(minigrad)), or np.{name} on the values, t.numpy(), without gradient"
        )
    return f(*args, **kwargs)


# ---------------------------------------------------------------------------
# Attach
# ---------------------------------------------------------------------------
def _install() -> None:
    T = Tensor
    T.__bool__ = lambda self: bool(_one(self, "bool"))
    T.__float__ = lambda self: float(_one(self, "float", ValueError))
    T.__int__ = lambda self: int(_one(self, "int", ValueError))
    T.__index__ = _index
    T.__format__ = _format
    T.__len__ = _len
    T.__iter__ = _iter
    T.__contains__ = _contains
    for symbol, name, f in (
        ("==", "__eq__", np.equal), ("!=", "__ne__", np.not_equal), ("<", "__lt__", np.less),
        ("<=", "__le__", np.less_equal), (">", "__gt__", np.greater), (">=", "__ge__", np.greater_equal),
    ):  # fmt: skip
        setattr(T, name, _comparison(symbol, f))
    T.__hash__ = object.__hash__  # by identity, as torch: dict keys and sets of tensors keep working
    for symbol, name, op, ufunc in (
        ("+=", "__iadd__", ops.add, np.add), ("-=", "__isub__", ops.sub, np.subtract),
        ("*=", "__imul__", ops.mul, np.multiply), ("/=", "__itruediv__", ops.div, np.true_divide),
        ("**=", "__ipow__", ops.pow, np.power),
    ):  # fmt: skip
        setattr(T, name, _inplace(symbol, op, ufunc))
        setattr(T, f"{op.__name__}_", getattr(T, name))  # x.add_(y), x.mul_(y), …: the same rules
    T.fill_ = _fill
    T.zero_ = lambda self: _fill(self, 0)
    T.__array__ = _array
    T.__array_ufunc__ = _array_ufunc
    T.__array_function__ = _array_function
    T.numpy = lambda self: np.asarray(self.data)
    T.item = lambda self: _one(self, "scalar", ValueError)
    T.tolist = lambda self: np.asarray(self.data).tolist()
    T.any = lambda self, dim=None, keepdim=False: Tensor(np.any(self.data, axis=dim, keepdims=keepdim))
    T.all = lambda self, dim=None, keepdim=False: Tensor(np.all(self.data, axis=dim, keepdims=keepdim))
    T.register_hook = hooks.register_hook


_install()
