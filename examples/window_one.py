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

The lecture notes put the attention over the inputs instead, c_t = Σ_{k≤t} α_{t,k} x_k
(``models.InputAttentionRNN``), and split the gradient of a loss with respect to an old input:

    ∂ℓ_t/∂x_{t−τ} = (recurrent path: through h_{t−τ} → … → h_t) + (shortcut: through c_t, one hop)

The script computes the two parts apart (``cut="shortcut"`` leaves only the recurrent path,
``cut="recurrent"`` only the shortcut), checks that they add up to the full gradient and prints
both against τ: the recurrent part shrinks with τ, the shortcut does not. The notes then call a
detached KV cache truncation window 1; here that is literal: with ``detach_cache=True`` the
entries x_k, k < t, that step t reads are constants, and together with ``truncate=1`` every
∂ℓ_t/∂x_s with s < t is exactly 0 (only the diagonal is left, as for the RNN at window 1).

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


def influence(model, x: np.ndarray, c: np.ndarray, truncate, **kw) -> tuple[np.ndarray, np.ndarray]:
    """M[t, s] = ‖∂ℓ_t/∂x_s‖ with ℓ_t = ⟨c_t, h_t⟩ (one backward per loss step), and ∂L/∂W_hh for L = Σ_t ℓ_t."""
    T = x.shape[0]
    xt = mg.tensor(x, requires_grad=True)
    out, _ = model(xt, truncate=truncate, **kw)
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
        "input attention": models.InputAttentionRNN(I, H, rng=np.random.default_rng(args.seed)),
    }
    trainings = {"full BPTT": {"truncate": None}, "window 1": {"truncate": 1}}
    cached = {"window 1, cache detached": {"truncate": 1, "detach_cache": True}}
    mats = {}
    pairs = T * (T + 1) // 2  # (t, s) with s ≤ t: every pair the full gradient could reach
    print(f"T = {T}, H = {H}; M[t, s] = ‖∂ℓ_t/∂x_s‖; a pair (t, s) 'survives' if M[t, s] > 1e-12 · max M")
    print(f"{'model':15} {'training':24} {'pairs with a gradient':>22} {'cos(∂L/∂W_hh, full)':>20} {'‖·‖/‖full‖':>11}")
    found: dict = {}
    for name, net in nets.items():
        runs = {**trainings, **(cached if name == "input attention" else {})}
        results = {label: influence(net, x, c, **kw) for label, kw in runs.items()}
        M_full, g_full = results["full BPTT"]
        for label, (M, g) in results.items():
            alive = int((M > 1e-12 * M_full.max()).sum())
            cos = float((g * g_full).sum() / (np.linalg.norm(g) * np.linalg.norm(g_full)))
            ratio = float(np.linalg.norm(g) / np.linalg.norm(g_full))
            print(f"{name:15} {label:24} {alive:>10d} of {pairs:<9d} {cos:20.3f} {ratio:11.3f}")
            mats[name, label] = M
            found[name, label] = alive
    print(
        "window 1 leaves the RNN only the diagonal (each loss sees its own step); the attention RNN keeps "
        "every pair through its direct reads of earlier states; so does the notes' attention over the inputs, "
        "until its cache is detached too: then only the diagonal is left, window 1 exactly"
    )
    print(
        "(in the notes' form the cache holds the raw inputs x_k, which no parameter made, so detaching it changes "
        "∂ℓ_t/∂x_s but not ∂L/∂W_hh: the two last rows have the same cosine)"
    )

    split = gradient_split(nets["input attention"], x)
    print(f"\nthe notes' split for the input attention, ℓ_T = Σ y_T, T = {T}: ‖part of ∂ℓ_T/∂x_(T−τ)‖")
    print(f"  {'τ':>4} {'recurrent path':>15} {'shortcut (c_T)':>15} {'full':>12}")
    for tau in sorted({0, 1, 2, 4, 8, 16, T - 1} & set(range(T))):
        i = T - 1 - tau
        print(f"  {tau:4d} {split['recurrent'][i]:15.3e} {split['shortcut'][i]:15.3e} {split['full'][i]:12.3e}")
    split["ratio_near"] = float(split["recurrent"][-2] / split["shortcut"][-2])  # τ = 1
    split["ratio_far"] = float(split["recurrent"][0] / split["shortcut"][0])  # τ = T − 1
    print(
        f"  recurrent + shortcut = full to {split['sum_err']:.1e}; recurrent / shortcut is "
        f"{split['ratio_near']:.3g} one step back and {split['ratio_far']:.3g} {T - 1} steps back: "
        "the recurrent part decays with τ, the shortcut's one hop does not"
    )
    found["split"] = split
    plot(mats, T, args.out, split)
    return found


def gradient_split(model, x: np.ndarray) -> dict:
    """‖∂ℓ_T/∂x_s‖ for ℓ_T = Σ y_T, whole and split into the recurrent and shortcut parts (s = 1..T)."""
    T = x.shape[0]
    parts = {}
    for name, cut in (("full", None), ("recurrent", "shortcut"), ("shortcut", "recurrent")):
        xt = mg.tensor(x, requires_grad=True)
        y, _ = model(xt, cut=cut)  # cut="shortcut" leaves the recurrent path, and the other way round
        y[T - 1].sum().backward()
        parts[name] = xt.grad
    err = float(np.abs(parts["recurrent"] + parts["shortcut"] - parts["full"]).max())
    norms = {k: np.sqrt((v**2).sum(axis=(1, 2))) for k, v in parts.items()}
    return {**norms, "sum_err": err}


def plot(mats: dict, T: int, out, split: dict) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    from matplotlib.colors import LogNorm

    fig, grid = plt.subplots(2, 4, figsize=(18, 8.4), constrained_layout=True)
    axes = grid.ravel()
    top = max(M.max() for M in mats.values())
    floor = min(M[M > 1e-12 * top].min() for M in mats.values())
    for ax, ((name, label), M) in zip(axes, mats.items()):
        shown = np.where(M > 1e-12 * top, np.maximum(M, floor), np.nan)  # exact zeros: blank
        im = ax.imshow(shown, norm=LogNorm(vmin=floor, vmax=top), cmap="viridis", extent=(0.5, T + 0.5, T + 0.5, 0.5))
        ax.set_title(f"{name}, {label}", fontsize=11)
        ax.set(xlabel="input step s", ylabel="loss step t")
        ax.set_facecolor("#f2f2f2")
    fig.colorbar(im, ax=list(axes[:7]), shrink=0.7, label="‖∂ℓ_t/∂x_s‖ (blank: exactly 0, the path is cut)")
    ax = axes[7]
    tau = np.arange(T)[::-1]  # τ = T − s for s = 1..T
    for key, style in (("full", "k-"), ("recurrent", "o-"), ("shortcut", "s-")):
        ax.semilogy(
            tau, np.maximum(split[key], 1e-300), style, ms=3, label=f"{key}" + (" path" if key != "full" else "")
        )
    ax.set(xlabel="τ = T − s (steps back)", ylabel="‖∂ℓ_T/∂x_(T−τ)‖")
    ax.set_title("input attention: recurrent vs shortcut part", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle("which gradients survive a truncation window of 1", fontsize=13)
    _common.save_figure(fig, out / "window_one.png")


if __name__ == "__main__":
    main()
