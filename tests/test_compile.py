"""The compiled training step (minigrad/compile.py) and the eager fold it builds on.

Gradients are compared with eager minigrad (and the hand-written references) to 1e-12 in float64.
No timing is asserted: speed is measured by benchmarks/bench_rnn.py.
"""

import numpy as np
import pytest

import minigrad as mg


# ---------------------------------------------------------------------------
# Eager: x @ W with an N-d x and a 2-D W folds its leading axes into one GEMM
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 2, 3), (4, 5, 2, 3), (1, 1, 3), (2, 3, 1, 3)])
def test_nd_at_2d_matmul_matches_finite_differences(shape):
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal(shape), requires_grad=True)
    W = mg.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert mg.gradcheck(mg.matmul, [x, W])


@pytest.mark.parametrize("shape", [(5, 2, 3), (4, 5, 2, 3)])
def test_nd_at_2d_matmul_matches_torch(shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    xa, Wa, ga = rng.standard_normal(shape), rng.standard_normal((3, 4)), rng.standard_normal((*shape[:-1], 4))
    x, W = mg.Tensor(xa, requires_grad=True), mg.Tensor(Wa, requires_grad=True)
    y = x @ W
    y.backward(ga)
    tx, tW = torch.tensor(xa, requires_grad=True), torch.tensor(Wa, requires_grad=True)
    ty = tx @ tW
    ty.backward(torch.tensor(ga))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(W.grad, tW.grad.numpy(), rtol=0, atol=1e-10)


def test_nd_at_2d_matmul_keeps_only_what_the_flowing_gradient_needs():
    rng = np.random.default_rng(2)
    x = mg.Tensor(rng.standard_normal((3, 2, 4)))  # a constant: δW needs it, δx is not wanted
    W = mg.Tensor(rng.standard_normal((4, 5)), requires_grad=True)
    (x @ W).sum().backward()
    np.testing.assert_allclose(W.grad, x.data.reshape(-1, 4).T @ np.ones((6, 5)), atol=1e-12)
    assert x.grad is None
