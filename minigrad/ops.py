"""Every differentiable op: the forward on numpy arrays, and its VJP right beside it.

Each op is one small function of the same shape::

    def tanh(x):
        y = np.tanh(x.data)                                            # forward
        return _make(y, "tanh", (x,), lambda g: (g * (1 - y * y),))    # δx = δy ⊙ (1 − y²)

The lambda is the vector-Jacobian product: given g = δy = ∂L/∂y it returns δ of each input
(``None`` for inputs that take no gradient). It closes over exactly the arrays it needs, never
the input tensors, so freeing the closure frees the saved arrays. ``_make`` (in tensor.py)
records the node only when a gradient can flow, so these functions are also the plain forward.

Notation (the lecture notes'): y is the op's output, δv = ∂L/∂v, ⊙ the elementwise product,
ᵀ a transpose. A broadcasting op sums each input's δ back to that input's shape (``unbroadcast``).
Every op takes lists, numpy arrays and numbers where it takes a tensor (``_lift`` makes them
constant tensors), as the operators do.

Non-differentiable points follow PyTorch: relu'(0) = 0, |x|'(0) = 0, sqrt'(0) = inf,
clip passes the gradient where lo ≤ x ≤ hi, max splits it evenly between ties.

``out=``: ops marked ``@buffers.accepts_out`` (and ``stack``) can write their result into an
array the caller gives, as numpy does; the checks live in buffers.py, a row only passes ``out``
on to its numpy call.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import buffers, dataguards
from .arrays import as_array
from .tensor import Tensor

_make = Tensor._make
_make_many = Tensor._make_many

__all__ = [
    "add", "sub", "mul", "div", "pow", "lerp", "neg", "matmul", "addmm",
    "exp", "log", "tanh", "sigmoid", "relu", "sqrt", "abs",
    "sum", "mean", "max", "reshape", "transpose", "getitem",
    "concat", "stack", "split", "unbind", "where", "clip",
    "softmax", "log_softmax", "embedding", "scale_grad",
]  # fmt: skip


# ---------------------------------------------------------------------------
# Helpers: turning operands into tensors, undoing broadcasting
# ---------------------------------------------------------------------------
def _lift(v: Any, like: Tensor | None = None) -> Tensor:
    """Make a constant tensor from a Python scalar or array operand.

    Python scalars take the dtype of the tensor they meet, so float32 stays float32.
    """
    if isinstance(v, Tensor):
        return v
    if like is not None and isinstance(v, int | float) and like.data.dtype.kind == "f":
        return Tensor(np.asarray(v, dtype=like.data.dtype))
    return Tensor(as_array(v))


def _lift2(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    if type(a) is not Tensor:
        a = _lift(a, b if isinstance(b, Tensor) else None)
    if type(b) is not Tensor:
        b = _lift(b, a)
    return a, b


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum g over the axes that broadcasting added or stretched, back to ``shape``."""
    if g.shape == shape:  # the common case: nothing was broadcast, no reduction pass
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g


def _broadcast(op: str, f: Any, a: Tensor, b: Tensor, out: np.ndarray | None = None) -> np.ndarray:
    """f(a, b) on the arrays (written into ``out`` when given), or an error naming the op and both shapes."""
    try:
        return f(a.data, b.data) if out is None else f(a.data, b.data, out=out)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {a.shape} and {b.shape} do not broadcast (trailing dimensions must be equal or 1)"
        ) from None


def _check_float(op: str, x: Tensor) -> None:
    if x.data.dtype.kind != "f":
        raise TypeError(f"{op} needs a floating-point tensor, got dtype {x.dtype}")


def _axis(op: str, axis: Any, ndim: int) -> int:
    """One axis argument as an index in [0, ndim), or a clear error naming the op, the axis and ndim."""
    if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
        raise TypeError(f"{op}: an axis must be an integer, got {axis!r}")
    n = builtins.max(ndim, 1)  # builtins.max: this module's max is the op; a 0-d tensor accepts axis 0 or -1
    if not -n <= axis < n:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return int(axis) % n


# ---------------------------------------------------------------------------
# Arithmetic (broadcasting: each VJP sums back to its input's shape)
# ---------------------------------------------------------------------------
@buffers.accepts_out
def add(a: Any, b: Any, out: np.ndarray | None = None) -> Tensor:
    """a + b, elementwise with broadcasting."""
    a, b = _lift2(a, b)
    y = _broadcast("add", np.add, a, b, out)
    sa, sb = a.shape, b.shape  # δa = δy,  δb = δy
    return _make(y, "add", (a, b), lambda g: (unbroadcast(g, sa), unbroadcast(g, sb)))


@buffers.accepts_out
def sub(a: Any, b: Any, out: np.ndarray | None = None) -> Tensor:
    """a − b, elementwise with broadcasting."""
    a, b = _lift2(a, b)
    y = _broadcast("sub", np.subtract, a, b, out)
    sa, sb = a.shape, b.shape  # δa = δy,  δb = −δy
    return _make(y, "sub", (a, b), lambda g: (unbroadcast(g, sa), unbroadcast(-g, sb)))


@buffers.accepts_out
def mul(a: Any, b: Any, out: np.ndarray | None = None) -> Tensor:
    """a ⊙ b, the elementwise product with broadcasting."""
    a, b = _lift2(a, b)
    y = _broadcast("mul", np.multiply, a, b, out)
    # δa = δy ⊙ b,  δb = δy ⊙ a: each side's array is saved only if the other side takes a gradient
    # (x * mask keeps no copy of x); the closure holds arrays, never the input tensors
    ad = a.data if b.requires_grad else None
    bd = b.data if a.requires_grad else None
    sa, sb = a.shape, b.shape
    return _make(
        y,
        "mul",
        (a, b),
        lambda g: (
            None if bd is None else unbroadcast(g * bd, sa),
            None if ad is None else unbroadcast(g * ad, sb),
        ),
    )


