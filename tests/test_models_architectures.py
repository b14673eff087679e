"""Residual RNN, orthogonal W_hh, attention-augmented RNN, readouts and sequence losses."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import models

T, B, I, H = 4, 2, 3, 4


def _x(shape=(T, B, I), seed=0):
    return mg.Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_residual_rnn_adds_the_update_to_the_previous_state():
    res = models.ResidualRNN(I, H, alpha=0.5, rng=0)
    plain = models.RNN(I, H, rng=1)
    plain.load_state_dict(res.state_dict())  # same names: the same f
    x = _x()
    out, _ = res(x)
    h_prev = np.zeros((B, H))
    for t in range(T):
        f, _ = plain(x.data[t : t + 1], h_prev[None])
        h_prev = h_prev + 0.5 * f.data[0]  # h_t = h_{t-1} + α φ(W_ih x_t + b + W_hh h_{t-1})
        np.testing.assert_allclose(out.data[t], h_prev, atol=1e-14)


@pytest.mark.parametrize("kw", [{}, {"alpha": 0.3, "nonlinearity": "relu", "bidirectional": True}])
def test_residual_rnn_passes_gradcheck(kw):
    res = models.ResidualRNN(I, H, rng=0, **kw)
    x, h0 = _x(), mg.Tensor(np.random.default_rng(1).standard_normal((res.num_directions, B, H)), requires_grad=True)
    assert mg.gradcheck(lambda *_: res(x, h0)[0], [*res.parameters(), x, h0], atol=1e-6, rtol=1e-5)


def test_orthogonal_init_makes_every_gate_block_of_w_hh_orthogonal():
    lstm = models.orthogonal_init_(models.LSTM(3, 5, num_layers=2, rng=0), gain=1.0, rng=1)
    for name, p in lstm.named_parameters():
        if name.startswith("weight_hh"):
            for g in range(4):
                W = p.data[g * 5 : (g + 1) * 5]
                np.testing.assert_allclose(W.T @ W, np.eye(5), atol=1e-12)
    assert np.linalg.svd(
        models.ResidualRNN(3, 6, gain=0.9, rng=0).weight_hh_l0.data, compute_uv=False
    ) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="no weight_hh"):
        models.orthogonal_init_(mg.nn.Linear(2, 2))


def test_attention_weights_are_a_distribution_over_earlier_states_and_the_first_context_is_h0():
    att = models.AttentionRNN(I, H, rng=0)
    h0 = np.random.default_rng(2).standard_normal((1, B, H))
    out, h_n, weights = att(_x(), h0, return_attention=True)
    assert out.shape == (T, B, H) and h_n.shape == (1, B, H)
    assert [w.shape for w in weights] == [(B, t) for t in range(1, T + 1)]
    for w in weights:
        np.testing.assert_allclose(w.sum(axis=-1), 1.0)
    # step 1 attends only to h_0: c_1 = h_0
    x = _x()
    want = np.tanh(
        x.data[0] @ att.weight_ih.data.T
        + att.bias_ih.data
        + att.bias_hh.data
        + h0[0] @ (att.weight_hh.data + att.weight_ch.data).T
    )
    np.testing.assert_allclose(att(x, h0)[0].data[0], want, atol=1e-14)


@pytest.mark.parametrize("truncate", [None, 2])
def test_attention_rnn_passes_gradcheck(truncate):
    att = models.AttentionRNN(I, H, rng=0)
    x, h0 = _x(), mg.Tensor(np.random.default_rng(1).standard_normal((1, B, H)), requires_grad=True)
    if truncate is None:
        assert mg.gradcheck(lambda *_: att(x, h0)[0], [*att.parameters(), x, h0], atol=1e-6, rtol=1e-5)
    else:  # with cuts, the attention still reaches the earlier states: dL/dh0 is not zero
        out, _ = att(x, h0, truncate=truncate)
        out[-1].sum().backward()
        assert np.any(h0.grad)


def test_attention_rnn_batch_first_and_unbatched_agree_with_time_major():
    att = models.AttentionRNN(I, H, rng=0)
    bf = models.AttentionRNN(I, H, rng=0, batch_first=True)
    x = _x().data
    out, _ = att(x)
    np.testing.assert_allclose(bf(np.swapaxes(x, 0, 1))[0].data, np.swapaxes(out.data, 0, 1), atol=1e-14)
    np.testing.assert_allclose(att(x[:, 0])[0].data, out.data[:, 0], atol=1e-14)
    with pytest.raises(ValueError, match=r"AttentionRNN: expected input of shape \(T, B, 3\).*got \(4, 2, 5\)"):
        att(np.zeros((4, 2, 5)))


# ---------------------------------------------------------------------------
# Heads and losses
# ---------------------------------------------------------------------------
def test_readout_applies_the_same_linear_map_at_every_step():
    head = models.Readout(H, 5, rng=0)
    h = _x((T, B, H))
    y = head(h)
    assert y.shape == (T, B, 5)
    np.testing.assert_allclose(y.data[2, 1], head.weight.data @ h.data[2, 1] + head.bias.data, atol=1e-14)
    assert mg.gradcheck(lambda *_: head(h), [*head.parameters(), h])
    with pytest.raises(ValueError, match=r"Readout: expected input of shape \(\.\.\., 4\), got \(4, 2, 3\)"):
        head(np.zeros((4, 2, 3)))


def test_sequence_cross_entropy_is_the_mean_over_counted_steps_and_rows():
    rng = np.random.default_rng(0)
    logits = mg.Tensor(rng.standard_normal((T, B, 6)), requires_grad=True)
    targets = rng.integers(0, 6, (T, B))
    loss = models.sequence_cross_entropy(logits, targets)
    per = [float(mg.cross_entropy(logits.data[t, b], targets[t, b]).data) for t in range(T) for b in range(B)]
    assert float(loss.data) == pytest.approx(np.mean(per))
    mask = np.ones((T, B), bool)
    mask[2:, 1] = False  # row 1 ended after step 2
    masked = models.sequence_cross_entropy(logits, targets, mask)
    kept = [per[t * B + b] for t in range(T) for b in range(B) if mask[t, b]]
    assert float(masked.data) == pytest.approx(np.mean(kept))
    assert mg.gradcheck(lambda *_: models.sequence_cross_entropy(logits, targets, mask), [logits])
    masked.backward()
    assert not np.any(logits.grad[2:, 1])  # masked positions get no gradient
    with pytest.raises(ValueError, match=r"share the leading shape.*\(4, 2, 6\).*\(4, 3\)"):
        models.sequence_cross_entropy(logits, np.zeros((4, 3), int))


def test_last_step_regression_reads_only_the_last_step():
    head = models.LastStepRegression(H, 2, rng=0)
    out = _x((T, B, H))
    target = np.ones((B, 2))
    loss = head.loss(out, target)
    pred = out.data[-1] @ head.readout.weight.data.T + head.readout.bias.data
    assert float(loss.data) == pytest.approx(np.mean((pred - target) ** 2))
    loss.backward()
    assert not np.any(out.grad[:-1]) and np.any(out.grad[-1])
    bf = models.LastStepRegression(H, 2, batch_first=True, rng=0)
    np.testing.assert_allclose(bf(np.swapaxes(out.data, 0, 1)).data, pred, atol=1e-14)
    assert models.last_step(out).shape == (B, H)


def test_a_character_model_learns_from_layer_readout_and_sequence_loss():
    # a 3-symbol cycle 0 → 1 → 2 → 0: next-symbol prediction becomes easy after a few steps
    seq = np.arange(40) % 3
    x = mg.one_hot(seq[:-1], 3).data[:, None, :]  # (T, 1, 3)
    y = seq[1:, None]
    gru, head = models.GRU(3, 8, rng=0), models.Readout(8, 3, rng=1)
    opt = mg.optim.Adam(gru.parameters() + head.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        out, _ = gru(x)
        loss = models.sequence_cross_entropy(head(out), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.1 * losses[0]
