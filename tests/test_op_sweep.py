"""Every public op, swept in the spirit of PyTorch's OpInfo.

``SWEEP`` maps each public op name to a generator of sample cases: shapes that
broadcast, size-1 and 0-d tensors, integer-array indices, large logits. Each
case is checked

* in float64 against central finite differences (``mg.gradcheck``) and, where
  it has one, against a numpy reference for the forward value;
* in float32: the forward result and every gradient (of the leaves and of the
  op's own inputs) stay float32, and the float32 gradient agrees with the
  float64 one to a loose tolerance.

A few tests pin down the documented behaviour at extreme values and at the points
where an op is not differentiable. The hypothesis property tests (random shapes per op
family) live in test_op_sweep_properties.py, so that this file runs without hypothesis.

A test fails when an op is exported (``minigrad.ops.__all__``,
``minigrad.functional.__all__`` or ``import minigrad``) without an entry here.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import minigrad as mg
from minigrad import functional, ops
from minigrad.gradcheck import numerical_grad
from minigrad.nn import Embedding, Linear


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One sample: ``fn(*tensors)`` with tensors made from ``arrays`` (all differentiable)."""

    desc: str
    fn: Callable[..., mg.Tensor]
    arrays: tuple[np.ndarray, ...]
    ref: Callable[..., np.ndarray] | None = None  # numpy forward on the same arrays
    grad_factor: float = 1.0  # backward = grad_factor × the true derivative (scale_grad only)


def case(desc, fn, *arrays, ref=None, grad_factor=1.0) -> Case:
    return Case(desc, fn, tuple(np.asarray(a, dtype=np.float64) for a in arrays), ref, grad_factor)


# value generators (float64; the float32 sweep casts)
def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):  # domain of log, sqrt, pow's base
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng, shape):  # relu, abs, divisors: no kink or pole within reach of ε
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape)


def distinct(rng, shape):  # max: no ties (ties are tested on their own below)
    n = int(np.prod(shape, dtype=int))
    return (rng.permutation(n) + rng.uniform(0.1, 0.9, n)).reshape(shape) / max(n, 1)


UNARY_SHAPES = [(), (1,), (4,), (2, 3), (2, 1, 3)]
BINARY_SHAPES = [
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((2, 1), (1, 3)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((4, 1, 3), (2, 1)),
    ((1,), ()),
    ((2, 3), (1, 1)),
]


def unary(fn, ref, values=normal, extra=()):
    def cases(rng):
        return [case(f"shape {s}", fn, values(rng, s), ref=ref) for s in UNARY_SHAPES] + [e(rng) for e in extra]

    return cases


def binary(fn, ref, left=normal, right=normal, extra=()):
    def cases(rng):
        out = [case(f"{sa} with {sb}", fn, left(rng, sa), right(rng, sb), ref=ref) for sa, sb in BINARY_SHAPES]
        return out + [e(rng) for e in extra]

    return cases


def like(x: mg.Tensor, a) -> np.ndarray:
    """A numpy constant in x's dtype (so float32 cases stay float32)."""
    return np.asarray(a, dtype=x.dtype)


def reductions(op, ref, values=normal):
    def cases(rng):
        return [
            case("axis None", lambda x: op(x), values(rng, (2, 3, 4)), ref=lambda x: ref(x)),
            case("axis 0", lambda x: op(x, axis=0), values(rng, (2, 3, 4)), ref=lambda x: ref(x, axis=0)),
            case("axis -1", lambda x: op(x, -1), values(rng, (2, 3, 4)), ref=lambda x: ref(x, axis=-1)),
            case("axes (0, 2)", lambda x: op(x, (0, 2)), values(rng, (2, 3, 4)), ref=lambda x: ref(x, axis=(0, 2))),
            case(
                "axis 1 keepdims",
                lambda x: op(x, 1, keepdims=True),
                values(rng, (2, 3, 4)),
                ref=lambda x: ref(x, axis=1, keepdims=True),
            ),
            case(
                "keepdims all", lambda x: op(x, keepdims=True), values(rng, (2, 3)), ref=lambda x: ref(x, keepdims=True)
            ),
            case("size-1 axis", lambda x: op(x, 1), values(rng, (3, 1)), ref=lambda x: ref(x, axis=1)),
            case("0-d", lambda x: op(x), values(rng, ()), ref=lambda x: ref(x)),
            case("0-d axis 0", lambda x: op(x, 0), values(rng, ()), ref=lambda x: ref(x)),
            case(
                "method form", lambda x: getattr(x, op.__name__)(axis=0), values(rng, (3, 2)), ref=lambda x: ref(x, 0)
            ),
        ]

    return cases


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def softmax_family(op, ref):
    def cases(rng):
        big = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]])
        return [
            case("(3,)", op, normal(rng, (3,)), ref=ref),
            case("(2, 3) last axis", op, normal(rng, (2, 3)), ref=ref),
            case("(2, 3) axis 0", lambda x: op(x, axis=0), normal(rng, (2, 3)), ref=lambda x: ref(x, axis=0)),
            case("(2, 3, 4) axis 1", lambda x: op(x, 1), normal(rng, (2, 3, 4)), ref=lambda x: ref(x, 1)),
            case("size-1 axis", op, normal(rng, (3, 1)), ref=ref),
            case("logits ±1000", op, big, ref=ref),
            case("logits near 1000", op, 1000 + normal(rng, (2, 4)), ref=ref),
            case("method form", lambda x: getattr(x, op.__name__)(), normal(rng, (2, 3)), ref=ref),
        ]

    return cases


def np_cross_entropy(z, y):
    return -np.mean(np_log_softmax(z)[np.arange(len(y)), y])


