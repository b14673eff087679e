"""Differentiable physics: aim a projectile and tune a controller by BPTT through the simulation.

A simulation integrated for T steps is a recurrent network whose "cell" is the physics update.
So minigrad differentiates it exactly like an RNN: run the steps, backprop through time.

1. A ball with quadratic air drag, integrated by semi-implicit Euler (dt, T steps):

       v_{t+1} = v_t + dt (g − c ‖v_t‖ v_t)         p_{t+1} = p_t + dt v_{t+1}

   We want the ball to be at the target after T·dt seconds. The launch velocity v_0 is the only
   parameter; L = ‖p_T − target‖² and ∂L/∂v_0 = δv_0 comes from backward through all T steps
   (δv_t = (∂v_{t+1}/∂v_t)ᵀ δv_{t+1} + (∂p_{t+1}/∂v_t)ᵀ δp_{t+1}). Adam on v_0 hits the target.

2. A mass on a spring (stiffness k, damping b) pushed by a feedback controller

       u_t = u_0 − k_p (x_t − x*) − k_d v_t
       v_{t+1} = v_t + dt (−k x_t − b v_t + u_t)    x_{t+1} = x_t + dt v_{t+1}

   should move the mass from 0 to x* and hold it there with little force:
   L = mean_t (x_t − x*)² + λ mean_t u_t². The three controller numbers (u_0, k_p, k_d) are
   learned by BPTT through the whole episode.

The script checks ∂L/∂v_0 against finite differences (mg.gradcheck), prints how far the ball
misses before/after and the controller's cost before/after, and plots the trajectories.

    python examples/differentiable_physics.py            # ~30 s
    python examples/differentiable_physics.py --quick
"""

from __future__ import annotations

import time

import _common
import numpy as np

import minigrad as mg

GRAVITY = np.array([0.0, -9.81])


# ----------------------------------------------------------------------------- 1. projectile
def fly(v0: mg.Tensor, steps: int, dt: float, drag: float) -> list[mg.Tensor]:
    """Positions p_0..p_T of a ball launched from the origin with velocity v0 (2,)."""
    p, v = mg.tensor(np.zeros(2)), v0
    path = [p]
    for _ in range(steps):
        speed = ((v * v).sum() + 1e-12).sqrt()  # ‖v_t‖ (the tiny term keeps sqrt' finite at rest)
        v = v + dt * (GRAVITY - drag * speed * v)  # v_{t+1} = v_t + dt (g − c ‖v_t‖ v_t)
        p = p + dt * v  # p_{t+1} = p_t + dt v_{t+1}
        path.append(p)
    return path


def aim(args) -> dict:
    target = np.array([args.target_x, args.target_y])
    v0 = mg.nn.Parameter(np.array([8.0, 8.0]), name="v0")  # a first guess: 45°, 11 m/s

    def miss(v):  # L = ‖p_T − target‖²
        d = fly(v, args.steps, args.dt, args.drag)[-1] - target
        return (d * d).sum()

    # BPTT through the simulation is exact: compare with central finite differences first.
    mg.gradcheck(miss, [mg.tensor(v0.data.copy(), requires_grad=True)])
    print("gradcheck: ∂L/∂v0 by BPTT through the simulation matches finite differences")

    with mg.no_grad():
        before = np.array([p.data for p in fly(v0, args.steps, args.dt, args.drag)])
    opt = mg.optim.Adam([v0], lr=args.lr)
    snapshots, losses = [], []
    t0 = time.perf_counter()
    for it in _common.progress(range(args.iters), desc="aim", unit="step"):
        opt.zero_grad()
        loss = miss(v0)
        loss.backward()  # δv_0 through all T steps
        opt.step()
        losses.append(loss.item())
        if it + 1 in (3, 10, 30, 100):
            snapshots.append(v0.data.copy())  # a few trajectories on the way
    with mg.no_grad():
        after = np.array([p.data for p in fly(v0, args.steps, args.dt, args.drag)])
    miss_before = float(np.linalg.norm(before[-1] - target))
    miss_after = float(np.linalg.norm(after[-1] - target))
    print(
        f"projectile: launch velocity {np.array([8.0, 8.0])} → {np.round(v0.data, 3)} m/s; "
        f"miss {miss_before:.3f} m → {miss_after:.2e} m after {args.iters} Adam steps "
        f"({time.perf_counter() - t0:.1f}s, T = {args.steps} steps of {args.dt}s each)"
    )
    mids = []
    with mg.no_grad():
        for v in snapshots:
            mids.append(np.array([p.data for p in fly(mg.tensor(v), args.steps, args.dt, args.drag)]))
    return dict(target=target, before=before, after=after, mids=mids, losses=losses, miss=(miss_before, miss_after))


