"""The replay's op table: each op's forward and VJP as lines of plain numpy code.

A row gives, for one op of ops.py, the forward as a statement that assigns the output name(s),
and one gradient expression per input, written with the names of the values it reads:

    "tanh": Kernel(fwd=lambda n: f"{n.y} = np.tanh({n.x[0]})",
                   grads=[lambda n: f"{n.g} * (1 - {n.y} * {n.y})"])      # δx = δy ⊙ (1 − y²)

``n`` (an ``Emit``) names the values: ``n.x[k]`` the inputs, ``n.y`` / ``n.ys[j]`` the outputs,
``n.g`` / ``n.gs[j]`` the output gradients (None where none arrives), ``n.s[k]`` the inputs'
shapes and ``n.a`` the attributes the trace read from the node. Shapes are known when the
program is made, so an ``unbroadcast`` that would do nothing is not written at all.

The formulas are ops.py's (the same numpy calls, in the same order), so a replay computes what
eager backward computes. An op without a row here is refused when the step is compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ops import _matmul_vjp, unbroadcast

__all__ = ["Kernel", "Emit", "KERNELS", "HELPERS"]


@dataclass
class Emit:
    """The names one node's code is written with."""

    x: list[str]
    s: list[tuple]
    ys: list[str]
    yshapes: list[tuple]
    a: dict[str, Any]
    dtype: np.dtype
    gs: list[str | None] = field(default_factory=list)
    const: Callable[[Any], str] = repr  # name for an array attribute (a constant of the program)

    @property
    def y(self) -> str:
        return self.ys[0]

    @property
    def g(self) -> str:
        return self.gs[0]  # type: ignore[return-value]

    def unb(self, expr: str, k: int) -> str:
        """δ summed back to input k's shape, written only when broadcasting stretched it."""
        return expr if self.s[k] == self.yshapes[0] else f"_unb({expr}, {self.s[k]!r})"


@dataclass
class Kernel:
    """``fwd(n)`` -> code lines assigning the outputs; ``grads[k](n)`` -> δ of input k, an expression.
    ``pattern[k]``: ("AtG", a, g) when δ of input k is aᵀ g (the batching pass looks for it)."""

    fwd: Callable[[Emit], str]
    grads: list[Callable[[Emit], str]] | Callable[[Emit, int], str]
    pattern: dict[int, Callable[[Emit], tuple]] = field(default_factory=dict)
    into: Callable[[Emit, str], str] | None = None  # the forward written into a given array (numpy's out=)

    def grad(self, n: Emit, k: int) -> str:
        return self.grads(n, k) if callable(self.grads) else self.grads[k](n)


def _mm_fwd(n: Emit) -> str:
    sa, sb = n.s
    if len(sa) > 2 and len(sb) == 2:  # x (…, k) @ W (k, m): one GEMM over the folded rows
        return f"{n.y} = ({n.x[0]}.reshape(-1, {sa[-1]}) @ {n.x[1]}).reshape({n.yshapes[0]!r})"
    return f"{n.y} = {n.x[0]} @ {n.x[1]}"


def _mm_grad(n: Emit, k: int) -> str:
    sa, sb = n.s
    a, b, g = n.x[0], n.x[1], n.g
    if len(sa) == 2 and len(sb) == 2:  # δa = δy bᵀ,  δb = aᵀ δy
        return f"{g} @ {b}.T" if k == 0 else f"{a}.T @ {g}"
    if len(sa) > 2 and len(sb) == 2:  # folded: δa = (G Wᵀ) in a's shape, δb = Aᵀ G
        m = sb[1]
        return (
            f"({g}.reshape(-1, {m}) @ {b}.T).reshape({sa!r})"
            if k == 0
            else f"{a}.reshape(-1, {sa[-1]}).T @ {g}.reshape(-1, {m})"
        )
    return f"_mm_vjp({g}, {a}, {b}, {sa!r}, {sb!r})[{k}]"