def clip_cases(rng):
    x = np.array([-1.3, -0.7, -0.2, 0.1, 0.4, 0.9, 1.6])
    return [
        case("lo and hi", lambda x: mg.clip(x, -0.5, 0.5), x, ref=lambda x: np.clip(x, -0.5, 0.5)),
        case("lo only", lambda x: mg.clip(x, lo=0.0), x, ref=lambda x: np.clip(x, 0.0, None)),
        case("hi only", lambda x: x.clip(hi=0.3), x, ref=lambda x: np.clip(x, None, 0.3)),
        case("0-d inside", lambda x: mg.clip(x, -1, 1), np.array(0.25), ref=lambda x: np.clip(x, -1, 1)),
        case("broadcast (2, 1, 3)", lambda x: mg.clip(x, -0.5, 0.5), normal(rng, (2, 1, 3)) * 0.2 + 0.1),
    ]


def pow_cases(rng):
    base = binary(mg.pow, np.power, left=positive)(rng)  # tensor ** tensor: the base stays in log's domain
    return base + [
        case("x ** 2 (negative x)", lambda x: x**2, normal(rng, (2, 3)), ref=lambda x: x**2),
        case("x ** 3", lambda x: x**3, normal(rng, (4,)), ref=lambda x: x**3),
        case("x ** 0.5", lambda x: x**0.5, positive(rng, (3,)), ref=np.sqrt),
        case("x ** -1", lambda x: x**-1, away_from_zero(rng, (3,)), ref=lambda x: 1 / x),
        case("2 ** x (reflected)", lambda x: 2.0**x, normal(rng, (3,)), ref=lambda x: 2.0**x),
        case(
            "x ** array", lambda x: x ** like(x, [1, 2, 3]), normal(rng, (2, 3)), ref=lambda x: x ** np.array([1, 2, 3])
        ),
        # at 0, torch's conventions (δa = 0 where b = 0; δb = 0 where a = 0, b ≥ 0), where they agree with
        # finite differences; the points where they do not are pinned in test_pow_at_zero_follows_torch
        case("x ** 0 at x = 0", lambda x: x**0, np.array([0.0, 1.0]), ref=lambda x: x**0),
        case("x ** 2 at x = 0", lambda x: x**2, np.array([0.0, -1.5]), ref=lambda x: x**2),
        case("a ** b at a = 0, b > 0", mg.pow, np.array([0.0, 0.0, 0.5]), np.array([2.0, 3.0, 1.5]), ref=np.power),
    ]


def matmul_cases(rng):
    shapes = [
        ((3,), (3,)),
        ((3,), (3, 4)),
        ((2, 3), (3,)),
        ((2, 3), (3, 4)),
        ((1, 1), (1, 1)),
        ((5, 2, 3), (3, 4)),
        ((4, 5, 2, 3), (3, 2)),  # N-d @ 2-D: the leading axes fold into one GEMM
        ((1, 1, 3), (3, 1)),
        ((2, 3), (5, 3, 2)),
        ((1, 2, 3), (4, 3, 2)),
        ((2, 1, 2, 3), (3, 3, 2)),
        ((3,), (2, 3, 4)),
    ]
    out = [case(f"{sa} @ {sb}", mg.matmul, normal(rng, sa), normal(rng, sb), ref=np.matmul) for sa, sb in shapes]
    W = normal(rng, (3, 2))
    return out + [
        case("x @ ndarray", lambda x: x @ like(x, W), normal(rng, (4, 3)), ref=lambda x: x @ W),
        case("ndarray @ x (reflected)", lambda x: like(x, W.T) @ x, normal(rng, (3, 4)), ref=lambda x: W.T @ x),
    ]


def getitem_cases(rng):
    x = normal(rng, (4, 3))
    mask = np.array([[True, False, True], [False, False, True], [True, True, False], [False, True, True]])
    indices = [
        ("integer", 1),
        ("negative integer and step", (-1, slice(None, None, 2))),
        ("slice", slice(1, 3)),
        ("ellipsis and None", (Ellipsis, None, 0)),
        ("integer array with repeats", np.array([0, 0, 3, 1])),
        ("boolean mask", mask),
        ("two integer arrays", (np.array([0, 1, 1]), np.array([2, 2, 0]))),
        ("list index", [2, 2]),
        ("Tensor index", mg.Tensor(np.array([3, 3]))),
    ]
    out = [
        case(desc, lambda x, i=i: x[i], x, ref=lambda x, i=i: x[i.data if isinstance(i, mg.Tensor) else i])
        for desc, i in indices
    ]
    return out + [
        case("0-d with ()", lambda x: x[()], np.array(1.5), ref=lambda x: x[()]),
        case("function form", lambda x: mg.getitem(x, (slice(None), 1)), x, ref=lambda x: x[:, 1]),
    ]


def split_cases(rng):
    return [
        case(
            "3 equal pieces along axis 1, reordered",
            lambda x: mg.concat(mg.split(x, 3, axis=1)[::-1], axis=1),
            normal(rng, (4, 6)),
            ref=lambda x: np.concatenate(np.split(x, 3, axis=1)[::-1], axis=1),
        ),
        case(
            "cut at indices [1, 3], pieces weighted",
            lambda x: sum((p * (k + 1)).sum() for k, p in enumerate(mg.split(x, [1, 3]))),
            normal(rng, (5, 2)),
        ),
        case("unused pieces get zero gradient", lambda x: mg.split(x, 2, axis=-1)[1], normal(rng, (3, 4))),
        case("size-1 pieces of a 1-D tensor", lambda x: mg.split(x, 3)[2] * mg.split(x, 3)[0], normal(rng, (3,))),
    ]


def unbind_cases(rng):
    return [
        case("axis 0, restacked reversed", lambda x: mg.stack(mg.unbind(x)[::-1]), normal(rng, (3, 2, 2))),
        case("axis -1, two slices used", lambda x: mg.unbind(x, -1)[0] * mg.unbind(x, -1)[2], normal(rng, (2, 3))),
        case("only one slice used", lambda x: mg.unbind(x, 1)[1], normal(rng, (2, 3, 2))),
        case("1-D to 0-d slices", lambda x: mg.unbind(x)[0] * mg.unbind(x)[1], normal(rng, (2,))),
    ]


