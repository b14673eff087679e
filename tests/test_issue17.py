"""Issue 17 (reliability, round two): each case is a test of the right answer or one clear error.

Grad mode and scope per thread, pow at 0, axis and argument checks, stale-input checks that
fire only where a saved value was really read, anomaly mode naming the time step, aliasing of
a layer's output at every size.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import minigrad as mg


def leaf(*shape, seed=0, name=None):
    return mg.Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True, name=name)


# ---------------------------------------------------------------------------
# Grad mode and scope are per thread
# ---------------------------------------------------------------------------
def test_no_grad_in_one_thread_leaves_another_thread_recording():
    inside, recorded = threading.Event(), threading.Event()
    seen = {}

    def quiet():  # enters no_grad, then holds it until the other thread has recorded
        with mg.no_grad():
            inside.set()
            assert recorded.wait(10)
            seen["quiet"] = mg.is_grad_enabled(), (leaf(2) * 2).requires_grad

    def busy():  # runs entirely while the other thread is inside no_grad
        assert inside.wait(10)
        x = leaf(2)
        y = (x * 3).sum()
        seen["busy"] = mg.is_grad_enabled(), y.requires_grad
        y.backward()
        seen["grad"] = x.grad
        recorded.set()

    threads = [threading.Thread(target=quiet), threading.Thread(target=busy)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen["busy"] == (True, True)  # recorded although the other thread was in no_grad
    assert seen["quiet"] == (False, False)
    np.testing.assert_array_equal(seen["grad"], [3.0, 3.0])
    assert mg.is_grad_enabled()


def test_a_scope_entered_in_one_thread_does_not_name_another_threads_nodes():
    barrier = threading.Barrier(2, timeout=10)
    scopes = {}

    def work(name):
        with mg.scope(name):
            barrier.wait()  # both threads are inside their own scope now
            y = leaf(2) * 2
            barrier.wait()  # both have recorded their node before either leaves its scope
            scopes[name] = (mg.current_scope(), y._node.scope)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert scopes == {"a": ("a", "a"), "b": ("b", "b")}
    assert mg.current_scope() == ""


# ---------------------------------------------------------------------------
# Arguments numpy would have misread or failed on deep inside
# ---------------------------------------------------------------------------
X = np.ones((2, 4))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda x: mg.transpose(x, 2, 1),
            ValueError,
            "transpose: axis 2 is out of range for a tensor with 2 dimensions",
        ),
        (lambda x: mg.transpose(x, "a"), TypeError, "transpose: an axis must be an integer, got 'a'"),
        (lambda x: mg.split(x, 2, axis=7), ValueError, "split: axis 7 is out of range for a tensor with 2 dimensions"),
        (lambda x: mg.split(x, 0), ValueError, "split: the number of sections must be at least 1, got 0"),
        (lambda x: mg.softmax(x, axis=5), ValueError, "softmax: axis 5 is out of range for a tensor with 2 dim"),
        (lambda x: mg.log_softmax(x, axis=-3), ValueError, "log_softmax: axis -3 is out of range"),
        (lambda x: x.sum(axis=1.5), TypeError, "sum: an axis must be an integer, got 1.5"),
        (lambda x: x.mean(axis=(0, "b")), TypeError, "mean: an axis must be an integer, got 'b'"),
        (lambda x: mg.unbind(x, axis=True), TypeError, "unbind: an axis must be an integer, got True"),
    ],
    ids=[
        "transpose 2-D by (2, 1)",
        "transpose 'a'",
        "split axis 7",
        "split 0",
        "softmax axis 5",
        "log_softmax axis -3",
        "sum axis 1.5",
        "mean axis 'b'",
        "unbind axis True",
    ],  # fmt: skip
)
def test_axis_arguments_are_checked_by_minigrad_naming_the_op_the_axis_and_ndim(call, error, message):
    with pytest.raises(error, match=message) as e:
        call(mg.Tensor(X, requires_grad=True))
    assert e.traceback[-1].path.name == "ops.py"


def test_one_hot_refuses_negative_and_too_large_classes_instead_of_wrapping_around():
    with pytest.raises(IndexError, match=r"one_hot: indices must lie in \[0, 3\), got range \[-1, -1\]"):
        mg.one_hot([-1], 3)
    with pytest.raises(IndexError, match=r"got range \[0, 3\]"):
        mg.one_hot([0, 3], 3)
    with pytest.raises(TypeError, match="one_hot: indices must be integers, got dtype float64"):
        mg.one_hot([1.0], 3)
    with pytest.raises(ValueError, match="one_hot: num_classes must be a positive integer, got 0"):
        mg.one_hot([0], 0)
    np.testing.assert_array_equal(mg.one_hot([2, 0], 3).data, [[0, 0, 1], [1, 0, 0]])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: mg.nn.Linear(3.5, 2), "Linear: in_features must be a positive integer, got 3.5"),
        (lambda: mg.nn.Linear(3, 0), "Linear: out_features must be a positive integer, got 0"),
        (lambda: mg.nn.Embedding(-1, 2), "Embedding: num_embeddings must be a positive integer, got -1"),
        (lambda: mg.nn.Embedding(4, 2.0), "Embedding: embedding_dim must be a positive integer, got 2.0"),
    ],
)
def test_layer_sizes_are_checked_before_numpy_sees_them(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_ragged_list_into_an_rnn_is_a_type_error_naming_the_layer():
    import models

    with pytest.raises(TypeError, match="RNN: input: cannot make a Tensor from list data.*ragged"):
        models.RNN(2, 3)([[[1.0, 2.0]], [[1.0]]])


@pytest.mark.parametrize("name", ["exp", "log", "tanh", "sigmoid", "relu", "sqrt", "abs", "neg", "sum", "softmax"])
def test_functions_accept_lists_and_numbers_as_the_operators_do(name):
    f = getattr(mg, name)
    np.testing.assert_allclose(f([0.5, 2.0]).data, f(mg.Tensor([0.5, 2.0])).data)
    assert f(1.0).shape == (() if name != "softmax" else ())


def test_tanh_with_out_accepts_a_list_too():
    out = np.empty(2)
    assert mg.tanh([0.5, 1.0], out=out).data is out
    np.testing.assert_allclose(out, np.tanh([0.5, 1.0]))


# ---------------------------------------------------------------------------
# The models' argument checks
# ---------------------------------------------------------------------------
def test_random_truncation_takes_numpy_scalars_and_refuses_bools_and_out_of_range_values():
    import models

    assert models.RandomTruncation(np.float32(0.5)).p == 0.5
    assert models.RandomTruncation(np.int64(1)).p == 1.0
    for bad in (True, 0.0, 1.5, np.float32(np.nan), "0.5"):
        with pytest.raises(ValueError, match=r"RandomTruncation: keep probability p must lie in \(0, 1\]"):
            models.RandomTruncation(bad)


def test_lstm_cell_state_check_says_what_it_got_and_refuses_a_missing_half_as_the_layer_does():
    import models

    cell, x, h = models.LSTMCell(2, 3, rng=0), np.ones((1, 2)), np.zeros((1, 3))
    with pytest.raises(TypeError, match=r"LSTMCell: hx must be a tuple \(h, c\) of 2 tensors, got a tuple of 1"):
        cell(x, (h,))
    with pytest.raises(TypeError, match="got ndarray"):
        cell(x, h)
    for hx in ((h, None), (None, h)):
        with pytest.raises(ValueError, match="LSTMCell: give both h and c"):
            cell(x, hx)
    with pytest.raises(ValueError, match="LSTM: give both h_0 and c_0"):
        models.LSTM(2, 3)(np.ones((2, 1, 2)), (np.zeros((1, 1, 3)), None))
    with pytest.raises(
        TypeError, match=r"LSTM: h0 must be a tuple \(h_0, c_0\) of 2 tensors or None, got a tuple of 1"
    ):
        models.LSTM(2, 3)(np.ones((2, 1, 2)), (np.zeros((1, 1, 3)),))


def test_checkpointed_on_a_zero_length_sequence_says_so():
    import models

    with pytest.raises(
        ValueError, match=r"checkpointed: needs a time-major sequence with at least one step, got shape \(0, 1, 2\)"
    ):
        models.checkpointed(models.RNN(2, 3), np.zeros((0, 1, 2)))


@pytest.mark.parametrize("value", [mg.Tensor([1.0]), np.ones(2), [1.0]], ids=["tensor", "array", "list"])
def test_save_of_something_without_names_is_a_type_error_saying_how_to_name_it(value, tmp_path):
    with pytest.raises(TypeError, match=r"save: takes a Module or optimizer .*name it: mg.save\(\{'x': x\}, path\)"):
        mg.save(value, tmp_path / "a.npz")


# ---------------------------------------------------------------------------
# The stale-input check fires only where a VJP saved the written value
# ---------------------------------------------------------------------------
def test_a_write_into_an_input_that_no_vjp_saved_is_not_stale():
    w = mg.nn.Parameter(np.ones(3), name="w")
    opt = mg.optim.SGD([w], lr=0.1)
    y = (w + 1).sum()  # add and sum save shapes only
    w.grad = np.ones(3)
    opt.step()
    w.grad = None
    y.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 1.0, 1.0])


def test_a_write_into_a_saved_value_is_stale_even_through_a_view_such_as_a_transpose():
    W = mg.nn.Parameter(np.eye(2), name="W")
    x = mg.Tensor(np.ones((1, 2)), requires_grad=True)
    y = (x @ W.T).sum()  # matmul saved Wᵀ, a view of W's array, for δx = δy W
    W.grad = np.ones((2, 2))
    mg.optim.SGD([W], lr=0.1).step()
    with pytest.raises(RuntimeError, match=r"'W', saved by node %\d+ \(matmul, shape \(1, 2\)\) for its backward"):
        y.backward()


def test_replacing_a_leafs_data_by_another_shape_after_the_forward_names_the_leaf_and_both_shapes():
    x = mg.Tensor(np.ones(2), requires_grad=True, name="x")
    y = (x * 2).sum()
    x.data = np.ones(3)
    with pytest.raises(
        mg.checks.LeafShapeError, match=r"leaf 'x' has shape \(3,\) now, but the forward pass used it with shape \(2,\)"
    ):
        y.backward()


# ---------------------------------------------------------------------------
# A layer's output behaves the same at every size
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("T", [2, 1200], ids=["small (copied)", "large (rows written in place)"])
def test_writing_a_layers_output_is_refused_at_every_size_so_gradients_never_depend_on_size(T):
    import models

    layer = models.RNN(4, 8, rng=0)
    assert (T * 8 * 8 >= layer.output_rows_min_bytes) == (T == 1200)  # the two sizes take the two paths
    x = mg.Tensor(np.random.default_rng(1).standard_normal((T, 1, 4)), requires_grad=True)
    out, _ = layer(x)
    with pytest.raises(ValueError, match="read-only"):
        out.data[...] = 0.0
    (out * out).sum().backward()
    clean = models.RNN(4, 8, rng=0)
    ref, _ = clean(x.data)
    (ref * ref).sum().backward()
    np.testing.assert_array_equal(layer.weight_hh_l0.grad, clean.weight_hh_l0.grad)


# ---------------------------------------------------------------------------
# Anomaly mode names the time step even when the op ran before the loop over time
# ---------------------------------------------------------------------------
def test_anomaly_mode_names_the_time_step_of_a_nan_the_input_projection_met_before_the_loop():
    import models

    x = np.random.default_rng(0).standard_normal((50, 2, 3))
    x[36, 1, 2] = np.nan  # step t=37 (0-based position 36 along time), batch row 1
    with mg.detect_anomaly(), pytest.raises(mg.AnomalyError) as e:
        models.RNN(3, 4, rng=0)(x)
    msg = str(e.value)
    assert "op 'reshape' in scope 'l0'" in msg  # the projection runs over all steps at once, before t=1
    assert "input 0 (shape (50, 2, 3)) already holds it at index (36, 1, 2)" in msg
    assert "the bad values are at step(s) t=37" in msg


def test_anomaly_mode_lists_every_time_step_holding_bad_values():
    import models

    x = np.random.default_rng(0).standard_normal((20, 1, 3))
    x[[4, 11], 0, 0] = np.inf
    with mg.detect_anomaly(), pytest.raises(mg.AnomalyError, match=r"Inf .*step\(s\) t=5, t=12$"):
        models.GRU(3, 4, rng=0)(x)
