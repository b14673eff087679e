"""A fixed-point (deep equilibrium) layer: backprop through a long unroll, or implicit differentiation.

The layer's output is the fixed point of one tanh step, found by iterating it:

    h* = f(h*) = tanh(h* Wᵀ + x Uᵀ + b)          (rows are examples; W = ρ Q, Q orthogonal, ρ < 1: a contraction)

and a readout gives the loss L = mse(h* Vᵀ, y).

Way 1, unroll: h_0 = 0, h_k = f(h_{k−1}) until ‖h_k − h_{k−1}‖ < tol, all on the tape; backward is
ordinary BPTT through the K steps. Memory grows with K (every step's arrays are saved).

Way 2, implicit: find h* without recording anything (mg.no_grad), then take ONE recorded step
z = f(h*) at the fixed point. Differentiating h* = f(h*, θ) gives dh* = J dh* + ∂f/∂θ dθ with
J = ∂f/∂h at h*, so with g = ∂L/∂h*:

    ∂L/∂θ = vᵀ ∂f/∂θ     where v solves (I − Jᵀ) v = g,   found by iterating v ← g + Jᵀ v.

Jᵀ v is a vector-Jacobian product of the one step, which the engine gives by backward(v) through
that step; the final z.backward(v) delivers vᵀ ∂f/∂θ into W.grad, U.grad, b.grad. Memory is one
step's worth, whatever K is.

The script checks the two gradients agree to 1e-8 and compares their time and peak memory
(tracemalloc) as ρ, and with it the number of iterations K, grows.

    python examples/deq.py            # ~20 s
    python examples/deq.py --quick
"""

from __future__ import annotations

import time
import tracemalloc

import _common
import numpy as np

import minigrad as mg


