"""Property tests (hypothesis): random shapes per op family, checked against numpy and finite differences.

Kept apart from test_op_sweep.py so that a missing hypothesis skips only these tests, not the
table sweep (in CI a missing hypothesis fails instead: see conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402
from test_op_sweep import np_cross_entropy  # noqa: E402


# ---------------------------------------------------------------------------
# Property tests (hypothesis): random shapes per op family
# ---------------------------------------------------------------------------
def float_arrays(shape, lo=-3.0, hi=3.0, avoid_zero=False, unique=False):
    elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    if avoid_zero:
        elements = elements.filter(lambda v: abs(v) > 0.05)
    return hnp.arrays(np.float64, shape, elements=elements, unique=unique)


def t(a):
    return mg.Tensor(a, requires_grad=True)


BROADCAST_PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


@given(data=st.data(), shapes=BROADCAST_PAIRS, op=st.sampled_from(["add", "sub", "mul", "div", "pow", "where"]))
def test_broadcasting_binary_ops_match_numpy_and_finite_differences(data, shapes, op):
    sa, sb = shapes.input_shapes
    a = data.draw(float_arrays(sa, 0.3, 2.0) if op == "pow" else float_arrays(sa), label="a")
    b = data.draw(float_arrays(sb, avoid_zero=True), label="b")
    if op == "where":
        cond = data.draw(hnp.arrays(bool, shapes.result_shape), label="cond")
        fn, ref = (lambda a, b: mg.where(cond, a, b)), (lambda a, b: np.where(cond, a, b))
    else:
        fn, ref = (
            getattr(mg, op),
            {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power}[op],
        )
    x, y = t(a), t(b)
    out = fn(x, y)
    assert out.shape == shapes.result_shape
    np.testing.assert_allclose(out.data, ref(a, b), rtol=1e-12)
    assert mg.gradcheck(fn, [x, y])


@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=3))
def test_matmul_of_any_numpy_compatible_shapes_matches_finite_differences(data, shapes):
    sa, sb = shapes.input_shapes
    x, y = t(data.draw(float_arrays(sa))), t(data.draw(float_arrays(sb)))
    out = x @ y
    np.testing.assert_allclose(out.data, x.data @ y.data, rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(mg.matmul, [x, y])


UNARY = {
    "exp": (mg.exp, np.exp, {}),
    "log": (mg.log, np.log, {"lo": 0.05}),
    "sqrt": (mg.sqrt, np.sqrt, {"lo": 0.05}),
    "tanh": (mg.tanh, np.tanh, {}),
    "sigmoid": (mg.sigmoid, lambda v: 1 / (1 + np.exp(-v)), {}),
    "relu": (mg.relu, lambda v: np.maximum(v, 0), {"avoid_zero": True}),
    "abs": (mg.abs, np.abs, {"avoid_zero": True}),
    "neg": (mg.neg, np.negative, {}),
    "clip": (lambda v: mg.clip(v, -1.0, 1.0), lambda v: np.clip(v, -1, 1), {"avoid_zero": True}),
}


@given(data=st.data(), shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), name=st.sampled_from(sorted(UNARY)))
def test_elementwise_ops_match_numpy_and_finite_differences_on_any_shape(data, shape, name):
    fn, ref, opts = UNARY[name]
    a = data.draw(float_arrays(shape, lo=opts.get("lo", -3.0), avoid_zero=opts.get("avoid_zero", False)))
    if name == "clip":
        a = np.where(np.abs(np.abs(a) - 1) < 0.05, a * 0.9, a)  # stay off the clip bounds
    x = t(a)
    out = fn(x)
    assert out.shape == a.shape
    np.testing.assert_allclose(out.data, ref(a), rtol=1e-12)
    assert mg.gradcheck(fn, [x])


@st.composite
def shape_and_axis(draw, min_dims=0):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, max_side=3))
    nd = len(shape)
    axis = draw(st.one_of(st.none(), st.integers(-nd, nd - 1) if nd else st.none(), st.just(tuple(range(nd)))))
    return shape, axis


@given(data=st.data(), sa=shape_and_axis(), keepdims=st.booleans(), name=st.sampled_from(["sum", "mean", "max"]))
def test_reductions_over_any_axes_match_numpy_and_finite_differences(data, sa, keepdims, name):
    shape, axis = sa
    a = data.draw(float_arrays(shape, unique=name == "max"))  # max: distinct values, no ties
    if name == "max":  # and well apart: a gap below gradcheck's eps looks like a tie to finite differences
        a = np.argsort(np.argsort(a, axis=None)).reshape(a.shape) * 0.5 + 0.1 * (
            a - a.round()
        )  # ranks 0.5 apart, jittered by < 0.05
    fn = lambda x: getattr(mg, name)(x, axis=axis, keepdims=keepdims)  # noqa: E731
    out = fn(t(a))
    np.testing.assert_allclose(out.data, getattr(np, name)(a, axis=axis, keepdims=keepdims), rtol=1e-12)
    assert mg.gradcheck(fn, [t(a)])


@given(data=st.data(), sa=shape_and_axis(min_dims=1), name=st.sampled_from(["softmax", "log_softmax"]))
def test_softmax_family_is_shift_invariant_normalised_and_matches_finite_differences(data, sa, name):
    shape, axis = sa
    axis = -1 if axis is None or isinstance(axis, tuple) else axis
    a = data.draw(float_arrays(shape, -5, 5))
    shift = data.draw(st.sampled_from([0.0, 100.0, -700.0, 1000.0]))
    op = getattr(mg, name)
    y, y_shifted = op(t(a), axis=axis).data, op(t(a + shift), axis=axis).data
    np.testing.assert_allclose(y_shifted, y, atol=1e-9)
    p = y if name == "softmax" else np.exp(y)
    np.testing.assert_allclose(p.sum(axis=axis), 1.0)
    if name == "log_softmax":
        np.testing.assert_allclose(y, np.log(mg.softmax(t(a), axis=axis).data), atol=1e-12)
    assert mg.gradcheck(lambda x: op(x, axis=axis), [t(a + shift)])


@given(
    n=st.integers(1, 4),
    c=st.integers(1, 4),
    data=st.data(),
    scale=st.sampled_from([1.0, 30.0, 1000.0]),
)
def test_cross_entropy_is_the_mean_negative_log_softmax_at_the_targets(n, c, data, scale):
    z = data.draw(float_arrays((n, c))) * scale
    y = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    loss = mg.cross_entropy(t(z), y)
    np.testing.assert_allclose(loss.data, np_cross_entropy(z, y), rtol=1e-12)
    assert loss.item() >= 0 and np.isfinite(loss.item())
    if scale == 1.0:
        assert mg.gradcheck(lambda z: mg.cross_entropy(z, y), [t(z)])


@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_getitem_with_random_integer_indices_accumulates_like_bincount(data, shape):
    a = data.draw(float_arrays(shape))
    idx = data.draw(hnp.arrays(np.int64, st.integers(0, 6), elements=st.integers(-shape[0], shape[0] - 1)))
    x = t(a)
    x[idx].sum().backward()
    counts = np.bincount(idx % shape[0], minlength=shape[0]).astype(float)
    np.testing.assert_array_equal(x.grad, np.broadcast_to(counts.reshape((-1,) + (1,) * (len(shape) - 1)), shape))
    assert mg.gradcheck(lambda x: x[idx], [t(a)])


@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), pieces=st.integers(1, 3))
def test_shape_ops_round_trip_and_pass_gradients_straight_through(data, shape, pieces):
    a = data.draw(float_arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    perm = data.draw(st.permutations(range(len(shape))))
    x = t(a)
    parts = [x * (k + 1) for k in range(pieces)]
    joined = mg.concat(parts, axis=axis)
    back = mg.split(joined, pieces, axis=axis)
    restacked = mg.stack(mg.unbind(x, axis=axis), axis=axis)
    turned = x.transpose(perm).reshape(-1).reshape(np.array(shape)[perm].tolist()).transpose(np.argsort(perm).tolist())
    for k, p in enumerate(back):
        np.testing.assert_array_equal(p.data, a * (k + 1))
    np.testing.assert_array_equal(restacked.data, a)
    np.testing.assert_array_equal(turned.data, a)
    (sum(p.sum() for p in back) + restacked.sum() + turned.sum()).backward()
    np.testing.assert_allclose(x.grad, np.full(shape, pieces * (pieces + 1) / 2 + 2))


@given(x=st.floats(-1e4, 1e4, allow_nan=False))
def test_sigmoid_is_symmetric_and_never_overflows(x):
    s = mg.sigmoid(mg.Tensor(np.array([x, -x]))).data
    assert np.isfinite(s).all() and 0 <= s.min() and s.max() <= 1
    assert s.sum() == pytest.approx(1.0, abs=1e-15)
