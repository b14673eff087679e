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
(the Wengert list) and renders the unrolled graph with ``viz.render_graph``.

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
