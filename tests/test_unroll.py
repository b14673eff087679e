"""models.unroll: a user's cell gets the layers' loop (scopes, truncation, stacking), pictures and tbptt_train."""

import re
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
import models

ROOT = Path(__file__).resolve().parents[1]


def readme_cell_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Write your own cell") :]
    return re.search(r"```python\n(.*?)\n```", section, re.S).group(1)


def run_readme_block() -> dict:
    scope: dict = {}
    exec(compile(readme_cell_block(), "README.md", "exec"), scope)
    return scope


def rnn_and_weights(seed=0, **kw):
    rnn = models.RNN(3, 5, rng=seed, **kw)
    W_ih, W_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0

    def cell(x_t, h):  # h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), from raw ops
        return mg.tanh(x_t @ W_ih.T + b_ih + h @ W_hh.T + b_hh)

    return rnn, cell


def step_scopes(loss) -> list[str]:
    return sorted({n.scope for n in mg.tape(loss) if "t=" in n.scope})


# ---------------------------------------------------------------------------
# The README's MGU: trained through unroll with truncate=, drawn at step level
# ---------------------------------------------------------------------------
def test_readme_mgu_trains_through_unroll_with_truncation_and_the_loss_goes_down():
    g = run_readme_block()
    MGU, mg_ = g["MGU"], g["mg"]
    mg_.manual_seed(1)
    model = MGU(2, 8)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 6, 2))
    target = np.cumsum(x[..., :1], axis=0) / 4  # a running sum: needs memory across steps
    head = mg.nn.Linear(8, 1, rng=2)
    opt = mg.optim.Adam(model.parameters() + head.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        out, _ = model(mg.Tensor(x), truncate=6)
        loss = mg.mse_loss(head(out), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses[::10]


def test_readme_mgu_truncate_detaches_every_k_steps_and_the_picture_has_one_box_per_step():
    viz = pytest.importorskip("viz")
    g = run_readme_block()
    out, _ = g["mgu"](g["x"], truncate=5)  # the README's call again (its loss is already backpropagated)
    loss = (out**2).mean()
    assert out.shape == (20, 4, 8)
    assert step_scopes(loss) == sorted(f"t={t}" for t in range(1, 21))
    cuts = [n for n in mg.tape(loss) for x in n.inputs if not isinstance(x, tuple) and x._cut_from is not None]
    assert {n.scope for n in cuts} == {"t=6", "t=11", "t=16"}  # the state entering steps 6, 11, 16 was cut
    dot = viz.draw_graph(loss, level="step", steps_shown=None).source
    boxes = re.findall(r'id="step (t=\d+)"', dot)
    assert boxes == [f"t={t}" for t in range(1, 21)]  # one box per step, in time order
    assert dot.count("9 ops") == 20  # each holds its step's ops: split, addmm × 2, sigmoid, mul × 2, tanh, sub, add


def test_readme_mgu_gradients_pass_gradcheck():
    g = run_readme_block()
    mgu = g["MGU"](2, 3)
    x = mg.Tensor(np.random.default_rng(3).standard_normal((4, 2, 2)))
    h0 = mg.Tensor(np.random.default_rng(4).standard_normal((2, 3)), requires_grad=True)
    assert mg.gradcheck(lambda h0, *ps: mgu(x, h0)[0], [h0, *mgu.parameters()])


def test_readme_mgu_runs_under_tbptt_train_as_a_layer_does():
    g = run_readme_block()
    mgu = g["MGU"](2, 4)
    x = np.random.default_rng(0).standard_normal((12, 3, 2))
    res = models.tbptt_train(mgu, x, x[..., :1], lambda out, y: mg.mse_loss(out[..., :1], y), k1=4)
    assert res.updates == 3 and all(p.grad is not None for p in mgu.parameters())


# ---------------------------------------------------------------------------
# unroll = the built-in layers' loop
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("truncate", [None, 3, "random"])
def test_unroll_gradients_equal_the_builtin_rnn_to_1e_12(truncate):
    x = np.random.default_rng(1).standard_normal((9, 2, 3))
    h0 = np.random.default_rng(2).standard_normal((1, 2, 5))
    rnn, cell = rnn_and_weights()
    policy = (lambda: models.RandomTruncation(0.6, rng=5)) if truncate == "random" else (lambda: truncate)
    out_ref, h_ref = rnn(x, h0, truncate=policy())
    ((out_ref**2).sum() + h_ref.sum()).backward()
    want = {n: p.grad.copy() for n, p in rnn.named_parameters()}
    rnn.zero_grad()
    out, h_T = models.unroll(cell, x, mg.Tensor(h0[0]), truncate=policy())
    ((out**2).sum() + h_T.sum()).backward()
    np.testing.assert_allclose(out.data, out_ref.data, rtol=0, atol=1e-12)
    for n, p in rnn.named_parameters():
        np.testing.assert_allclose(p.grad, want[n], rtol=0, atol=1e-12, err_msg=n)


def test_unroll_names_scopes_exactly_as_the_builtin_layers():
    x = np.random.default_rng(1).standard_normal((4, 2, 3))
    rnn, cell = rnn_and_weights()
    out_ref, _ = rnn(x)
    out, _ = models.unroll(cell, x, mg.Tensor(np.zeros((2, 5))), scope="l0")
    assert step_scopes(out.sum()) == step_scopes(out_ref.sum()) == [f"l0/t={t}" for t in range(1, 5)]


def test_unroll_reverse_matches_the_reverse_direction_of_a_bidirectional_layer():
    x = np.random.default_rng(1).standard_normal((6, 2, 3))
    rnn = models.RNN(3, 5, bidirectional=True, rng=0)
    W_ih, W_hh = rnn.weight_ih_l0_reverse, rnn.weight_hh_l0_reverse
    b = rnn.bias_ih_l0_reverse + rnn.bias_hh_l0_reverse
    out_ref, _ = rnn(x, truncate=2)
    out, _ = models.unroll(
        lambda x_t, h: mg.tanh(x_t @ W_ih.T + b + h @ W_hh.T), x, mg.Tensor(np.zeros((2, 5))), 2, reverse=True
    )
    np.testing.assert_allclose(out.data, out_ref.data[..., 5:], rtol=0, atol=1e-12)


def test_unroll_carries_a_tuple_state_and_truncation_cuts_every_part_as_the_lstm():
    x = np.random.default_rng(1).standard_normal((7, 2, 3))
    lstm = models.LSTM(3, 4, rng=0)
    W_ih, W_hh, b = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0

    def cell(x_t, state):
        return models.lstm_step(x_t @ W_ih.T + b, state[0], state[1], W_hh.T)

    out_ref, (h_ref, c_ref) = lstm(x, truncate=3)
    (out_ref.sum() + c_ref.sum()).backward()
    want = {n: p.grad.copy() for n, p in lstm.named_parameters()}
    lstm.zero_grad()
    zeros = mg.Tensor(np.zeros((2, 4)))
    out, (h_T, c_T) = models.unroll(cell, x, (zeros, zeros), truncate=3)
    (out.sum() + c_T.sum()).backward()
    np.testing.assert_allclose(c_T.data, c_ref.data[0], rtol=0, atol=1e-12)
    for n, p in lstm.named_parameters():
        np.testing.assert_allclose(p.grad, want[n], rtol=0, atol=1e-12, err_msg=n)


def test_unrolled_makes_a_cell_module_a_model_for_tbptt_train_with_the_layers_gradients():
    x = np.random.default_rng(0).standard_normal((10, 2, 3))
    y = np.random.default_rng(1).standard_normal((10, 2, 5))
    rnn = models.RNN(3, 5, rng=0)
    cell = models.RNNCell(3, 5, rng=1)
    cell.load_state_dict({k[: -len("_l0")]: v for k, v in rnn.state_dict().items()})
    model = models.Unrolled(cell, hidden_size=5)
    assert [n for n, _ in model.named_parameters()][0] == "cell.weight_ih"

    def loss_fn(out, target):
        return mg.mse_loss(out, target)

    models.tbptt_train(rnn, x, y, loss_fn, k1=3, k2=5)
    models.tbptt_train(model, x, y, loss_fn, k1=3, k2=5)
    for (n, p), q in zip(rnn.named_parameters(), model.parameters()):
        np.testing.assert_allclose(q.grad, p.grad, rtol=0, atol=1e-12, err_msg=n)


def test_unrolled_takes_a_plain_function_with_its_parameters():
    W = mg.nn.Parameter(np.eye(3) * 0.5)
    model = models.Unrolled(lambda x_t, h: mg.tanh(x_t + h @ W), hidden_size=3, params=[W], truncate=2)
    out, h = model(np.ones((4, 2, 3)))
    assert out.shape == (4, 2, 3) and model.parameters() == [W]
    with pytest.raises(ValueError, match="give hidden_size"):
        models.Unrolled(lambda x_t, h: h)


def test_unroll_refuses_bad_input_and_bad_truncate_clearly():
    cell = lambda x_t, h: h  # noqa: E731
    with pytest.raises(ValueError, match=r"time axis first, \(T, B, I\), with T ≥ 1; got shape \(0, 2\)"):
        models.unroll(cell, np.zeros((0, 2)), None)
    with pytest.raises(TypeError, match="non-empty sequence of steps"):
        models.unroll(cell, [], None)
    with pytest.raises(ValueError, match="truncate must be a positive integer"):
        models.unroll(cell, np.zeros((3, 1, 1)), None, truncate=0)
