"""One test for each behaviour a planted bug once slipped past (issue 17, "the tests themselves").

Adam's weight decay and bias correction, optimizers and loaders marking their in-place writes,
``tbptt_train`` clipping and zeroing gradients, ``retain_grad`` accumulating like torch, clipping
by the global norm, and ``save`` being durable (fsync) and atomic. benchmarks/mutations.py plants
each bug again and checks that these tests catch it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import minigrad as mg
import models
from minigrad import serialization
from minigrad.nn import Linear, Parameter


def param(values, name=None):
    return Parameter(np.array(values, dtype=np.float64), name=name)  # a copy: steps write into it


# ---------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------
def adam_reference(theta, grads, lr, betas, eps, wd):
    """torch.optim.Adam (L2 weight decay added to the gradient, bias-corrected moments), by hand."""
    m, v, theta = np.zeros_like(theta), np.zeros_like(theta), theta.copy()
    for t, g in enumerate(grads, start=1):
        g = g + wd * theta
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def run_adam(theta, grads, **kw):
    p = param(theta)
    opt = mg.optim.Adam([p], **kw)
    for g in grads:
        p.grad = g
        opt.step()
    return p.data


GRADS = [np.array([0.3, -2.0, 1e-3]), np.array([0.1, 0.5, -0.2]), np.array([-0.4, 0.0, 0.7])]


def test_adam_weight_decay_adds_wd_times_theta_to_the_gradient_as_torch_does():
    theta = np.array([1.0, -3.0, 0.5])
    kw = dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.5)
    got = run_adam(theta, GRADS, **kw)
    np.testing.assert_allclose(got, adam_reference(theta, GRADS, 0.1, (0.9, 0.999), 1e-8, 0.5), rtol=1e-12)
    assert not np.allclose(got, run_adam(theta, GRADS, lr=0.1)), "weight decay made no difference"


def test_adam_weight_decay_matches_torch():
    torch = pytest.importorskip("torch")
    theta = np.array([1.0, -3.0, 0.5])
    tp = torch.tensor(theta, requires_grad=True)
    opt = torch.optim.Adam([tp], lr=0.1, weight_decay=0.5)
    for g in GRADS:
        tp.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(run_adam(theta, GRADS, lr=0.1, weight_decay=0.5), tp.detach().numpy(), rtol=1e-10)


def test_adam_first_step_is_bias_corrected_to_lr_times_the_sign_of_the_gradient():
    # m̂₁ = g, v̂₁ = g²: the first step is lr · g / (|g| + ε); without correction it is ~3.16 × lr
    got = run_adam(np.zeros(3), GRADS[:1], lr=0.01, eps=1e-12)
    np.testing.assert_allclose(got, -0.01 * np.sign(GRADS[0]), rtol=1e-8)
    theta = np.array([1.0, -3.0, 0.5])
    np.testing.assert_allclose(run_adam(theta, GRADS, lr=0.1), adam_reference(theta, GRADS, 0.1, (0.9, 0.999), 1e-8, 0))


@pytest.mark.parametrize("opt", [mg.optim.Adam, mg.optim.SGD])
def test_an_optimizer_step_between_forward_and_backward_is_caught_as_stale(opt):
    W = param(np.eye(2), name="W")
    x = mg.Tensor(np.ones((1, 2)), requires_grad=True)
    loss = (x @ W).sum()  # saved W for δx
    W.grad = np.ones((2, 2))
    opt([W], lr=0.1).step()
    with pytest.raises(RuntimeError, match="'W', saved by node .*modified in place"):
        loss.backward()


def test_load_state_dict_between_forward_and_backward_is_caught_as_stale():
    layer = Linear(2, 2, rng=0)
    x = mg.Tensor(np.ones((1, 2)), requires_grad=True)
    loss = layer(x).sum()
    layer.load_state_dict({k: v + 1 for k, v in layer.state_dict().items()})
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


# ---------------------------------------------------------------------------
# Clipping, retain_grad
# ---------------------------------------------------------------------------
def test_clip_grad_norm_scales_all_gradients_by_one_global_factor():
    a, b = param([0.0, 0.0]), param([0.0, 0.0])
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([0.0, 4.0])
    assert mg.optim.clip_grad_norm_([a, b], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad, [0.6, 0.0], rtol=1e-5)  # per parameter would give [1, 0] and [0, 1]
    np.testing.assert_allclose(b.grad, [0.0, 0.8], rtol=1e-5)


def test_retain_grad_accumulates_across_two_backward_calls_as_torch_does():
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    y = (h * h).sum()
    y.backward(retain_graph=True)
    np.testing.assert_allclose(h.grad, 2 * h.data)
    y.backward()
    np.testing.assert_allclose(h.grad, 4 * h.data)  # δh summed over both calls, like x.grad
    np.testing.assert_allclose(x.grad, 2 * 3 * 2 * h.data)


# ---------------------------------------------------------------------------
# tbptt_train
# ---------------------------------------------------------------------------
def small_problem(T=12):
    rng = np.random.default_rng(0)
    return models.RNN(2, 3, rng=0), rng.standard_normal((T, 1, 2)), rng.standard_normal((T, 1, 3))


def mse(out, target):
    return mg.mse_loss(out, target)


def test_tbptt_train_clips_to_max_norm_before_every_step():
    model, x, y = small_problem()
    seen = []

    class Spy(mg.optim.SGD):
        def step(self):
            seen.append(np.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in self.params)))
            super().step()

    models.tbptt_train(model, x, y, mse, Spy(model.parameters(), lr=0.0), k1=4, max_norm=1e-3)
    assert len(seen) == 3 and max(seen) <= 1e-3 * (1 + 1e-6)


def test_tbptt_train_zeroes_gradients_before_every_window():
    model, x, y = small_problem()
    seen = []

    class Spy(mg.optim.SGD):
        def step(self):
            seen.append({n: p.grad.copy() for n, p in model.named_parameters()})

    models.tbptt_train(model, x, y, mse, Spy(model.parameters(), lr=0.0), k1=4)
    # the second window's gradient alone, from the state the first window left (lr = 0: no change)
    first = models.tbptt_train(model, x[:4], y[:4], mse, Spy(model.parameters(), lr=0.0), k1=4)
    model.zero_grad()
    out, _ = model(x[4:8], first.state)
    mse(out, y[4:8]).backward()
    for n, p in model.named_parameters():
        np.testing.assert_allclose(seen[1][n], p.grad, rtol=1e-12, atol=1e-15, err_msg=n)


# ---------------------------------------------------------------------------
# save: durable and atomic
# ---------------------------------------------------------------------------
def test_save_fsyncs_the_file_and_its_directory(tmp_path, monkeypatch):
    import stat

    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)), real(fd))[1])
    mg.save({"w": np.ones(3)}, tmp_path / "w.mg")
    assert synced == [False, True]  # the file, then the directory


def test_a_save_that_crashes_halfway_leaves_the_old_file_intact_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "w.mg"
    mg.save({"w": np.ones(3)}, path)
    before = path.read_bytes()
    real_write = serialization._write

    def crash(f, arrays):
        real_write(f, arrays)
        f.flush()
        f.truncate(f.tell() // 2)  # half the new file is on disk when the "crash" comes
        raise KeyboardInterrupt

    monkeypatch.setattr(serialization, "_write", crash)
    with pytest.raises(KeyboardInterrupt):
        mg.save({"w": np.zeros(3), "b": np.zeros(2)}, path)
    assert path.read_bytes() == before
    np.testing.assert_array_equal(mg.load(path)["w"], np.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.mg"]