class FixedPointLayer(mg.nn.Module):
    """f(h) = tanh(h Wᵀ + x Uᵀ + b) with W = ρ · (an orthogonal matrix), and a linear readout V."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, rho: float, rng: np.random.Generator):
        super().__init__()
        self.W = mg.nn.Parameter(np.zeros((n_hidden, n_hidden)))
        # W = ρ Q, Q orthogonal: every singular value and |eigenvalue| is ρ, so f contracts at rate ≤ ρ (|tanh'| ≤ 1)
        mg.nn.init.orthogonal_(self.W, gain=rho, rng=rng)
        self.U = mg.nn.Parameter(rng.standard_normal((n_hidden, n_in)) / np.sqrt(n_in))
        self.b = mg.nn.Parameter(np.zeros(n_hidden))
        self.V = mg.nn.Parameter(rng.standard_normal((n_out, n_hidden)) / np.sqrt(n_hidden))

    def step(self, h: mg.Tensor, x_proj: mg.Tensor, W: mg.Tensor | None = None) -> mg.Tensor:
        W = self.W if W is None else W
        return (h @ W.T + x_proj).tanh()  # f(h) = tanh(h Wᵀ + x Uᵀ + b)

    def loss(self, h: mg.Tensor, y: np.ndarray) -> mg.Tensor:
        return mg.mse_loss(h @ self.V.T, y)


def grads_by_unroll(layer: FixedPointLayer, x, y, tol: float, max_iter: int) -> tuple[dict, int, list]:
    """Way 1: iterate f on the tape until it stops moving, backprop through every step."""
    layer.zero_grad()
    x_proj = x @ layer.U.T + layer.b
    h = mg.tensor(np.zeros((x.shape[0], layer.W.shape[0])))
    residuals = []
    for _ in range(max_iter):
        h_new = layer.step(h, x_proj)  # h_k = f(h_{k−1}), recorded
        residuals.append(float(np.abs(h_new.data - h.data).max()))
        h = h_new
        if residuals[-1] < tol:
            break
    layer.loss(h, y).backward()  # BPTT through all k steps
    return {n: p.grad.copy() for n, p in layer.named_parameters()}, len(residuals), residuals


def grads_by_implicit(layer: FixedPointLayer, x, y, tol: float, max_iter: int) -> tuple[dict, int, list]:
    """Way 2: find h* untaped, one taped step at h*, then solve (I − Jᵀ) v = g by iteration."""
    layer.zero_grad()
    with mg.no_grad():  # the forward solve: nothing is recorded, nothing is kept
        x_proj = x @ layer.U.T + layer.b
        h = mg.tensor(np.zeros((x.shape[0], layer.W.shape[0])))
        for _ in range(max_iter):
            h_new = layer.step(h, x_proj)
            done = np.abs(h_new.data - h.data).max() < tol
            h = h_new
            if done:
                break
    h_star = h.data
    z = layer.step(mg.tensor(h_star), x @ layer.U.T + layer.b)  # one recorded step z = f(h*, θ) at the fixed point
    z_leaf = mg.tensor(z.data, requires_grad=True)
    layer.loss(z_leaf, y).backward()  # g = ∂L/∂h* (and V.grad)
    g = z_leaf.grad

    # Jᵀ v by the engine: a graph of the same step in h alone (parameters as constants), reused each iteration
    h_var = mg.tensor(h_star, requires_grad=True)
    with mg.no_grad():
        x_proj_const = x @ layer.U.T + layer.b
    z_h = layer.step(h_var, x_proj_const, W=mg.tensor(layer.W.data))
    v, residuals = g.copy(), []
    for _ in range(max_iter):
        h_var.grad = None
        z_h.backward(v, retain_graph=True)  # h_var.grad = Jᵀ v
        v_new = g + h_var.grad  # v ← g + Jᵀ v
        residuals.append(float(np.abs(v_new - v).max()))
        v = v_new
        if residuals[-1] < tol:
            break
    z.backward(v)  # vᵀ ∂f/∂θ into W.grad, U.grad, b.grad
    return {n: p.grad.copy() for n, p in layer.named_parameters()}, len(residuals), residuals


def measure(fn, *args, repeat: int = 3) -> tuple[float, float, tuple]:
    """(seconds, peak MB, fn's result): best wall time of ``repeat`` untraced runs, then the peak traced
    allocation of one more run. (Wall time: CPU time would count BLAS threads spinning while they wait.)"""
    seconds = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args)
        seconds = min(seconds, time.perf_counter() - t0)
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, result


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--inputs", type=int, default=32)
    p.add_argument("--rhos", type=float, nargs="+", default=[0.5, 0.8, 0.9, 0.95, 0.98], help="‖W‖₂ values")
    p.add_argument("--tol", type=float, default=1e-12, help="stop iterating when max |change| < tol")
    p.add_argument("--max-iter", type=int, default=5000)
    p.add_argument("--input-scale", type=float, default=0.1, help="x ~ N(0, scale²)")
    p.add_argument("--repeat", type=int, default=3, help="time each way as the best of this many runs")
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.hidden, args.inputs, args.rhos = 4, 16, 8, [0.5, 0.9]
    rng = np.random.default_rng(args.seed)
    # small inputs keep tanh near its linear regime, where f contracts at rate ≈ ρ (saturation would speed it up)
    x = mg.tensor(args.input_scale * rng.standard_normal((args.batch, args.inputs)))
    y = rng.standard_normal((args.batch, 4))

    print(f"fixed point h* = tanh(h* Wᵀ + x Uᵀ + b): batch {args.batch}, hidden {args.hidden}, tol {args.tol:g}")
    print(f"{'ρ=‖W‖₂':>7} {'K fwd':>6} {'K bwd':>6} {'max|Δgrad|':>11} {'unroll s':>9} {'implicit s':>10} "
          f"{'unroll MB':>10} {'implicit MB':>11}")  # fmt: skip
    rows, worst, curves = [], 0.0, {}
    for rho in args.rhos:
        layer = FixedPointLayer(args.inputs, args.hidden, 4, rho, np.random.default_rng(args.seed + 1))
        t_u, m_u, (g_u, k_u, res_u) = measure(grads_by_unroll, layer, x, y, args.tol, args.max_iter, repeat=args.repeat)
        t_i, m_i, (g_i, k_i, res_i) = measure(
            grads_by_implicit, layer, x, y, args.tol, args.max_iter, repeat=args.repeat
        )
        diff = max(float(np.abs(g_u[n] - g_i[n]).max()) for n in g_u)
        worst = max(worst, diff)
        rows.append((rho, k_u, k_i, diff, t_u, t_i, m_u, m_i))
        curves[rho] = (res_u, res_i)
        print(f"{rho:7.2f} {k_u:6d} {k_i:6d} {diff:11.2e} {t_u:9.3f} {t_i:10.3f} {m_u:10.2f} {m_i:11.2f}")
    verdict = "agree" if worst <= 1e-8 else "DISAGREE"
    print(f"unroll and implicit gradients {verdict}: max |Δ| over all parameters and ρ = {worst:.1e} (want ≤ 1e-8)")
    last = rows[-1]
    print(
        f"at ρ = {last[0]}: unroll keeps {last[1]} steps on the tape ({last[6]:.1f} MB peak, {last[4]:.2f} s); "
        f"implicit keeps one ({last[7]:.1f} MB, {last[5]:.2f} s): {last[6] / last[7]:.0f}x less memory; "
        "time is similar (K untaped steps + K' one-step VJPs vs K taped steps + K VJPs)"
    )
    plot(rows, curves, args.out)
    if worst > 1e-8:
        raise SystemExit(1)


def plot(rows: list, curves: dict, out) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))
    for rho, (res_u, res_i) in curves.items():
        (line,) = ax1.semilogy(range(1, len(res_u) + 1), res_u, label=f"ρ = {rho}")
        ax1.semilogy(range(1, len(res_i) + 1), res_i, ":", color=line.get_color())
    ax1.set(
        xlabel="iteration k",
        ylabel="max |change|",
        title="forward h_k (solid) and backward v_k (dotted)\nboth contract at rate ≈ ρ",
    )
    ax1.legend(fontsize=7)
    K = [r[1] for r in rows]
    ax2.plot(K, [r[6] for r in rows], "o-", label="unroll (BPTT through K steps)")
    ax2.plot(K, [r[7] for r in rows], "s-", label="implicit (one step + solve)")
    ax2.set(xlabel="forward iterations K", ylabel="peak memory (MB, tracemalloc)", title="memory")
    ax2.legend(fontsize=8)
    ax3.plot(K, [r[4] for r in rows], "o-", label="unroll")
    ax3.plot(K, [r[5] for r in rows], "s-", label="implicit")
    ax3.set(xlabel="forward iterations K", ylabel="seconds (forward + backward)", title="time")
    ax3.legend(fontsize=8)
    _common.save_figure(fig, out / "deq.png")


if __name__ == "__main__":
    main()