def where_cases(rng):
    return [
        case(
            "same shapes",
            lambda a, b: mg.where(like(a, [[1, 0, 1], [0, 0, 1]]) > 0, a, b),
            normal(rng, (2, 3)),
            normal(rng, (2, 3)),
            ref=lambda a, b: np.where(np.array([[1, 0, 1], [0, 0, 1]]) > 0, a, b),
        ),
        case(
            "cond (3,), a (2, 3), b ()",
            lambda a, b: mg.where(np.array([True, False, True]), a, b),
            normal(rng, (2, 3)),
            normal(rng, ()),
            ref=lambda a, b: np.where(np.array([True, False, True]), a, b),
        ),
        case(
            "cond (2, 1), a (1, 3), b (2, 3)",
            lambda a, b: mg.where(np.array([[True], [False]]), a, b),
            normal(rng, (1, 3)),
            normal(rng, (2, 3)),
            ref=lambda a, b: np.where(np.array([[True], [False]]), a, b),
        ),
        case("cond from a comparison, b a scalar", lambda a: mg.where(a > 0, a, 0.0), away_from_zero(rng, (2, 4))),
        case("Tensor cond", lambda a: mg.where(mg.Tensor(np.array([0, 1, 1])), 1.0, a), normal(rng, (3,))),
    ]


def embedding_cases(rng):
    W = normal(rng, (5, 3))
    idx = [
        ("indices (4,) with repeats", np.array([1, 1, 4, 0])),
        ("indices (2, 2)", np.array([[0, 2], [2, 2]])),
        ("0-d index", np.int64(3)),
        ("Tensor indices", mg.Tensor(np.array([4, 0, 4]))),
    ]
    out = [
        case(
            desc, lambda w, i=i: mg.embedding(w, i), W, ref=lambda w, i=i: w[i.data if isinstance(i, mg.Tensor) else i]
        )
        for desc, i in idx
    ]
    return out + [case("one-row table", lambda w: mg.embedding(w, np.array([0, 0])), normal(rng, (1, 2)))]


def cross_entropy_cases(rng):
    y = np.array([0, 2, 2, 1])
    return [
        case("(4, 3)", lambda z: mg.cross_entropy(z, y), normal(rng, (4, 3)), ref=lambda z: np_cross_entropy(z, y)),
        case(
            "single example (3,), 0-d target",
            lambda z: mg.cross_entropy(z, np.int64(1)),
            normal(rng, (3,)),
            ref=lambda z: np_cross_entropy(z[None], np.array([1])),
        ),
        case("one example (1, 5)", lambda z: mg.cross_entropy(z, [4]), normal(rng, (1, 5))),
        case(
            "logits ±1000",
            lambda z: mg.cross_entropy(z, np.array([1, 2])),
            [[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]],
            ref=lambda z: np_cross_entropy(z, np.array([1, 2])),
        ),
        case("logits near 1000", lambda z: mg.cross_entropy(z, y), 1000 + normal(rng, (4, 3))),
        case("functional namespace", lambda z: functional.cross_entropy(z, y), normal(rng, (4, 3))),
    ]


def mse_cases(rng):
    t = normal(rng, (2, 3))
    return [
        case(
            "(2, 3) vs constant",
            lambda p: mg.mse_loss(p, like(p, t)),
            normal(rng, (2, 3)),
            ref=lambda p: np.mean((p - t) ** 2),
        ),
        case(
            "both require grad",
            mg.mse_loss,
            normal(rng, (3,)),
            normal(rng, (3,)),
            ref=lambda p, q: np.mean((p - q) ** 2),
        ),
        case("0-d", mg.mse_loss, normal(rng, ()), normal(rng, ()), ref=lambda p, q: (p - q) ** 2),
        case("python scalar target on 0-d", lambda p: functional.mse_loss(p, 0.5), normal(rng, ())),
    ]


def concat_cases(rng):
    return [
        case(
            "axis 0, different lengths",
            lambda a, b: mg.concat([a, b]),
            normal(rng, (2, 3)),
            normal(rng, (1, 3)),
            ref=lambda a, b: np.concatenate([a, b]),
        ),
        case(
            "axis -1, three tensors",
            lambda a, b, c: mg.concat([a, b, c], axis=-1),
            normal(rng, (2, 3)),
            normal(rng, (2, 1)),
            normal(rng, (2, 2)),
            ref=lambda a, b, c: np.concatenate([a, b, c], -1),
        ),
        case("with a numpy constant", lambda a: mg.concat([like(a, np.ones((1, 2))), a, a]), normal(rng, (2, 2))),
        case("1-D", lambda a, b: mg.concat([a, b]), normal(rng, (1,)), normal(rng, (3,))),
    ]


def stack_cases(rng):
    return [
        case(
            "axis 0",
            lambda a, b: mg.stack([a, b]),
            normal(rng, (2, 3)),
            normal(rng, (2, 3)),
            ref=lambda a, b: np.stack([a, b]),
        ),
        case(
            "axis -1",
            lambda a, b: mg.stack([a, b, a], axis=-1),
            normal(rng, (2, 3)),
            normal(rng, (2, 3)),
            ref=lambda a, b: np.stack([a, b, a], axis=-1),
        ),
        case("axis 1", lambda a, b: mg.stack([a, b], 1), normal(rng, (2, 3)), normal(rng, (2, 3))),
        case("0-d tensors", lambda a, b: mg.stack([a, b, a * b]), normal(rng, ()), normal(rng, ())),
    ]


def reshape_cases(rng):
    return [
        case("(2, 3) -> (3, 2)", lambda x: x.reshape(3, 2), normal(rng, (2, 3)), ref=lambda x: x.reshape(3, 2)),
        case("(6,) -> (2, -1)", lambda x: mg.reshape(x, (2, -1)), normal(rng, (6,)), ref=lambda x: x.reshape(2, -1)),
        case("() -> (1, 1)", lambda x: x.reshape(1, 1), normal(rng, ()), ref=lambda x: x.reshape(1, 1)),
        case("(1, 1) -> ()", lambda x: x.reshape(()), normal(rng, (1, 1)), ref=lambda x: x.reshape(())),
        case("(2, 3, 1) -> (6,)", lambda x: x.reshape(-1), normal(rng, (2, 3, 1)), ref=lambda x: x.reshape(-1)),
    ]