def _axis_index(axis: int, i: int) -> str:
    """numpy index text for position i along ``axis``: ``[i]`` or ``[:, i]`` …"""
    return "[" + ", ".join([":"] * axis + [str(i)]) + "]"


def _split_fwd(n: Emit) -> str:
    axis, lines, start = n.a["axis"] % len(n.s[0]), [], 0
    for y, shape in zip(n.ys, n.yshapes):
        stop = start + shape[axis]
        lines.append(f"{y} = {n.x[0]}[" + ", ".join([":"] * axis + [f"{start}:{stop}"]) + "]")
        start = stop
    return "\n".join(lines)


def _split_grad(n: Emit, k: int) -> str:  # δx = the pieces' δ concatenated (zeros for one that got none)
    parts = [g if g is not None else f"np.zeros({s!r}, np.{n.dtype})" for g, s in zip(n.gs, n.yshapes)]
    return f"np.concatenate([{', '.join(parts)}], axis={n.a['axis'] % len(n.s[0])})"


def _unbind_fwd(n: Emit) -> str:
    return "\n".join(f"{y} = {n.x[0]}{_axis_index(n.a['axis'], i)}" for i, y in enumerate(n.ys))


def _unbind_grad(n: Emit, k: int) -> str:  # δx = the δ of x[0], x[1], … stacked (zeros for one that got none)
    parts = ", ".join(g if g is not None else "0" for g in n.gs)
    return f"_rows({n.s[0]!r}, np.{n.dtype}, {n.a['axis']}, ({parts},))"


def _stack_grad(n: Emit, k: int) -> str:  # δx_k = δy[k] along the stacked axis
    return f"{n.g}{_axis_index(n.a['axis'] % len(n.yshapes[0]), k)}"


def _concat_grad(n: Emit, k: int) -> str:  # δx_k = slice k of δy
    axis, cuts = n.a["axis"], [0, *[int(c) for c in n.a["cuts"]], n.yshapes[0][n.a["axis"]]]
    return f"{n.g}[" + ", ".join([":"] * (axis % len(n.yshapes[0])) + [f"{cuts[k]}:{cuts[k + 1]}"]) + "]"


def _expand(n: Emit, extra: str = "") -> str:
    g = n.g if n.a["keepdims"] else f"np.expand_dims({n.g}, {n.a['axes']!r})"
    return f"np.broadcast_to({g}{extra}, {n.s[0]!r})"


def _sigmoid_fwd(n: Emit) -> str:  # σ(x) = ½ tanh(x/2) + ½, computed in place as ops.sigmoid does
    y = n.y
    return f"{y} = np.asarray(np.multiply({n.x[0]}, 0.5))\nnp.tanh({y}, out={y})\n{y} *= 0.5\n{y} += 0.5"


def _getitem_grad(n: Emit, k: int) -> str:
    return f"_scatter({n.s[0]!r}, np.{n.dtype}, {n.const(n.a['idx'])}, {n.a['basic']!r}, {n.g})"


