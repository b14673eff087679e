"""The lecture notes' worked example: a 2-step linear RNN, by minigrad and by hand.

    h_t = W_xh x_t + W_hh h_{t−1}      (h_0 = 0, no nonlinearity, no biases)
    y_t = W_hy h_t
    L   = Σ_t (y_t − target_t)²        x = [1, 2], target = [2, 5], W_xh = 0.5, W_hh = 1.5, W_hy = 1

Forward: h = [0.5, 1.75], y = [0.5, 1.75], L = 1.5² + 3.25² = 12.8125.
Backward (BPTT), with δh_t = ∂L/∂h_t the total derivative through every later step:

    δh_2 = W_hy · 2(y_2 − target_2)                   = −6.5
    δh_1 = W_hy · 2(y_1 − target_1) + W_hh · δh_2     = −3 + 1.5 · (−6.5) = −12.75
    ∂L/∂W_hy = Σ_t 2(y_t − target_t) h_t               = −12.875
    ∂L/∂W_hh = Σ_t δh_t h_{t−1}                        = −3.25
    ∂L/∂W_xh = Σ_t δh_t x_t                            = −25.75

The script builds these equations on minigrad (each step in its own scope, so the picture
groups it), asks for δh_t with ``retain_grad``, runs ``backward``, and prints every number next
to the hand-written BPTT and the O(T²) path sum of ``models.reference.worked_example()``, and
next to ``models.RNN(nonlinearity="identity")`` given the same weights. Then it prints the tape
(the Wengert list) and renders the unrolled graph with ``viz.render_graph`` as SVG and PNG: with
Graphviz's ``dot`` when installed, else with the WebAssembly Graphviz (``minigrad[wasm]``) and,
for the PNG, cairosvg (``minigrad[png]``); with no renderer at all it says so and goes on.

Then it follows the notes line by line: ŷ_t, Loss_1 = 2.25 and Loss_2 = 10.5625, ∂Loss_1/∂h_1 = −3
(a backward of Loss_1 alone), and the per-step contributions to the shared weights,
∂L/∂W_hy = −1.5 + (−11.375) and ∂L/∂W_hh = 0 + (−3.25): each step gets its own leaf copy W^(t) of
the weight, and W^(t).grad is step t's share (∇_W L = Σ_t ∇_{W^(t)} L).

Last, the notes' T = 10 example, h_t = W_h h_{t−1} + W_x x_t with ℓ_t = ½ h_t²: the path
contributions C_k = ∂ℓ_k/∂h_1 = h_k W_h^(k−1) (one backward of ℓ_k each), their sum against δh_1 from
one backward of L, and the 55 (loss, state) paths the naive method would walk.

    python examples/worked_example.py
"""

from __future__ import annotations

import _common
import numpy as np

import minigrad as mg
import models
from models.reference import worked_example as by_hand
from models.worked_example import TARGET, W_HH, W_HY, W_XH, X, worked_example


def by_minigrad() -> tuple[dict, mg.Tensor]:
    """The notes' equations, one op at a time, on minigrad tensors (models/worked_example.py):

    each step in scope "t=…", h_t = W_xh x_t + W_hh h_{t−1}, y_t = W_hy h_t, δh_t kept by
    ``retain_grad``, then ``L.backward()``.
    """
    return worked_example()


def by_rnn_layer() -> dict:
    """The same network as models.RNN(1, 1, nonlinearity="identity", bias=False) + a readout weight."""
    rnn = models.RNN(1, 1, nonlinearity="identity", bias=False)
    rnn.load_state_dict({"weight_ih_l0": np.array([[W_XH]]), "weight_hh_l0": np.array([[W_HH]])})
    W_hy = mg.nn.Parameter(W_HY, name="W_hy")
    out, _, states = rnn(np.array(X).reshape(2, 1), return_states=True)  # unbatched (T, I)
    states.retain_grad()
    d = W_hy * out.reshape(2) - np.array(TARGET)
    L = (d * d).sum()
    L.backward()
    dh = states.grads()["l0"].ravel()
    return {
        "L": L.item(),
        "dL/dW_hy": W_hy.grad.item(),
        "dL/dW_hh": rnn.weight_hh_l0.grad.item(),
        "dL/dW_xh": rnn.weight_ih_l0.grad.item(),
        "dL/dh_1": dh[0],
        "dL/dh_2": dh[1],
    }


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    args = p.parse_args(argv)
    mine, L = by_minigrad()
    hand = by_hand()
    layer = by_rnn_layer()
    print("quantity      minigrad   models.RNN   hand-written BPTT   path sum O(T²)")
    worst = 0.0
    for key in ("L", "dL/dh_2", "dL/dh_1", "dL/dW_hy", "dL/dW_hh", "dL/dW_xh"):
        ps = hand["path_sum"].get(key)
        others = [layer[key], hand[key]] + ([ps] if ps is not None else [])
        worst = max(worst, max(abs(mine[key] - o) for o in others))
        ps_text = f"{ps:14.4f}" if ps is not None else f"{'':>14}"
        print(f"{key:10} {mine[key]:11.4f} {layer[key]:12.4f} {hand[key]:19.4f}   {ps_text}")
    print(f"largest difference between the four ways: {worst:.1e}")
    print("\nthe tape (Wengert list), in creation order:")
    print(mg.format_tape(L))
    render(L, args.out)
    if worst > 1e-12:
        raise SystemExit("the ways disagree")
    line_by_line()
    ten_steps()