def transpose_cases(rng):
    return [
        case(".T of (2, 3)", lambda x: x.T, normal(rng, (2, 3)), ref=lambda x: x.T),
        case(
            "(1, 0, 2)",
            lambda x: mg.transpose(x, (1, 0, 2)),
            normal(rng, (2, 3, 4)),
            ref=lambda x: x.transpose(1, 0, 2),
        ),
        case(
            "negative axes (-1, 0, 1)",
            lambda x: x.transpose(-1, 0, 1),
            normal(rng, (2, 3, 4)),
            ref=lambda x: x.transpose(-1, 0, 1),
        ),
        case("default reverses all", lambda x: x.transpose(), normal(rng, (2, 1, 3)), ref=lambda x: x.transpose()),
        case("0-d", lambda x: x.T, normal(rng, ()), ref=lambda x: x),
        case("1-D", lambda x: x.T, normal(rng, (3,)), ref=lambda x: x),
    ]


def arithmetic_with_scalars(op_symbol):
    """Python scalars and numpy arrays on either side of the operator."""
    f = {
        "+": (lambda x: 2.5 + x + np.ones(3, x.dtype), lambda x: 2.5 + x + 1),
        "-": (lambda x: 2.5 - x - np.ones(3, x.dtype), lambda x: 2.5 - x - 1),
        "*": (lambda x: 2.5 * x * np.arange(3, dtype=x.dtype), lambda x: 2.5 * x * np.arange(3)),
        "/": (lambda x: 1.5 / x / np.full(3, 2, x.dtype), lambda x: 1.5 / x / 2),
    }[op_symbol]
    values = away_from_zero if op_symbol == "/" else normal
    return lambda rng: case(f"scalars and arrays around {op_symbol}", f[0], values(rng, (3,)), ref=f[1])


def shape_op_cases(rng):
    """unsqueeze, squeeze, flatten, permute, view: PyTorch's shape vocabulary."""
    return {
        "unsqueeze": [
            case("(2, 3) dim 0", lambda x: x.unsqueeze(0), normal(rng, (2, 3)), ref=lambda x: x[None]),
            case("(2, 3) dim -1", lambda x: mg.unsqueeze(x, -1), normal(rng, (2, 3)), ref=lambda x: x[..., None]),
            case(
                "(2, 3) dim 2 (the end)", lambda x: mg.unsqueeze(x, 2), normal(rng, (2, 3)), ref=lambda x: x[..., None]
            ),
            case("0-d", lambda x: x.unsqueeze(0), normal(rng, ()), ref=lambda x: x.reshape(1)),
        ],
        "squeeze": [
            case("all size-1 axes", lambda x: x.squeeze(), normal(rng, (2, 1, 3, 1)), ref=np.squeeze),
            case("dim 1", lambda x: mg.squeeze(x, 1), normal(rng, (2, 1, 1)), ref=lambda x: x.reshape(2, 1)),
            case("dim not of size 1 stays (torch)", lambda x: x.squeeze(0), normal(rng, (2, 1)), ref=lambda x: x),
            case("dims (0, -1)", lambda x: x.squeeze((0, -1)), normal(rng, (1, 3, 1)), ref=lambda x: x.reshape(3)),
            case("(1,) to 0-d", lambda x: x.squeeze(), normal(rng, (1,)), ref=lambda x: x.reshape(())),
        ],
        "flatten": [
            case("all", lambda x: x.flatten(), normal(rng, (2, 3, 4)), ref=lambda x: x.reshape(-1)),
            case("from dim 1", lambda x: mg.flatten(x, 1), normal(rng, (2, 3, 4)), ref=lambda x: x.reshape(2, -1)),
            case("dims 0 to 1", lambda x: mg.flatten(x, 0, 1), normal(rng, (2, 3, 4)), ref=lambda x: x.reshape(6, 4)),
            case("0-d gives (1,)", lambda x: x.flatten(), normal(rng, ()), ref=lambda x: x.reshape(1)),
        ],
        "permute": [
            case("(2, 0, 1)", lambda x: x.permute(2, 0, 1), normal(rng, (2, 3, 4)), ref=lambda x: x.transpose(2, 0, 1)),
            case("tuple, negative", lambda x: mg.permute(x, (-1, 0)), normal(rng, (2, 3)), ref=lambda x: x.T),
            case("identity", lambda x: x.permute(0, 1), normal(rng, (1, 3)), ref=lambda x: x),
            case("0-d", lambda x: x.permute(), normal(rng, ()), ref=lambda x: x),
        ],
        "view": [
            case("(2, 3) -> (3, 2)", lambda x: x.view(3, 2), normal(rng, (2, 3)), ref=lambda x: x.reshape(3, 2)),
            case("(6,) -> (2, -1)", lambda x: mg.view(x, (2, -1)), normal(rng, (6,)), ref=lambda x: x.reshape(2, 3)),
            case("() -> (1,)", lambda x: x.view(1), normal(rng, ()), ref=lambda x: x.reshape(1)),
            case("(1, 1) -> ()", lambda x: x.view(()), normal(rng, (1, 1)), ref=lambda x: x.reshape(())),
        ],
    }


def min_cases(rng):
    by_dim = [
        case("dim=1 values", lambda x: x.min(dim=1).values, distinct(rng, (3, 4)), ref=lambda x: x.min(axis=1)),
        case(
            "dim=0 keepdim values",
            lambda x: mg.min(x, dim=0, keepdim=True)[0],
            distinct(rng, (3, 4)),
            ref=lambda x: x.min(axis=0, keepdims=True),
        ),
        case("dim= on 1-D", lambda x: x.min(dim=-1).values, distinct(rng, (5,)), ref=np.min),
        case("dim= and keepdim= names", lambda x: x.min(axis=(0, 1), keepdim=True), distinct(rng, (2, 3))),
    ]
    return reductions(mg.min, np.min, values=distinct)(rng) + by_dim


