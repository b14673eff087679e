"""Why backpropagation through time is O(T): against the naive path sum, O(T²), and RTRL.

For an Elman RNN h_t = tanh(W_ih x_t + b + W_hh h_{t−1}) with a loss at every step,
L = Σ_t ℓ_t, the lecture notes first write the gradient as a sum over paths:

    ∂L/∂θ = Σ_t Σ_{s≤t} (∂ℓ_t/∂h_t) (∂h_t/∂h_{t−1} ⋯ ∂h_{s+1}/∂h_s) ∂⁺h_s/∂θ

Evaluated as written, every pair s ≤ t gets its own Jacobian product: T(T+1)/2 terms, O(T²).
BPTT shares the products: one backward sweep

    δh_t = ∂ℓ_t/∂h_t + (∂h_{t+1}/∂h_t)ᵀ δh_{t+1},     ∂L/∂θ = Σ_s δh_s-weighted ∂⁺h_s/∂θ

visits each step once: O(T). Real-time recurrent learning (forward mode) carries ∂h_t/∂θ forward
instead: O(T) too, but each step costs O(H⁴) for W_hh instead of O(H²).

Per step the forward and the backward cost O(n² + n·d) for hidden size n and input size d
(W_hh h_{t−1} is n × n, W_ih x_t is n × d), so one gradient costs O(T(n² + n·d)). The second
part of the script checks the n and d in that formula too: at fixed T it times the
hand-written BPTT and minigrad's reverse mode for growing n (d small: time ∝ n², exponent 2)
and for growing d (d ≫ n: time ∝ n·d, exponent 1), a batch of 32 so that the matrix
products, not Python's per-op overhead, dominate.

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


def fit_exponent(sizes, times, above=None) -> float:
    """Least-squares slope of log(time) against log(size), over sizes ≥ ``above`` (default: the median)."""
    x, y = np.array(sizes, float), np.array(times, float)
    ok = np.isfinite(y) & (x >= (np.median(x) if above is None else above))
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0]) if ok.sum() >= 2 else float("nan")


def size_sweep(kind: str, sizes, fixed: int, T: int, B: int, min_time: float, seed: int) -> dict:
    """CPU seconds per gradient of hand-written BPTT and minigrad for n (kind "n") or d (kind "d") in sizes."""
    names = ("BPTT, hand-written numpy", "BPTT, minigrad reverse mode")
    out: dict = {n: [] for n in names}
    out["diff"] = 0.0
    rng = np.random.default_rng(seed)
    for size in sizes:
        H, I = (size, fixed) if kind == "n" else (fixed, size)
        rnn = models.RNN(I, H, rng=rng)
        params = {k[: -len("_l0")]: v for k, v in rnn.state_dict().items()}
        x, dout = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H))

        def by_minigrad():
            rnn.zero_grad()
            out_, _ = rnn(x)
            (out_ * dout).sum().backward()
            return {k[: -len("_l0")]: p.grad for k, p in rnn.named_parameters()}

        ref = reference.rnn_bptt(params, x, None, dout).grads
        mine = by_minigrad()
        out["diff"] = max(out["diff"], max(float(np.abs(mine[k] - ref[k]).max()) for k in params))
        out[names[0]].append(best_time(lambda: reference.rnn_bptt(params, x, None, dout), min_time))
        out[names[1]].append(best_time(by_minigrad, min_time))
    return out


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__)
    p.add_argument("--lengths", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256, 512])
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--max-path-sum", type=int, default=256, help="skip the O(T²) path sum above this T")
    p.add_argument("--min-time", type=float, default=0.5, help="seconds spent timing each point")
    p.add_argument("--n-sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024], help="hidden sizes n")
    p.add_argument("--d-sizes", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096], help="input sizes d")
    p.add_argument("--size-T", type=int, default=16, help="T of the n and d sweeps")
    args = p.parse_args(argv)
    if args.quick:
        args.lengths, args.hidden, args.min_time = [4, 8, 16], 4, 0.01
        args.n_sizes, args.d_sizes, args.size_T = [16, 32, 64, 128], [64, 128, 256, 512], 4
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
    found: dict = {"T_diff": diff}

    B2 = 32
    print(f"\nthe n and d of O(T(n² + n·d)): T = {args.size_T}, batch {B2}; CPU seconds per gradient")
    sweeps = {
        "n": size_sweep("n", args.n_sizes, 8, args.size_T, B2, args.min_time, args.seed),
        "d": size_sweep("d", args.d_sizes, 64, args.size_T, B2, args.min_time, args.seed),
    }
    for kind, sizes, fixed, expect in (("n", args.n_sizes, "d = 8", 2), ("d", args.d_sizes, "n = 64", 1)):
        sw = sweeps[kind]
        print(f"  {kind:>5} ({fixed})  " + "  ".join(f"{n[:25]:>25}" for n in list(sw)[:2]))
        for i, size in enumerate(sizes):
            print(f"  {size:13d}  " + "  ".join(f"{sw[n][i]:25.5f}" for n in list(sw)[:2]))
        for name in list(sw)[:2]:
            slope = fit_exponent(sizes, sw[name])
            found[f"{kind}: {name}"] = slope
            print(
                f"  fitted exponent in {kind} (larger half of the sizes), {name}: {slope:4.2f} (O(T(n² + n·d)): {expect})"
            )
        print(f"  max |Δ grad| minigrad vs hand-written: {sw['diff']:.1e}")
        found[f"{kind}_diff"] = sw["diff"]
    plot(args.lengths, times, H, args.out, sweeps, args.n_sizes, args.d_sizes, args.size_T)
    return found


def plot(lengths, times: dict, H: int, out, sweeps: dict, n_sizes, d_sizes, size_T: int) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    fig, (ax, ax_n, ax_d) = plt.subplots(1, 3, figsize=(17, 4.5))
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
    for axis, kind, sizes, fixed, power in ((ax_n, "n", n_sizes, "d = 8", 2), (ax_d, "d", d_sizes, "n = 64", 1)):
        S = np.array(sizes, float)
        for (name, ts), marker in zip(list(sweeps[kind].items())[:2], "v^"):
            axis.loglog(S, ts, marker + "-", label=f"{name} (exponent {fit_exponent(sizes, ts):.2f})")
        ref = np.array(sweeps[kind]["BPTT, hand-written numpy"])
        axis.loglog(S, ref[-1] * (S / S[-1]) ** power, ":", color="grey", label=f"∝ {kind}^{power} (guide)")
        axis.set(
            xlabel=f"{'hidden size n' if kind == 'n' else 'input size d'} ({fixed})", ylabel="CPU seconds per gradient"
        )
        axis.set_title(f"cost against {kind}: T = {size_T}, batch 32", fontsize=11)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    _common.save_figure(fig, out / "complexity.png")


if __name__ == "__main__":
    main()
