"""ReLU RNNs: ReLU' is 0 or 1, units can die, and gradient clipping saves an exploding run.

For h_t = relu(W_ih x_t + b + W_hh h_{t−1}) the step Jacobian is J_t = diag(1[a_t > 0]) W_hh:
an active unit passes the gradient unchanged (no tanh' < 1 to shrink it), an inactive one
passes nothing. A unit whose pre-activation is ≤ 0 at every step of every sequence is dead: its
rows of ∂L/∂W_ih, ∂L/∂W_hh and ∂L/∂b are exactly zero, so gradient descent never moves it again.

The run: a ReLU RNN (H = 32) whose W_hh is 1.8 times an orthogonal matrix learns to output its
input from 3 steps before (T = 40, mean squared error). At that spectral radius the activity, and
the gradient, grow with every step: the first gradient's norm is in the thousands. Trained with
plain SGD it takes one huge step; trained the same way (same seed, same batches, same step size)
with ``mg.optim.clip_grad_norm_(params, 1.0)``, every update is rescaled to norm ≤ 1, which is
the notes' g̃ = min(1, c/‖g‖) g: the direction is kept, the size capped. The script prints the
loss and the gradient norm (before clipping) of both runs, how many units are dead, the
values ReLU' takes, and plots the two loss curves.

    python examples/relu_clipping.py
    python examples/relu_clipping.py --quick
"""

from __future__ import annotations

import _common
import numpy as np

import minigrad as mg
import models


class DelayedCopy(mg.nn.Module):
    """A ReLU RNN and a linear readout: ŷ_t = w · h_t + b."""

    def __init__(self, hidden: int, radius: float, rng: np.random.Generator):
        super().__init__()
        self.rnn = models.RNN(1, hidden, nonlinearity="relu", rng=rng)
        Q, _ = np.linalg.qr(rng.standard_normal((hidden, hidden)))
        self.rnn.weight_hh_l0.data[...] = radius * Q  # every singular value = radius
        self.head = mg.nn.Linear(hidden, 1, rng=rng)

    def forward(self, x: np.ndarray) -> tuple[mg.Tensor, mg.Tensor]:
        out, _ = self.rnn(x)
        T, B, H = out.shape
        return self.head(out.reshape(T * B, H)).reshape(T, B, 1), out