def extremes(op, ref):
    def ties(rng):  # equal elements: torch splits δ ½ : ½, and so do central differences
        a = np.array([1.0, 2.0, -0.5, 3.0])
        return case("ties split evenly", op, a, np.array([1.0, 0.5, -0.5, 4.0]), ref=ref)

    return binary(
        op, ref, extra=[ties, lambda rng: case("with a python scalar", lambda x: op(x, 0.1), normal(rng, (2, 3)))]
    )


def to_cases(rng):
    # float64 -> float32 -> float64 would lose digits to finite differences: the float32 sweep
    # (every case cast) and test_to_float32_passes_the_gradient_back_cast check real casts
    return [
        case("to own dtype", lambda x: x.to(x.dtype) * 2, normal(rng, (2, 3)), ref=lambda x: 2 * x),
        case("double() then back", lambda x: x.double().to(x.dtype), normal(rng, (3,)), ref=lambda x: x),
        case("to a tensor's dtype, 0-d", lambda x: mg.ops.to(x, x) * x, normal(rng, ()), ref=lambda x: x * x),
        case("to 'cpu'", lambda x: x.to("cpu"), normal(rng, (1, 2)), ref=lambda x: x),
    ]


# name → sample generator (rng → [Case]). Every public op must appear here.
SWEEP: dict[str, Callable[[np.random.Generator], list[Case]]] = {
    "add": binary(mg.add, np.add, extra=[arithmetic_with_scalars("+")]),
    "sub": binary(mg.sub, np.subtract, extra=[arithmetic_with_scalars("-")]),
    "mul": binary(mg.mul, np.multiply, extra=[arithmetic_with_scalars("*")]),
    "div": binary(mg.div, np.divide, right=away_from_zero, extra=[arithmetic_with_scalars("/")]),
    "pow": pow_cases,
    "neg": unary(lambda x: -x, np.negative, extra=[lambda rng: case("function form", mg.neg, normal(rng, (2,)))]),
    "matmul": matmul_cases,
    "addmm": lambda rng: [
        case(
            f"{sc} + {sa} @ {sb}",
            mg.addmm,
            normal(rng, sc),
            normal(rng, sa),
            normal(rng, sb),
            ref=lambda c, a, b: c + a @ b,
        )
        for sc, sa, sb in [
            ((2, 4), (2, 3), (3, 4)),
            ((4,), (2, 3), (3, 4)),
            ((), (1, 1), (1, 1)),
            ((2, 1), (2, 3), (3, 5)),
        ]
    ],
    "lerp": lambda rng: (
        [
            case(
                f"{sa}, {sb}, {sw}",
                mg.lerp,
                normal(rng, sa),
                normal(rng, sb),
                normal(rng, sw),
                ref=lambda a, b, w: a + w * (b - a),
            )
            for sa, sb, sw in [
                ((2, 3), (2, 3), (2, 3)),
                ((3,), (2, 3), (2, 1)),
                ((), (1,), (4,)),
                ((2, 1, 3), (3,), ()),
            ]
        ]
        + [
            case(
                "python scalars",
                lambda b: mg.lerp(0.5, b, 0.25),
                normal(rng, (3,)),
                ref=lambda b: 0.5 + 0.25 * (b - 0.5),
            )
        ]
    ),
    "exp": unary(mg.exp, np.exp, extra=[lambda rng: case("large negative", mg.exp, [-50.0, -700.0], ref=np.exp)]),
    "log": unary(mg.log, np.log, positive, extra=[lambda rng: case("near 0", mg.log, [1e-3, 5e-3, 2e-2], ref=np.log)]),
    "tanh": unary(mg.tanh, np.tanh, extra=[lambda rng: case("±1000, ±20", mg.tanh, [-1000.0, -20.0, 20.0, 1000.0])]),
    "sigmoid": unary(
        mg.sigmoid,
        lambda x: 1 / (1 + np.exp(-x)),
        extra=[lambda rng: case("±1000, ±40", mg.sigmoid, [-1000.0, -40.0, 40.0, 1000.0])],
    ),
    "relu": unary(mg.relu, lambda x: np.maximum(x, 0), away_from_zero),
    "sqrt": unary(mg.sqrt, np.sqrt, positive, extra=[lambda rng: case("near 0", mg.sqrt, [1e-3, 5e-3], ref=np.sqrt)]),
    "abs": unary(mg.abs, np.abs, away_from_zero),
    "clip": clip_cases,
    "scale_grad": lambda rng: [
        case("xi = 1: plain identity", lambda x: mg.scale_grad(x, 1.0), normal(rng, (2, 3)), ref=lambda x: x),
        case("xi = 0.5 halves", lambda x: mg.scale_grad(x, 0.5), normal(rng, (3,)), ref=lambda x: x, grad_factor=0.5),
        case(
            "xi = -2, 0-d", lambda x: mg.scale_grad(x * x, -2.0), normal(rng, ()), ref=lambda x: x * x, grad_factor=-2.0
        ),
        case(
            "xi = 0: gradient blocked",
            lambda x: mg.scale_grad(x, 0.0),
            normal(rng, (2, 1)),
            ref=lambda x: x,
            grad_factor=0.0,
        ),
    ],
    "sum": reductions(mg.sum, np.sum),
    "mean": reductions(mg.mean, np.mean),
    "max": reductions(mg.max, np.max, values=distinct),
    "reshape": reshape_cases,
    "transpose": transpose_cases,
    "getitem": getitem_cases,
    "concat": concat_cases,
    "stack": stack_cases,
    "split": split_cases,
    "unbind": unbind_cases,
    "where": where_cases,
    "softmax": softmax_family(mg.softmax, np_softmax),
    "log_softmax": softmax_family(mg.log_softmax, np_log_softmax),
    "embedding": embedding_cases,
    "cross_entropy": cross_entropy_cases,
    "mse_loss": mse_cases,
    "one_hot": None,  # not differentiable: a constant; checked by test_one_hot_is_a_constant_with_ones_at_the_indices
    **{
        name: (lambda rng, name=name: shape_op_cases(rng)[name])
        for name in ("unsqueeze", "squeeze", "flatten", "permute", "view")
    },
    "min": min_cases,
    "maximum": extremes(mg.maximum, np.maximum),
    "minimum": extremes(mg.minimum, np.minimum),
    "to": to_cases,
    "argmax": None,  # an index: not differentiable; see test_argmax_and_argmin_give_int64_indices_as_torch
    "argmin": None,
}

