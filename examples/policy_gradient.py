"""The policy-gradient view: an episode is an unrolled graph, and BPTT can run through it.

The notes point out that an agent's actions driving an environment's state from step to step
is a recurrence like an RNN's: s_{t+1} = f(s_t, u_t), u_t from a policy π_θ(u | s_t). The task
here is a point mass on a line that should be brought to rest at 0:

    x_{t+1} = x_t + Δt v_t,    v_{t+1} = v_t + Δt u_t,       Δt = 0.1, T = 40 steps
    u_t = −(k_x x_t + k_v v_t) + σ ε_t,    ε_t ~ N(0, 1),    θ = (k_x, k_v),  σ = 0.5
    C = (1/T) Σ_t (x_{t+1}² + r u_t²),     r = 0.1,          x_0 ~ N(0, 1), v_0 ~ N(0, 0.5²)

and the goal is to minimise E[C]. Two estimators of the same gradient ∇_θ E[C]:

* BPTT through the differentiable environment (pathwise): with the noise ε drawn, C is a
  differentiable function of θ through every step, and ``C.backward()`` carries the gradient back
  through all T transitions, exactly as through an unrolled RNN;
* the score function (REINFORCE): treat the environment as a black box and use
  ∇_θ E[C] = E[Σ_t ∇_θ log π_θ(u_t | s_t) · (C_≥t − b_t)], with C_≥t the cost from step t on
  and b_t the mean C_≥t of the other episodes in the batch (a baseline that keeps it unbiased).
  On the engine: the surrogate Σ_t log π_θ(u_t | s_t) · (C_≥t − b_t), states and actions held
  constant, then ``backward``.

The script draws many batches at the initial θ and prints both estimators' mean (the same
vector, within the standard error) and spread, then trains θ with each (Adam, the same batch
size, step size and noise) and prints and plots the learning curves.

    python examples/policy_gradient.py
    python examples/policy_gradient.py --quick
"""

from __future__ import annotations

import _common
import numpy as np

import minigrad as mg

DT, SIGMA, R = 0.1, 0.5, 0.1


