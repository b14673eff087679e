"""Random small graphs of random ops, checked against finite differences.

Each seed builds a little program: one to three leaves, then three to eight
steps, each applying a random op to random earlier values (so values are
reused, gradients meet and accumulate, shapes broadcast, multi-output ops
hand back several pieces). The program is replayed as a function of the leaves
and ``mg.gradcheck`` compares backward with central differences. A failure
prints the program, one line a step, so it can be rebuilt by hand.

Ops with a domain (log, sqrt, pow, div) get inputs moved into it (``a² + ½``);
steps whose values overflow a modest range are dropped, so every graph is
smooth enough for finite differences.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import minigrad as mg

N_GRAPHS = 300
MAX_SIZE = 36  # elements per value: keeps finite differences cheap
MAX_ABS = 100.0  # drop steps whose values leave [-100, 100]: finite differences stay accurate

LEAF_SHAPES = [(), (3,), (1, 3), (2, 1), (2, 3), (3, 3), (2, 3, 2)]

Step = Callable[[list[mg.Tensor]], mg.Tensor]


def pick(rng, pool, want=None):
    """Index of a random earlier value (recent ones more often), optionally one satisfying ``want``."""
    idx = [i for i, v in enumerate(pool) if want is None or want(v)]
    if not idx:
        return None
    w = np.arange(1, len(idx) + 1, dtype=float)  # later values weigh more: deeper graphs
    return int(rng.choice(idx, p=w / w.sum()))


def random_axis(rng, ndim):
    return int(rng.integers(-ndim, ndim)) if ndim else None


def broadcastable(a, b):
    try:
        np.broadcast_shapes(a.shape, b.shape)
        return True
    except ValueError:
        return False


# Each maker returns (description, step) or None when the pool has no fitting operands.
def unary(rng, pool):
    i = pick(rng, pool)
    name = rng.choice(["neg", "exp", "log", "tanh", "sigmoid", "relu", "sqrt", "abs", "clip", "scale_grad", "pow2"])
    f = {
        "neg": lambda a: -a,
        "exp": lambda a: mg.exp(a * 0.5),
        "log": lambda a: mg.log(a * a + 0.5),  # inside log's domain
        "tanh": mg.tanh,
        "sigmoid": mg.sigmoid,
        "relu": mg.relu,
        "sqrt": lambda a: mg.sqrt(a * a + 0.1),
        "abs": mg.abs,
        "clip": lambda a: mg.clip(a, -1.0, 1.0),
        "scale_grad": lambda a: mg.scale_grad(a, 1.0),  # ξ = 1: the true derivative, checkable
        "pow2": lambda a: a**2,
    }[name]
    return f"{name}(v{i})", lambda vals: f(vals[i])


def binary(rng, pool):
    i = pick(rng, pool)
    j = pick(rng, pool, lambda v: broadcastable(v, pool[i]))
    name = rng.choice(["add", "sub", "mul", "div", "pow", "where", "mse_loss"])
    if name == "mse_loss":
        j = pick(rng, pool, lambda v: v.shape == pool[i].shape)
        if j == i:  # mse_loss(v, v) is 0 with gradient 0: nothing to check
            return None
        return f"mse_loss(v{i}, v{j})", lambda vals: mg.mse_loss(vals[i], vals[j])
    if name == "where":
        k = pick(rng, pool, lambda v: broadcastable(v, pool[i]) and broadcastable(v, pool[j]))
        return f"where(v{k} > 0, v{i}, v{j})", lambda vals: mg.where(vals[k] > 0, vals[i], vals[j])
    f = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / (b * b + 1.0),  # the divisor stays ≥ 1
        "pow": lambda a, b: (a * a + 0.5) ** mg.tanh(b),  # positive base, bounded exponent
    }[name]
    return f"{name}(v{i}, v{j})", lambda vals: f(vals[i], vals[j])


def matmul(rng, pool):
    i = pick(rng, pool, lambda v: v.ndim >= 1)
    if i is None:
        return None
    a = pool[i]
    j = pick(rng, pool, lambda v: v.ndim >= 1 and v.shape[-1] == a.shape[-1])
    b = pool[j]
    if b.ndim == 1:
        return f"matmul(v{i}, v{j})", lambda vals: vals[i] @ vals[j]
    # contract the last axes: a @ bᵀ (bᵀ swaps b's last two axes)
    perm = tuple(range(b.ndim - 2)) + (b.ndim - 1, b.ndim - 2)
    return f"matmul(v{i}, transpose(v{j}, {perm}))", lambda vals: vals[i] @ mg.transpose(vals[j], perm)


def reduction(rng, pool):
    i = pick(rng, pool)
    name = str(rng.choice(["sum", "mean", "max"]))
    axis = random_axis(rng, pool[i].ndim) if rng.random() < 0.7 else None
    keepdims = bool(rng.random() < 0.5)
    op = getattr(mg, name)
    return f"{name}(v{i}, axis={axis}, keepdims={keepdims})", lambda vals: op(vals[i], axis=axis, keepdims=keepdims)


def softmax(rng, pool):
    i = pick(rng, pool, lambda v: v.ndim >= 1)
    if i is None:
        return None
    name = str(rng.choice(["softmax", "log_softmax"]))
    axis = random_axis(rng, pool[i].ndim)
    op = getattr(mg, name)
    return f"{name}(v{i}, axis={axis})", lambda vals: op(vals[i], axis=axis)


def cross_entropy(rng, pool):
    i = pick(rng, pool, lambda v: v.ndim == 2)
    if i is None:
        return None
    n, c = pool[i].shape
    y = rng.integers(0, c, n)
    return f"cross_entropy(v{i}, {y.tolist()})", lambda vals: mg.cross_entropy(vals[i], y)


def reshape(rng, pool):
    i = pick(rng, pool)
    shape = pool[i].shape
    size = pool[i].size
    options = [(size,), (1, size), (size, 1)] + [(d, size // d) for d in range(2, size) if size % d == 0]
    if size == 1:
        options.append(())
    new = options[int(rng.integers(len(options)))]
    return f"reshape(v{i} {shape} -> {new})", lambda vals: vals[i].reshape(new)


def transpose(rng, pool):
    i = pick(rng, pool, lambda v: v.ndim >= 2)
    if i is None:
        return None
    perm = tuple(int(p) for p in rng.permutation(pool[i].ndim))
    if rng.random() < 0.5:
        perm = tuple(p - pool[i].ndim for p in perm)  # negative axes
    return f"transpose(v{i}, {perm})", lambda vals: mg.transpose(vals[i], perm)


def getitem(rng, pool):
    i = pick(rng, pool, lambda v: v.ndim >= 1)
    if i is None:
        return None
    n = pool[i].shape[0]
    kind = rng.choice(["int array", "slice", "last axis"])
    if kind == "int array":  # repeats accumulate
        idx = rng.integers(-n, n, int(rng.integers(1, 5)))
        return f"v{i}[{idx.tolist()}]", lambda vals: vals[i][idx]
    if kind == "slice":
        lo = int(rng.integers(0, n))
        return f"v{i}[{lo}::-1]", lambda vals: vals[i][lo::-1]
    k = int(rng.integers(pool[i].shape[-1]))
    return f"v{i}[..., {k}]", lambda vals: vals[i][..., k]


def join(rng, pool):
    i = pick(rng, pool, lambda v: v.ndim >= 1)
    if i is None:
        return None
    same = [j for j, v in enumerate(pool) if v.shape == pool[i].shape]
    others = [int(rng.choice(same)) for _ in range(int(rng.integers(1, 3)))]
    ids = [i, *others]
    axis = random_axis(rng, pool[i].ndim)
    if rng.random() < 0.5:
        return f"concat({ids}, axis={axis})", lambda vals: mg.concat([vals[k] for k in ids], axis=axis)
    axis = int(rng.integers(-pool[i].ndim - 1, pool[i].ndim + 1))
    return f"stack({ids}, axis={axis})", lambda vals: mg.stack([vals[k] for k in ids], axis=axis)


def pieces(rng, pool):
    i = pick(rng, pool, lambda v: v.ndim >= 1)
    if i is None:
        return None
    ax = random_axis(rng, pool[i].ndim)
    n = pool[i].shape[ax]
    if rng.random() < 0.5:
        ps = f"unbind(v{i}, axis={ax})"
        make = lambda vals: mg.unbind(vals[i], axis=ax)  # noqa: E731
        count = n
    else:
        sections = [d for d in range(1, n + 1) if n % d == 0]
        k = int(rng.choice(sections))
        ps = f"split(v{i}, {k}, axis={ax})"
        make = lambda vals: mg.split(vals[i], k, axis=ax)  # noqa: E731
        count = k
    a, b = int(rng.integers(count)), int(rng.integers(count))  # unused pieces get zero gradient
    if rng.random() < 0.5:
        return f"{ps}[{a}]", lambda vals: make(vals)[a]
    return f"{ps}[{a}] * [{b}]", lambda vals: (lambda p: p[a] * p[b])(make(vals))


def embedding(rng, pool):
    i = pick(rng, pool, lambda v: v.ndim == 2)
    if i is None:
        return None
    idx = rng.integers(0, pool[i].shape[0], (int(rng.integers(1, 3)), int(rng.integers(1, 3))))
    return f"embedding(v{i}, {idx.tolist()})", lambda vals: mg.embedding(vals[i], idx)


MAKERS = [unary] * 4 + [binary] * 4 + [matmul, reduction, reduction, softmax, cross_entropy]
MAKERS += [reshape, transpose, getitem, join, pieces, embedding]


class Reads(list):
    """A list that remembers which entries a step read (to find the values nothing used)."""

    def __init__(self, items):
        super().__init__(items)
        self.read: set[int] = set()

    def __getitem__(self, i):
        self.read.add(i)
        return super().__getitem__(i)


def random_program(seed: int) -> tuple[list[np.ndarray], list[str], list[Step], dict[int, np.ndarray]]:
    """Leaves, a description per step, the steps, and {sink index: weight} for the values no step read."""
    rng = np.random.default_rng(seed)
    leaves = [rng.standard_normal(LEAF_SHAPES[k]) for k in rng.integers(len(LEAF_SHAPES), size=rng.integers(1, 4))]
    pool = [mg.Tensor(a, requires_grad=True) for a in leaves]
    descs, steps, read = [], [], set()
    n_steps = int(rng.integers(3, 9))
    tries = 0
    while len(steps) < n_steps and tries < 200:
        tries += 1
        made = MAKERS[int(rng.integers(len(MAKERS)))](rng, pool)
        if made is None:
            continue
        desc, step = made
        vals = Reads(pool)
        try:
            with np.errstate(all="raise"):
                out = step(vals)
        except (ValueError, IndexError, FloatingPointError):
            continue  # e.g. shapes that do not fit: not a program we want
        if out.size > MAX_SIZE or not np.all(np.abs(out.data) <= MAX_ABS):
            continue
        read |= vals.read
        pool.append(out)
        descs.append(f"v{len(pool) - 1} = {desc}  shape {out.shape}")
        steps.append(step)
    # the loss: Σ_k ⟨w_k, v_k⟩ over the values no step used (the last one always among them)
    sinks = {k: rng.standard_normal(pool[k].shape) for k in range(len(leaves), len(pool)) if k not in read}
    return leaves, descs, steps, sinks


def run(steps: list[Step], sinks: dict[int, np.ndarray], leaves: list[mg.Tensor]) -> mg.Tensor:
    vals = list(leaves)
    for step in steps:
        vals.append(step(vals))
    return sum((vals[k] * w).sum() for k, w in sinks.items())


@pytest.mark.parametrize("seed", range(N_GRAPHS))
def test_random_graph_gradients_match_finite_differences(seed):
    arrays, descs, steps, sinks = random_program(seed)
    xs = [mg.Tensor(a.copy(), requires_grad=True, name=f"v{k}") for k, a in enumerate(arrays)]
    program = "\n".join([f"v{k} = leaf {a.shape}" for k, a in enumerate(arrays)] + descs)
    program += f"\nloss = Σ ⟨w_k, v_k⟩ for k in {sorted(sinks)}"
    try:
        assert mg.gradcheck(lambda *xs: run(steps, sinks, xs), xs)
    except mg.GradcheckError as e:
        raise AssertionError(f"seed {seed}:\n{program}\n{e}") from None


def test_the_fuzz_programs_use_every_kind_of_op():
    seen = set()
    for seed in range(N_GRAPHS):
        for d in random_program(seed)[1]:
            op = d.split(" = ", 1)[1].split("(", 1)[0].split("[", 1)[0]
            seen.add("getitem" if op.startswith("v") else op)  # v3[...] is indexing
    expected = {
        "neg",
        "exp",
        "log",
        "tanh",
        "sigmoid",
        "relu",
        "sqrt",
        "abs",
        "clip",
        "scale_grad",
        "pow2",
        "add",
        "sub",
    }
    expected |= {"mul", "div", "pow", "where", "mse_loss", "matmul", "sum", "mean", "max", "softmax", "log_softmax"}
    expected |= {"cross_entropy", "reshape", "transpose", "getitem", "concat", "stack", "unbind", "split", "embedding"}
    assert expected <= seen, f"never drawn: {sorted(expected - seen)}"
