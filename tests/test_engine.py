"""The engine's core behaviours, each test a small example of one of them."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import Linear, Module, Parameter, init


def leaf(*shape, seed=0, dtype=np.float64, name=None):
    return mg.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=True, name=name)


# -- the tape ----------------------------------------------------------------
def test_tape_lists_nodes_in_creation_order_and_prints_a_wengert_list():
    x = leaf(4, 3, name="x")
    W = leaf(3, 8, name="W")
    with mg.scope("t=2"):
        y = (x @ W).tanh()
    loss = y.sum()
    nodes = mg.tape(loss)
    assert [n.op for n in nodes] == ["matmul", "tanh", "sum"]
    assert [n.seq for n in nodes] == sorted(n.seq for n in nodes)
    lines = mg.format_tape(loss).splitlines()
    m, t, s = (n.seq for n in nodes)
    assert lines[0] == f"%{m} = matmul(x, W)  shape (4, 8)  scope t=2"
    assert lines[1] == f"%{t} = tanh(%{m})  shape (4, 8)  scope t=2"
    assert lines[2] == f"%{s} = sum(%{t})  shape ()"


def test_scopes_nest_with_slashes_and_are_recorded_on_every_node():
    x = leaf(2)
    with mg.scope("layer0"):
        with mg.scope("t=3"):
            y = x * 2
            assert mg.current_scope() == "layer0/t=3"
        z = y + 1
    assert y._node.scope == "layer0/t=3"
    assert z._node.scope == "layer0"
    assert mg.current_scope() == ""


def test_scope_name_with_a_slash_is_rejected():
    with pytest.raises(ValueError, match="scope name"):
        with mg.scope("a/b"):
            pass


def test_only_ops_on_tensors_that_need_grad_record_nodes():
    c = mg.Tensor(np.ones(3))
    assert (c * 2)._node is None
    x = leaf(3)
    with mg.no_grad():
        y = x * 2
    assert y._node is None and not y.requires_grad
    assert (x * 2)._node is not None


# -- backward ----------------------------------------------------------------
def test_a_value_used_twice_gets_both_gradients():
    x = leaf(3)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_broadcasting_ops_reduce_gradients_back_to_each_input_shape():
    a, b = leaf(4, 1, 3), leaf(5, 1, seed=1)
    (a * b).sum().backward()
    assert a.grad.shape == (4, 1, 3) and b.grad.shape == (5, 1)
    np.testing.assert_allclose(a.grad, np.broadcast_to(b.data.sum(), (4, 1, 3)))
    np.testing.assert_allclose(b.grad, np.full((5, 1), a.data.sum()))


def test_python_scalars_and_arrays_mix_on_either_side():
    x = leaf(3)
    arr = np.arange(3.0)
    y = (2 - x) * arr + 1 / (x * x + 1) + arr @ x
    assert isinstance(y, mg.Tensor) and y.shape == (3,)
    assert mg.gradcheck(lambda x: (2 - x) * arr + 1 / (x * x + 1) + arr @ x, [x])


@pytest.mark.parametrize(
    "sa, sb",
    [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)), ((1, 2, 3), (4, 3, 2))],
)
def test_matmul_follows_numpy_for_1d_and_batched_operands(sa, sb):
    a, b = leaf(*sa), leaf(*sb, seed=1)
    np.testing.assert_allclose((a @ b).data, a.data @ b.data)
    assert mg.gradcheck(lambda a, b: a @ b, [a, b])


def test_split_and_unbind_are_one_node_and_pass_zero_gradient_to_unused_pieces():
    x = leaf(4, 6)
    pieces = mg.split(x, 3, axis=1)
    assert len({id(p._node) for p in pieces}) == 1 and pieces[0]._node.n_out == 3
    (pieces[0] * 2 + pieces[2]).sum().backward()
    np.testing.assert_array_equal(x.grad, np.concatenate([np.full((4, 2), 2.0), np.zeros((4, 2)), np.ones((4, 2))], 1))
    rows = mg.unbind(x)
    assert mg.gradcheck(lambda x: mg.unbind(x)[1] * mg.unbind(x)[3], [x])
    assert len(rows) == 4 and rows[2].shape == (6,)


def test_getitem_with_repeated_integer_indices_accumulates():
    x = leaf(5)
    x[np.array([0, 0, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad, [2, 0, 0, 1, 0])


def test_float32_stays_float32_through_forward_and_backward():
    x, W = leaf(2, 3, dtype=np.float32), leaf(3, 4, dtype=np.float32, seed=1)
    y = ((x @ W).sigmoid() * 2.5 + 1).log_softmax().sum()
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32 and W.grad.dtype == np.float32


def test_backward_on_a_leaf_sets_its_own_grad():
    x = mg.Tensor(np.array(3.0), requires_grad=True)
    x.backward()
    assert x.grad == 1.0


def test_record_grad_norms_stores_the_output_gradient_norm_on_each_node():
    x = leaf(3)
    y = x * 3
    with mg.record_grad_norms():
        (y * 2).sum().backward()
    assert y._node.grad_norm == pytest.approx(2 * np.sqrt(3))


def test_in_place_write_between_forward_and_backward_is_caught():
    W = Parameter(np.eye(2), name="W_hh")
    loss = (mg.Tensor(np.ones((1, 2)), requires_grad=True) @ W).sum()  # δx = δy Wᵀ reads the saved W
    W.grad = np.ones((2, 2))
    mg.optim.SGD([W], lr=0.1).step()
    with pytest.raises(RuntimeError, match="'W_hh'.*modified in place"):
        loss.backward()


# -- nn ----------------------------------------------------------------------
class TwoLayer(Module):
    def __init__(self):
        super().__init__()
        self.hidden = Linear(3, 4, rng=0)
        self.out = Linear(4, 2, rng=1)
        self.scale = Parameter(np.ones(2))

    def forward(self, x):
        return self.out(self.hidden(x).tanh()) * self.scale


def test_module_finds_parameters_by_attribute_with_dotted_names():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert m.num_parameters() == 2 + 12 + 4 + 8 + 2


def test_state_dict_round_trips_through_an_npz_file_bit_exactly(tmp_path):
    m, other = TwoLayer(), TwoLayer()
    init.normal_(other.scale, rng=5)
    mg.save(m, tmp_path / "m.npz")
    other.load_state_dict(mg.load(tmp_path / "m.npz"))
    for (n, a), (_, b) in zip(m.named_parameters(), other.named_parameters(), strict=True):
        assert a.data.tobytes() == b.data.tobytes(), n


def test_load_state_dict_names_missing_unexpected_and_misshapen_keys_and_changes_nothing():
    m = TwoLayer()
    before = m.state_dict()
    bad = dict(before)
    del bad["scale"]
    bad["extra"] = np.zeros(1)
    bad["out.weight"] = np.zeros((3, 3))
    with pytest.raises(KeyError) as e:
        m.load_state_dict(bad)
    msg = str(e.value)
    assert "missing keys: scale" in msg and "unexpected keys: extra" in msg
    assert "out.weight: expected shape (2, 4), got (3, 3)" in msg
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_orthogonal_init_gives_orthonormal_columns_scaled_by_gain():
    W = Parameter(np.zeros((6, 6)))
    init.orthogonal_(W, gain=1.5, rng=0)
    np.testing.assert_allclose(W.data.T @ W.data, 2.25 * np.eye(6), atol=1e-12)


def test_linear_names_the_expected_input_size():
    with pytest.raises(ValueError, match="last dimension 3, got shape \\(2, 5\\)"):
        Linear(3, 4)(mg.Tensor(np.ones((2, 5))))


# -- optim -------------------------------------------------------------------
def test_sgd_with_momentum_and_weight_decay_matches_the_written_out_update():
    p = Parameter(np.array([1.0, -2.0]))
    opt = mg.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    v, theta = np.zeros(2), p.data.copy()
    for g in (np.array([0.5, 1.0]), np.array([-1.0, 2.0])):
        p.grad = g
        opt.step()
        v = 0.9 * v + (g + 0.01 * theta)
        theta = theta - 0.1 * v
        np.testing.assert_allclose(p.data, theta)


def test_adam_first_step_moves_each_weight_by_lr_against_the_gradient_sign():
    p = Parameter(np.array([1.0, -2.0, 3.0]))
    p.grad = np.array([0.3, -5.0, 1e-3])
    mg.optim.Adam([p], lr=0.01).step()
    np.testing.assert_allclose(p.data, [0.99, -1.99, 2.99], atol=1e-6)


def test_adam_minimises_a_quadratic():
    p = Parameter(np.array([3.0, -4.0]))
    opt = mg.optim.Adam([p], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
    assert np.abs(p.data).max() < 1e-2


def test_clip_grad_norm_returns_the_norm_before_clipping_and_scales_all_gradients_together():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(1))
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    assert mg.optim.clip_grad_norm_([a, b], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [0.6, 0.0, 0.8], rtol=1e-5)


def test_a_0d_value_used_three_times_gets_all_three_gradients():
    # regression: 0-d + 0-d is a numpy scalar, so in-place accumulation must not be assumed
    x = mg.Tensor(np.array(2.0), requires_grad=True)
    y = x * 1.0
    (y * 3 + y * 5 + y * 7).backward()
    assert x.grad == 15.0


# -- out=: writing a result into a given array (numpy's convention) ----------------
OUT_OPS = {
    "tanh": lambda x, w, out=None: mg.tanh(x * w, out=out),
    "sigmoid": lambda x, w, out=None: mg.sigmoid(x * w, out=out),
    "relu": lambda x, w, out=None: mg.relu(x * w, out=out),
    "add": lambda x, w, out=None: mg.add(x, w, out=out),
    "sub": lambda x, w, out=None: mg.sub(x, w, out=out),
    "mul": lambda x, w, out=None: mg.mul(x, w, out=out),
    "lerp": lambda x, w, out=None: mg.lerp(x, x * w, w.sigmoid(), out=out),
}


@pytest.mark.parametrize("op", OUT_OPS)
def test_out_writes_the_result_into_the_given_array_with_the_same_value_and_gradients(op):
    f = OUT_OPS[op]
    x, w = leaf(3, 4), leaf(4, seed=1)
    f(x, w).sum().backward()
    want, dx, dw = f(x, w).data, x.grad.copy(), w.grad.copy()
    x.grad = w.grad = None
    buf = np.full((3, 4), np.nan)
    y = f(x, w, out=buf)
    assert y.data is buf
    np.testing.assert_array_equal(buf, want)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, dx, rtol=1e-15)
    np.testing.assert_allclose(w.grad, dw, rtol=1e-15)


def test_out_of_the_wrong_shape_or_dtype_names_the_op_and_what_it_needs():
    x = leaf(3, 4)
    with pytest.raises(ValueError, match=r"tanh: out= must be a numpy array of shape \(3, 4\) and dtype float64"):
        mg.tanh(x, out=np.empty((4, 3)))
    with pytest.raises(ValueError, match=r"mul: out= .* got shape \(3, 4\), dtype float32"):
        mg.mul(x, 2.0, out=np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="add: shapes"):
        mg.add(x, leaf(5), out=np.empty((3, 4)))


def test_out_that_overlaps_an_input_is_refused_because_the_vjp_may_have_saved_that_input():
    a, b = leaf(3, 4) * 1.0, leaf(3, 4, seed=1)
    with pytest.raises(ValueError, match="mul: out= overlaps an input"):
        mg.mul(a, b, out=a.data)  # δb = δy ⊙ a would read the product instead of a


def test_stack_into_out_leaves_tensors_already_in_their_slots_and_copies_the_rest():
    W = leaf(2, 4)
    buf = np.empty((3, 2, 4))
    hs = [mg.tanh(W * 1.0, out=buf[0]), W * 2.0, mg.tanh(W * 3.0, out=buf[2])]  # slot 1 comes from elsewhere
    y = mg.stack(hs, out=buf)
    assert y.data is buf
    np.testing.assert_array_equal(buf, np.stack([np.tanh(W.data), 2 * W.data, np.tanh(3 * W.data)]))
    y.sum().backward()
    np.testing.assert_allclose(W.grad, (1 - np.tanh(W.data) ** 2) + 2 + 3 * (1 - np.tanh(3 * W.data) ** 2))


def test_stack_refuses_a_tensor_that_lies_in_another_slot_of_out():
    W = leaf(2, 4)
    buf = np.empty((2, 2, 4))
    hs = [mg.tanh(W, out=buf[0]), mg.tanh(W * 2.0, out=buf[1])]
    with pytest.raises(ValueError, match="stack: tensor 0 lies inside out= but not in its own slot 0"):
        mg.stack(hs[::-1], out=buf)  # copying row 1 over row 0 first would lose h_0


# -- the cyclic garbage collector --------------------------------------------------
def test_gc_paused_restores_the_collector_as_it_was_even_after_an_error():
    import gc

    assert gc.isenabled()
    with pytest.raises(KeyError):
        with mg.gc_paused():
            assert not gc.isenabled()
            raise KeyError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with mg.gc_paused():
            pass
        assert not gc.isenabled()  # a user who turned it off keeps it off
    finally:
        gc.enable()


def test_backward_and_the_recurrent_layers_leave_the_collector_enabled():
    import gc

    import models

    out, _ = models.LSTM(3, 4)(np.ones((5, 2, 3)))
    assert gc.isenabled()
    out.sum().backward()
    assert gc.isenabled()


def test_stack_into_part_of_an_array_copies_a_tensor_from_another_part_of_it():
    A = np.zeros((5, 2))
    W = leaf(2)
    A[4] = [7.0, 8.0]
    elsewhere = mg.Tensor(A[4])  # same buffer as out, outside its bounds: an ordinary copy
    y = mg.stack([mg.tanh(W, out=A[0]), W * 2.0, elsewhere], out=A[:3])
    np.testing.assert_array_equal(A[:3], [np.tanh(W.data), 2 * W.data, [7.0, 8.0]])
    assert y.data.base is A


def test_stack_refuses_tensors_of_different_shapes_with_or_without_out():
    a, b = leaf(2, 3), leaf(1, 3)  # b would broadcast into a (2, 3) slot of out without the check
    for out in (None, np.empty((2, 2, 3))):
        with pytest.raises(ValueError, match=r"stack: all tensors must have the same shape, got \(2, 3\), \(1, 3\)"):
            mg.stack([a, b], out=out)


def test_summing_many_gradients_in_place_never_writes_into_one_another_node_shares():
    # s = a + c hands the SAME δ array to a and to c; a then receives two more δs (from p and q),
    # which backward sums in place: into a buffer of its own, never into the shared first δ
    x = leaf(3)
    a, c = x * 2.0, x * 3.0
    p, q = a * 5.0, a * 7.0
    s = a + c  # newest: its δ reaches a first
    (s.sum() + p.sum() + q.sum()).backward()
    np.testing.assert_array_equal(x.grad, np.full(3, 2.0 * (1 + 5 + 7) + 3.0))
