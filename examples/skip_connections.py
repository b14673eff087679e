"""Skip connections across time: an edge h_{t−2} → h_t gives the gradient a shortcut.

``models.SkipRNN`` adds a second recurrent edge to the Elman step,

    h_t = tanh(W_ih x_t + b + W_hh h_{t−1} + W_skip h_{t−2}),

so the backward recursion has two terms, δh_t = W_hhᵀ δa_{t+1} + W_skipᵀ δa_{t+2} (with
δa_t = tanh'(a_t) ⊙ δh_t), and a loss at T reaches h_{T−m} along a path of m/2 hops through the
shortcut as well as the m-hop path through the chain. When every hop shrinks the signal by
about the same factor, the shortcut halves the exponent: a per-step factor γ becomes about √γ.

The script takes a tanh RNN whose W_hh has spectral radius 0.5 (the gradient vanishes), and
the same network with a W_skip of spectral radius 0.5 added, and measures ‖δh_t‖ for
L = ⟨c, h_T⟩ (``retain_grad`` on every state). For the skip network it also measures each path
alone: ``cut="recurrent"`` detaches every h_{t−1} → h_t edge (only the shortcut is left: only
t = T, T−2, … get a gradient), ``cut="skip"`` every h_{t−2} → h_t edge. It prints the per-step
factor γ of each (a least-squares fit of log ‖δh_t‖ against t), plots the curves, and draws the
unrolled graph of a 6-step skip RNN coloured by ‖δ‖, where the edges from step t−2 into step t
are the shortcut.

    python examples/skip_connections.py
    python examples/skip_connections.py --quick
"""

from __future__ import annotations

import _common
import numpy as np

import minigrad as mg
import models


def with_radius(W: np.ndarray, radius: float) -> np.ndarray:
    return radius * W / np.max(np.abs(np.linalg.eigvals(W)))


def build(hidden: int, inputs: int, skip_radius: float, seed: int) -> models.SkipRNN:
    rng = np.random.default_rng(seed)
    net = models.SkipRNN(inputs, hidden, skip=2, rng=rng)
    net.weight_hh.data[...] = with_radius(rng.standard_normal((hidden, hidden)), 0.5)
    W_skip = rng.standard_normal((hidden, hidden))
    net.weight_skip.data[...] = with_radius(W_skip, skip_radius) if skip_radius else 0.0
    return net


def grad_norms(net: models.SkipRNN, x: np.ndarray, c: np.ndarray, cut: str | None = None) -> np.ndarray:
    """‖δh_t‖ for t = 1..T when L = ⟨c, h_T⟩."""
    out, _, states = net(x, cut=cut, return_states=True)
    for s in states:
        s.retain_grad()
    (out[-1] * c).sum().backward()
    return np.array([np.linalg.norm(s.grad) for s in states])


def per_step_factor(norms: np.ndarray) -> float:
    """γ from the least-squares line through log ‖δh_t‖ against t, over the steps that got a gradient."""
    t = np.arange(1, len(norms) + 1)
    ok = norms > 0
    return float(np.exp(-np.polyfit(t[ok], np.log(norms[ok]), 1)[0]))


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__)
    p.add_argument("--steps", type=int, default=60, help="sequence length T")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--inputs", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.hidden, args.batch = 24, 8, 2
    T, H, B, I = args.steps, args.hidden, args.batch, args.inputs
    rng = np.random.default_rng(args.seed + 100)
    x, c = rng.standard_normal((T, B, I)), rng.standard_normal((B, H))
    plain, skip = build(H, I, 0.0, args.seed), build(H, I, 0.5, args.seed)
    runs = {
        "tanh RNN (no skip)": grad_norms(plain, x, c),
        "skip RNN, both paths": grad_norms(skip, x, c),
        "skip RNN, shortcut only": grad_norms(skip, x, c, cut="recurrent"),
        "skip RNN, chain only": grad_norms(skip, x, c, cut="skip"),
    }
    print(f"L = <c, h_T>, T = {T}, H = {H}, batch {B}; W_hh and W_skip rescaled to spectral radius 0.5")
    print(f"{'network':26} {'‖δh_T‖':>9} {'‖δh_1‖ (or h_2)':>16} {'steps reached':>14} {'γ per step':>11}")
    found = {}
    for name, norms in runs.items():
        gamma = per_step_factor(norms)
        first = norms[0] if norms[0] > 0 else norms[1]
        found[name] = {"gamma": gamma, "reached": int((norms > 0).sum()), "first": float(first)}
        print(f"{name:26} {norms[-1]:9.3g} {first:16.3g} {int((norms > 0).sum()):>8d} of {T:<3d} {gamma:11.3f}")
    g0, gs = found["tanh RNN (no skip)"]["gamma"], found["skip RNN, shortcut only"]["gamma"]
    print(
        f"The shortcut alone reaches only every second step, but shrinks by γ = {gs:.3f} per step, "
        f"close to √{g0:.3f} = {np.sqrt(g0):.3f}: half as many hops for the same distance. "
        f"Both paths together: γ = {found['skip RNN, both paths']['gamma']:.3f}, so ‖δh_1‖ is "
        f"{found['skip RNN, both paths']['first'] / found['tanh RNN (no skip)']['first']:.2g} times that of the RNN."
    )
    plot(runs, found, args.out)
    draw(args.out, args.seed)
    return found


def plot(runs: dict, found: dict, out) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(9, 4.2))
    styles = {
        "tanh RNN (no skip)": "-",
        "skip RNN, both paths": "-",
        "skip RNN, shortcut only": "o",
        "skip RNN, chain only": "--",
    }
    for name, norms in runs.items():
        t = np.arange(1, len(norms) + 1)
        ok = norms > 0
        ax.semilogy(t[ok], norms[ok], styles[name], ms=4, lw=2, label=f"{name} (γ = {found[name]['gamma']:.3f})")
    ax.set(xlabel="time step t", ylabel="‖∂L/∂h_t‖ (log scale)")
    ax.set_title("a skip edge h_(t−2) → h_t: the gradient of L = ⟨c, h_T⟩ reaches further back")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    _common.save_figure(fig, out / "skip_connections.png")


def draw(out, seed: int) -> None:
    """The unrolled graph of a 6-step skip RNN, one box per step, coloured by ‖δ‖."""
    import viz

    net = build(3, 2, 0.5, seed)
    x = np.random.default_rng(seed).standard_normal((6, 1, 2))
    out_seq, _ = net(x)
    loss = out_seq[-1].sum()
    loss.name = "L"
    with mg.record_grad_norms():
        loss.backward()
    try:
        path = viz.render_graph(loss, out / "skip_connections_graph.png", level="step", show_grads=True,
                                title="skip RNN: h_(t−2) → h_t edges are the shortcut")  # fmt: skip
        print(f"graph: {path}")
    except (viz.GraphvizNotFoundError, viz.RenderError) as e:
        print(f"(no picture of the graph: {e})")


if __name__ == "__main__":
    main()
