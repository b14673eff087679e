"""The lecture notes' worked example on minigrad ops: a 2-step linear RNN.

    h_t = W_xh x_t + W_hh h_{t−1}      (h_0 = 0, no nonlinearity, no biases)
    y_t = W_hy h_t
    L   = Σ_t (y_t − target_t)²        x = [1, 2], target = [2, 5], W_xh = 0.5, W_hh = 1.5, W_hy = 1

Backward gives L = 12.8125, ∂L/∂W_hy = −12.875, ∂L/∂W_hh = −3.25, ∂L/∂W_xh = −25.75,
δh_2 = −6.5, δh_1 = −12.75: the same numbers as the hand-written BPTT and the path sum of
``models.reference.worked_example()``. The demo, ``examples/worked_example.py`` and the
comparison suite all use this one function.
"""

from __future__ import annotations

import minigrad as mg

__all__ = ["worked_example", "X", "TARGET", "W_XH", "W_HH", "W_HY"]

X, TARGET = (1.0, 2.0), (2.0, 5.0)
W_XH, W_HH, W_HY = 0.5, 1.5, 1.0


def worked_example() -> tuple[dict[str, float], mg.Tensor]:
    """Build the example step by step (scopes "t=1", "t=2"), backprop, return (numbers, L).

    The graph is kept (``retain_graph``) and every node records ‖δ‖, so it can be drawn
    coloured by gradient size; δh_t comes from ``retain_grad``.
    """
    W_xh = mg.nn.Parameter(W_XH, name="W_xh")
    W_hh = mg.nn.Parameter(W_HH, name="W_hh")
    W_hy = mg.nn.Parameter(W_HY, name="W_hy")
    h = mg.tensor(0.0, name="h_0")
    hs, L = [], None
    for t, (x_t, target_t) in enumerate(zip(X, TARGET), start=1):
        with mg.scope(f"t={t}"):
            x = mg.tensor(x_t, name=f"x_{t}")
            h = W_xh * x + W_hh * h  # h_t = W_xh x_t + W_hh h_{t−1}
            h.name = f"h_{t}"
            h.retain_grad()  # keep δh_t = ∂L/∂h_t (a non-leaf)
            y = W_hy * h  # y_t = W_hy h_t
            y.name = f"y_{t}"
            d = y - mg.tensor(target_t, name=f"target_{t}")
            term = d * d  # ℓ_t = (y_t − target_t)²
            term.name = f"ℓ_{t}"
        hs.append(h)
        L = term if L is None else L + term
    L.name = "L"
    with mg.record_grad_norms():  # ‖δ‖ on every node, for the coloured picture
        L.backward(retain_graph=True)
    numbers = {
        "L": L.item(),
        "dL/dW_hy": W_hy.grad.item(),
        "dL/dW_hh": W_hh.grad.item(),
        "dL/dW_xh": W_xh.grad.item(),
        "dL/dh_1": hs[0].grad.item(),
        "dL/dh_2": hs[1].grad.item(),
    }
    return numbers, L
