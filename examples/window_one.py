"""Truncation window 1 (every step detached) against full BPTT: which gradients survive?

With ``truncate=1`` the state carried into every step is a constant: h_{t−1}.detach(). The
forward pass is unchanged, but the loss at step t no longer reaches any earlier step through
the recurrence. For the Elman RNN, with ℓ_t the loss at step t:

    full BPTT:  ∂ℓ_t/∂x_s = (∂ℓ_t/∂h_t)(∂h_t/∂h_{t−1} ⋯ ∂h_{s+1}/∂h_s) ∂h_s/∂x_s     for every s ≤ t
    window 1:   ∂ℓ_t/∂x_s = 0 for s < t;   ∂L/∂W_hh = Σ_t diag(φ'(a_t)) (∂ℓ_t/∂h_t) h_{t−1}ᵀ
                (only the "immediate" term of each step: W_hh still learns, but only how to
                 react to the past, never how to write something useful for later)

This is the view of a KV cache: the past is read as stored values, not as something the
gradient may change. An attention model shows the other side: ``models.AttentionRNN`` reads
c_t = Σ_k α_{t,k} h_k directly from every earlier state (its "cache"); window 1 cuts only the
recurrent edge h_{t−1} → h_t, so through the attention the loss at t still reaches every
s < t in one hop — as in a transformer trained with its whole context.

The script draws the T × T matrix ‖∂ℓ_t/∂x_s‖ (row: the loss step t; column: the input step s)
for the RNN and the attention RNN, full BPTT and window 1, and prints for each the share of
(t, s) pairs that still get a gradient and how close the window-1 gradient of W_hh is to the
full one (cosine).

    python examples/window_one.py
    python examples/window_one.py --quick
"""

from __future__ import annotations

import _common
import numpy as np

import minigrad as mg
import models


def influence(model, x: np.ndarray, c: np.ndarray, truncate) -> tuple[np.ndarray, np.ndarray]:
    """M[t, s] = ‖∂ℓ_t/∂x_s‖ with ℓ_t = ⟨c_t, h_t⟩ (one backward per loss step), and ∂L/∂W_hh for L = Σ_t ℓ_t."""
    T = x.shape[0]
    xt = mg.tensor(x, requires_grad=True)
    out, _ = model(xt, truncate=truncate)
    losses = [(out[t] * c[t]).sum() for t in range(T)]  # ℓ_t = ⟨c_t, h_t⟩
    M = np.zeros((T, T))
    for t, loss_t in enumerate(losses):
        xt.grad = None
        loss_t.backward(retain_graph=True)
        M[t] = np.sqrt((xt.grad**2).sum(axis=(1, 2)))  # ‖∂ℓ_t/∂x_s‖ for every s
    model.zero_grad()
    sum(losses[1:], losses[0]).backward()  # L = Σ_t ℓ_t
    return M, model.weight_hh_l0.grad.copy() if hasattr(model, "weight_hh_l0") else model.weight_hh.grad.copy()


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--steps", type=int, default=24, help="sequence length T")
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--batch", type=int, default=4)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.hidden, args.batch = 6, 4, 2
    T, H, B, I = args.steps, args.hidden, args.batch, 3
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((T, B, I))
    c = rng.standard_normal((T, B, H))
    nets = {
        "tanh RNN": models.orthogonal_init_(models.RNN(I, H, rng=np.random.default_rng(args.seed)), rng=1),
        "attention RNN": models.AttentionRNN(I, H, rng=np.random.default_rng(args.seed)),
    }
    mats = {}
    pairs = T * (T + 1) // 2  # (t, s) with s ≤ t: every pair the full gradient could reach
    print(f"T = {T}, H = {H}; M[t, s] = ‖∂ℓ_t/∂x_s‖; a pair (t, s) 'survives' if M[t, s] > 1e-12 · max M")
    print(f"{'model':15} {'training':10} {'pairs with a gradient':>22} {'cos(∂L/∂W_hh, full)':>20} {'‖·‖/‖full‖':>11}")
    for name, net in nets.items():
        M_full, g_full = influence(net, x, c, None)
        M_one, g_one = influence(net, x, c, 1)
        for label, M, g in (("full BPTT", M_full, g_full), ("window 1", M_one, g_one)):
            alive = int((M > 1e-12 * M_full.max()).sum())
            cos = float((g * g_full).sum() / (np.linalg.norm(g) * np.linalg.norm(g_full)))
            ratio = float(np.linalg.norm(g) / np.linalg.norm(g_full))
            print(f"{name:15} {label:10} {alive:>10d} of {pairs:<9d} {cos:20.3f} {ratio:11.3f}")
            mats[name, label] = M
    print(
        "window 1 leaves the RNN only the diagonal (each loss sees its own step); the attention RNN keeps "
        "every pair through its direct reads of earlier states"
    )
    plot(mats, T, args.out)


def plot(mats: dict, T: int, out) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(2, 2, figsize=(9, 8.4), constrained_layout=True)
    top = max(M.max() for M in mats.values())
    floor = min(M[M > 1e-12 * top].min() for M in mats.values())
    for ax, ((name, label), M) in zip(axes.ravel(), mats.items()):
        shown = np.where(M > 1e-12 * top, np.maximum(M, floor), np.nan)  # exact zeros: blank
        im = ax.imshow(shown, norm=LogNorm(vmin=floor, vmax=top), cmap="viridis", extent=(0.5, T + 0.5, T + 0.5, 0.5))
        ax.set_title(f"{name}, {label}", fontsize=11)
        ax.set(xlabel="input step s", ylabel="loss step t")
        ax.set_facecolor("#f2f2f2")
    fig.colorbar(im, ax=axes, shrink=0.7, label="‖∂ℓ_t/∂x_s‖ (blank: exactly 0, the path is cut)")
    fig.suptitle("which gradients survive a truncation window of 1", fontsize=13)
    _common.save_figure(fig, out / "window_one.png")


if __name__ == "__main__":
    main()
