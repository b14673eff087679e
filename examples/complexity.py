"""Why backpropagation through time is O(T): against the naive path sum, O(T²), and RTRL.

For an Elman RNN h_t = tanh(W_ih x_t + b + W_hh h_{t−1}) with a loss at every step,
L = Σ_t ℓ_t, the lecture notes first write the gradient as a sum over paths:

    ∂L/∂θ = Σ_t Σ_{s≤t} (∂ℓ_t/∂h_t) (∂h_t/∂h_{t−1} ⋯ ∂h_{s+1}/∂h_s) ∂⁺h_s/∂θ

Evaluated as written, every pair s ≤ t gets its own Jacobian product: T(T+1)/2 terms, O(T²).
BPTT shares the products: one backward sweep

    δh_t = ∂ℓ_t/∂h_t + (∂h_{t+1}/∂h_t)ᵀ δh_{t+1},     ∂L/∂θ = Σ_s δh_s-weighted ∂⁺h_s/∂θ

visits each step once: O(T). Real-time recurrent learning (forward mode) carries ∂h_t/∂θ forward
instead: O(T) too, but each step costs O(H⁴) for W_hh instead of O(H²).

The script times, for growing T, the hand-written references in ``models/reference.py``
(``path_sum_grads``, ``rnn_bptt``, ``rtrl_grads``) and minigrad's generic reverse mode on
``models.RNN``, checks that all four give the same gradient, prints the fitted exponent
(time ∝ T^slope) and draws one log-log plot.

    python examples/complexity.py            # ~1 min
    python examples/complexity.py --quick
"""

from __future__ import annotations

import time

import _common
import numpy as np

import models
from models import reference


def best_time(fn, min_time: float, max_repeat: int = 50) -> float:
    """The fastest of several runs (repeat until min_time is spent, at most max_repeat times).

    CPU time of this process (time.process_time), not wall time: other programs on a busy
    machine then disturb the numbers much less."""
    best, spent, n = float("inf"), 0.0, 0
    while n < max_repeat and (n < 2 or spent < min_time):
        t0 = time.process_time()
        fn()
        dt = time.process_time() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--lengths", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256, 512])
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--max-path-sum", type=int, default=256, help="skip the O(T²) path sum above this T")
    p.add_argument("--min-time", type=float, default=0.5, help="seconds spent timing each point")
    args = p.parse_args(argv)
    if args.quick:
        args.lengths, args.hidden, args.min_time = [4, 8, 16], 4, 0.01
    rng = np.random.default_rng(args.seed)
    H, B, I = args.hidden, args.batch, 4
    rnn = models.RNN(I, H, rng=rng)
    params = {k[: -len("_l0")]: v for k, v in rnn.state_dict().items()}  # weight_ih, weight_hh, bias_ih, bias_hh

    names = ["path sum O(T²)", "RTRL (forward mode)", "BPTT, hand-written numpy", "BPTT, minigrad reverse mode"]
    times = {n: [] for n in names}
    print(f"Elman RNN, H = {H}, batch {B}, a loss at every step; CPU seconds per gradient")
    print(f"{'T':>5} " + " ".join(f"{n[:22]:>23}" for n in names) + "   max |Δ grad|")
    for T in args.lengths:
        x = rng.standard_normal((T, B, I))
        dout = rng.standard_normal((T, B, H))  # ℓ_t = ⟨dout_t, h_t⟩

        def by_minigrad():
            rnn.zero_grad()
            out, _ = rnn(x)
            (out * dout).sum().backward()
            return {k[: -len("_l0")]: p.grad for k, p in rnn.named_parameters()}

        ways = {
            names[0]: lambda: reference.path_sum_grads(params, x, None, dout).grads,
            names[1]: lambda: reference.rtrl_grads(params, x, None, dout),
            names[2]: lambda: reference.rnn_bptt(params, x, None, dout).grads,
            names[3]: by_minigrad,
        }
        row, grads = [], {}
        for name, fn in ways.items():
            if name == names[0] and T > args.max_path_sum:
                times[name].append(np.nan)
                row.append(f"{'(skipped)':>23}")
                continue
            grads[name] = {k: np.array(v) for k, v in fn().items() if k in params}
            t = best_time(fn, args.min_time)
            times[name].append(t)
            row.append(f"{t:23.5f}")
        ref = grads[names[2]]
        diff = max(float(np.abs(g[k] - ref[k]).max()) for g in grads.values() for k in ref)
        print(f"{T:5d} " + " ".join(row) + f"   {diff:.1e}")

    print("\nfitted exponent (time ∝ T^slope over the larger half of the lengths):")
    for name, ts in times.items():
        Ts, ts = np.array(args.lengths, float), np.array(ts)
        ok = np.isfinite(ts) & (Ts >= np.median(Ts))
        slope = np.polyfit(np.log(Ts[ok]), np.log(ts[ok]), 1)[0] if ok.sum() >= 2 else float("nan")
        print(f"  {name:30} slope {slope:4.2f}")
    plot(args.lengths, times, H, args.out)


def plot(lengths, times: dict, H: int, out) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    T = np.array(lengths, float)
    for (name, ts), marker in zip(times.items(), "osv^"):
        ax.loglog(T, ts, marker + "-", label=name)
    mid = len(T) // 2  # guides through the middle point of the path sum and of hand-written BPTT
    t_path, t_bptt = np.array(times["path sum O(T²)"]), np.array(times["BPTT, hand-written numpy"])
    ax.loglog(T, t_path[mid] * (T / T[mid]) ** 2, ":", color="grey", label="∝ T² (guide)")
    ax.loglog(T, t_bptt[mid] * (T / T[mid]), "--", color="grey", label="∝ T (guide)")
    ax.set(
        xlabel="sequence length T", ylabel="CPU seconds per gradient", title=f"cost of ∂L/∂θ for an Elman RNN, H = {H}"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _common.save_figure(fig, out / "complexity.png")


if __name__ == "__main__":
    main()