def start_states(rng: np.random.Generator, B: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.standard_normal(B), 0.5 * rng.standard_normal(B)


def rollout(theta: mg.Tensor, x0: np.ndarray, v0: np.ndarray, eps: np.ndarray) -> tuple[mg.Tensor, dict]:
    """Run one batch of episodes on the engine: (mean cost C over the batch, the trajectory's arrays).

    Every step is recorded on the tape (in scope "t=…"), so C.backward() is BPTT through the
    environment. trajectory: x, v (T, B) states the actions saw, u (T, B) actions, c (T, B) step costs.
    """
    T, B = eps.shape
    k_x, k_v = theta[0], theta[1]
    x, v = mg.tensor(x0), mg.tensor(v0)
    total, xs, vs, us, cs = None, [], [], [], []
    for t in range(T):
        with mg.scope(f"t={t + 1}"):
            u = -(k_x * x + k_v * v) + SIGMA * eps[t]  # u_t = −(k_x x_t + k_v v_t) + σ ε_t
            x_next = x + DT * v  # x_{t+1} = x_t + Δt v_t
            v = v + DT * u  # v_{t+1} = v_t + Δt u_t
            c = x_next * x_next + R * u * u  # c_t = x_{t+1}² + r u_t²
        xs.append(x.data), vs.append(v.data - DT * u.data), us.append(u.data), cs.append(c.data)
        x = x_next
        total = c if total is None else total + c
    C = total.sum() * (1.0 / (T * B))  # mean over the batch of C = (1/T) Σ_t c_t
    return C, {"x": np.array(xs), "v": np.array(vs), "u": np.array(us), "c": np.array(cs)}


def bptt_gradient(theta: mg.Tensor, x0, v0, eps) -> tuple[np.ndarray, float]:
    theta.grad = None
    C, _ = rollout(theta, x0, v0, eps)
    C.backward()  # through all T transitions of the environment
    return theta.grad.copy(), C.item()


def reinforce_gradient(theta: mg.Tensor, x0, v0, eps) -> tuple[np.ndarray, float]:
    """The score-function estimate: the environment only supplies samples (no gradient through it)."""
    with mg.no_grad():
        C, traj = rollout(theta, x0, v0, eps)
    T, B = eps.shape
    to_go = np.cumsum(traj["c"][::-1], axis=0)[::-1] / T  # C_≥t = (1/T) Σ_{j≥t} c_j, (T, B)
    baseline = (to_go.sum(axis=1, keepdims=True) - to_go) / (B - 1)  # mean of the other episodes
    advantage = to_go - baseline
    theta.grad = None
    k_x, k_v = theta[0], theta[1]
    mu = -(k_x * mg.tensor(traj["x"]) + k_v * mg.tensor(traj["v"]))  # the policy's mean at the states seen
    log_pi = -((mg.tensor(traj["u"]) - mu) ** 2) * (1.0 / (2 * SIGMA**2))  # log π_θ(u_t | s_t) + const
    surrogate = (log_pi * advantage).sum() * (1.0 / B)
    surrogate.backward()
    return theta.grad.copy(), C.item()


ESTIMATORS = {"BPTT through the environment": bptt_gradient, "REINFORCE (score function)": reinforce_gradient}


def spread(theta0: np.ndarray, batches: int, B: int, T: int, seed: int) -> dict:
    """Both estimators on the same batches (same x_0, v_0 and ε) at θ = theta0."""
    rng = np.random.default_rng(seed)
    draws = {name: [] for name in ESTIMATORS}
    with _common.Progress(batches, "gradient draws", "batches") as bar:
        for _ in range(batches):
            x0, v0 = start_states(rng, B)
            eps = rng.standard_normal((T, B))
            for name, estimate in ESTIMATORS.items():
                draws[name].append(estimate(mg.nn.Parameter(theta0.copy()), x0, v0, eps)[0])
            bar.update(1)
    return {name: np.array(d) for name, d in draws.items()}


def evaluate(theta: np.ndarray, x0: np.ndarray, v0: np.ndarray, eps: np.ndarray) -> float:
    """E[C] at θ, estimated on a fixed set of evaluation episodes (the same for every θ and estimator)."""
    with mg.no_grad():
        return rollout(mg.tensor(theta), x0, v0, eps)[0].item()


def train(name: str, theta0: np.ndarray, updates: int, B: int, T: int, lr: float, seed: int, held_out) -> tuple:
    """Adam on θ with one estimator; returns (E[C] on the held-out episodes before each update and after
    the last, the final θ)."""
    rng = np.random.default_rng(seed)  # the same episodes' start states and noise for both estimators
    theta = mg.nn.Parameter(theta0.copy())
    opt = mg.optim.Adam([theta], lr=lr)
    costs = [evaluate(theta.data, *held_out)]
    with _common.Progress(updates, name[:12], "updates") as bar:
        for _ in range(updates):
            x0, v0 = start_states(rng, B)
            eps = rng.standard_normal((T, B))
            theta.grad = ESTIMATORS[name](theta, x0, v0, eps)[0]
            opt.step()
            costs.append(evaluate(theta.data, *held_out))
            bar.update(1, cost=round(costs[-1], 4))
    return costs, theta.data.copy()


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__)
    p.add_argument("--steps", type=int, default=40, help="episode length T")
    p.add_argument("--batch", type=int, default=16, help="episodes per gradient")
    p.add_argument("--draws", type=int, default=300, help="batches drawn to measure the spread")
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--lr", type=float, default=0.1)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.draws, args.updates = 20, 40, 40
    T, B = args.steps, args.batch
    theta0 = np.array([0.0, 0.0])
    print(
        f"point mass, T = {T} steps of Δt = {DT}, σ = {SIGMA}, r = {R}; θ = (k_x, k_v) = ({theta0[0]:g}, {theta0[1]:g})"
    )

    draws = spread(theta0, args.draws, B, T, args.seed)
    print(f"\nthe gradient ∇_θ E[C] at θ = ({theta0[0]:g}, {theta0[1]:g}), {args.draws} batches of {B} episodes each")
    print(f"{'estimator':30} {'mean':>22} {'± s.e.':>20} {'std of one batch':>20} {'‖std‖/‖mean‖':>13}")
    found: dict = {"draws": {}}
    for name, d in draws.items():
        mean, std = d.mean(axis=0), d.std(axis=0, ddof=1)
        se = std / np.sqrt(len(d))
        rel = float(np.linalg.norm(std) / np.linalg.norm(mean))
        found["draws"][name] = {"mean": mean, "se": se, "std": std, "rel": rel}
        print(f"{name:30} {np.array2string(mean, precision=4):>22} {np.array2string(se, precision=4):>20} "
              f"{np.array2string(std, precision=4):>20} {rel:13.3f}")  # fmt: skip
    (nb, b), (nr, r) = found["draws"].items()
    ratio = float((r["std"] ** 2).sum() / (b["std"] ** 2).sum())
    gap = float(np.max(np.abs(b["mean"] - r["mean"]) / np.sqrt(b["se"] ** 2 + r["se"] ** 2)))
    found["variance_ratio"], found["mean_gap_in_se"] = ratio, gap
    print(
        f"Both estimate the same gradient (their means differ by at most {gap:.1f} standard errors); REINFORCE's "
        f"variance is {ratio:.0f} times BPTT's, so it needs about {ratio:.0f} times as many episodes for the same "
        "precision. BPTT knows how the cost changes with each state; REINFORCE only sees which episodes went well."
    )

    curves = {}
    rng_eval = np.random.default_rng(args.seed + 2)
    held_out = (*start_states(rng_eval, 512), rng_eval.standard_normal((T, 512)))
    print(
        f"\ntraining θ from ({theta0[0]:g}, {theta0[1]:g}): Adam, lr {args.lr}, {B} episodes per update, {args.updates} updates"
    )
    for name in ESTIMATORS:
        costs, theta = train(name, theta0, args.updates, B, T, args.lr, args.seed + 1, held_out)
        curves[name] = costs
        marks = [m for m in (10, 25, 50, 100, args.updates) if m <= args.updates]
        found[name] = {"costs": costs, "theta": theta}
        shown = ", ".join(f"{m}: {costs[m]:.4f}" for m in marks)
        print(f"{name:30} E[C] {costs[0]:.4f} at the start; after {shown}; θ = {np.round(theta, 3)}")
    (nb, cb), (nr, cr) = curves.items()
    reach = next((i for i, c in enumerate(cb) if c <= cr[-1]), None)
    found["bptt_updates_to_reinforce_final"] = reach
    print(
        f"E[C] on {held_out[0].size} held-out episodes. BPTT reaches REINFORCE's final E[C] ({cr[-1]:.4f} after "
        f"{len(cr) - 1} updates) after {reach} updates."
    )
    plot(curves, draws, args.out)
    return found


def plot(curves: dict, draws: dict, out) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.3))
    for (name, d), color in reversed(list(zip(draws.items(), ("tab:blue", "tab:orange")))):
        ax1.scatter(d[:, 0], d[:, 1], s=8, alpha=0.5, color=color, label=name)
        ax1.plot(*d.mean(axis=0), "k+", ms=14, mew=2)
    ax1.set(xlabel="∂E[C]/∂k_x", ylabel="∂E[C]/∂k_v", title="one gradient per batch (+: the means)")
    ax1.legend(fontsize=8)
    ax1.grid(True, alpha=0.3)
    for (name, costs), color in zip(curves.items(), ("tab:blue", "tab:orange")):
        ax2.plot(costs, color=color, lw=2, label=name)
    ax2.set(xlabel="update", ylabel="E[C] on held-out episodes", title="learning curves, same episodes and step size")
    ax2.set_yscale("log")
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    _common.save_figure(fig, out / "policy_gradient.png")


if __name__ == "__main__":
    main()