# helpers that ops.py exports as plain functions but that are not ops
NOT_OPS = {"unbroadcast"}


def cases_of(name: str) -> list[Case]:
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # stable per op, independent of table order
    return SWEEP[name](rng)


ALL_CASES = [
    pytest.param(name, c, id=f"{name}[{c.desc}]")
    for name, gen in SWEEP.items()
    if gen is not None
    for c in cases_of(name)
]


def cases_per_op() -> dict[str, int]:
    return {name: len(cases_of(name)) for name, gen in SWEEP.items() if gen is not None}


# ---------------------------------------------------------------------------
# Coverage of the table
# ---------------------------------------------------------------------------
def public_ops() -> set[str]:
    names = set(ops.__all__) | set(functional.__all__)
    names |= {
        n
        for n, v in vars(mg).items()
        if callable(v) and getattr(v, "__module__", None) in ("minigrad.ops", "minigrad.functional")
    }
    return names


def test_every_public_op_has_an_entry_in_the_sweep_table():
    missing = public_ops() - SWEEP.keys()
    assert not missing, f"add sample cases to SWEEP in tests/test_op_sweep.py for: {sorted(missing)}"


def test_the_sweep_table_names_only_public_ops():
    stale = SWEEP.keys() - public_ops()
    assert not stale, f"SWEEP has entries for names that are not public ops: {sorted(stale)}"


def test_every_public_function_in_ops_is_listed_in_its_all():
    defined = {
        n
        for n, v in vars(ops).items()
        if inspect.isfunction(v) and v.__module__ == "minigrad.ops" and not n.startswith("_")
    }
    assert defined - NOT_OPS <= set(ops.__all__), (
        f"ops.py defines ops missing from __all__: {defined - NOT_OPS - set(ops.__all__)}"
    )


def test_every_op_has_several_cases_including_a_0d_or_size_1_one():
    for name, n in cases_per_op().items():
        assert n >= 4, f"{name} has only {n} sample cases"
    for name in ("add", "mul", "exp", "sum", "max", "transpose", "getitem", "stack", "mse_loss", "reshape"):
        assert any(any(a.ndim == 0 or 1 in a.shape for a in c.arrays) for c in cases_of(name)), name


def test_every_op_says_in_a_docstring_what_it_computes_and_carries_its_delta_formula():
    # help(minigrad.ops) is the derivative table: a one-line summary per op (first line, a full
    # sentence), and δ beside the forward in the source (followed through buffers' out= wrapper)
    for name in ops.__all__:
        f = getattr(ops, name)
        doc = inspect.getdoc(f) or ""
        first = doc.splitlines()[0] if doc else ""
        assert first.endswith("."), f"ops.{name}: the docstring's first line should say what it computes: {first!r}"
        assert "δ" in inspect.getsource(f), f"ops.{name}: no δ formula in its source"


def test_out_takes_python_numbers_with_the_dtype_the_op_gives_them():
    # the out= check predicts the result's dtype as the op computes it: a number takes the
    # dtype of the tensor it meets (float32 stays float32), a numpy float64 scalar included
    x = mg.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    for call in (
        lambda out: mg.mul(x, 2.0, out=out),
        lambda out: mg.sub(2, x, out=out),
        lambda out: mg.add(x, np.float64(0.5), out=out),
        lambda out: mg.lerp(x, 1.0, 0.25, out=out),
    ):
        buf = np.full((2, 3), np.nan, np.float32)
        y = call(buf)
        assert y.data is buf and y.dtype == np.float32
        np.testing.assert_array_equal(buf, call(None).data)
        y.sum().backward()
        assert x.grad.dtype == np.float32
        x.grad = None
    both = np.empty(())
    assert mg.add(2.0, 3, out=both).data is both and both == 5.0


# ---------------------------------------------------------------------------
# The sweep: float64 against finite differences and numpy, float32 against float64
# ---------------------------------------------------------------------------
def leaves(arrays, dtype=np.float64):
    return [mg.Tensor(a.astype(dtype), requires_grad=True, name=f"x{i}") for i, a in enumerate(arrays)]


@pytest.mark.parametrize("name, c", ALL_CASES)
def test_op_gradient_matches_finite_differences_in_float64(name, c):
    xs = leaves(c.arrays)
    if c.grad_factor == 1.0:
        assert mg.gradcheck(c.fn, xs)
        return
    # scale_grad: backward is grad_factor × the true derivative, by design
    out = c.fn(*xs)
    weights = np.random.default_rng(0).standard_normal(out.shape)
    (out * weights).sum().backward()
    for i, x in enumerate(xs):
        numeric = numerical_grad(c.fn, xs, i, 1e-6, weights)
        np.testing.assert_allclose(x.grad, c.grad_factor * numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name, c", [p for p in ALL_CASES if p.values[1].ref is not None])
def test_op_forward_matches_numpy_in_float64(name, c):
    out = c.fn(*leaves(c.arrays))
    expected = np.asarray(c.ref(*c.arrays))
    assert out.shape == expected.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-300)


def backward_with_weights(c: Case, dtype):
    """Forward and backward of c in ``dtype``; returns (output, leaves, op inputs with retained grads)."""
    xs = leaves(c.arrays, dtype)
    hs = [mg.scale_grad(x, 1.0).retain_grad() for x in xs]  # the op's own inputs: their .grad is the op's VJP output
    out = c.fn(*hs)
    weights = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    (out * weights).sum().backward()
    return out, xs, hs