def line_by_line() -> dict:
    """The notes' numbers step by step, each from a backward on the engine."""
    h = mg.tensor(0.0)
    copies = {"W_hy": [], "W_hh": []}  # one leaf per step: W^(t).grad is step t's contribution
    hs, ys, losses = [], [], []
    for x_t, target_t in zip(X, TARGET):
        W_hh_t, W_hy_t = mg.tensor(W_HH, requires_grad=True), mg.tensor(W_HY, requires_grad=True)
        copies["W_hh"].append(W_hh_t), copies["W_hy"].append(W_hy_t)
        h = W_XH * x_t + W_hh_t * h  # h_t = W_xh x_t + W_hh^(t) h_{t−1}
        h.retain_grad()
        y = W_hy_t * h  # ŷ_t = W_hy^(t) h_t
        hs.append(h), ys.append(y), losses.append((y - target_t) ** 2)
    print("\nline by line, as in the notes:")
    for t, (y, loss) in enumerate(zip(ys, losses), start=1):
        print(f"  t = {t}: h_{t} = {hs[t - 1].item():g}, ŷ_{t} = {y.item():g}, Loss_{t} = {loss.item():g}")
    L = losses[0] + losses[1]
    losses[0].backward(retain_graph=True)  # Loss_1 alone
    dloss1_dh1 = hs[0].grad.item()
    print(f"  ∂Loss_1/∂h_1 = {dloss1_dh1:g}   (backward of Loss_1 alone)")
    for group in copies.values():
        for w in group:
            w.grad = None
    L.backward()
    found = {"y": [y.item() for y in ys], "loss": [loss.item() for loss in losses], "dLoss1/dh1": dloss1_dh1}
    for name, group in copies.items():
        parts = [w.grad.item() + 0.0 for w in group]  # + 0.0: print −0 as 0
        found[name] = parts
        print(
            f"  ∂L/∂{name} = {parts[0]:g} + ({parts[1]:g}) = {sum(parts):g}   (step 1 + step 2, one leaf copy per step)"
        )
    return found


def ten_steps(T: int = 10, W_h: float = 0.8, W_x: float = 1.0) -> dict:
    """The notes' T = 10 example: ∂L/∂h_1 = C_1 + … + C_T, with C_k = ∂ℓ_k/∂h_1 = h_k W_h^(k−1)."""
    x = np.linspace(1.0, -1.0, T)  # any inputs; these are ours, the notes give none
    W = mg.tensor(W_h, requires_grad=True)  # shared by every step
    h, hs, terms = mg.tensor(0.0), [], []
    for t in range(T):
        h = W * h + W_x * x[t]  # h_t = W_h h_{t−1} + W_x x_t
        h.retain_grad()
        hs.append(h)
        terms.append(0.5 * h * h)  # ℓ_t = ½ h_t²
    C = []
    for ell in terms:
        hs[0].grad = None
        ell.backward(retain_graph=True)  # ℓ_k alone: δh_1 = C_k
        C.append(hs[0].grad.item())
    hs[0].grad = None
    L = terms[0]
    for ell in terms[1:]:
        L = L + ell
    L.backward()
    paths = sum(t for t in range(1, T + 1))  # pairs (ℓ_t, h_s) with s ≤ t: what the naive method walks
    by_formula = [hs[k - 1].item() * W_h ** (k - 1) for k in range(1, T + 1)]
    print(f"\nthe notes' T = {T} example: h_t = {W_h} h_(t−1) + {W_x} x_t, x = linspace(1, −1, {T}), ℓ_t = ½ h_t²")
    print("  C_k = ∂ℓ_k/∂h_1 (backward of ℓ_k alone) and h_k W_h^(k−1):")
    for k, (c, f) in enumerate(zip(C, by_formula), start=1):
        print(f"    C_{k:<2d} = {c:+.6f}   h_{k} W_h^{k - 1} = {f:+.6f}")
    print(f"  Σ_k C_k = {sum(C):+.6f};  δh_1 from one backward of L = {hs[0].grad.item():+.6f}")
    print(f"  the naive method walks {paths} (loss, state) paths (10 + 9 + … + 1); BPTT visits each step once")
    return {"C": C, "formula": by_formula, "dh1": hs[0].grad.item(), "paths": paths}


def render(L: mg.Tensor, out) -> None:
    import viz

    for name, kwargs in (
        ("worked_example", {"show_data": True}),
        ("worked_example_grads", {"show_data": True, "show_grads": True}),
    ):
        for suffix in (".png", ".svg"):
            try:
                path = viz.render_graph(L, out / f"{name}{suffix}", title="L = Σ_t (y_t − target_t)²", **kwargs)
                print(f"graph: {path}")
            except (viz.GraphvizNotFoundError, viz.RenderError) as e:
                print(f"(no {suffix} picture: {e})")


if __name__ == "__main__":
    main()