def div(a: Any, b: Any) -> Tensor:
    """a / b, elementwise with broadcasting."""
    a, b = _lift2(a, b)
    y = _broadcast("div", np.divide, a, b)
    need_a, need_b = a.requires_grad, b.requires_grad  # δa = δy / b,  δb = −δy ⊙ a / b²
    ad, bd, sa, sb = a.data if need_b else None, b.data, a.shape, b.shape
    return _make(
        y,
        "div",
        (a, b),
        lambda g: (
            unbroadcast(g / bd, sa) if need_a else None,
            unbroadcast(-g * ad / (bd * bd), sb) if need_b else None,
        ),
    )


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 (shadows builtin inside this module only)
    """a ** b, elementwise with broadcasting.

    At 0, PyTorch's conventions: δa = 0 where b = 0 (even at a = 0), δb = 0 where a = 0 and b ≥ 0;
    elsewhere the formulas as they stand (a < 0 gives NaN in δb, a = 0 with b < 0 gives −inf).
    """
    a, b = _lift2(a, b)
    if a.data.dtype.kind in "iub" and b.data.dtype.kind in "iu" and (b.data < 0).any():
        raise ValueError(
            f"pow: integers to negative integer powers are not allowed (dtypes {a.dtype} and {b.dtype}); "
            "use a floating-point base, e.g. mg.Tensor(x, dtype=float)"
        )
    y = _broadcast("pow", np.power, a, b)
    need_a, need_b = a.requires_grad, b.requires_grad
    ad, bd, sa, sb = a.data, b.data, a.shape, b.shape
    yd = y if need_b else None

    def vjp(g):  # δa = δy ⊙ b a^(b−1) (0 where b = 0),  δb = δy ⊙ y ln a (0 where a = 0, b ≥ 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            da = unbroadcast(g * np.where(bd == 0, 0, bd * ad ** (bd - 1)), sa) if need_a else None
            db = unbroadcast(g * np.where((ad == 0) & (bd >= 0), 0, yd * np.log(ad)), sb) if need_b else None
        return da, db

    return _make(y, "pow", (a, b), vjp)


@buffers.accepts_out
def lerp(a: Any, b: Any, w: Any, out: np.ndarray | None = None) -> Tensor:
    """a + w ⊙ (b − a), the linear interpolation torch.lerp, all three broadcasting.

    The GRU's h_t = (1 − z) ⊙ n + z ⊙ h_{t-1} is ``lerp(n, h_prev, z)``: one node instead of
    three (sub, mul, add). It saves a, b and w themselves, never b − a: in the GRU all three are
    saved by other nodes anyway (tanh keeps n, σ keeps z, the next step's matmul keeps h), so
    this node adds no array.
    """
    a, b = _lift2(a, b)
    w, a = _lift2(w, a)
    try:
        y = np.multiply(w.data, b.data - a.data, out=out)
    except ValueError:
        raise ValueError(f"lerp: shapes a {a.shape}, b {b.shape}, w {w.shape} do not broadcast") from None
    y += a.data  # in place: no second array (y is fresh, or the caller's out)
    need_a, need_b, need_w = a.requires_grad, b.requires_grad, w.requires_grad
    ad, bd = (a.data, b.data) if need_w else (None, None)
    wd = w.data if need_a or need_b else None
    sa, sb, sw = a.shape, b.shape, w.shape  # δa = δy ⊙ (1 − w),  δb = δy ⊙ w,  δw = δy ⊙ (b − a)
    return _make(
        y,
        "lerp",
        (a, b, w),
        lambda g: (
            unbroadcast(g - g * wd, sa) if need_a else None,
            unbroadcast(g * wd, sb) if need_b else None,
            unbroadcast(g * (bd - ad), sw) if need_w else None,
        ),
    )


def neg(x: Tensor) -> Tensor:
    """−x, elementwise."""
    x = _lift(x)
    return _make(-x.data, "neg", (x,), lambda g: (-g,))  # δx = −δy


def matmul(a: Any, b: Any) -> Tensor:
    """a @ b with numpy's rules: 1-D operands, batches that broadcast.

    δa = δy bᵀ,  δb = aᵀ δy  (on the last two axes, summed over broadcast batches).
    """
    a, b = _lift2(a, b)
    ad, bd = a.data, b.data
    if ad.ndim == 0 or bd.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}")
    fold = ad.ndim > 2 and bd.ndim == 2  # x (…, k) @ W (k, m): one (n, k) @ (k, m) GEMM, n = the leading axes' product
    try:
        y = (ad.reshape(-1, ad.shape[-1]) @ bd).reshape(*ad.shape[:-1], bd.shape[1]) if fold else ad @ bd
    except ValueError:
        k_a = ad.shape[-1]
        k_b = bd.shape[0] if bd.ndim == 1 else bd.shape[-2]
        why = f"{k_a} != {k_b}" if k_a != k_b else "batch dimensions do not broadcast"
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align ({why})") from None
    # δa needs b and δb needs a: keep only what a gradient that will flow needs
    sa, sb = ad.shape, bd.shape
    ad = ad if b.requires_grad else None
    bd = bd if a.requires_grad else None
    if len(sa) == 2 and len(sb) == 2:  # the common case, without the reshaping in _matmul_vjp
        return _make(
            y,
            "matmul",
            (a, b),
            lambda g: (None if bd is None else g @ bd.T, None if ad is None else ad.T @ g),
        )
    if fold:  # a readout over a sequence: A = a as (n, k), G = δy as (n, m), one GEMM each way,
        # δa = (G Wᵀ) reshaped to a's shape,  δb = Aᵀ G  (not one GEMM per batch and a sum)
        A = None if ad is None else ad.reshape(-1, sa[-1])
        return _make(
            y,
            "matmul",
            (a, b),
            lambda g: (
                None if bd is None else (g.reshape(-1, sb[1]) @ bd.T).reshape(sa),
                None if A is None else A.T @ g.reshape(-1, sb[1]),
            ),
        )
    return _make(y, "matmul", (a, b), lambda g: _matmul_vjp(g, ad, bd, sa, sb))