@pytest.mark.parametrize("name, c", ALL_CASES)
def test_op_keeps_float32_through_forward_and_backward_and_agrees_with_float64(name, c):
    out32, xs32, hs32 = backward_with_weights(c, np.float32)
    assert out32.dtype == np.float32, f"{name} forward gave {out32.dtype}"
    for x, h in zip(xs32, hs32):
        assert h.grad is not None and h.grad.dtype == np.float32, f"{name} backward gave {h.grad.dtype}"
        assert x.grad.dtype == np.float32
    _, xs64, _ = backward_with_weights(c, np.float64)
    for x32, x64 in zip(xs32, xs64):
        scale = max(1.0, float(np.abs(x64.grad).max(initial=0)))
        np.testing.assert_allclose(x32.grad, x64.grad, rtol=2e-3, atol=2e-3 * scale)


def test_one_hot_is_a_constant_with_ones_at_the_indices():
    y = mg.one_hot(np.array([2, 0, 2]), 4)
    np.testing.assert_array_equal(y.data, np.eye(4)[[2, 0, 2]])
    assert not y.requires_grad and y.dtype == np.float64
    assert mg.one_hot(mg.Tensor(np.array(1)), 3, dtype=np.float32).dtype == np.float32


# ---------------------------------------------------------------------------
# Layers and losses built from the ops
# ---------------------------------------------------------------------------
def test_linear_gradients_match_finite_differences_for_weight_bias_and_input():
    layer = Linear(3, 2, rng=0)
    x = mg.Tensor(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True)
    assert mg.gradcheck(lambda x, W, b: layer(x), [x, layer.weight, layer.bias])
    np.testing.assert_allclose(layer(x).data, x.data @ layer.weight.data.T + layer.bias.data)


def test_linear_without_bias_on_a_batched_3d_input():
    layer = Linear(3, 5, bias=False, rng=0)
    x = mg.Tensor(np.random.default_rng(1).standard_normal((2, 4, 3)), requires_grad=True)
    assert layer.bias is None and layer(x).shape == (2, 4, 5)
    assert mg.gradcheck(lambda x, W: layer(x), [x, layer.weight])


def test_linear_and_embedding_in_float32_keep_float32_gradients():
    emb, lin = Embedding(6, 3, rng=0, dtype=np.float32), Linear(3, 2, rng=1, dtype=np.float32)
    loss = mg.cross_entropy(lin(emb(np.array([0, 5, 5]))), np.array([1, 0, 1]))
    loss.backward()
    assert loss.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in (emb.weight, lin.weight, lin.bias))


def test_embedding_gradient_accumulates_rows_picked_twice():
    emb = Embedding(5, 2, rng=0)
    assert mg.gradcheck(lambda W: emb(np.array([[1, 3], [3, 3]])), [emb.weight])
    emb.weight.zero_grad()
    emb(np.array([[1, 3], [3, 3]])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad[:, 0], [0, 1, 0, 3, 0])


def test_cross_entropy_with_an_embedding_and_linear_layer_end_to_end():
    emb, lin = Embedding(7, 4, rng=0), Linear(4, 3, rng=1)
    idx, y = np.array([0, 6, 2, 2]), np.array([2, 0, 1, 1])
    assert mg.gradcheck(lambda E, W, b: mg.cross_entropy(lin(emb(idx).tanh()), y), [emb.weight, lin.weight, lin.bias])


# ---------------------------------------------------------------------------
# Extreme values: finite results and finite gradients where the math is finite
# ---------------------------------------------------------------------------
BIG = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0], [1000.0, 1000.0, 1000.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "op",
    [
        pytest.param(mg.softmax, id="softmax"),
        pytest.param(mg.log_softmax, id="log_softmax"),
        pytest.param(lambda z: mg.cross_entropy(z, np.array([1, 2, 0])), id="cross_entropy"),
    ],
)
def test_large_logits_give_finite_values_and_finite_gradients(op, dtype):
    z = mg.Tensor(BIG.astype(dtype), requires_grad=True)
    with mg.detect_anomaly():  # would raise at the first NaN/Inf, forward or backward
        out = op(z)
        weights = np.linspace(-1, 1, out.size).reshape(out.shape).astype(dtype)
        (out * weights).sum().backward()
    assert np.isfinite(out.data).all() and np.isfinite(z.grad).all()
    assert out.dtype == dtype and z.grad.dtype == dtype


