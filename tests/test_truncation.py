"""Truncated BPTT: detach_state, fixed windows, randomized (unbiased) truncation, TBPTT(k1, k2)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import minigrad as mg
import models


def _grads(layer):
    return np.concatenate([p.grad.ravel() for p in layer.parameters()])


def _full_loss_grads(layer, x, w, truncate=None):
    layer.zero_grad()
    out, _ = layer(x, truncate=truncate)
    (out * w).sum().backward()
    return _grads(layer)


# ---------------------------------------------------------------------------
# detach_state / reset_state
# ---------------------------------------------------------------------------
def test_detach_state_cuts_tensors_tuples_and_nested_lists_and_shares_data():
    h = mg.Tensor(np.ones((2, 3)), requires_grad=True) * 2
    c = mg.Tensor(np.ones((2, 3)), requires_grad=True) * 3
    cut = models.detach_state([(h, c), h, None])
    assert isinstance(cut, list) and isinstance(cut[0], tuple) and cut[2] is None
    for new, old in ((cut[0][0], h), (cut[0][1], c), (cut[1], h)):
        assert not new.requires_grad and new.is_leaf and new.data is old.data
    assert not models.detach_state(h).requires_grad


def test_detach_state_with_reset_mask_restarts_only_the_marked_rows():
    h = mg.Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True) + 1
    c = mg.Tensor(np.full((1, 3, 2), 5.0))  # (L*D, B, H): batch axis second to last
    reset = np.array([False, True, False])
    new_h, new_c = models.detach_state((h, c), reset=reset)
    np.testing.assert_array_equal(new_h.data, [[1, 2], [0, 0], [5, 6]])
    np.testing.assert_array_equal(new_c.data[0, 1], [0, 0])
    assert not new_h.requires_grad
    init = (np.full((3, 2), -1.0), np.full((1, 3, 2), -2.0))
    new_h, new_c = models.detach_state((h, c), reset=reset, initial=init)
    np.testing.assert_array_equal(new_h.data[1], [-1, -1])
    np.testing.assert_array_equal(new_c.data[0], [[5, 5], [-2, -2], [5, 5]])
    with pytest.raises(ValueError, match=r"reset mask of shape \(2,\) does not match a state of shape \(3, 2\)"):
        models.detach_state(h, reset=np.array([True, False]))
    with pytest.raises(ValueError, match="boolean mask of shape"):
        models.detach_state(h, reset=np.array([1, 0, 1]))


def test_reset_state_keeps_the_gradient_path_of_rows_that_continue():
    leaf = mg.Tensor(np.ones((3, 2)), requires_grad=True)
    new = models.reset_state(leaf * 2, np.array([True, False, False]))
    new.sum().backward()
    np.testing.assert_array_equal(leaf.grad, [[0, 0], [2, 2], [2, 2]])


def test_carrying_state_into_the_next_window_without_detach_meets_an_error_that_says_what_to_do():
    lstm = models.LSTM(2, 3, rng=0)
    x = np.random.default_rng(0).standard_normal((4, 1, 2))
    out, state = lstm(x)
    out.sum().backward()
    out, _ = lstm(x, state)  # the classic mistake: state still hangs on the freed window
    with pytest.raises(mg.GraphFreedError, match=r"models\.detach_state"):
        out.sum().backward()
    lstm.zero_grad()
    out, _ = lstm(x, models.detach_state(state))
    out.sum().backward()  # the fix
    assert lstm.weight_hh_l0.grad is not None


# ---------------------------------------------------------------------------
# Fixed windows
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [models.RNN, models.GRU, models.LSTM])
def test_truncation_with_k_at_least_T_equals_full_bptt(cls):
    T = 6
    layer = cls(3, 4, num_layers=2, bidirectional=True, rng=0)
    x = np.random.default_rng(1).standard_normal((T, 2, 3))
    w = np.random.default_rng(2).standard_normal((T, 2, 8))
    full = _full_loss_grads(layer, x, w)
    for k in (T, T + 3):
        np.testing.assert_array_equal(_full_loss_grads(layer, x, w, truncate=k), full)
    assert not np.allclose(_full_loss_grads(layer, x, w, truncate=2), full)  # k < T does cut


def test_truncate_cuts_after_steps_k_2k_and_never_before_step_1():
    rnn = models.RNN(2, 3, rng=0)
    h0 = mg.Tensor(np.ones((1, 1, 3)), requires_grad=True)
    out, _, states = rnn(np.ones((7, 1, 2)), h0, truncate=3, return_states=True)
    states.retain_grad()
    out[5].sum().backward()  # loss only on h_6
    reached = [bool(np.any(states.h["l0"][t].grad)) for t in range(7)]
    # cuts after t=3 and t=6: δh_t flows from h_6 back to h_4, not to h_3 (nor forward to h_7)
    assert reached == [False, False, False, True, True, True, False]
    assert not np.any(h0.grad)
    h0.zero_grad()
    out, _ = rnn(np.ones((2, 1, 2)), h0, truncate=3)
    out[-1].sum().backward()
    assert np.any(h0.grad)  # h_0 itself is never cut


# ---------------------------------------------------------------------------
# Randomized truncation: unbiased in expectation
# ---------------------------------------------------------------------------
class _Scripted:
    """A stand-in for the Generator: random() returns the scripted draws in order."""

    def __init__(self, draws):
        self.draws = list(draws)

    def random(self):
        return self.draws.pop(0)


def test_random_truncation_is_exactly_unbiased_over_all_cut_patterns():
    # T = 5 steps: 4 carries, each kept (prob p, gradient × 1/p) or cut (prob 1 − p).
    # Σ over the 16 patterns of P(pattern) · gradient(pattern) must equal the full gradient.
    T, p = 5, 0.3
    gru = models.GRU(2, 3, rng=0)
    x = np.random.default_rng(1).standard_normal((T, 2, 2))
    w = np.random.default_rng(2).standard_normal((T, 2, 3))
    full = _full_loss_grads(gru, x, w)
    expected = np.zeros_like(full)
    for pattern in itertools.product([True, False], repeat=T - 1):
        policy = models.RandomTruncation(p)
        policy.rng = _Scripted(0.0 if keep else 0.999 for keep in pattern)
        prob = np.prod([p if keep else 1 - p for keep in pattern])
        expected += prob * _full_loss_grads(gru, x, w, truncate=policy)
        assert policy.cuts == pattern.count(False)
    np.testing.assert_allclose(expected, full, rtol=1e-10, atol=1e-12)


def test_random_truncation_gradient_averages_to_the_full_gradient():
    # Statistical version with the real generator: mean of N draws within 5 standard errors
    # of the full gradient in every coordinate; the same test without the 1/p rescaling fails.
    T, p, N = 4, 0.5, 600
    rnn = models.RNN(2, 3, rng=0)
    x = np.random.default_rng(1).standard_normal((T, 2, 2))
    w = np.random.default_rng(2).standard_normal((T, 2, 3))
    full = _full_loss_grads(rnn, x, w)
    policy = models.RandomTruncation(p, rng=123)
    draws = np.stack([_full_loss_grads(rnn, x, w, truncate=policy) for _ in range(N)])
    se = draws.std(axis=0, ddof=1) / np.sqrt(N)
    assert np.all(np.abs(draws.mean(axis=0) - full) <= 5 * se + 1e-12)
    assert 0.3 < policy.cuts / (N * (T - 1)) < 0.7

    class NoRescale(models.RandomTruncation):
        def carry(self, t, state):
            return state if self.rng.random() < self.p else models.detach_state(state)

    biased = np.stack([_full_loss_grads(rnn, x, w, truncate=NoRescale(p, rng=7)) for _ in range(N)])
    se_b = biased.std(axis=0, ddof=1) / np.sqrt(N)
    assert np.any(np.abs(biased.mean(axis=0) - full) > 5 * se_b)  # the test can tell bias apart


def test_random_truncation_with_p_one_is_full_bptt_and_bad_p_is_refused():
    lstm = models.LSTM(2, 3, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 1, 2))
    w = np.ones((4, 1, 3))
    np.testing.assert_allclose(
        _full_loss_grads(lstm, x, w, truncate=models.RandomTruncation(1.0, rng=0)),
        _full_loss_grads(lstm, x, w),
        atol=1e-15,
    )
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"p must lie in \(0, 1\]"):
            models.RandomTruncation(bad)


# ---------------------------------------------------------------------------
# TBPTT(k1, k2) over a long sequence
# ---------------------------------------------------------------------------
def _weighted_sum(out, w):
    return (out * w).sum()


@pytest.mark.parametrize("cls", [models.GRU, models.LSTM])
def test_tbptt_with_k1_equal_k2_accumulates_the_truncate_k_gradient(cls):
    T, k = 11, 4
    layer = cls(3, 4, rng=0)
    x = np.random.default_rng(1).standard_normal((T, 2, 3))
    w = np.random.default_rng(2).standard_normal((T, 2, 4))
    want = _full_loss_grads(layer, x, w, truncate=k)
    layer.zero_grad()
    res = models.tbptt_train(layer, x, w, _weighted_sum, optimizer=None, k1=k)
    assert res.updates == 3  # steps 1–4, 5–8, 9–11
    np.testing.assert_allclose(_grads(layer), want, rtol=0, atol=1e-12)
    out, state = layer(x)
    np.testing.assert_allclose(
        res.state[0].data if cls is models.LSTM else res.state.data,
        (state[0] if cls is models.LSTM else state).data,
        atol=1e-14,
    )
    assert sum(res.losses) == pytest.approx(float(_weighted_sum(out, w).data))


def test_tbptt_with_k1_at_least_T_is_full_bptt():
    T = 7
    rnn = models.RNN(2, 3, rng=0)
    x = np.random.default_rng(1).standard_normal((T, 2, 2))
    w = np.random.default_rng(2).standard_normal((T, 2, 3))
    want = _full_loss_grads(rnn, x, w)
    rnn.zero_grad()
    res = models.tbptt_train(rnn, x, w, _weighted_sum, k1=T + 2)
    assert res.updates == 1
    np.testing.assert_allclose(_grads(rnn), want, rtol=0, atol=1e-13)


def test_tbptt_with_k2_greater_than_k1_backpropagates_each_update_through_k2_steps():
    T, k1, k2 = 9, 2, 5
    rnn = models.RNN(2, 3, rng=0)
    x = np.random.default_rng(1).standard_normal((T, 2, 2))
    w = np.random.default_rng(2).standard_normal((T, 2, 3))
    models.tbptt_train(rnn, x, w, _weighted_sum, k1=k1, k2=k2)
    got = _grads(rnn)
    # By hand: the update at step `end` takes the loss of the steps since the previous update
    # (first..end) and runs the window start..end, start = first − (k2 − k1), from the detached
    # state before `start`.
    rnn.zero_grad()
    with mg.no_grad():
        _, _, states = rnn(x, return_states=True)
    for end in (2, 4, 6, 8, 9):
        first = end - k1 if end % k1 == 0 else end - end % k1
        start = max(0, first - (k2 - k1))
        h = None if start == 0 else states.h["l0"][start - 1].data[None]
        out, _ = rnn(x[start:end], h)
        _weighted_sum(out[first - start :], w[first:end]).backward()
    np.testing.assert_allclose(got, _grads(rnn), rtol=0, atol=1e-13)


def test_tbptt_resets_restart_the_rows_whose_sequence_begins():
    T, k = 8, 3
    gru = models.GRU(2, 3, rng=0)
    x = np.random.default_rng(1).standard_normal((T, 2, 2))
    resets = np.zeros((T, 2), bool)
    resets[5, 1] = True  # row 1 starts a new sequence at step 5 (inside the window 3..6)
    res = models.tbptt_train(gru, x, np.zeros((T, 2, 3)), _weighted_sum, k1=k, resets=resets)
    _, h_row0 = gru(x[:, :1])
    _, h_row1 = gru(x[5:, 1:])  # as if row 1 had started fresh at step 5
    np.testing.assert_allclose(res.state.data[:, :1], h_row0.data, atol=1e-14)
    np.testing.assert_allclose(res.state.data[:, 1:], h_row1.data, atol=1e-14)


def test_tbptt_training_lowers_the_loss_of_a_small_prediction_task():
    # echo the previous input: the state must carry it from one step to the next
    rng = np.random.default_rng(0)
    T, B = 120, 8
    x = rng.standard_normal((T, B, 1))
    y = np.concatenate([np.zeros((1, B, 1)), x[:-1]])
    lstm = models.LSTM(1, 8, rng=0)
    head = mg.nn.Linear(8, 1, rng=1)
    model = lambda xs, s: (lambda o_s: (head(o_s[0]), o_s[1]))(lstm(xs, s))  # noqa: E731
    opt = mg.optim.Adam(lstm.parameters() + head.parameters(), lr=0.02)
    first = models.tbptt_train(model, x, y, mg.mse_loss, opt, k1=10, max_norm=5.0).losses
    for _ in range(8):
        last = models.tbptt_train(model, x, y, mg.mse_loss, opt, k1=10, max_norm=5.0).losses
    assert np.mean(last) < 0.5 * np.mean(first)


def test_tbptt_refuses_k2_below_k1_and_mismatched_lengths():
    rnn = models.RNN(1, 2)
    with pytest.raises(ValueError, match=r"k2 .* must be ≥ k1"):
        models.tbptt_train(rnn, np.zeros((4, 1, 1)), np.zeros((4, 1, 2)), _weighted_sum, k1=3, k2=2)
    with pytest.raises(ValueError, match="x has 4 steps but targets has 3"):
        models.tbptt_train(rnn, np.zeros((4, 1, 1)), np.zeros((3, 1, 2)), _weighted_sum, k1=2)


# ---------------------------------------------------------------------------
# Checkpointing over time
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls,segments", [(models.LSTM, None), (models.GRU, 3), (models.RNN, 1), (models.RNN, 50)])
def test_checkpointed_gradients_equal_full_bptt(cls, segments):
    T = 10
    layer = cls(3, 4, num_layers=2, rng=0)
    rng = np.random.default_rng(1)
    D = layer.num_directions
    x = mg.Tensor(rng.standard_normal((T, 2, 3)), requires_grad=True)
    h0 = mg.Tensor(rng.standard_normal((2 * D, 2, 4)), requires_grad=True)
    c0 = mg.Tensor(rng.standard_normal((2 * D, 2, 4)), requires_grad=True)
    state = (h0, c0) if cls is models.LSTM else h0
    w = rng.standard_normal((T, 2, 4 * D))

    def loss_of(out, st):
        h_n = st[0] if cls is models.LSTM else st
        return (out * w).sum() + (h_n * h_n).sum()

    loss_of(*layer(x, state)).backward()
    leaves = [*layer.parameters(), x, h0] + ([c0] if cls is models.LSTM else [])
    full = [t.grad.copy() for t in leaves]
    for t in leaves:
        t.zero_grad()
    out, st = models.checkpointed(layer, x, state, segments=segments)
    n_seg = min(segments or models.default_segments(T), T)
    assert [n.op for n in mg.tape(out)].count("checkpoint") == n_seg  # no per-step nodes kept
    assert not any("t=" in n.scope for n in mg.tape(out))
    loss_of(out, st).backward()
    for t, g in zip(leaves, full):
        np.testing.assert_allclose(t.grad, g, rtol=1e-12, atol=1e-13)


def test_checkpointed_takes_any_model_function_with_explicit_params():
    gru, head = models.GRU(2, 3, rng=0), models.Readout(3, 1, rng=1)

    def model(xs, s):
        out, s = gru(xs, s)
        return head(out), s

    x = np.random.default_rng(0).standard_normal((9, 1, 2))
    params = gru.parameters() + head.parameters()
    y, _ = model(x, None)
    (y * y).sum().backward()
    full = [p.grad.copy() for p in params]
    for p in params:
        p.zero_grad()
    y2, _ = models.checkpointed(model, x, None, segments=3, params=params)
    np.testing.assert_allclose(y2.data, y.data, atol=1e-15)
    (y2 * y2).sum().backward()
    for p, g in zip(params, full):
        np.testing.assert_allclose(p.grad, g, rtol=1e-12, atol=1e-13)
    with pytest.raises(TypeError, match="params="):
        models.checkpointed(model, x)
    with pytest.raises(ValueError, match="bidirectional"):
        models.checkpointed(models.GRU(2, 3, bidirectional=True), x)
