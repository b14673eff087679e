"""Per-op engine overhead: what one op costs on minigrad (forward + backward) next to the
same numpy calls written by hand. The difference is the engine's own overhead.

    python benchmarks/bench_ops.py                    # = `minigrad bench --ops`
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

if __name__ == "__main__":  # run as a script: a checkout's packages, installed or not
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402

__all__ = ["op_table", "format_table", "main"]


def _best(fn: Callable[[], object], repeat: int = 7) -> float:
    """Best time of one call in µs (the minimum is the least noisy estimate)."""
    timer = timeit.Timer(fn)
    n, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=n)) / n * 1e6


CHAIN = 20  # ops per measured chain: per-op cost includes its share of one backward() call


def _cases(rng: np.random.Generator) -> list[tuple[str, str, Callable, Callable]]:
    """(op, shape, minigrad fwd+bwd, numpy fwd+bwd) for tanh and matmul at three sizes.

    Each runs a chain of CHAIN applications forward, then backward through all
    of them; the numpy side saves and uses exactly what the VJPs need.
    """
    cases = []
    for b, n in ((1, 32), (32, 128), (128, 512)):
        x = rng.standard_normal((b, n)) * 0.1
        w = np.linalg.qr(rng.standard_normal((n, n)))[0]  # orthogonal: the chain neither blows up nor vanishes
        g = np.ones((b, n))
        xt, wt = mg.Tensor(x, requires_grad=True), mg.Tensor(w, requires_grad=True)

        def mg_tanh(xt=xt, g=g):
            y = xt
            for _ in range(CHAIN):
                y = mg.tanh(y)
            y.backward(g)
            xt.grad = None

        def np_tanh(x=x, g=g):
            ys, y = [], x
            for _ in range(CHAIN):
                y = np.tanh(y)
                ys.append(y)
            for y in reversed(ys):
                g = g * (1 - y * y)
            return g

        def mg_matmul(xt=xt, wt=wt, g=g):
            y = xt
            for _ in range(CHAIN):
                y = mg.matmul(y, wt)
            y.backward(g)
            xt.grad = wt.grad = None

        def np_matmul(x=x, w=w, g=g):
            xs, y = [], x
            for _ in range(CHAIN):
                xs.append(y)
                y = y @ w
            dw = np.zeros_like(w)
            for xi in reversed(xs):
                dw += xi.T @ g
                g = g @ w.T
            return g, dw

        cases.append(("tanh", f"{b}x{n}", mg_tanh, np_tanh))
        cases.append(("matmul", f"{b}x{n} @ {n}x{n}", mg_matmul, np_matmul))
    return cases


def op_table(seed: int = 0) -> list[dict]:
    rows = []
    for op, shape, mg_fn, np_fn in _cases(np.random.default_rng(seed)):
        t_np, t_mg = _best(np_fn) / CHAIN, _best(mg_fn) / CHAIN
        rows.append({"op": op, "shape": shape, "numpy_us": t_np, "minigrad_us": t_mg})
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'op':<8} {'shape':<18} {'numpy µs':>10} {'minigrad µs':>12} {'overhead µs':>12} {'ratio':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        over = r["minigrad_us"] - r["numpy_us"]
        ratio = r["minigrad_us"] / r["numpy_us"]
        lines.append(
            f"{r['op']:<8} {r['shape']:<18} {r['numpy_us']:>10.1f} {r['minigrad_us']:>12.1f} {over:>12.1f} {ratio:>6.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="minigrad bench",
        description="Per-op forward+backward cost on minigrad vs the same numpy calls, side by side in one run.",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(
        f"forward + backward per op, in a chain of {CHAIN} (best of 7; run with OMP_NUM_THREADS=1 for steady numbers)"
    )
    print(format_table(op_table(args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