def _matmul_vjp(
    g: np.ndarray, ad: np.ndarray | None, bd: np.ndarray | None, sa: tuple, sb: tuple
) -> tuple[np.ndarray | None, np.ndarray | None]:
    # Promote 1-D operands the way numpy does (a → (1, k), b → (k, 1)) and put
    # the removed axes back into g, then use the 2-D rule batched.
    # ad is None when b takes no gradient (δb is not needed), bd likewise.
    G = g
    if len(sb) == 1:
        G = G[..., None]
    if len(sa) == 1:
        G = G[..., None, :]
    da = db = None
    if bd is not None:  # δa = δy bᵀ
        B = bd[:, None] if bd.ndim == 1 else bd
        A_shape = (1, *sa) if len(sa) == 1 else sa
        da = unbroadcast(G @ np.swapaxes(B, -1, -2), A_shape).reshape(sa)
    if ad is not None:  # δb = aᵀ δy
        A = ad[None, :] if ad.ndim == 1 else ad
        B_shape = (*sb, 1) if len(sb) == 1 else sb
        db = unbroadcast(np.swapaxes(A, -1, -2) @ G, B_shape).reshape(sb)
    return da, db


def addmm(c: Any, a: Any, b: Any) -> Tensor:
    """c + a @ b as ONE node (torch.addmm), for 2-D a and b; c broadcasts.

    The recurrent step's pre-activation W_ih x_t + b + h_{t-1} W_hhᵀ is exactly this:
    one node per step instead of two (a matmul and an add).
    δc = δy (summed to c's shape),  δa = δy bᵀ,  δb = aᵀ δy.
    """
    c, a = _lift2(c, a)
    a, b = _lift2(a, b)
    ad, bd, sc = a.data, b.data, c.shape
    if ad.ndim != 2 or bd.ndim != 2 or ad.shape[1] != bd.shape[0]:
        raise ValueError(f"addmm: needs 2-D a (n, k) and b (k, m), got shapes {a.shape} and {b.shape}")
    y = ad @ bd
    try:
        y += c.data  # in place into the fresh product: no second (n, m) array
    except ValueError:
        raise ValueError(f"addmm: c of shape {c.shape} does not broadcast onto a @ b of shape {y.shape}") from None
    ad = ad if b.requires_grad else None  # saved only for the gradients that will flow (as in matmul)
    bd = bd if a.requires_grad else None
    need_c = c.requires_grad
    return _make(
        y,
        "addmm",
        (c, a, b),
        lambda g: (
            unbroadcast(g, sc) if need_c else None,
            None if bd is None else g @ bd.T,
            None if ad is None else ad.T @ g,
        ),
    )


# ---------------------------------------------------------------------------
# Elementwise functions
# ---------------------------------------------------------------------------
def exp(x: Tensor) -> Tensor:
    """eˣ, elementwise."""
    x = _lift(x)
    y = np.exp(x.data)
    return _make(y, "exp", (x,), lambda g: (g * y,))  # δx = δy ⊙ eˣ = δy ⊙ y


def log(x: Tensor) -> Tensor:
    """ln x, the natural logarithm, elementwise."""
    x = _lift(x)
    xd = x.data
    return _make(np.log(xd), "log", (x,), lambda g: (g / xd,))  # δx = δy / x


@buffers.accepts_out
def tanh(x: Tensor, out: np.ndarray | None = None) -> Tensor:
    """tanh x, elementwise."""
    x = _lift(x)
    y = np.tanh(x.data, out=out)
    return _make(y, "tanh", (x,), lambda g: (g * (1 - y * y),))  # δx = δy ⊙ (1 − y²)


@buffers.accepts_out
def sigmoid(x: Tensor, out: np.ndarray | None = None) -> Tensor:
    """σ(x) = 1 / (1 + e⁻ˣ), elementwise, without overflow for any x."""
    x = _lift(x)
    # σ(x) = ½ tanh(x/2) + ½: the same function, and it never overflows (computed in place in one array)
    y = np.asarray(np.multiply(x.data, 0.5, out=out))  # asarray: a 0-d x gives a numpy scalar
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return _make(y, "sigmoid", (x,), lambda g: (g * y * (1 - y),))  # δx = δy ⊙ σ(1 − σ)


@buffers.accepts_out
def relu(x: Tensor, out: np.ndarray | None = None) -> Tensor:
    """max(x, 0), elementwise."""
    x = _lift(x)
    mask = x.data > 0  # δx = δy ⊙ [x > 0]: relu'(0) = 0
    return _make(np.multiply(x.data, mask, out=out), "relu", (x,), lambda g: (g * mask,))