def batch(rng: np.random.Generator, T: int, B: int, delay: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((T, B, 1))
    y = np.zeros_like(x)
    y[delay:] = x[:-delay]  # y_t = x_{t−delay}
    return x, y


def dead_units(model: DelayedCopy, x: np.ndarray) -> np.ndarray | None:
    """Units whose state is 0 (pre-activation ≤ 0) at every step and row of x: ReLU' = 0 there
    (None once the states are no longer finite numbers)."""
    with mg.no_grad():
        _, h = model(x)
    return ((h.data > 0).sum(axis=(0, 1)) == 0) if np.all(np.isfinite(h.data)) else None


def train(clip: float | None, args) -> dict:
    rng = np.random.default_rng(args.seed)
    model = DelayedCopy(args.hidden, args.radius, rng)
    params = model.parameters()
    opt = mg.optim.SGD(params, lr=args.lr)
    probe = batch(np.random.default_rng(args.seed + 1), args.T, 64, args.delay)[0]
    losses, norms, dead = [], [], [int(dead_units(model, probe).sum())]
    name = "clipped" if clip else "not clipped"
    with _common.Progress(args.steps, f"{name:11}", "updates") as bar:
        for _ in range(args.steps):
            x, y = batch(rng, args.T, args.batch, args.delay)
            pred, _ = model(x)
            loss = ((pred - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            norm = mg.optim.clip_grad_norm_(params, clip) if clip else mg.optim.clip_grad_norm_(params, np.inf)
            losses.append(loss.item())
            norms.append(norm)
            if not np.isfinite(loss.item()) or not np.isfinite(norm):
                break  # the parameters are no longer numbers
            opt.step()
            mask = dead_units(model, probe)
            if mask is not None:
                dead.append(int(mask.sum()))
            bar.update(1, loss=round(loss.item(), 4), grad_norm=norm)
    return {"losses": losses, "norms": norms, "dead": dead, "model": model}


def relu_derivatives(model: DelayedCopy, x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """ReLU' at every pre-activation, read off the engine: δa = ReLU'(a) ⊙ δh with δh = 1 for L = Σ h."""
    a = mg.tensor(np.random.default_rng(0).standard_normal((x.shape[0], 8)), requires_grad=True)
    mg.relu(a).sum().backward()
    values = np.unique(a.grad)
    with mg.no_grad():
        _, h = model(x)
    active = float((h.data > 0).mean())
    mask = dead_units(model, x)
    out, _ = model(x)
    out.sum().backward()
    W = model.rnn.weight_ih_l0.grad
    dead_rows = float(np.abs(W[mask]).max()) if mask.any() else 0.0
    return values, active, dead_rows


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--T", type=int, default=40)
    p.add_argument("--delay", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--radius", type=float, default=1.8, help="W_hh = radius · orthogonal")
    p.add_argument("--clip", type=float, default=1.0)
    args = p.parse_args(argv)
    if args.quick:
        args.steps = 40
    print(
        f"ReLU RNN, H = {args.hidden}, W_hh = {args.radius} · orthogonal, copy x_(t−{args.delay}), T = {args.T}; "
        f"SGD lr {args.lr}, batch {args.batch}"
    )
    with np.errstate(over="ignore", invalid="ignore"):  # the unclipped run overflows to inf and NaN: that is the story
        runs = {"not clipped": train(None, args), f"clip_grad_norm_({args.clip})": train(args.clip, args)}
    baseline = (args.T - args.delay) / args.T  # predicting 0: E[y²]
    print(
        f"\n{'run':22} {'first loss':>10} {'‖g‖ first':>10} {'max ‖g‖':>10} {'updates':>8} {'last loss':>10} {'dead units':>11}"
    )
    found = {}
    for name, r in runs.items():
        finite = [v for v in r["norms"] if np.isfinite(v)]
        last = r["losses"][-1]
        tail = float(np.mean(r["losses"][-10:])) if np.isfinite(last) else last
        found[name] = {"last": tail, "updates": len(r["losses"]), "dead": r["dead"], "first_norm": r["norms"][0]}
        print(
            f"{name:22} {r['losses'][0]:10.4g} {r['norms'][0]:10.3g} {max(finite) if finite else np.inf:10.3g} "
            f"{len(r['losses']):8d} {tail:10.4g} {r['dead'][0]:>4d} → {r['dead'][-1]:<4d}"
            + (" (then no longer finite)" if not np.isfinite(last) else "")
        )
    print(f"(last loss: mean of the last 10 updates; predicting 0 everywhere gives {baseline:.3f})")
    unclipped = runs["not clipped"]
    if len(unclipped["dead"]) > 1:
        print(
            f"The unclipped run's first update (gradient norm {unclipped['norms'][0]:.2g}) left "
            f"{unclipped['dead'][1]} of {args.hidden} units dead; its loss is {unclipped['losses'][-1]} "
            f"after {len(unclipped['losses'])} updates. Clipping keeps the direction and caps the step."
        )
    values, active, dead_rows = relu_derivatives(
        runs[f"clip_grad_norm_({args.clip})"]["model"], batch(np.random.default_rng(5), args.T, 8, args.delay)[0]
    )
    print(f"ReLU' takes the values {values.tolist()} (from backward through relu); after the clipped run "
          f"{100 * active:.0f}% of the states are active; dead units' rows of ∂L/∂W_ih: max |·| = {dead_rows}")  # fmt: skip
    found["relu_values"], found["dead_rows"] = values.tolist(), dead_rows
    plot(runs, baseline, args.clip, args.out)
    return found


def plot(runs: dict, baseline: float, clip: float, out) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2))
    for (name, r), color in zip(runs.items(), ("tab:red", "tab:blue")):
        losses = np.array(r["losses"], dtype=float)
        ok = np.isfinite(losses)
        ax1.semilogy(np.arange(len(losses))[ok], losses[ok], color=color, lw=1.8, label=name)
        if not ok.all():
            ax1.axvline(np.argmin(ok), color=color, ls=":", lw=1.5, label=f"{name}: loss is NaN from here")
        norms = np.array(r["norms"], dtype=float)
        good = np.isfinite(norms)
        ax2.semilogy(np.arange(len(norms))[good], norms[good], color=color, lw=1.5, label=name)
    ax1.axhline(baseline, color="grey", ls="--", lw=1, label="predict 0")
    top = 100.0
    for (_name, r), color in zip(runs.items(), ("tab:red", "tab:blue")):
        for i, v in enumerate(r["losses"]):
            if np.isfinite(v) and v > top:  # off the chart: say how far
                ax1.annotate(f"{v:.1e}", (i, top), xytext=(i + 8, top / 3), color=color, fontsize=8,
                             arrowprops={"arrowstyle": "->", "color": color})  # fmt: skip
    ax1.set_ylim(0.1, top)
    ax1.set(
        xlabel="update",
        ylabel="training loss (MSE, log scale)",
        title="the same exploding run, with and without clipping",
    )
    ax1.legend(fontsize=8)
    ax1.grid(True, alpha=0.3)
    ax2.axhline(clip, color="grey", ls="--", lw=1, label="what clipping lets through (max_norm)")
    ax2.set(xlabel="update", ylabel="‖g‖ before clipping (log scale)", title="gradient norm")
    ax2.legend(fontsize=8)
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    _common.save_figure(fig, out / "relu_clipping.png")


if __name__ == "__main__":
    main()
