"""Vanishing and exploding gradients: how ‖∂L/∂h_t‖ changes as t moves away from the loss.

The loss reads only the last state, L = ⟨c, h_T⟩, so every step's δh_t = ∂L/∂h_t is the loss's
signal carried back T − t steps:

    δh_t = (∂h_{t+1}/∂h_t)ᵀ δh_{t+1},     tanh RNN:  ∂h_{t+1}/∂h_t = diag(1 − h_{t+1}²) W_hh

so ‖δh_t‖ ≈ ‖δh_T‖ · γ^(T−t), with γ set by the step Jacobians: W_hh's spectral radius, shrunk
by tanh' ≤ 1. The script measures ‖δh_t‖ (with ``retain_grad`` on every state) for

* tanh RNNs whose W_hh is rescaled to spectral radius 0.5, 1.0, 1.5,
* a tanh RNN with orthogonal W_hh (every singular value 1),
* a residual RNN, h_t = h_{t−1} + tanh(…):  ∂h_{t+1}/∂h_t = I + diag(tanh') W_hh,
* a GRU and an LSTM, whose gates can carry the state unchanged (c_t = f c_{t−1} + …): with
  PyTorch's default init the gates sit near σ(0) = ½, so at first they forget about half per
  step; with the forget (LSTM) or update (GRU) gate's bias raised by 3 (σ(3) ≈ 0.95) they keep,

prints the per-step factor γ (from a least-squares fit of log ‖δh_t‖ against t) and draws all
curves on one log plot (each divided by its ‖δh_T‖ so they start together).

    python examples/vanishing_gradients.py             # T = 100, a few seconds
    python examples/vanishing_gradients.py --quick
"""

from __future__ import annotations

import _common
import numpy as np

import minigrad as mg
import models


def build(name: str, n_in: int, hidden: int, rng: np.random.Generator) -> mg.nn.Module:
    if name.startswith("tanh RNN, ρ="):
        rnn = models.RNN(n_in, hidden, rng=rng)
        W = rng.standard_normal((hidden, hidden))
        radius = float(name.split("=")[1])
        # W_hh = radius · W / ρ(W): spectral radius (largest |eigenvalue|) = radius
        rnn.weight_hh_l0.data[...] = radius * W / np.max(np.abs(np.linalg.eigvals(W)))
        return rnn
    if name == "tanh RNN, orthogonal":
        return models.orthogonal_init_(models.RNN(n_in, hidden, rng=rng), rng=rng)
    if name == "residual RNN":
        return models.ResidualRNN(n_in, hidden, rng=rng)  # orthogonal W_hh by default
    if name.startswith("GRU"):
        gru = models.GRU(n_in, hidden, rng=rng)
        if "bias" in name:  # gates r, z, n: z → 1 keeps the state, h_t = (1 − z) n + z h_{t−1}
            gru.bias_ih_l0.data[hidden : 2 * hidden] += GATE_BIAS
        return gru
    if name.startswith("LSTM"):
        lstm = models.LSTM(n_in, hidden, rng=rng)
        if "bias" in name:  # gates i, f, g, o: f → 1 keeps the cell, c_t = f c_{t−1} + i g
            lstm.bias_ih_l0.data[hidden : 2 * hidden] += GATE_BIAS
        return lstm
    raise ValueError(name)


GATE_BIAS = 3.0  # σ(3) ≈ 0.95


MODELS = [
    "tanh RNN, ρ=0.5",
    "tanh RNN, ρ=1.0",
    "tanh RNN, ρ=1.5",
    "tanh RNN, orthogonal",
    "residual RNN",
    "GRU",
    "GRU, update-gate bias +3",
    "LSTM",
    "LSTM, forget-gate bias +3",
]


def grad_norms(model: mg.nn.Module, x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """‖δh_t‖ for t = 1..T (Frobenius norm over the batch) when L = ⟨c, h_T⟩."""
    out, _, states = model(x, return_states=True)
    states.retain_grad()  # keep δh_t on every step's state
    L = (out[-1] * c).sum()  # L = ⟨c, h_T⟩
    L.backward()
    dh = states.grads()["l0"]  # (T, B, H)
    return np.sqrt((dh**2).sum(axis=(1, 2)))


def per_step_factor(norms: np.ndarray) -> float:
    """γ from the least-squares line through log ‖δh_t‖ against t: ‖δh_t‖ ∝ γ^(T−t)."""
    t = np.arange(1, len(norms) + 1)
    ok = norms > 0
    slope = np.polyfit(t[ok], np.log(norms[ok]), 1)[0]  # d log‖δh_t‖ / dt
    return float(np.exp(-slope))  # one step further back multiplies by γ


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--steps", type=int, default=100, help="sequence length T")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--inputs", type=int, default=8)
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.hidden, args.batch = 20, 8, 2
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.steps, args.batch, args.inputs))
    c = rng.standard_normal((args.batch, args.hidden))

    print(f"L = <c, h_T>, T = {args.steps}, hidden {args.hidden}, batch {args.batch}, x ~ N(0, 1)")
    print(f"{'model':26} {'‖δh_T‖':>9} {'‖δh_1‖':>10} {'‖δh_1‖/‖δh_T‖':>14} {'γ per step':>11}")
    curves = {}
    for name in MODELS:
        norms = grad_norms(build(name, args.inputs, args.hidden, np.random.default_rng(args.seed)), x, c)
        gamma = per_step_factor(norms)
        curves[f"{name} (γ = {gamma:.3f})"] = norms / norms[-1]
        print(f"{name:26} {norms[-1]:9.3g} {norms[0]:10.3g} {norms[0] / norms[-1]:14.3g} {gamma:11.3f}")
    print("γ < 1: the signal shrinks by γ per step back (vanishing); γ > 1: it grows (exploding).")
    plot(curves, args.steps, args.out)


def plot(curves: dict, T: int, out) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for name, ys in curves.items():
        style = "--" if name.startswith(("GRU", "LSTM")) else "-"
        ax.semilogy(np.arange(1, len(ys) + 1), ys, style, lw=1.8, label=name)
    ax.set(xlabel="time step t", ylabel="‖∂L/∂h_t‖ / ‖∂L/∂h_T‖  (log scale)")
    ax.set_title(f"how far back the gradient of a loss at t = T = {T} reaches")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9, frameon=False)
    _common.save_figure(fig, out / "vanishing_gradients.png")


if __name__ == "__main__":
    main()