def sqrt(x: Tensor) -> Tensor:
    """√x, elementwise."""
    x = _lift(x)
    y = np.sqrt(x.data)
    return _make(y, "sqrt", (x,), lambda g: (g / (2 * y),))  # δx = δy / (2√x): inf at 0


def abs(x: Tensor) -> Tensor:  # noqa: A001
    """|x|, elementwise."""
    x = _lift(x)
    s = np.sign(x.data)  # δx = δy ⊙ sign(x): |x|'(0) = 0
    return _make(np.abs(x.data), "abs", (x,), lambda g: (g * s,))


def clip(x: Tensor, lo: float | None = None, hi: float | None = None) -> Tensor:
    """x limited to [lo, hi], elementwise (a bound that is None does not limit)."""
    x = _lift(x)
    xd = x.data
    inside = np.ones(xd.shape, dtype=bool)  # δx = δy where lo ≤ x ≤ hi, 0 elsewhere
    if lo is not None:
        inside &= xd >= lo
    if hi is not None:
        inside &= xd <= hi
    # bounds: unused by δ, read by mg.compile to replay the clip (compiler/trace.py ATTRS)
    return _make(np.clip(xd, lo, hi), "clip", (x,), lambda g, bounds=(lo, hi): (g * inside,))


def scale_grad(x: Tensor, xi: float) -> Tensor:
    """Identity forward; the gradient is multiplied by ``xi`` on its way back."""
    x = _lift(x)
    return _make(x.data, "scale_grad", (x,), lambda g: (g * xi,))  # δx = ξ δy


# ---------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------
Axis = int | Sequence[int] | None  # numpy's axis=, PyTorch's dim=


def _dim_axis(op: str, axis: Any, dim: Any, keepdims: bool | None, keepdim: bool | None) -> tuple[Any, bool]:
    """(axis, keepdims) from numpy's names or PyTorch's (``dim=``, ``keepdim=``), never both."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{op}: give axis= (numpy's name) or dim= (PyTorch's), not both")
        axis = dim
    if keepdim is not None:
        if keepdims is not None:
            raise TypeError(f"{op}: give keepdims= (numpy's name) or keepdim= (PyTorch's), not both")
        keepdims = keepdim
    return axis, bool(keepdims)


def _axes(axis: int | Sequence[int] | None, ndim: int, op: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple | list) else (axis,)
    out = [_axis(op, a, ndim) for a in axes]
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis} names the same axis twice")
    return tuple(out) if ndim else ()


def _expand(g: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """Give g back the reduced axes so it broadcasts against the input."""
    return g if keepdims else np.expand_dims(g, axes)


def sum(
    x: Tensor, axis: Axis = None, keepdims: bool | None = None, *, dim: Axis = None, keepdim: bool | None = None
) -> Tensor:  # noqa: A001
    """Σ x over ``axis`` (an int, several, or None for all; PyTorch's ``dim=``/``keepdim=`` too)."""
    axis, keepdims = _dim_axis("sum", axis, dim, keepdims, keepdim)
    x = _lift(x)
    axes = _axes(axis, x.ndim, "sum")
    shape = x.shape  # δx = δy, broadcast back over the summed axes
    return _make(
        np.sum(x.data, axis=axes, keepdims=keepdims),
        "sum",
        (x,),
        lambda g: (np.broadcast_to(_expand(g, axes, keepdims), shape),),
    )


def mean(
    x: Tensor, axis: Axis = None, keepdims: bool | None = None, *, dim: Axis = None, keepdim: bool | None = None
) -> Tensor:
    """The mean of x over ``axis`` (an int, several, or None for all; ``dim=``/``keepdim=`` too)."""
    axis, keepdims = _dim_axis("mean", axis, dim, keepdims, keepdim)
    x = _lift(x)
    axes = _axes(axis, x.ndim, "mean")
    shape = x.shape
    n = int(np.prod([shape[a] for a in axes])) if axes else 1  # δx = δy / n, broadcast back over the axes
    return _make(
        np.mean(x.data, axis=axes, keepdims=keepdims),
        "mean",
        (x,),
        lambda g: (np.broadcast_to(_expand(g, axes, keepdims) / n, shape),),
    )


def max(
    x: Tensor, axis: Axis = None, keepdims: bool | None = None, *, dim: int | None = None, keepdim: bool | None = None
) -> Any:  # noqa: A001
    """The largest element of x over ``axis`` (an int, several, or None for all).

    ``dim=`` is PyTorch's form: it returns ``(values, indices)``, as ``torch.max(x, dim)`` does.
    """
    if dim is not None:
        return _extreme_along("max", x, dim, axis, keepdims, keepdim)
    axis, keepdims = _dim_axis("max", axis, None, keepdims, keepdim)
    return _extreme("max", np.max, x, axis, keepdims)  # δx = δy at the arg-max (split evenly between ties)


def _extreme(op: str, reduce: Any, x: Any, axis: Axis, keepdims: bool) -> Tensor:
    """max or min (``reduce``) of x over ``axis``; the VJP sends δy to where the extreme sits."""
    x = _lift(x)
    if x.size == 0:
        raise ValueError(f"{op} of an empty tensor of shape {x.shape}")
    axes = _axes(axis, x.ndim, op)
    xd = x.data
    y = reduce(xd, axis=axes, keepdims=True)
    hit = xd == y  # where the extreme is: a boolean mask is all the VJP keeps of x

    def vjp(g):  # δx = δy at the arg-max (arg-min), split evenly between ties
        # count the ties in g's dtype: an integer count would turn a float32 gradient into float64
        ties = hit.sum(axis=axes, keepdims=True, dtype=g.dtype)
        return (hit * (_expand(g, axes, keepdims) / ties),)

    return _make(y if keepdims else np.squeeze(y, axis=axes), op, (x,), vjp)


# ---------------------------------------------------------------------------
# Shape and indexing
# ---------------------------------------------------------------------------
def reshape(x: Tensor, *shape: Any) -> Tensor:
    """x's elements, in order, in a new shape (one -1 is inferred)."""
    x = _lift(x)
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    try:
        y = x.data.reshape(shape)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {shape}"
        ) from None
    old = x.shape  # δx = δy reshaped back to x's shape
    return _make(y, "reshape", (x,), lambda g: (g.reshape(old),))


