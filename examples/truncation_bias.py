"""Truncated BPTT is biased; randomized truncation is not, but pays in variance.

The smallest model that shows it is the scalar linear recurrence of the notes,

    h_t = a h_{t−1} + x_t,     ℓ_t = ½ h_t²,     L = Σ_t ℓ_t,     x_t ~ N(0, 1)

(``models.RNN(1, 1, nonlinearity="identity", bias=False)`` with W_hh = a, W_ih = 1). Its full
gradient is a sum over how far back each path reaches:

    ∂L/∂a = Σ_t h_t Σ_{n≥0} a^n h_{t−n−1}

and truncation drops the long paths. Two kinds of window, both named precisely:

* sliding window k, the notes' definition: the loss at t backpropagates through exactly the
  last k steps (h_{t−k} is a constant). That is ``models.tbptt_train(k1=1, k2=k)``: one window
  per loss. In a stationary sequence E[h_t h_{t−n−1}] ∝ a^(n+1), so the term reaching n steps
  back is ∝ a^(2n+1) and the relative bias is about −a^(2k);
* ``truncate=k`` of the layers: the state is detached after steps k, 2k, …, so a loss reaches
  back 0 to k − 1 steps depending on where it sits in its block; the relative bias is then about
  −a²(1 − a^(2k)) / (k(1 − a²)), much larger.

Part 1 sweeps a and k and prints the relative bias (g_k − g)/g of both against the full
gradient, with the predictions. Part 2 sets randomized truncation (``models.RandomTruncation(p)``:
keep each step's path with probability p, scaled by 1/p) beside ``truncate=k`` at the same mean
window (steps between cuts): k = 1/(1 − p). It draws many gradients and prints their mean's
bias (zero within the standard error), their spread std/|g| for one draw, and the root mean
square error of one draw next to the fixed window's bias.

    python examples/truncation_bias.py             # T = 500, batch 32: about a minute
    python examples/truncation_bias.py --quick
"""

from __future__ import annotations

import _common
import numpy as np

import minigrad as mg
import models


def scalar_rnn(a: float) -> models.RNN:
    """h_t = a h_{t−1} + x_t as a models.RNN (one unit, no bias, no nonlinearity)."""
    rnn = models.RNN(1, 1, nonlinearity="identity", bias=False)
    rnn.load_state_dict({"weight_ih_l0": np.array([[1.0]]), "weight_hh_l0": np.array([[a]])})
    return rnn


def half_square(out: mg.Tensor, _targets=None) -> mg.Tensor:
    return 0.5 * (out * out).sum()  # Σ_t ½ h_t² (summed over the batch too)


def grad_a(a: float, x: np.ndarray, truncate=None) -> float:
    """∂L/∂a with ``rnn(x, truncate=truncate)``: None (full), an int k, or a policy."""
    rnn = scalar_rnn(a)
    out, _ = rnn(x, truncate=truncate)
    half_square(out).backward()
    return float(rnn.weight_hh_l0.grad.item())


def grad_a_sliding(a: float, x: np.ndarray, k: int) -> float:
    """∂L/∂a with the notes' sliding window: every loss backpropagates through its last k steps."""
    rnn = scalar_rnn(a)
    models.tbptt_train(lambda xc, h: rnn(xc, h), x, np.zeros(x.shape[0]), half_square, k1=1, k2=k)
    return float(rnn.weight_hh_l0.grad.item())


