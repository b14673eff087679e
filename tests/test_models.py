"""The recurrent cells and layers: gradients (finite differences), shapes, errors, scopes, per-step states."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import models
from models.truncation import FixedTruncation

T, B, I, H = 3, 2, 3, 4


def _layer(mode, **kw):
    cls = {"rnn": models.RNN, "gru": models.GRU, "lstm": models.LSTM}[mode]
    return cls(I, H, rng=0, **kw)


def _state(layer, batched=True, seed=1):
    shape = (layer.num_layers * layer.num_directions, B, H) if batched else (layer.num_layers * layer.num_directions, H)
    return mg.Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def _output(layer, x, h0, c0, truncate):
    """out and final states as one flat tensor, so gradcheck weighs every entry."""
    if isinstance(layer, models.LSTM):
        out, (h_n, c_n) = layer(x, (h0, c0), truncate=truncate)
        return mg.concat([out.reshape(-1), h_n.reshape(-1), c_n.reshape(-1)])
    out, h_n = layer(x, h0, truncate=truncate)
    return mg.concat([out.reshape(-1), h_n.reshape(-1)])


class FrozenCuts(FixedTruncation):
    """truncate=k on the first call; on later calls the cut states are the constants recorded
    then. The truncated gradient is the exact gradient of that function, so finite
    differences of it check what truncate=k's backward computes."""

    def __init__(self, k):
        super().__init__(k)
        self.recorded, self.replay, self.i = [], False, 0

    def carry(self, t, state):
        if t % self.k:
            return state
        if not self.replay:
            cut = models.detach_state(state)
            self.recorded.append(cut)
            return cut
        cut = self.recorded[self.i % len(self.recorded)]
        self.i += 1
        return cut

    def start_replay(self):
        self.replay, self.i = True, 0


GRADCHECK_CASES = [
    # mode, layer kwargs, truncate, unbatched
    ("rnn", {}, None, False),
    ("rnn", {"nonlinearity": "relu"}, None, False),
    ("rnn", {"nonlinearity": "identity"}, 2, False),
    ("rnn", {"bias": False}, 2, False),
    ("rnn", {"num_layers": 2, "bidirectional": True}, 2, False),
    ("rnn", {"batch_first": True}, None, False),
    ("rnn", {}, None, True),
    ("gru", {}, None, False),
    ("gru", {}, 2, False),
    ("gru", {"bias": False, "batch_first": True}, None, False),
    ("gru", {"num_layers": 2}, None, False),
    ("gru", {"bidirectional": True}, 2, True),
    ("lstm", {}, None, False),
    ("lstm", {}, 2, False),
    ("lstm", {"bias": False}, None, True),
    ("lstm", {"num_layers": 2, "batch_first": True}, 1, False),
    ("lstm", {"bidirectional": True}, None, False),
]