def transpose(x: Tensor, *axes: int) -> Tensor:
    """x with its axes permuted (reversed when no axes are given).

    ``transpose(x, d0, d1)`` swaps two axes, as torch's does (also on a 2-D x, where (0, 1)
    swaps); ``transpose(x, (2, 0, 1))`` or three or more integers give numpy's permutation.
    """
    x = _lift(x)
    if len(axes) == 1 and isinstance(axes[0], tuple | list):
        axes = tuple(axes[0])
    elif len(axes) == 2:  # torch.transpose(x, d0, d1): swap d0 and d1, keep the rest
        d0, d1 = (_axis("transpose", a, x.ndim) for a in axes)
        order = list(range(x.ndim))
        order[d0], order[d1] = d1, d0
        axes = tuple(order)
    if not axes:
        axes = tuple(reversed(range(x.ndim)))
    normal = [
        _axis("transpose", a, x.ndim) for a in axes
    ]  # each an integer in range (negative ones counted from the end)
    if sorted(normal) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of shape {x.shape}")
    axes = tuple(normal)  # negative axes: the inverse permutation needs them normalised
    inverse = tuple(np.argsort(axes))  # δx = δyᵀ with the inverse permutation
    return _make(x.data.transpose(axes), "transpose", (x,), lambda g: (g.transpose(inverse),))


def _plain_index(idx: Any) -> Any:
    """Tensors inside an index become their arrays."""
    if isinstance(idx, Tensor):
        return idx.data
    if isinstance(idx, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in idx)
    return idx


def _is_basic(idx: Any) -> bool:
    """Slices, ints, None and Ellipsis only: each element is picked at most once."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    return all(isinstance(i, slice | int | np.integer) or i is None or i is Ellipsis for i in parts)


def getitem(x: Tensor, idx: Any) -> Tensor:
    """x[idx] with numpy's indexing: slices, ints, None, Ellipsis and integer arrays."""
    idx = _plain_index(idx)
    xd = x.data
    try:
        y = xd[idx]
    except IndexError as e:
        raise IndexError(f"getitem: index {idx!r} is invalid for a tensor of shape {x.shape}: {e}") from None
    basic, shape, dtype = _is_basic(idx), xd.shape, xd.dtype  # the VJP needs x's shape, not its data

    def vjp(g):  # δx = δy scattered back into zeros; repeated integer indices accumulate
        dx = np.zeros(shape, dtype)
        if basic:
            dx[idx] = g
        else:
            np.add.at(dx, idx, g)
        return (dx,)

    return _make(np.asarray(y), "getitem", (x,), vjp)


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """The tensors joined along an existing ``axis``."""
    tensors = tuple(_lift(t) for t in tensors)
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    try:
        y = np.concatenate([t.data for t in tensors], axis=axis)
    except (ValueError, np.exceptions.AxisError) as e:
        shapes = ", ".join(str(t.shape) for t in tensors)
        raise ValueError(f"concat along axis {axis}: shapes {shapes} do not fit ({e})") from None
    cuts = np.cumsum([t.shape[axis] for t in tensors])[:-1]
    return _make(y, "concat", tensors, lambda g: tuple(np.split(g, cuts, axis=axis)))  # δx_i = slice i of δy


