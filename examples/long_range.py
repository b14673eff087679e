"""The adding problem: can a recurrent net remember two numbers seen up to T steps ago?

Each sequence has T steps of two inputs: a random value u_t ~ U[0, 1], and a marker m_t that is
1 at exactly two steps (one in each half of the sequence) and 0 elsewhere. The target, read
at the end, is the sum of the two marked values:

    y = Σ_t m_t u_t,        ŷ = W h_T + b,        L = mean (ŷ − y)²

Predicting the mean, ŷ = 1, scores Var(u_a + u_b) = 2/12 ≈ 0.167: that is the baseline. Any model
that does better has carried a value across up to T steps, so its gradient had to reach that
far back: δh_t = (∂h_{t+1}/∂h_t)ᵀ δh_{t+1} from t = T down to the marked step.

The script trains a tanh RNN, a GRU and an LSTM (same hidden size, Adam, gradient clipping,
full BPTT) at T = 50 and T = 100, prints the test MSE against training steps next to the
baseline, and plots the curves.

    python examples/long_range.py                       # 10-25 min on 2 cores
    python examples/long_range.py --lengths 50 --steps 500
    python examples/long_range.py --quick
"""

from __future__ import annotations

import time

import _common
import numpy as np

import minigrad as mg
import models

BASELINE = 2 / 12  # Var(u_a + u_b) for u ~ U[0, 1]: the MSE of always predicting the mean 1


def adding_batch(rng: np.random.Generator, T: int, B: int) -> tuple[np.ndarray, np.ndarray]:
    """x (T, B, 2) = [value, marker] and y (B, 1) = the sum of the two marked values."""
    u = rng.uniform(0, 1, (T, B))
    m = np.zeros((T, B))
    rows = np.arange(B)
    first, second = rng.integers(0, T // 2, B), rng.integers(T // 2, T, B)
    m[first, rows] = m[second, rows] = 1.0
    y = (u * m).sum(axis=0)[:, None]  # y = Σ_t m_t u_t
    return np.stack([u, m], axis=-1), y


class Regressor(mg.nn.Module):
    """A recurrent layer followed by ŷ = W h_T + b."""

    def __init__(self, kind: str, hidden: int, rng: np.random.Generator, forget_bias: float = 0.0):
        super().__init__()
        layer = {"tanh RNN": models.RNN, "GRU": models.GRU, "LSTM": models.LSTM}[kind]
        self.rnn = layer(2, hidden, rng=rng)
        if kind == "LSTM" and forget_bias:  # gates i, f, g, o: a larger forget-gate bias keeps c_t longer at init
            self.rnn.bias_ih_l0.data[hidden : 2 * hidden] += forget_bias
        self.head = models.LastStepRegression(hidden, 1, rng=rng)

    def loss(self, x: np.ndarray, y: np.ndarray) -> mg.Tensor:
        out, _ = self.rnn(x)
        return self.head.loss(out, y)  # L = mean (W h_T + b − y)²


def train(kind: str, T: int, args) -> tuple[list[int], list[float], float]:
    rng = np.random.default_rng(args.seed)
    model = Regressor(kind, args.hidden, rng, args.forget_bias)
    opt = mg.optim.Adam(model.parameters(), lr=args.lr)
    x_test, y_test = adding_batch(np.random.default_rng(args.seed + 1000), T, args.test)
    steps, mses = [], []
    t0 = time.perf_counter()
    with _common.Progress(args.steps, f"{kind:8} T={T}", "step") as bar:
        for step in range(1, args.steps + 1):
            x, y = adding_batch(rng, T, args.batch)
            opt.zero_grad()
            loss = model.loss(x, y)
            loss.backward()  # full BPTT through T steps
            mg.optim.clip_grad_norm_(opt.params, args.clip)
            opt.step()
            if step % args.eval_every == 0 or step == args.steps:
                with mg.no_grad():
                    mses.append(model.loss(x_test, y_test).item())
                steps.append(step)
            bar.update(1, test_mse=mses[-1] if mses else float("nan"))
    return steps, mses, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--lengths", type=int, nargs="+", default=[50, 100], help="sequence lengths T")
    p.add_argument("--models", nargs="+", default=["tanh RNN", "GRU", "LSTM"])
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000, help="training steps per model and length")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--forget-bias", type=float, default=0.0, help="added to the LSTM's forget-gate bias at init")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--test", type=int, default=500, help="test sequences")
    args = p.parse_args(argv)
    if args.quick:
        args.lengths, args.hidden, args.batch, args.steps, args.eval_every, args.test = [10], 8, 8, 20, 10, 50

    print(f"adding problem; baseline (predict the mean): test MSE {BASELINE:.4f}")
    results = {}
    for T in args.lengths:
        for kind in args.models:
            steps, mses, secs = train(kind, T, args)
            results[T, kind] = (steps, mses)
            verdict = (
                "solved"
                if mses[-1] < 0.1 * BASELINE
                else "learned something"
                if mses[-1] < 0.5 * BASELINE
                else "at baseline"
            )
            print(
                f"T={T:4d}  {kind:8}  test MSE {mses[-1]:.4f} after {steps[-1]} steps "
                f"({mses[-1] / BASELINE:.2f} × baseline: {verdict}), {secs:.0f}s"
            )
    print("\nsummary: test MSE at the end (baseline 0.1667)")
    print(f"{'T':>5} " + " ".join(f"{k:>10}" for k in args.models))
    for T in args.lengths:
        print(f"{T:5d} " + " ".join(f"{results[T, k][1][-1]:10.4f}" for k in args.models))
    plot(results, args)


def plot(results: dict, args) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    n = len(args.lengths)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4), squeeze=False, sharey=True)
    for ax, T in zip(axes[0], args.lengths):
        for kind in args.models:
            steps, mses = results[T, kind]
            ax.semilogy(steps, mses, label=kind)
        ax.axhline(BASELINE, color="grey", ls="--", lw=1, label="predict the mean")
        ax.set(xlabel="training step", title=f"adding problem, T = {T}")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("test MSE (log scale)")
    axes[0][-1].legend()
    _common.save_figure(fig, args.out / "long_range.png")


if __name__ == "__main__":
    main()
