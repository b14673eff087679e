"""The oracle is tested too: gradcheck must fail on a backward that is slightly wrong.

Every gradient test in the suite leans on ``mg.gradcheck``; if it compared backward against
itself, or were too loose, all of them would pass on wrong gradients. These tests plant wrong
VJPs (off by 1e-5 relative, wrong sign, a missing broadcast reduction) and require a
GradcheckError, and check the finite differences against derivatives known in closed form.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad.gradcheck import GradcheckError, numerical_grad
from minigrad.ops import unbroadcast


def leaf(*shape, seed=0):
    return mg.Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def exp_with_backward_off_by(rel):
    """eˣ whose VJP is wrong by a factor (1 + rel)."""

    def f(x):
        y = np.exp(x.data)
        return mg.Tensor._make(y, "exp", (x,), lambda g: (g * y * (1 + rel),))

    return f


@pytest.mark.parametrize("rel", [1e-5, 5e-5, -1e-5])
def test_gradcheck_fails_on_a_backward_wrong_by_1e_5_relative(rel):
    for shape in [(), (4,), (2, 3)]:
        with pytest.raises(GradcheckError, match="gradcheck failed for input 0"):
            mg.gradcheck(exp_with_backward_off_by(rel), [leaf(*shape)])


def test_gradcheck_passes_the_same_op_with_the_right_backward():
    for shape in [(), (4,), (2, 3)]:
        assert mg.gradcheck(exp_with_backward_off_by(0.0), [leaf(*shape)])


def test_gradcheck_fails_on_a_backward_with_the_wrong_sign():
    def tanh_wrong_sign(x):
        y = np.tanh(x.data)
        return mg.Tensor._make(y, "tanh", (x,), lambda g: (-g * (1 - y * y),))

    with pytest.raises(GradcheckError, match=r"backward -?[\d.]+, finite differences"):
        mg.gradcheck(tanh_wrong_sign, [leaf(3)])


def test_gradcheck_fails_on_a_missing_broadcast_reduction():
    def add_without_unbroadcast(a, b):
        return mg.Tensor._make(a.data + b.data, "add", (a, b), lambda g: (unbroadcast(g, a.shape), g))

    with pytest.raises(GradcheckError, match="wrong shape"):
        mg.gradcheck(add_without_unbroadcast, [leaf(2, 3), leaf(3, seed=1)])


def test_gradcheck_fails_on_a_reduction_that_sums_the_wrong_axis_into_the_right_shape():
    def add_reducing_by_mean(a, b):  # the right shape, the wrong values: δb = mean instead of sum
        return mg.Tensor._make(a.data + b.data, "add", (a, b), lambda g: (g, g.mean(axis=0)))

    with pytest.raises(GradcheckError, match="input 1"):
        mg.gradcheck(add_reducing_by_mean, [leaf(2, 3), leaf(3, seed=1)])


def test_finite_differences_match_derivatives_known_in_closed_form():
    # the numeric side must not come from backward: check it against d/dx x³ = 3x², d/dx sin = cos
    x = leaf(5)
    np.testing.assert_allclose(numerical_grad(lambda x: x * x * x, [x], 0, 1e-6, None), 3 * x.data**2, rtol=1e-8)
    assert x.grad is None  # numerical_grad never ran backward
    w = np.random.default_rng(2).standard_normal(5)
    np.testing.assert_allclose(numerical_grad(lambda x: mg.exp(x), [x], 0, 1e-6, w), w * np.exp(x.data), rtol=1e-7)


def test_gradcheck_compares_against_finite_differences_not_against_backward_itself():
    # an op whose backward returns zeros: a gradcheck that compared backward with backward
    # (or with .grad of the same tensor) would pass it
    def exp_with_zero_backward(x):
        return mg.Tensor._make(np.exp(x.data), "exp", (x,), lambda g: (np.zeros_like(g),))

    with pytest.raises(GradcheckError, match=r"backward 0, finite differences"):
        mg.gradcheck(exp_with_zero_backward, [leaf(3)])