# fmt: off
KERNELS: dict[str, Kernel] = {
    "add": Kernel(lambda n: f"{n.y} = {n.x[0]} + {n.x[1]}",                          # δa = δy, δb = δy
                  [lambda n: n.unb(n.g, 0), lambda n: n.unb(n.g, 1)]),
    "sub": Kernel(lambda n: f"{n.y} = {n.x[0]} - {n.x[1]}",                          # δa = δy, δb = −δy
                  [lambda n: n.unb(n.g, 0), lambda n: n.unb(f"-{n.g}", 1)]),
    "mul": Kernel(lambda n: f"{n.y} = {n.x[0]} * {n.x[1]}",                          # δa = δy ⊙ b, δb = δy ⊙ a
                  [lambda n: n.unb(f"{n.g} * {n.x[1]}", 0), lambda n: n.unb(f"{n.g} * {n.x[0]}", 1)],
                  into=lambda n, o: f"{n.y} = np.multiply({n.x[0]}, {n.x[1]}, out={o})"),
    "div": Kernel(lambda n: f"{n.y} = {n.x[0]} / {n.x[1]}",                          # δa = δy / b, δb = −δy a / b²
                  [lambda n: n.unb(f"{n.g} / {n.x[1]}", 0),
                   lambda n: n.unb(f"-{n.g} * {n.x[0]} / ({n.x[1]} * {n.x[1]})", 1)]),
    "neg": Kernel(lambda n: f"{n.y} = -{n.x[0]}", [lambda n: f"-{n.g}"]),            # δx = −δy
    "lerp": Kernel(lambda n: f"{n.y} = np.multiply({n.x[2]}, {n.x[1]} - {n.x[0]})\n{n.y} += {n.x[0]}",
                   [lambda n: n.unb(f"{n.g} - {n.g} * {n.x[2]}", 0),                # δa = δy ⊙ (1 − w)
                    lambda n: n.unb(f"{n.g} * {n.x[2]}", 1),                        # δb = δy ⊙ w
                    lambda n: n.unb(f"{n.g} * ({n.x[1]} - {n.x[0]})", 2)],          # δw = δy ⊙ (b − a)
                   into=lambda n, o: f"{n.y} = np.multiply({n.x[2]}, {n.x[1]} - {n.x[0]}, out={o})\n{n.y} += {n.x[0]}"),
    "matmul": Kernel(_mm_fwd, _mm_grad,
                     {1: lambda n: ("AtG", n.x[0], n.g) if len(n.s[0]) == 2 == len(n.s[1]) else None}),
    "addmm": Kernel(lambda n: f"{n.y} = {n.x[1]} @ {n.x[2]}\n{n.y} += {n.x[0]}",   # y = c + a b
                    [lambda n: n.unb(n.g, 0), lambda n: f"{n.g} @ {n.x[2]}.T",      # δc = δy, δa = δy bᵀ
                     lambda n: f"{n.x[1]}.T @ {n.g}"],                               # δb = aᵀ δy
                    {2: lambda n: ("AtG", n.x[1], n.g)}),
    "exp": Kernel(lambda n: f"{n.y} = np.exp({n.x[0]})", [lambda n: f"{n.g} * {n.y}"]),
    "log": Kernel(lambda n: f"{n.y} = np.log({n.x[0]})", [lambda n: f"{n.g} / {n.x[0]}"]),
    "tanh": Kernel(lambda n: f"{n.y} = np.tanh({n.x[0]})", [lambda n: f"{n.g} * (1 - {n.y} * {n.y})"],
                   into=lambda n, o: f"{n.y} = np.tanh({n.x[0]}, out={o})"),
    "sigmoid": Kernel(_sigmoid_fwd, [lambda n: f"{n.g} * {n.y} * (1 - {n.y})"]),     # δx = δy ⊙ σ(1 − σ)
    "relu": Kernel(lambda n: f"{n.y} = np.multiply({n.x[0]}, {n.x[0]} > 0)",
                   [lambda n: f"{n.g} * ({n.x[0]} > 0)"],                            # δx = δy ⊙ [x > 0]
                   into=lambda n, o: f"{n.y} = np.multiply({n.x[0]}, {n.x[0]} > 0, out={o})"),
    "sqrt": Kernel(lambda n: f"{n.y} = np.sqrt({n.x[0]})", [lambda n: f"{n.g} / (2 * {n.y})"]),
    "abs": Kernel(lambda n: f"{n.y} = np.abs({n.x[0]})", [lambda n: f"{n.g} * np.sign({n.x[0]})"]),
    "scale_grad": Kernel(lambda n: f"{n.y} = {n.x[0]}", [lambda n: f"{n.g} * {n.a['xi']!r}"]),  # δx = ξ δy
    "sum": Kernel(lambda n: f"{n.y} = np.sum({n.x[0]}, axis={n.a['axes']!r}, keepdims={n.a['keepdims']})",
                  [lambda n: _expand(n)]),
    "mean": Kernel(lambda n: f"{n.y} = np.mean({n.x[0]}, axis={n.a['axes']!r}, keepdims={n.a['keepdims']})",
                   [lambda n: _expand(n, f" / {n.a['n']}")]),
    "reshape": Kernel(lambda n: f"{n.y} = {n.x[0]}.reshape({n.yshapes[0]!r})",
                      [lambda n: f"{n.g}.reshape({n.s[0]!r})"]),
    "transpose": Kernel(lambda n: f"{n.y} = {n.x[0]}.transpose({tuple(int(i) for i in np.argsort(n.a['inverse']))!r})",
                        [lambda n: f"{n.g}.transpose({tuple(int(i) for i in n.a['inverse'])!r})"]),
    "stack": Kernel(lambda n: f"{n.y} = np.stack([{', '.join(n.x)}], axis={n.a['axis']})", _stack_grad),
    "concat": Kernel(lambda n: f"{n.y} = np.concatenate([{', '.join(n.x)}], axis={n.a['axis']})", _concat_grad),
    "split": Kernel(_split_fwd, _split_grad),
    "unbind": Kernel(_unbind_fwd, _unbind_grad),
    "getitem": Kernel(lambda n: f"{n.y} = np.asarray({n.x[0]}[{n.const(n.a['idx'])}])", _getitem_grad),
    "where": Kernel(lambda n: f"{n.y} = np.where({n.const(n.a['c'])}, {n.x[0]}, {n.x[1]})",
                    [lambda n: n.unb(f"np.where({n.const(n.a['c'])}, {n.g}, 0)", 0),
                     lambda n: n.unb(f"np.where({n.const(n.a['c'])}, 0, {n.g})", 1)]),
    "softmax": Kernel(lambda n: f"{n.y} = np.exp({n.x[0]} - {n.x[0]}.max(axis={n.a['axis']}, keepdims=True))\n"
                                f"{n.y} = {n.y} / {n.y}.sum(axis={n.a['axis']}, keepdims=True)",
                      [lambda n: f"{n.y} * ({n.g} - ({n.g} * {n.y}).sum(axis={n.a['axis']}, keepdims=True))"]),
    "log_softmax": Kernel(lambda n: f"{n.y} = {n.x[0]} - {n.x[0]}.max(axis={n.a['axis']}, keepdims=True)\n"
                                    f"{n.y} = {n.y} - np.log(np.exp({n.y}).sum(axis={n.a['axis']}, keepdims=True))",
                          [lambda n: f"{n.g} - np.exp({n.y}) * {n.g}.sum(axis={n.a['axis']}, keepdims=True)"]),
    "embedding": Kernel(lambda n: f"{n.y} = {n.x[0]}[{n.const(n.a['idx'])}]",            # out = W[idx]
                        [lambda n: f"_embed_grad({n.s[0]!r}, {n.const(n.a['idx'])}, {n.g})"]),
    "pow": Kernel(lambda n: f"{n.y} = np.power({n.x[0]}, {n.x[1]})",               # y = a ** b
                  lambda n, k: f"_pow_grad({k}, {n.g}, {n.x[0]}, {n.x[1]}, {n.y}, {n.s[k]!r})"),
    "max": Kernel(lambda n: f"{n.y} = np.max({n.x[0]}, axis={n.a['axes']!r}, keepdims={n.a['keepdims']})",
                  [lambda n: f"_extreme_grad(np.max, {n.x[0]}, {n.g}, {n.a['axes']!r}, {n.a['keepdims']})"]),
    "min": Kernel(lambda n: f"{n.y} = np.min({n.x[0]}, axis={n.a['axes']!r}, keepdims={n.a['keepdims']})",
                  [lambda n: f"_extreme_grad(np.min, {n.x[0]}, {n.g}, {n.a['axes']!r}, {n.a['keepdims']})"]),
    "max_dim": Kernel(lambda n: f"{n.y} = _along(np.argmax, {n.x[0]}, {n.a['d']}, {n.a['keep']})",
                      [lambda n: f"_along_grad(np.argmax, {n.x[0]}, {n.g}, {n.a['d']}, {n.a['keep']})"]),
    "min_dim": Kernel(lambda n: f"{n.y} = _along(np.argmin, {n.x[0]}, {n.a['d']}, {n.a['keep']})",
                      [lambda n: f"_along_grad(np.argmin, {n.x[0]}, {n.g}, {n.a['d']}, {n.a['keep']})"]),
    "maximum": Kernel(lambda n: f"{n.y} = np.maximum({n.x[0]}, {n.x[1]})",          # δa = δy ⊙ w, δb = δy − δy ⊙ w
                      [lambda n: n.unb(f"{n.g} * _win(np.maximum, {n.x[0]}, {n.x[1]}, {n.g}.dtype)", 0),
                       lambda n: n.unb(f"{n.g} - {n.g} * _win(np.maximum, {n.x[0]}, {n.x[1]}, {n.g}.dtype)", 1)]),
    "minimum": Kernel(lambda n: f"{n.y} = np.minimum({n.x[0]}, {n.x[1]})",
                      [lambda n: n.unb(f"{n.g} * _win(np.minimum, {n.x[0]}, {n.x[1]}, {n.g}.dtype)", 0),
                       lambda n: n.unb(f"{n.g} - {n.g} * _win(np.minimum, {n.x[0]}, {n.x[1]}, {n.g}.dtype)", 1)]),
    "clip": Kernel(lambda n: f"{n.y} = np.clip({n.x[0]}, {n.a['bounds'][0]!r}, {n.a['bounds'][1]!r})",
                   [lambda n: f"{n.g} * _inside({n.x[0]}, {n.a['bounds'][0]!r}, {n.a['bounds'][1]!r})"]),
    # shape ops: each a reshape of the same elements (δx = δy reshaped back), or a permutation
    **{op: Kernel(lambda n: f"{n.y} = {n.x[0]}.reshape({n.yshapes[0]!r})",
                  [lambda n: f"{n.g}.reshape({n.s[0]!r})"]) for op in ("unsqueeze", "squeeze", "flatten")},
    "permute": Kernel(lambda n: f"{n.y} = {n.x[0]}.transpose({tuple(int(i) for i in np.argsort(n.a['inverse']))!r})",
                      [lambda n: f"{n.g}.transpose({tuple(int(i) for i in n.a['inverse'])!r})"]),
    "detach": Kernel(lambda n: f"{n.y} = {n.x[0]}", []),  # a cut: the same array, no gradient back
    # the sum-of-squares pass's op: Σ e ⊙ e as one dot product, δe = 2 δy e
    "sumsq": Kernel(lambda n: f"{n.y} = np.asarray(np.dot({n.x[0]}.ravel(), {n.x[0]}.ravel()))",
                    [lambda n: f"{n.x[0]} * (2 * {n.g})"]),  # the scalar 2 δy first: one pass over e
}
# fmt: on