def predicted_bias(a: float, k: int, kind: str) -> float:
    """Relative bias of a stationary sequence: −a^(2k) (sliding), −a²(1 − a^(2k)) / (k(1 − a²)) (truncate=k)."""
    if kind == "sliding":
        return -(a ** (2 * k))
    return -(a**2) * (1 - a ** (2 * k)) / (k * (1 - a**2))


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__)
    p.add_argument("--steps", type=int, default=500, help="sequence length T")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--a", type=float, nargs="+", default=[-0.9, 0.3, 0.6, 0.8, 0.9, 0.95])
    p.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--variance-a", type=float, nargs="+", default=[0.5, 0.9], help="a values for part 2")
    p.add_argument("--draws", type=int, default=200, help="part 2: gradients drawn per p")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.batch, args.draws = 100, 4, 20
        args.a, args.k = [-0.9, 0.5, 0.9], [1, 2, 4]
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.steps, args.batch, 1))
    T, B = args.steps, args.batch
    found: dict = {"sliding": {}, "block": {}, "random": {}}

    print(f"h_t = a h_(t-1) + x_t, L = Σ_t ½ h_t², T = {T}, batch {B}; relative bias (g_k − g)/g")
    print("Part 1: sliding window k (tbptt_train(k1=1, k2=k), the notes' definition); predicted −a^(2k) in brackets")
    tables = {}
    for kind in ("sliding", "block"):
        if kind == "block":
            print("truncate=k (detach after steps k, 2k, …); predicted −a²(1 − a^(2k)) / (k(1 − a²)) in brackets")
        print(f"{'a':>6} {'∂L/∂a (full)':>13} " + " ".join(f"{'k=' + str(k):>17}" for k in args.k))
        table = np.zeros((len(args.a), len(args.k)))
        with _common.Progress(len(args.a) * len(args.k), kind, "runs") as bar:
            rows = []
            for i, a in enumerate(args.a):
                g = grad_a(a, x)
                cells = []
                for j, k in enumerate(args.k):
                    gk = grad_a_sliding(a, x, k) if kind == "sliding" else grad_a(a, x, k)
                    table[i, j] = (gk - g) / g
                    cells.append(f"{table[i, j]:+8.3f} [{predicted_bias(a, k, kind):+6.3f}]")
                    found[kind][a, k] = table[i, j]
                    bar.update(1)
                rows.append(f"{a:6.2f} {g:13.1f} " + " ".join(cells))
        print("\n".join(rows))
        tables[kind] = table
    print("The bias grows with |a| (the sign of a does not matter: the terms go as a^(2n)) and shrinks as k grows.")

    print(
        f"\nPart 2: randomized truncation (p) against truncate=k at the same mean window k = 1/(1 − p), {args.draws} draws"
    )
    print(
        f"{'a':>5} {'k':>3} {'p':>7} {'fixed bias':>11} {'random: mean bias':>18} {'± s.e.':>7} "
        f"{'std/|g| of one draw':>20} {'rms error of one draw':>22}"
    )
    ks = [k for k in args.k if k >= 2]
    variance = {}
    for a in args.variance_a:
        g = grad_a(a, x)
        rows = []
        with _common.Progress(len(ks) * args.draws, f"a={a}", "draws") as bar:
            for k in ks:
                prob = 1 - 1 / k
                policy_rng = np.random.default_rng([args.seed, k])
                draws = []
                for _ in range(args.draws):
                    draws.append(grad_a(a, x, models.RandomTruncation(prob, policy_rng)))
                    bar.update(1)
                rel = (np.array(draws) - g) / g
                fixed = (grad_a(a, x, k) - g) / g
                mean, std = float(rel.mean()), float(rel.std(ddof=1))
                se = std / np.sqrt(len(rel))
                rms = float(np.sqrt(np.mean(rel**2)))
                variance[a, k] = {"fixed": fixed, "mean": mean, "se": se, "std": std, "rms": rms}
                rows.append(
                    f"{a:5.2f} {k:3d} {prob:7.4f} {fixed:+11.3f} {mean:+18.3f} {se:7.3f} {std:20.3f} {rms:22.3f}"
                )
        print("\n".join(rows))
    found["random"] = variance
    within = sum(abs(v["mean"]) <= 3 * v["se"] for v in variance.values())
    better = [key for key, v in variance.items() if v["rms"] < abs(v["fixed"])]
    worse = [f"a = {a}, k = {k}" for (a, k), v in variance.items() if v["rms"] >= abs(v["fixed"])]
    print(
        f"Randomized truncation's mean lies within 3 standard errors of the full gradient in {within} of "
        f"{len(variance)} settings (unbiased), while one draw scatters; the scatter grows as p falls and as |a| "
        f"grows. One draw's rms error is below the fixed window's bias in {len(better)} of {len(variance)} settings"
        + (
            f"; not at {', '.join(worse)}, where p < a⁴: a path kept for n steps is weighted 1/p^n, and its share "
            "of the variance, about a^(4n)/p^n, no longer falls with n."
            if worse
            else "."
        )
    )
    plot(args, tables, variance, ks, args.out)
    return found


def plot(args, tables: dict, variance: dict, ks: list, out) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(args.a)))
    for ax, kind, title in (
        (axes[0], "sliding", "sliding window k (tbptt_train(k1=1, k2=k))"),
        (axes[1], "block", "truncate=k (detach after k, 2k, …)"),
    ):
        for i, a in enumerate(args.a):
            ax.semilogy(args.k, np.abs(tables[kind][i]), "o-", color=colors[i], label=f"a = {a}")
            pred = [abs(predicted_bias(a, k, kind)) for k in args.k]
            ax.semilogy(args.k, pred, ":", color=colors[i])
        ax.set_xscale("log", base=2)
        ax.set_ylim(1e-5, 1.5)  # below ~1e-12 the measured bias is rounding
        ax.set(xlabel="window k", ylabel="|relative bias| of ∂L/∂a", title=title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, title="measured (dotted: predicted)", title_fontsize=8)
    ax = axes[2]
    for a, color in zip(args.variance_a, ("tab:blue", "tab:red")):
        ax.semilogy(
            ks, [abs(variance[a, k]["fixed"]) for k in ks], "s--", color=color, label=f"a={a}: truncate=k, |bias|"
        )
        ax.semilogy(
            ks, [variance[a, k]["std"] for k in ks], "o-", color=color, label=f"a={a}: random, std/|g| (one draw)"
        )
        ax.semilogy(ks, [abs(variance[a, k]["mean"]) for k in ks], "x", ms=8, color=color,
                    label=f"a={a}: random, |bias| of the mean")  # fmt: skip
        ax.semilogy(ks, [2 * variance[a, k]["se"] for k in ks], ":", color=color, lw=1,
                    label=f"a={a}: random, 2 standard errors of the mean")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set(xlabel="mean window k = 1/(1 − p)", ylabel="relative to ∂L/∂a")
    ax.set_title(f"randomized truncation: unbiased, but spread ({args.draws} draws)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _common.save_figure(fig, out / "truncation_bias.png")


if __name__ == "__main__":
    main()