def stack(tensors: Sequence[Tensor], axis: int = 0, out: np.ndarray | None = None) -> Tensor:
    """The tensors, all of one shape, along a new ``axis``.

    ``out``: numpy's out=. A tensor already in its own slot of ``out`` (the RNN layers write h_t
    straight into row t) is left there: see ``buffers.stack_into``.
    """
    tensors = tuple(_lift(t) for t in tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    try:
        y = np.stack([t.data for t in tensors], axis=axis) if out is None else buffers.stack_into(tensors, axis, out)
    except ValueError as e:  # shapes differ, the axis is out of range (AxisError), or out= is refused
        raise _stack_error(tensors, e) from None
    # δx_i = δy[i] along the stacked axis (views into δy, no copies)
    return _make(y, "stack", tensors, lambda g: tuple(np.moveaxis(g, axis, 0)))


def _stack_error(tensors: tuple[Tensor, ...], e: ValueError) -> ValueError:
    """The error for stacking ``tensors``, worded the same with or without out=."""
    if isinstance(e, np.exceptions.AxisError):
        return ValueError(f"stack: {e} (stacking tensors of shape {tensors[0].shape})")
    if len({t.shape for t in tensors}) > 1:
        shapes = ", ".join(str(t.shape) for t in tensors)
        return ValueError(f"stack: all tensors must have the same shape, got {shapes}")
    return e  # buffers' own out= errors already say what is wrong


def split(x: Tensor, sections: int | Sequence[int], axis: int = 0) -> tuple[Tensor, ...]:
    """Pieces of x along ``axis``: ``sections`` equal pieces, or cut at the given indices.

    One node with several outputs: its VJP concatenates the pieces' gradients
    (zeros for pieces that got none) in one pass.
    """
    x = _lift(x)
    if x.ndim == 0:
        raise ValueError("split: needs a tensor with at least one dimension")
    axis = _axis("split", axis, x.ndim)
    if isinstance(sections, int | np.integer) and sections < 1:
        raise ValueError(f"split: the number of sections must be at least 1, got {sections}")
    try:
        pieces = np.split(x.data, sections, axis=axis)
    except (ValueError, TypeError) as e:
        raise ValueError(f"split: cannot split shape {x.shape} into {sections} along axis {axis} ({e})") from None
    dtype, shapes = x.dtype, [p.shape for p in pieces]  # the VJP needs the pieces' shapes, not their data

    def vjp(gs):  # δx = the pieces' δ concatenated (zeros for a piece that got none)
        return (np.concatenate([np.zeros(s, dtype) if g is None else g for g, s in zip(gs, shapes)], axis=axis),)

    return _make_many(pieces, "split", (x,), vjp)


def unbind(x: Tensor, axis: int = 0) -> tuple[Tensor, ...]:
    """x[0], x[1], … along ``axis`` as separate tensors, from one node.

    The RNN layers use this to take the per-step slices of the input projection:
    T getitems would each scatter into a full-size zero gradient, O(T²) work.
    """
    x = _lift(x)
    xd = x.data
    if xd.ndim == 0:
        raise ValueError("unbind: needs a tensor with at least one dimension")
    axis = _axis("unbind", axis, xd.ndim)
    outs = list(np.moveaxis(xd, axis, 0))  # views into x, no copies
    shape, dtype = xd.shape, xd.dtype  # the VJP needs x's shape, not its data

    def vjp(gs):  # δx = the δ of x[0], x[1], … stacked (zeros for one that got none)
        # one (T, …) buffer: each step's gradient written once
        dx = np.empty(shape, dtype)
        rows = np.moveaxis(dx, axis, 0)
        for i, g in enumerate(gs):
            rows[i] = 0 if g is None else g
        return (dx,)

    return _make_many(outs, "unbind", (x,), vjp)


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """a where ``cond`` holds, b elsewhere (elementwise, all three broadcasting)."""
    c = np.asarray(_plain_index(cond), dtype=bool)
    a, b = _lift2(a, b)
    try:
        y = np.where(c, a.data, b.data)
    except ValueError:
        raise ValueError(f"where: shapes cond {c.shape}, a {a.shape}, b {b.shape} do not broadcast") from None
    sa, sb = a.shape, b.shape  # δa = δy where cond, δb = δy elsewhere
    return _make(
        y,
        "where",
        (a, b),
        lambda g: (unbroadcast(np.where(c, g, 0), sa), unbroadcast(np.where(c, 0, g), sb)),
    )


# ---------------------------------------------------------------------------
# Softmax family (stable: shift by the max before exponentiating)
# ---------------------------------------------------------------------------
def softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """softmax(x)_i = e^{x_i} / Σ_j e^{x_j} along ``axis`` (or ``dim=``; the last one by default)."""
    x = _lift(x)
    _check_float("softmax", x)
    axis = _dim_axis("softmax", axis, dim, None, None)[0]
    axis = _axis("softmax", -1 if axis is None else axis, x.ndim)
    e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)
    # δx = y ⊙ (δy − Σ_j δy_j y_j)
    return _make(y, "softmax", (x,), lambda g: (y * (g - (g * y).sum(axis=axis, keepdims=True)),))


def log_softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """log softmax(x)_i = x_i − log Σ_j e^{x_j} along ``axis`` (or ``dim=``; the last one by default)."""
    x = _lift(x)
    _check_float("log_softmax", x)
    axis = _dim_axis("log_softmax", axis, dim, None, None)[0]
    axis = _axis("log_softmax", -1 if axis is None else axis, x.ndim)
    s = x.data - x.data.max(axis=axis, keepdims=True)
    y = s - np.log(np.exp(s).sum(axis=axis, keepdims=True))  # log-sum-exp, never overflows
    # δx = δy − softmax(x) Σ_j δy_j
    return _make(y, "log_softmax", (x,), lambda g: (g - np.exp(y) * g.sum(axis=axis, keepdims=True),))


def embedding(weight: Tensor, indices: Any) -> Tensor:
    """Rows of ``weight`` picked by integer ``indices`` (any shape): out[...] = W[idx[...]]."""
    idx = np.asarray(_plain_index(indices))
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    n = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"embedding: indices must lie in [0, {n}), got range [{idx.min()}, {idx.max()}]")
    wshape = weight.shape

    def vjp(g):  # δW[k] = Σ of δout over the positions that picked row k
        dw = np.zeros(wshape, g.dtype)
        np.add.at(dw, idx.ravel(), g.reshape(-1, *wshape[1:]))
        return (dw,)

    return _make(weight.data[idx], "embedding", (weight,), vjp)