@pytest.mark.parametrize("mode,kw,truncate,unbatched", GRADCHECK_CASES)
def test_every_parameter_and_initial_state_passes_gradcheck(mode, kw, truncate, unbatched):
    layer = _layer(mode, **kw)
    rng = np.random.default_rng(2)
    shape = (T, I) if unbatched else ((B, T, I) if kw.get("batch_first") else (T, B, I))
    x = mg.Tensor(rng.standard_normal(shape), requires_grad=True)
    h0 = _state(layer, not unbatched, seed=3)
    c0 = _state(layer, not unbatched, seed=4) if mode == "lstm" else None
    policy = FrozenCuts(truncate) if truncate is not None else None
    inputs = [*layer.parameters(), x, h0] + ([c0] if c0 is not None else [])

    def fn(*_):
        out = _output(layer, x, h0, c0, policy)
        if policy is not None:
            policy.start_replay()  # gradcheck's first call runs backward; later calls perturb
        return out

    assert mg.gradcheck(fn, inputs, atol=1e-6, rtol=1e-5)
    if policy is not None:  # FrozenCuts' backward is truncate=k's backward
        frozen = {n: p.grad.copy() for n, p in layer.named_parameters()}
        layer.zero_grad()
        w = np.random.default_rng(0).standard_normal(_output(layer, x, h0, c0, truncate).shape)
        (_output(layer, x, h0, c0, truncate) * w).sum().backward()
        for n, p in layer.named_parameters():
            np.testing.assert_allclose(p.grad, frozen[n], rtol=0, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_cells_pass_gradcheck_batched_and_unbatched(mode):
    cell = {"rnn": models.RNNCell, "gru": models.GRUCell, "lstm": models.LSTMCell}[mode](I, H, rng=0)
    rng = np.random.default_rng(1)
    for shape, sshape in (((B, I), (B, H)), ((I,), (H,))):
        x = mg.Tensor(rng.standard_normal(shape), requires_grad=True)
        h = mg.Tensor(rng.standard_normal(sshape), requires_grad=True)
        c = mg.Tensor(rng.standard_normal(sshape), requires_grad=True)
        if mode == "lstm":
            fn = lambda *_: mg.concat(cell(x, (h, c)), axis=-1)  # noqa: E731
            inputs = [*cell.parameters(), x, h, c]
        else:
            fn = lambda *_: cell(x, h)  # noqa: E731
            inputs = [*cell.parameters(), x, h]
        assert mg.gradcheck(fn, inputs, atol=1e-6, rtol=1e-5)
        assert fn().shape == sshape if mode != "lstm" else fn().shape[:-1] == sshape[:-1]


# ---------------------------------------------------------------------------
# Shapes, dtype, parameters
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("batch_first,unbatched", [(False, False), (True, False), (False, True)])
def test_output_and_final_state_shapes_follow_pytorch(mode, batch_first, unbatched):
    layer = _layer(mode, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = np.zeros((T, I) if unbatched else ((B, T, I) if batch_first else (T, B, I)))
    out, state = layer(x)
    h_n = state[0] if mode == "lstm" else state
    want_out = (T, 2 * H) if unbatched else ((B, T, 2 * H) if batch_first else (T, B, 2 * H))
    assert out.shape == want_out
    assert h_n.shape == ((4, H) if unbatched else (4, B, H))
    if mode == "lstm":
        assert state[1].shape == h_n.shape


@pytest.mark.parametrize("mode,gates", [("rnn", 1), ("gru", 3), ("lstm", 4)])
def test_parameter_names_shapes_and_default_init_follow_pytorch(mode, gates):
    layer = _layer(mode, num_layers=2, bidirectional=True)
    names = [n for n, _ in layer.named_parameters()]
    want = []
    for k in range(2):
        for sfx in ("", "_reverse"):
            want += [f"weight_ih_l{k}{sfx}", f"weight_hh_l{k}{sfx}", f"bias_ih_l{k}{sfx}", f"bias_hh_l{k}{sfx}"]
    assert names == want
    assert layer.weight_ih_l0.shape == (gates * H, I)
    assert layer.weight_ih_l1.shape == (gates * H, 2 * H)  # layer 1 reads both directions
    assert layer.weight_hh_l1_reverse.shape == (gates * H, H)
    bound = 1 / np.sqrt(H)
    for p in layer.parameters():
        assert np.all(np.abs(p.data) <= bound)
    no_bias = _layer(mode, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]


def test_same_seed_gives_same_weights_and_other_seed_differs():
    a, b, c = models.GRU(3, 4, rng=5), models.GRU(3, 4, rng=5), models.GRU(3, 4, rng=6)
    assert all(np.array_equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not np.array_equal(a.weight_hh_l0.data, c.weight_hh_l0.data)
    gen = np.random.default_rng(5)
    assert np.array_equal(models.GRU(3, 4, rng=gen).weight_ih_l0.data, a.weight_ih_l0.data)


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_float32_is_kept_through_forward_and_backward(mode):
    layer = {"rnn": models.RNN, "gru": models.GRU, "lstm": models.LSTM}[mode](I, H, dtype=np.float32, rng=0)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    out, _ = layer(x, truncate=2)
    assert out.dtype == np.float32
    out.sum().backward()
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())


def test_batch_first_and_unbatched_give_the_same_numbers_as_time_major():
    tm, bf = models.LSTM(I, H, rng=0), models.LSTM(I, H, rng=0, batch_first=True)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    out, (h, c) = tm(x)
    out_bf, (h_bf, c_bf) = bf(np.swapaxes(x, 0, 1))
    np.testing.assert_allclose(np.swapaxes(out_bf.data, 0, 1), out.data, atol=1e-15)
    np.testing.assert_allclose(h_bf.data, h.data, atol=1e-15)
    out_u, (h_u, _) = tm(x[:, 1])
    np.testing.assert_allclose(out_u.data, out.data[:, 1], atol=1e-15)
    np.testing.assert_allclose(h_u.data, h.data[:, 1], atol=1e-15)


# ---------------------------------------------------------------------------
# Errors name the expected and the actual shape
# ---------------------------------------------------------------------------
def test_wrong_input_size_names_expected_and_actual_shape():
    rnn = models.RNN(10, 4)
    with pytest.raises(
        ValueError, match=r"RNN: expected input of shape \(T, B, 10\) \(or \(T, 10\) unbatched\), got \(5, 3, 7\)"
    ):
        rnn(np.zeros((5, 3, 7)))
    with pytest.raises(ValueError, match=r"\(B, T, 10\).*got \(5, 3, 7\)"):
        models.GRU(10, 4, batch_first=True)(np.zeros((5, 3, 7)))


def test_four_dimensional_input_is_refused_with_its_shape():
    with pytest.raises(ValueError, match=r"LSTM: expected input of shape \(T, B, 3\).*got \(2, 2, 2, 3\)"):
        models.LSTM(3, 4)(np.zeros((2, 2, 2, 3)))


def test_wrong_h0_shape_names_expected_and_actual_shape():
    rnn = models.RNN(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"RNN: expected h0 of shape \(2, 5, 4\).*got \(1, 5, 4\)"):
        rnn(np.zeros((6, 5, 3)), np.zeros((1, 5, 4)))
    with pytest.raises(ValueError, match=r"expected h0 of shape \(2, 4\).*unbatched.*got \(2, 1, 4\)"):
        rnn(np.zeros((6, 3)), np.zeros((2, 1, 4)))
    lstm = models.LSTM(3, 4)
    with pytest.raises(ValueError, match=r"LSTM: expected c0 of shape \(1, 5, 4\).*got \(1, 5, 3\)"):
        lstm(np.zeros((6, 5, 3)), (np.zeros((1, 5, 4)), np.zeros((1, 5, 3))))
    with pytest.raises(TypeError, match=r"tuple \(h_0, c_0\)"):
        lstm(np.zeros((6, 5, 3)), np.zeros((1, 5, 4)))


def test_wrong_dtype_says_which_dtype_to_use():
    with pytest.raises(TypeError, match=r"input has dtype float32 but the parameters are float64"):
        models.GRU(3, 4)(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(TypeError, match=r"floating-point"):
        models.GRU(3, 4)(np.zeros((2, 2, 3), np.int64))
    with pytest.raises(TypeError, match=r"h0 has dtype float32"):
        models.RNN(3, 4)(np.zeros((2, 2, 3)), np.zeros((1, 2, 4), np.float32))


def test_bad_construction_arguments_are_refused():
    with pytest.raises(ValueError, match="nonlinearity"):
        models.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        models.LSTM(3, 0)
    with pytest.raises(ValueError, match="truncate must be a positive integer"):
        models.RNN(3, 4)(np.zeros((2, 1, 3)), truncate=0)
    with pytest.raises(ValueError, match=r"RNNCell: expected input of shape \(B, 3\).*got \(2, 5\)"):
        models.RNNCell(3, 4)(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"LSTMCell: expected c of shape \(2, 4\).*got \(2, 5\)"):
        models.LSTMCell(3, 4)(np.zeros((2, 3)), (np.zeros((2, 4)), np.zeros((2, 5))))


# ---------------------------------------------------------------------------
# The unrolled graph: scopes and the cost of one step
# ---------------------------------------------------------------------------
def test_each_step_runs_in_its_own_scope_inside_the_layer_and_direction_scope():
    rnn = models.GRU(I, H, bidirectional=True, rng=0)
    out, _ = rnn(np.ones((T, B, I)))
    scopes = {n.scope for n in mg.tape(out)}
    assert {"l0", "l0_reverse"} <= scopes  # the hoisted input projections
    for t in range(1, T + 1):
        assert f"l0/t={t}" in scopes and f"l0_reverse/t={t}" in scopes
    assert f"l0/t={T + 1}" not in scopes and "l0/t=0" not in scopes
    matmuls_outside_steps = [n for n in mg.tape(out) if n.op in ("matmul", "addmm") and n.scope == "l0"]
    assert len(matmuls_outside_steps) == 1  # one matmul projects the inputs of all steps


@pytest.mark.parametrize(
    "mode,kw,per_step",
    [
        ("rnn", {}, 2),
        ("rnn", {"nonlinearity": "identity"}, 1),
        ("gru", {}, 10),
        ("gru", {"bias": False}, 9),
        ("lstm", {}, 11),
    ],
)
def test_one_step_records_only_the_recurrent_product_and_gate_math(mode, kw, per_step):
    layer = _layer(mode, **kw)
    out, _ = layer(np.ones((4, B, I)))
    nodes = mg.tape(out)
    for t in range(1, 5):
        assert sum(n.scope == f"l0/t={t}" for n in nodes) == per_step
    outside = [n.op for n in nodes if "/" not in n.scope]
    assert outside.count("stack") == 1 and outside.count("unbind") + outside.count("split") <= 3


# ---------------------------------------------------------------------------
# Per-step states: δh_t, compared with the hand-written references
# ---------------------------------------------------------------------------
def test_return_states_gives_the_tensors_that_fill_the_output():
    lstm = models.LSTM(I, H, bidirectional=True, rng=0)
    out, (h_n, c_n), states = lstm(np.ones((T, B, I)), return_states=True)
    assert set(states.h) == {"l0", "l0_reverse"} and set(states.c) == {"l0", "l0_reverse"}
    for t in range(T):
        np.testing.assert_array_equal(out.data[t, :, :H], states.h["l0"][t].data)
        np.testing.assert_array_equal(out.data[t, :, H:], states.h["l0_reverse"][t].data)
    assert states.h["l0"][-1] is not None and np.array_equal(h_n.data[0], states.h["l0"][-1].data)
    assert np.array_equal(h_n.data[1], states.h["l0_reverse"][0].data)  # the reverse direction ends at t=1
    assert np.array_equal(c_n.data[1], states.c["l0_reverse"][0].data)


@pytest.mark.parametrize(
    "mode,L,bidir,truncate,memory_saving",
    [
        ("rnn", 1, False, None, False),
        ("rnn", 2, True, 2, False),
        ("gru", 2, False, 2, False),
        ("gru", 1, True, None, False),
        ("lstm", 2, True, 2, False),
        ("lstm", 1, False, None, False),
        ("rnn", 2, True, 2, True),
        ("gru", 2, True, None, True),
        ("lstm", 2, True, 2, True),
        ("lstm", 1, False, None, True),
    ],
)
def test_delta_h_t_and_all_gradients_match_the_handwritten_reference(mode, L, bidir, truncate, memory_saving):
    reference = pytest.importorskip("models.reference")
    Tl, D = 6, 2 if bidir else 1
    layer = _layer(mode, num_layers=L, bidirectional=bidir)
    if memory_saving:  # what long sequences get: the input projection in chunks, h_t written in place
        layer.projection_rows = 4  # T·B = 12 rows: 3 chunks of 2 steps
        layer.output_rows_min_bytes = 0
    rng = np.random.default_rng(9)
    x = mg.Tensor(rng.standard_normal((Tl, B, I)), requires_grad=True)
    h0, c0 = rng.standard_normal((L * D, B, H)), rng.standard_normal((L * D, B, H))
    dout, dh_n, dc_n = (
        rng.standard_normal((Tl, B, D * H)),
        rng.standard_normal((L * D, B, H)),
        rng.standard_normal((L * D, B, H)),
    )
    h0t, c0t = mg.Tensor(h0, requires_grad=True), mg.Tensor(c0, requires_grad=True)
    if mode == "lstm":
        out, (h_n, c_n), states = layer(x, (h0t, c0t), truncate=truncate, return_states=True)
        loss = (out * dout).sum() + (h_n * dh_n).sum() + (c_n * dc_n).sum()
    else:
        out, h_n, states = layer(x, h0t, truncate=truncate, return_states=True)
        loss = (out * dout).sum() + (h_n * dh_n).sum()
    if memory_saving:
        projections = [n for n in mg.tape(loss) if n.op == "addmm" and n.scope == "l0"]
        assert len(projections) == 3
        hs = states.h["l0"]
        assert hs[0].data.base is not None and hs[0].data.base is hs[-1].data.base  # rows of one array
    states.retain_grad()
    loss.backward()
    ref = reference.stacked_bptt(
        mode, layer.state_dict(), x.data, h0, dout, dh_n,
        c0 if mode == "lstm" else None, dc_n if mode == "lstm" else None,
        num_layers=L, bidirectional=bidir, truncate=truncate,
    )  # fmt: skip
    tol = dict(rtol=0, atol=1e-10)
    np.testing.assert_allclose(out.data, ref.out, **tol)
    for n, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, ref.grads[n], **tol, err_msg=n)
    np.testing.assert_allclose(x.grad, ref.dx, **tol)
    np.testing.assert_allclose(h0t.grad, ref.dh0, **tol)
    for tag, dh in states.grads("h").items():
        np.testing.assert_allclose(dh, ref.dh[tag], **tol, err_msg=f"δh_t of {tag}")
    if mode == "lstm":
        np.testing.assert_allclose(c0t.grad, ref.dc0, **tol)
        for tag, dc in states.grads("c").items():
            np.testing.assert_allclose(dc, ref.dc[tag], **tol, err_msg=f"δc_t of {tag}")


def _forward_backward_peak(layer, x):
    import tracemalloc

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out, _ = layer(x)
        forward_peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.reset_peak()
        (out * out).sum().backward()
        return forward_peak, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_a_long_sequence_never_holds_the_input_projection_of_all_steps_at_once():
    T_, B_, H_ = 200, 16, 32
    x = np.random.default_rng(0).standard_normal((T_, B_, I))
    projection = T_ * B_ * 4 * H_ * 8  # bytes of W_ih x_t + b for every step (float64 LSTM: 4 gates)
    whole, chunked = models.LSTM(I, H_, rng=0), models.LSTM(I, H_, rng=0)
    whole.projection_rows = T_ * B_  # one matmul for the whole sequence
    chunked.projection_rows = 256  # 13 chunks of 16 steps
    (f_whole, b_whole), (f_chunked, b_chunked) = _forward_backward_peak(whole, x), _forward_backward_peak(chunked, x)
    assert f_chunked < f_whole - 0.8 * projection  # a chunk's projection is freed once its steps ran
    assert b_chunked < b_whole + 0.1 * projection  # backward: no more than with one projection (its peak is elsewhere)
    assert len([n for n in mg.tape(chunked(x)[0]) if n.op == "addmm" and n.scope == "l0"]) == 13