# ----------------------------------------------------------------------------- 2. controller
def episode(gains: mg.Tensor, steps: int, dt: float, goal: float, k: float = 4.0, b: float = 0.3):
    """Positions x_0..x_T and forces u_t of the spring-mass under u_t = u_0 − k_p (x_t − x*) − k_d v_t."""
    u0, kp, kd = mg.unbind(gains)
    x, v = mg.tensor(0.0), mg.tensor(0.0)
    xs, us = [x], []
    for _ in range(steps):
        u = u0 - kp * (x - goal) - kd * v  # the controller
        v = v + dt * (-k * x - b * v + u)  # v_{t+1} = v_t + dt (−k x_t − b v_t + u_t)
        x = x + dt * v  # x_{t+1} = x_t + dt v_{t+1}
        xs.append(x)
        us.append(u)
    return xs, us


def control(args) -> dict:
    goal, lam = 1.0, args.effort
    gains = mg.nn.Parameter(np.array([0.0, 1.0, 0.0]), name="u0_kp_kd")

    def cost(g, steps=args.steps_spring):  # L = mean_t (x_t − x*)² + λ mean_t u_t²
        xs, us = episode(g, steps, args.dt_spring, goal)
        err = mg.stack(xs[1:]) - goal
        return (err * err).mean() + lam * (mg.stack(us) ** 2).mean()

    mg.gradcheck(
        lambda g: cost(g, steps=min(args.steps_spring, 30)), [mg.tensor(gains.data.copy(), requires_grad=True)]
    )
    print("gradcheck: ∂L/∂(u0, kp, kd) by BPTT through 30 steps matches finite differences")
    with mg.no_grad():
        before = np.array([x.item() for x in episode(gains, args.steps_spring, args.dt_spring, goal)[0]])
        cost_before = cost(gains).item()
    g_before = gains.data.copy()
    opt = mg.optim.Adam([gains], lr=args.lr_spring)
    for _ in _common.progress(range(args.iters), desc="controller", unit="step"):
        opt.zero_grad()
        loss = cost(gains)
        loss.backward()
        opt.step()
    with mg.no_grad():
        after = np.array([x.item() for x in episode(gains, args.steps_spring, args.dt_spring, goal)[0]])
        cost_after = cost(gains).item()
    print(
        f"controller: (u0, kp, kd) {g_before} → {np.round(gains.data, 3)}; "
        f"cost {cost_before:.4f} → {cost_after:.4f}; final position {before[-1]:.3f} → {after[-1]:.3f} (goal {goal})"
    )
    t = np.arange(len(before)) * args.dt_spring
    return dict(t=t, before=before, after=after, goal=goal, cost=(cost_before, cost_after))


def plot(a: dict, c: dict, out) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(*a["before"].T, "--", color="grey", label=f"first guess (miss {a['miss'][0]:.2f} m)")
    for i, m in enumerate(a["mids"]):
        ax1.plot(
            *m.T, color="tab:blue", alpha=0.15 + 0.15 * i, lw=1, label="after 3, 10, 30, 100 steps" if i == 0 else None
        )
    ax1.plot(*a["after"].T, color="tab:blue", lw=2, label=f"after BPTT (miss {a['miss'][1]:.1e} m)")
    ax1.plot(*a["target"], "r*", ms=14, label="target")
    ax1.set(xlabel="x (m)", ylabel="y (m)", title="aiming a ball with drag: optimise v₀")
    ax1.legend(fontsize=8)
    ax2.plot(c["t"], c["before"], "--", color="grey", label=f"initial controller (cost {c['cost'][0]:.3f})")
    ax2.plot(c["t"], c["after"], color="tab:green", lw=2, label=f"learned by BPTT (cost {c['cost'][1]:.3f})")
    ax2.axhline(c["goal"], color="r", lw=0.8)
    ax2.set(xlabel="time (s)", ylabel="position x", title="spring-mass: learn u = u₀ − k_p(x−x*) − k_d v")
    ax2.legend(fontsize=8)
    _common.save_figure(fig, out / "differentiable_physics.png")


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--steps", type=int, default=100, help="projectile: integration steps T")
    p.add_argument("--dt", type=float, default=0.02, help="projectile: time step (s)")
    p.add_argument("--drag", type=float, default=0.05, help="projectile: drag coefficient c")
    p.add_argument("--target-x", type=float, default=20.0)
    p.add_argument("--target-y", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=0.3, help="Adam learning rate for v0")
    p.add_argument("--iters", type=int, default=300, help="optimisation steps (both parts)")
    p.add_argument("--steps-spring", type=int, default=200, help="controller: episode length T")
    p.add_argument("--dt-spring", type=float, default=0.05)
    p.add_argument("--lr-spring", type=float, default=0.2, help="Adam learning rate for the gains")
    p.add_argument("--effort", type=float, default=0.001, help="controller: force penalty λ")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.dt, args.iters, args.steps_spring, args.dt_spring = 20, 0.1, 15, 30, 0.2
    a = aim(args)
    c = control(args)
    plot(a, c, args.out)


if __name__ == "__main__":
    main()