# ---------------------------------------------------------------------------
# Tensor methods and operators (Python scalars and numpy arrays on either side)
# ---------------------------------------------------------------------------
def _install_methods() -> None:
    T = Tensor
    # an operator cannot pass out=, so it calls the op's row itself (``__wrapped__``: the function
    # under buffers' out= wrapper), one Python call fewer per a + b
    add_, sub_, mul_ = add.__wrapped__, sub.__wrapped__, mul.__wrapped__
    T.__add__ = add_
    T.__radd__ = lambda self, other: add_(other, self)
    T.__sub__ = sub_
    T.__rsub__ = lambda self, other: sub_(other, self)
    T.__mul__ = mul_
    T.__rmul__ = lambda self, other: mul_(other, self)
    T.__truediv__ = div
    T.__rtruediv__ = lambda self, other: div(other, self)
    T.__pow__ = pow
    T.__rpow__ = lambda self, other: pow(other, self)
    T.__matmul__ = matmul
    T.__rmatmul__ = lambda self, other: matmul(other, self)
    T.__neg__ = neg
    T.__getitem__ = getitem
    # comparisons give constant boolean tensors (masks for where); == and != too, in protocols.py
    T.__lt__ = lambda self, other: Tensor(self.data < _lift(other, self).data)
    T.__le__ = lambda self, other: Tensor(self.data <= _lift(other, self).data)
    T.__gt__ = lambda self, other: Tensor(self.data > _lift(other, self).data)
    T.__ge__ = lambda self, other: Tensor(self.data >= _lift(other, self).data)
    for f in (exp, log, tanh, sigmoid, relu, sqrt, abs, sum, mean, max, reshape, transpose, clip, softmax, log_softmax):
        setattr(T, f.__name__, f)
    T.T = property(lambda self: transpose(self))


_install_methods()


# ---------------------------------------------------------------------------
# PyTorch's vocabulary: shape ops, min and the arg-extremes, maximum/minimum, casts
# (the names and semantics of torch's, each with its VJP beside it as above)
# ---------------------------------------------------------------------------
def _dim(op: str, dim: Any, ndim: int, extra: int = 0) -> int:
    """One dim in [−(ndim + extra), ndim + extra), made non-negative (a 0-d tensor takes 0 and −1)."""
    n = builtins.max(ndim + extra, 1)
    if not isinstance(dim, int | np.integer) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % n


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """x with a new axis of size 1 inserted at ``dim`` (torch.unsqueeze)."""
    old = x.shape  # δx = δy with the new axis dropped
    y = np.expand_dims(x.data, _dim("unsqueeze", dim, x.ndim, extra=1))
    return _make(y, "unsqueeze", (x,), lambda g: (g.reshape(old),))


def squeeze(x: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    """x without its size-1 axes (all of them, or those among ``dim``; others stay, as in torch)."""
    old = x.shape  # δx = δy with the dropped axes put back
    dims = range(x.ndim) if dim is None else (dim,) if isinstance(dim, int | np.integer) else dim
    drop = {_dim("squeeze", d, x.ndim) for d in dims}
    y = x.data.reshape(tuple(n for i, n in enumerate(old) if not (i in drop and n == 1)))
    return _make(y, "squeeze", (x,), lambda g: (g.reshape(old),))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """x with axes start_dim … end_dim merged into one (torch.flatten; a 0-d x gives shape (1,))."""
    old = x.shape  # δx = δy reshaped back to x's shape
    if x.ndim == 0:
        return _make(x.data.reshape(1), "flatten", (x,), lambda g: (g.reshape(old),))
    s, e = _dim("flatten", start_dim, x.ndim), _dim("flatten", end_dim, x.ndim)
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {old})")
    y = x.data.reshape(old[:s] + (-1,) + old[e + 1 :])
    return _make(y, "flatten", (x,), lambda g: (g.reshape(old),))


def permute(x: Tensor, *dims: int) -> Tensor:
    """x with its axes in the order ``dims``, which must name every axis once (torch.permute)."""
    if len(dims) == 1 and isinstance(dims[0], tuple | list):
        dims = tuple(dims[0])
    if len(dims) != x.ndim:
        raise ValueError(f"permute: dims {dims} must name all {x.ndim} axes of shape {x.shape}, each once")
    order = tuple(_dim("permute", d, x.ndim) for d in dims)
    if sorted(order) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} name an axis twice (shape {x.shape})")
    inverse = tuple(np.argsort(order))  # δx = δy with the inverse permutation
    return _make(x.data.transpose(order), "permute", (x,), lambda g: (g.transpose(inverse),))


def view(x: Tensor, *shape: Any) -> Tensor:
    """x's elements in a new shape (torch's view; numpy arrays need no contiguity, so it is reshape)."""
    return reshape(x, *shape)  # δx = δy reshaped back (reshape's node)


def min(
    x: Tensor, axis: Axis = None, keepdims: bool | None = None, *, dim: int | None = None, keepdim: bool | None = None
) -> Any:  # noqa: A001
    """The smallest element of x over ``axis`` (an int, several, or None for all).

    ``dim=`` is PyTorch's form: it returns ``(values, indices)``, as ``torch.min(x, dim)`` does.
    """
    if dim is not None:
        return _extreme_along("min", x, dim, axis, keepdims, keepdim)
    axis, keepdims = _dim_axis("min", axis, None, keepdims, keepdim)
    return _extreme("min", np.min, x, axis, keepdims)  # δx = δy at the arg-min (split evenly between ties)