def test_softmax_of_large_logits_has_the_exact_limits():
    p = mg.softmax(mg.Tensor(BIG)).data
    np.testing.assert_allclose(p[0], [1, 0, 0], atol=0)
    np.testing.assert_allclose(p[2], [1 / 3] * 3)
    np.testing.assert_allclose(mg.log_softmax(mg.Tensor(BIG)).data[1], [-2000.0, -2000.0, 0.0])
    # a confidently wrong prediction costs its margin, not inf
    assert mg.cross_entropy(mg.Tensor(BIG[:1]), np.array([1])).item() == pytest.approx(2000.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_and_tanh_of_plus_minus_1000_saturate_with_zero_gradient(dtype):
    x = mg.Tensor(np.array([-1000.0, 1000.0], dtype=dtype), requires_grad=True)
    with mg.detect_anomaly():
        s, t = mg.sigmoid(x), mg.tanh(x)
        (s + t).sum().backward()
    np.testing.assert_array_equal(s.data, [0.0, 1.0])
    np.testing.assert_array_equal(t.data, [-1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_exp_overflows_to_inf_like_numpy_and_anomaly_mode_names_it():
    with np.errstate(over="ignore"):
        assert mg.exp(mg.Tensor(np.array([1000.0]))).data[0] == np.inf
    with pytest.raises(mg.AnomalyError, match="'exp'.*Inf"):
        with mg.detect_anomaly(), np.errstate(over="ignore"):
            mg.exp(mg.Tensor(np.array([1000.0]), requires_grad=True))


def test_log_and_sqrt_at_zero_and_below_follow_ieee_and_anomaly_mode_names_the_op():
    # documented: log(0) = -inf with gradient inf; sqrt(0) = 0 with gradient inf; below 0 both give NaN
    x = mg.Tensor(np.array([0.0, 0.0]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = mg.log(x[0:1]) + mg.sqrt(x[1:2])
        assert y.data[0] == -np.inf
        y.sum().backward()
        np.testing.assert_array_equal(x.grad, [np.inf, np.inf])
        assert np.isnan(mg.log(mg.Tensor(-1.0)).data) and np.isnan(mg.sqrt(mg.Tensor(-1.0)).data)
    for op in (mg.log, mg.sqrt):
        with pytest.raises(mg.AnomalyError, match=f"'{op.__name__}'.*NaN"):
            with mg.detect_anomaly(), np.errstate(invalid="ignore"):
                op(mg.Tensor(np.array([-1.0]), requires_grad=True))


# ---------------------------------------------------------------------------
# Non-differentiable points: the documented choices (PyTorch's)
# ---------------------------------------------------------------------------
def grad_of(op, values):
    x = mg.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)
    op(x).sum().backward()
    return x.grad


def test_pow_at_zero_follows_torch():
    # torch (FunctionsManual.cpp pow_backward_self / pow_backward_exponent): δa = 0 where b = 0,
    # else b a^(b−1); δb = 0 where a = 0 and b ≥ 0, else y ln a (−inf at a = 0, b < 0; NaN for a < 0)
    x = mg.Tensor([0.0, 1.0], requires_grad=True)
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    a, b = mg.Tensor([0.0, 0.0], requires_grad=True), mg.Tensor([2.0, 0.0], requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 0.0])
    np.testing.assert_array_equal(b.grad, [0.0, 0.0])
    a = mg.Tensor([0.0, 0.0, 0.0, -1.0, -2.0, 0.0], requires_grad=True)
    b = mg.Tensor([0.5, -1.0, 1.0, 2.0, 0.5, 3.0], requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_array_equal(a.grad, [np.inf, -np.inf, 1.0, -2.0, np.nan, 0.0])
    np.testing.assert_array_equal(b.grad, [0.0, -np.inf, 0.0, np.nan, np.nan, 0.0])


def test_pow_at_zero_matches_torch_including_nan_and_inf():
    torch = pytest.importorskip("torch")
    a0, b0 = np.array([0.0, 0.0, 0.0, 0.0, -1.0, -2.0, 0.0, 1.0]), np.array([2.0, 0.0, 0.5, -1.0, 2.0, 0.5, 3.0, 0.0])
    a, b = mg.Tensor(a0, requires_grad=True), mg.Tensor(b0, requires_grad=True)
    (a**b).sum().backward()
    ta, tb = torch.tensor(a0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    (ta**tb).sum().backward()
    np.testing.assert_array_equal(a.grad, ta.grad.numpy())
    np.testing.assert_array_equal(b.grad, tb.grad.numpy())
    for e in (0, 0.0, 2, 0.5, -1):
        x, tx = mg.Tensor([0.0, 1.0, -1.0], requires_grad=True), torch.tensor([0.0, 1.0, -1.0], requires_grad=True)
        (x**e).sum().backward()
        (tx**e).sum().backward()
        np.testing.assert_array_equal(x.grad, tx.grad.numpy(), err_msg=f"x ** {e}")


def test_an_integer_tensor_to_a_negative_integer_power_is_refused_as_numpy_and_torch_do():
    with pytest.raises(ValueError, match="pow: integers to negative integer powers are not allowed"):
        mg.Tensor(np.array([2])) ** -1
    np.testing.assert_array_equal((mg.Tensor(np.array([2])) ** 2).data, [4])  # a non-negative power is fine
    np.testing.assert_allclose((mg.Tensor(np.array([2.0])) ** -1).data, [0.5])


def test_relu_at_zero_has_gradient_zero():
    np.testing.assert_array_equal(grad_of(mg.relu, [-1.0, 0.0, 2.0]), [0.0, 0.0, 1.0])


def test_abs_at_zero_has_gradient_zero():
    np.testing.assert_array_equal(grad_of(mg.abs, [-1.0, 0.0, 2.0]), [-1.0, 0.0, 1.0])


def test_clip_passes_the_gradient_on_its_bounds():
    np.testing.assert_array_equal(grad_of(lambda x: mg.clip(x, -1, 1), [-2.0, -1.0, 0.0, 1.0, 2.0]), [0, 1, 1, 1, 0])


def test_max_splits_the_gradient_evenly_between_ties():
    np.testing.assert_array_equal(grad_of(mg.max, [1.0, 3.0, 3.0]), [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(
        grad_of(lambda x: mg.max(x.reshape(2, 2), axis=1), [2.0, 2.0, 0.0, 1.0]), [0.5, 0.5, 0, 1]
    )


def test_argmax_and_argmin_give_int64_indices_as_torch():
    x = mg.Tensor(np.array([[1.0, 5.0, 5.0], [7.0, 2.0, 0.0]]), requires_grad=True)
    assert mg.argmax(x).data == 3 and mg.argmax(x).dtype == np.int64  # flattened, as torch
    np.testing.assert_array_equal(x.argmax(dim=1).data, [1, 0])  # first of the tied maxima
    np.testing.assert_array_equal(x.argmin(1, keepdim=True).data, [[0], [2]])
    np.testing.assert_array_equal(mg.argmin(x, axis=0).data, [0, 1, 1])
    assert x.argmax(keepdim=True).shape == (1, 1) and not x.argmax().requires_grad
    with pytest.raises(TypeError, match="axis= .* or dim= .*not both"):
        mg.argmax(x, 1, axis=1)
    with pytest.raises(ValueError, match="argmin of an empty tensor"):
        mg.argmin(mg.Tensor(np.zeros((0,))))


def test_to_float32_passes_the_gradient_back_cast_to_the_inputs_dtype():
    x = mg.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    y = x.float()
    assert y.dtype == np.float32 and y.op == "to"
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad, 2 * x.data, rtol=1e-7)
    assert x.double() is x  # the same dtype: the same tensor, as torch
    i = x.to(np.int64)
    assert i.dtype == np.int64 and not i.requires_grad  # an integer cast is a constant
    with pytest.raises(TypeError, match="expected a dtype"):
        x.to("cuda")