def _rows(shape: tuple, dtype: Any, axis: int, gs: tuple) -> np.ndarray:
    """One array whose rows along ``axis`` are the gradients ``gs`` (0 where none arrived)."""
    dx = np.empty(shape, dtype)
    rows = np.moveaxis(dx, axis, 0)
    for i, g in enumerate(gs):
        rows[i] = g
    return dx


def _scatter(shape: tuple, dtype: Any, idx: Any, basic: bool, g: np.ndarray) -> np.ndarray:
    """δx of x[idx]: δy scattered into zeros (repeated integer indices accumulate)."""
    dx = np.zeros(shape, dtype)
    if basic:
        dx[idx] = g
    else:
        np.add.at(dx, idx, g)
    return dx


def _embed_grad(wshape: tuple, idx: np.ndarray, g: np.ndarray) -> np.ndarray:
    """δW[k] = Σ of δout over the positions that picked row k (ops.embedding's VJP)."""
    dw = np.zeros(wshape, g.dtype)
    np.add.at(dw, idx.ravel(), g.reshape(-1, *wshape[1:]))
    return dw


def _pow_grad(k: int, g: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, shape: tuple) -> np.ndarray:
    """ops.pow's VJP, torch's 0 points: δa = δy b a^(b−1) (0 where b = 0), δb = δy y ln a (0 where a = 0, b ≥ 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if k == 0:
            return unbroadcast(g * np.where(b == 0, 0, b * a ** (b - 1)), shape)
        return unbroadcast(g * np.where((a == 0) & (b >= 0), 0, y * np.log(a)), shape)


def _extreme_grad(f: Any, x: np.ndarray, g: np.ndarray, axes: tuple, keepdims: bool) -> np.ndarray:
    """δx of max/min over ``axes``: δy at the extreme, split evenly between ties (ops.max's VJP)."""
    hit = x == f(x, axis=axes, keepdims=True)
    ties = hit.sum(axis=axes, keepdims=True, dtype=g.dtype)
    return hit * ((g if keepdims else np.expand_dims(g, axes)) / ties)


def _along(arg: Any, x: np.ndarray, d: int, keep: bool) -> np.ndarray:
    """The values of max/min(x, dim=d): x at its arg-extreme along d (the index recomputed each call)."""
    y = np.take_along_axis(x, np.asarray(arg(x, axis=d, keepdims=True), dtype=np.int64), axis=d)
    return y if keep else np.squeeze(y, axis=d)


def _along_grad(arg: Any, x: np.ndarray, g: np.ndarray, d: int, keep: bool) -> np.ndarray:
    """δx of max/min(x, dim=d): δy at the index picked, 0 elsewhere."""
    idx = np.asarray(arg(x, axis=d, keepdims=True), dtype=np.int64)
    dx = np.zeros(x.shape, x.dtype)
    np.put_along_axis(dx, idx, g if keep else np.expand_dims(g, d), axis=d)
    return dx


def _win(pick: Any, a: np.ndarray, b: np.ndarray, dtype: Any) -> np.ndarray:
    """maximum/minimum: w = [a wins] − ½[a = b] (ties split ½ : ½), ops._winner's weights."""
    return (pick(a, b) == a).astype(dtype) - (a == b) * dtype.type(0.5)


def _inside(x: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
    """clip's mask: lo ≤ x ≤ hi (a bound that is None does not limit)."""
    inside = np.ones(x.shape, dtype=bool)
    if lo is not None:
        inside &= x >= lo
    if hi is not None:
        inside &= x <= hi
    return inside


# the names the generated code calls besides numpy
HELPERS: dict[str, Any] = {
    "np": np,
    "_unb": unbroadcast,
    "_mm_vjp": _matmul_vjp,
    "_rows": _rows,
    "_scatter": _scatter,
    "_embed_grad": _embed_grad,
    "_pow_grad": _pow_grad,
    "_extreme_grad": _extreme_grad,
    "_along": _along,
    "_along_grad": _along_grad,
    "_win": _win,
    "_inside": _inside,
}


# the cast x.to(dtype) / .float() / .double(): y = x in the new dtype, δx = δy cast back to x's dtype
KERNELS["to"] = Kernel(lambda n: f"{n.y} = {n.x[0]}.astype(np.{np.dtype(n.a['new']).name})",
                       [lambda n: f"{n.g}.astype(np.{np.dtype(n.a['old']).name})"])  # fmt: skip