def _arg(op: str, f: Any, x: Tensor, dim: int | None, keepdim: bool) -> Tensor:
    if x.size == 0:
        raise ValueError(f"{op} of an empty tensor of shape {x.shape}")
    if dim is None:  # the index into the flattened tensor, as torch
        i = np.asarray(f(x.data), dtype=np.int64)
        i = i.reshape((1,) * x.ndim) if keepdim else i
    else:
        i = np.asarray(f(x.data, axis=_dim(op, dim, x.ndim), keepdims=keepdim), dtype=np.int64)
    if dataguards.recording is not None:  # mg.compile: made from forward values, not data to bake (dataguards.py)
        dataguards.derived(i, f"{op}'s indices")
    return Tensor(i)


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None) -> Tensor:
    """The int64 index of the largest element (of all, flattened, or along ``dim``/``axis``)."""
    dim = _dim_axis("argmax", axis, dim, None, None)[0]
    return _arg("argmax", np.argmax, x, dim, keepdim)  # no δ: an index is a constant


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None) -> Tensor:
    """The int64 index of the smallest element (of all, flattened, or along ``dim``/``axis``)."""
    dim = _dim_axis("argmin", axis, dim, None, None)[0]
    return _arg("argmin", np.argmin, x, dim, keepdim)  # no δ: an index is a constant


def _extreme_along(op: str, x: Tensor, dim: Any, axis: Any, keepdims: Any, keepdim: Any) -> tuple[Tensor, Tensor]:
    """torch.max/min(x, dim): (values, indices); the gradient goes to the one index picked."""
    if axis is not None or not isinstance(dim, int | np.integer):
        raise TypeError(
            f"{op}(dim=...) takes one int dim and returns (values, indices), as torch does; got dim={dim!r}, "
            f"axis={axis!r} (for the values over several axes use axis= alone)"
        )
    keep = _dim_axis(op, None, None, keepdims, keepdim)[1]
    d = _dim(op, dim, x.ndim)
    if x.ndim == 0:  # torch: a 0-d tensor is its own extreme, at index 0
        return ValuesIndices(scale_grad(x, 1.0), Tensor(np.int64(0)))
    idx = _arg("arg" + op, np.argmax if op == "max" else np.argmin, x, d, True).data  # kept dim: (…, 1, …)
    shape, dtype = x.shape, x.dtype
    y = np.take_along_axis(x.data, idx, axis=d)

    def vjp(g):  # δx = δy at the index picked, 0 elsewhere
        dx = np.zeros(shape, dtype)
        np.put_along_axis(dx, idx, g if keep else np.expand_dims(g, d), axis=d)
        return (dx,)

    values = _make(y if keep else np.squeeze(y, axis=d), op, (x,), vjp)
    indices = idx if keep else np.squeeze(idx, axis=d)
    if dataguards.recording is not None:  # mg.compile: made from forward values, not data to bake (dataguards.py)
        dataguards.derived(indices, f"{op}(dim=)'s indices")
    return ValuesIndices(values, Tensor(indices))


class ValuesIndices(tuple):
    """What ``max(x, dim=…)`` and ``min(x, dim=…)`` return: ``(values, indices)``, as torch's."""

    __slots__ = ()

    def __new__(cls, values: Tensor, indices: Tensor) -> ValuesIndices:
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _winner(op: str, pick: Any, a: Any, b: Any) -> Tensor:
    """maximum/minimum: the elementwise winner of a and b, broadcasting."""
    a, b = _lift2(a, b)
    y = _broadcast(op, pick, a, b)
    ad, bd, sa, sb = a.data, b.data, a.shape, b.shape

    def vjp(g):  # δa = δy ⊙ ([a wins] + ½[a = b]),  δb = δy ⊙ (1 − that): ties split ½ : ½, as torch
        wa = (pick(ad, bd) == ad).astype(g.dtype) - (ad == bd) * g.dtype.type(0.5)
        return unbroadcast(g * wa, sa), unbroadcast(g - g * wa, sb)

    return _make(y, op, (a, b), vjp)


def maximum(a: Any, b: Any) -> Tensor:
    """max(a, b), elementwise with broadcasting (torch.maximum; ties split the gradient evenly)."""
    return _winner("maximum", np.maximum, a, b)  # δ in _winner: the larger input takes δy


def minimum(a: Any, b: Any) -> Tensor:
    """min(a, b), elementwise with broadcasting (torch.minimum; ties split the gradient evenly)."""
    return _winner("minimum", np.minimum, a, b)  # δ in _winner: the smaller input takes δy


def to(x: Tensor, dtype: Any) -> Tensor:
    """x cast to ``dtype`` (Tensor.to, .float(), .double()); a float cast passes δ back cast.

    ``dtype`` may also be a tensor (take its dtype) or the device "cpu" (numpy's only one).
    """
    if isinstance(dtype, Tensor):
        dtype = dtype.dtype
    if isinstance(dtype, str) and dtype.split(":")[0] == "cpu":
        return x
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"to: expected a dtype (np.float32, 'float64', ...) or 'cpu', got {dtype!r}") from None
    if dtype == x.dtype:
        return x  # as torch: the same tensor
    if dtype.kind != "f":  # an integer or bool result takes no gradient: a constant
        return Tensor(x.data.astype(dtype))
    old = x.dtype  # δx = δy cast back to x's dtype
    return _make(x.data.astype(dtype), "to", (x,), lambda g, new=dtype: (g.astype(old),))  # new: read by mg.compile


__all__ += [
    "unsqueeze", "squeeze", "flatten", "permute", "view", "min", "argmax", "argmin",
    "maximum", "minimum", "to",
]  # fmt: skip


def _install_vocabulary() -> None:
    T = Tensor
    for f in (unsqueeze, squeeze, flatten, permute, view, min, argmax, argmin, maximum, minimum, to):
        setattr(T, f.__name__, f)
    T.float = lambda self: to(self, np.float32)
    T.double = lambda self: to(self, np.float64)
    T.dim = lambda self: self.ndim
    T.numel = lambda self: self.size


_install_vocabulary()
