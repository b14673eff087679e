"""What truncation saves: time and peak memory of one long sequence, three ways (and the notes' window).

The notes sell truncated BPTT as cheaper than full BPTT. Whether it is depends on how it is
done. One gradient of L = Σ_t ½‖h_t − y_t‖² over one long sequence (T steps) of a tanh RNN:

* full BPTT: one unroll, one backward through all T steps;
* ``truncate=k`` inside that one unroll: the state is detached after steps k, 2k, …, but the
  graph of all T steps is still built, kept until the backward and walked by it (every
  step's output feeds the loss), so the memory is that of full BPTT and the time too;
* ``models.tbptt_train(k1=k, k2=k)``: the sequence in chunks of k, one backward per chunk,
  the carried state detached between chunks. The gradient is the same as ``truncate=k``
  (checked below), but only one chunk's graph is alive at a time: memory O(k), not O(T);
* the notes' sliding window of k steps per loss, ``tbptt_train(k1=1, k2=k)``: every step's
  loss is backpropagated through its own last k steps, so each step is run forward and
  backward k times: the most faithful gradient of the three truncations, and k times the work.

For each the script prints CPU seconds (time.process_time, best of a few), the peak memory
that tracemalloc sees during the gradient, and the number of VJPs the backward passes run.

    python examples/truncation_cost.py          # T = 2000, H = 64: ~1 min
    python examples/truncation_cost.py --quick
"""

from __future__ import annotations

import time
import tracemalloc

import _common
import numpy as np

import minigrad as mg
import models


def half_sq(out: mg.Tensor, y) -> mg.Tensor:
    """Σ ½‖h_t − y_t‖² over the steps given: a sum, so the chunks' losses add up to L."""
    d = out - y
    return (d * d).sum() * 0.5


def run(way: str, rnn: models.RNN, x: np.ndarray, y: np.ndarray, k: int) -> int:
    """One gradient of L by ``way``; returns the number of VJPs its backward passes ran."""
    rnn.zero_grad()
    if way in ("full BPTT", f"truncate={k}"):
        out, _ = rnn(x, truncate=None if way == "full BPTT" else k)
        loss = half_sq(out, y)
        visited = len(mg.tape(loss))  # the nodes the backward walks, one VJP each
        loss.backward()
        return visited
    counted = [0]

    def loss_fn(out, target):
        loss = half_sq(out, target)
        counted[0] += len(mg.tape(loss))
        return loss

    k1, k2 = (k, k) if "k1=k" in way else (1, k)
    models.tbptt_train(lambda xc, st: rnn(xc, st), x, y, loss_fn, optimizer=None, k1=k1, k2=k2)
    return counted[0]


def measure(way: str, rnn, x, y, k: int, repeat: int) -> dict:
    grads = None
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        vjps = run(way, rnn, x, y, k)
        best = min(best, time.process_time() - t0)
        grads = {n: p.grad.copy() for n, p in rnn.named_parameters()}
    tracemalloc.start()
    run(way, rnn, x, y, k)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"seconds": best, "peak_mb": peak, "vjps": vjps, "grads": grads}


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__)
    p.add_argument("--T", type=int, default=2000, help="sequence length")
    p.add_argument("--k", type=int, default=20, help="truncation length")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeat", type=int, default=4, help="timed runs per way (the best counts)")
    args = p.parse_args(argv)
    if args.quick:
        args.T, args.k, args.hidden, args.batch, args.repeat = 120, 6, 8, 2, 1
    T, k, H, B, I = args.T, args.k, args.hidden, args.batch, 8
    rng = np.random.default_rng(args.seed)
    rnn = models.RNN(I, H, rng=rng)
    x, y = rng.standard_normal((T, B, I)), 0.5 * rng.standard_normal((T, B, H))
    ways = ["full BPTT", f"truncate={k}", "tbptt_train(k1=k, k2=k)", "tbptt_train(k1=1, k2=k)"]
    print(f"one gradient of L = Σ_t ½‖h_t − y_t‖², tanh RNN, T = {T}, k = {k}, H = {H}, batch {B}, float64")
    res = {w: measure(w, rnn, x, y, k, args.repeat) for w in ways}
    full = res["full BPTT"]
    print(f"\n{'way':26} {'CPU s':>8} {'× full':>7} {'peak MB':>9} {'× full':>7} {'VJPs':>8}  reach of a loss")
    reach = {ways[0]: f"all {T - 1} steps back", ways[1]: f"0..{k - 1} steps (its place in the block)",
             ways[2]: f"0..{k - 1} steps (same as truncate={k})", ways[3]: f"exactly {k - 1} steps (notes' window)"}  # fmt: skip
    for w in ways:
        r = res[w]
        print(
            f"{w:26} {r['seconds']:8.3f} {r['seconds'] / full['seconds']:7.2f} {r['peak_mb']:9.2f}"
            f" {r['peak_mb'] / full['peak_mb']:7.3f} {r['vjps']:8d}  {reach[w]}"
        )
    a, b = res[ways[1]]["grads"], res[ways[2]]["grads"]
    same = max(float(np.abs(a[n] - b[n]).max()) for n in a)
    print(f"\ntruncate={k} and tbptt_train(k1=k, k2=k) give the same gradient: max |Δ| = {same:.1e}")
    print(
        f"truncate={k} inside one unroll visits {res[ways[1]]['vjps']} VJPs, as many as full BPTT "
        f"({full['vjps']}), and keeps the whole graph ({res[ways[1]]['peak_mb']:.1f} MB vs {full['peak_mb']:.1f} MB): "
        f"the memory of full BPTT. Chunked TBPTT keeps one chunk: "
        f"{res[ways[2]]['peak_mb']:.2f} MB, {full['peak_mb'] / res[ways[2]]['peak_mb']:.0f}× less. "
        f"The notes' sliding window runs every step {k} times: {res[ways[3]]['seconds'] / full['seconds']:.1f}× the time."
    )
    plot(res, ways, args)
    found = {w: {key: res[w][key] for key in ("seconds", "peak_mb", "vjps")} for w in ways}
    found["same_grad"] = same
    return found


def plot(res: dict, ways: list, args) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for ax, key, label in zip(
        axes, ("seconds", "peak_mb", "vjps"), ("CPU seconds per gradient", "peak memory (MB, tracemalloc)", "VJPs run")
    ):
        vals = [res[w][key] for w in ways]
        ax.barh(ways, vals, color=colors)
        for i, v in enumerate(vals):
            ax.text(v, i, f" {v:.3g}", va="center", fontsize=8)
        ax.set(xlabel=label)
        ax.set_xlim(0, max(vals) * 1.25)
        ax.locator_params(axis="x", nbins=4)  # a few round ticks: long labels do not overlap
        ax.invert_yaxis()
    for ax in axes[1:]:
        ax.set_yticklabels([])
    fig.suptitle(
        f"one long sequence (T = {args.T}, k = {args.k}, H = {args.hidden}): what truncation saves", fontsize=12
    )
    fig.tight_layout()
    _common.save_figure(fig, args.out / "truncation_cost.png")


if __name__ == "__main__":
    main()
