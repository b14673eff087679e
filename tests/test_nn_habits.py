"""The habits a PyTorch user brings to nn / optim / functional: each one gives torch's answer or a clear error.

One test per hole of issue 15 (Module registration, containers, dtype, Dropout, LayerNorm,
cross_entropy options, padding_idx, seeding, param_groups, schedulers, duplicates, clear errors).
"""

import math
import warnings

import numpy as np
import pytest

import minigrad as mg
import models
from minigrad.nn import (
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    ParameterDict,
    ParameterList,
    Sequential,
    StateDictError,
)


# ---------------------------------------------------------------------------
# Registration: where torch's users would lose a parameter silently
# ---------------------------------------------------------------------------
class Scaled(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter(np.ones(3))


def test_replacing_a_parameter_with_a_tensor_raises_torchs_type_error():
    m = Scaled()
    with pytest.raises(TypeError, match=r"cannot assign 'Tensor' as parameter 'w' \(nn.Parameter or None expected\)"):
        m.w = m.w * 2
    assert m.parameters() == [m.w] and isinstance(m.w, Parameter)  # unchanged
    m.w = Parameter(np.zeros(3))  # a new Parameter is fine, as in torch
    assert m.parameters() == [m.w]


def test_replacing_a_submodule_with_something_else_raises():
    m = Module()
    m.lin = Linear(2, 2, rng=0)
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'lin'"):
        m.lin = 3


def test_a_plain_list_or_dict_of_parameters_or_modules_warns_and_names_the_container_to_use():
    m = Module()
    with pytest.warns(UserWarning, match=r"plain list .*nn.ModuleList / nn.ParameterList"):
        m.layers = [Linear(2, 2, rng=0), Linear(2, 2, rng=1)]
    with pytest.warns(UserWarning, match=r"plain dict .*nn.ModuleDict / nn.ParameterDict"):
        m.ps = {"a": Parameter(np.ones(1))}
    assert m.parameters() == []  # they really are not registered: that is what the warning says


def test_a_list_of_already_registered_parameters_is_a_shortcut_and_does_not_warn():
    m = Module()
    m.a, m.b = Parameter(np.ones(1)), Parameter(np.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.both = [m.a, m.b]
        m.numbers = [1, 2, 3]


def test_a_requires_grad_tensor_attribute_warns_use_parameter():
    m = Module()
    with pytest.warns(UserWarning, match=r"requires_grad=True, not an nn.Parameter"):
        m.w = mg.Tensor(np.ones(2), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.const = mg.Tensor(np.ones(2))  # a constant is fine


# ---------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------
def test_sequential_runs_in_order_and_names_parameters_as_torch():
    net = Sequential(Linear(3, 4, rng=0), Linear(4, 2, rng=1))
    x = np.random.default_rng(2).standard_normal((5, 3))
    want = (x @ net[0].weight.data.T + net[0].bias.data) @ net[1].weight.data.T + net[1].bias.data
    np.testing.assert_allclose(net(mg.Tensor(x)).data, want, rtol=0, atol=1e-14)
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert len(net) == 2 and isinstance(net, ModuleList)


def test_module_dict_and_parameter_list_and_dict_register_their_items():
    m = Module()
    m.heads = ModuleDict({"a": Linear(2, 1, rng=0), "b": Linear(2, 3, rng=1)})
    m.scales = ParameterList([np.ones(2), Parameter(np.zeros(1))])
    m.extra = ParameterDict({"gain": np.ones(3)})
    names = [n for n, _ in m.named_parameters()]
    assert names == [
        "heads.a.weight",
        "heads.a.bias",
        "heads.b.weight",
        "heads.b.bias",
        "scales.0",
        "scales.1",
        "extra.gain",
    ]
    assert set(m.heads) == {"a", "b"} and "a" in m.heads and m.heads["b"].out_features == 3
    assert isinstance(m.scales[0], Parameter) and len(m.scales) == 2
    opt = mg.optim.SGD(m.parameters(), lr=1.0)
    m.scales[0].grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(m.scales[0].data, [0.0, 0.0])  # the optimizer reaches them
    with pytest.raises(KeyError, match="would shadow"):
        m.heads["train"] = Linear(1, 1)


# ---------------------------------------------------------------------------
# dtype
# ---------------------------------------------------------------------------
def test_module_to_float_converts_in_place_keeping_the_parameter_objects():
    rnn = models.GRU(3, 4, num_layers=2, rng=0)
    before = rnn.parameters()
    assert rnn.float() is rnn
    assert all(p is q and p.dtype == np.float32 for p, q in zip(rnn.parameters(), before))
    out, _ = rnn(np.ones((2, 1, 3), np.float32))  # the layer's input check follows the new dtype
    assert out.dtype == np.float32
    rnn.double()
    assert all(p.dtype == np.float64 for p in rnn.parameters())
    with pytest.raises(TypeError, match="floating-point"):
        rnn.to(np.int64)


def test_float64_input_into_a_float32_linear_is_a_clear_type_error():
    lin = Linear(3, 2, rng=0, dtype=np.float32)
    with pytest.raises(TypeError, match=r"Linear: input has dtype float64 but the parameters are float32"):
        lin(np.ones((1, 3)))
    assert lin(np.ones((1, 3), np.float32)).dtype == np.float32


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------
def test_dropout_is_inverted_in_training_its_gradient_is_the_mask_and_it_is_identity_in_eval():
    p = 0.3
    drop = Dropout(p, rng=0)
    x = mg.Tensor(np.random.default_rng(1).standard_normal((200, 50)), requires_grad=True)
    y = drop(x)
    keep = np.random.default_rng(0).random((200, 50)) >= p  # the same draw the layer made
    np.testing.assert_allclose(y.data, np.where(keep, x.data / (1 - p), 0.0), rtol=1e-15, atol=0)
    assert abs(keep.mean() - (1 - p)) < 0.02
    g = np.random.default_rng(2).standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_allclose(x.grad, np.where(keep, g / (1 - p), 0.0), rtol=1e-15, atol=0)  # δx = δy ⊙ m / (1 − p)
    drop.eval()
    assert drop(x) is x
    assert Dropout(1.0)(x).data.max() == 0 and Dropout(0.0)(x) is x
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\], got 1.5"):
        Dropout(1.5)


def test_dropout_without_rng_draws_from_the_global_generator():
    x = mg.Tensor(np.ones((10, 10)))
    mg.manual_seed(3)
    a = Dropout(0.5)(x).data
    mg.manual_seed(3)
    b = Dropout(0.5)(x).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, Dropout(0.5)(x).data)  # the stream moves on


def test_rnn_dropout_acts_between_layers_only_in_training():
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    rnn = models.RNN(3, 4, num_layers=2, dropout=0.4, rng=1)
    one, two = models.RNN(3, 4, rng=0), models.RNN(4, 4, rng=0)  # the same layers, run one after the other
    one.load_state_dict({k[:-1] + "0": v for k, v in rnn.state_dict().items() if k.endswith("l0")})
    two.load_state_dict({k[:-1] + "0": v for k, v in rnn.state_dict().items() if k.endswith("l1")})
    mg.manual_seed(7)
    out, h_n = rnn(x)
    mg.manual_seed(7)
    mid, h0 = one(x)
    keep = mg.seeding.default_generator().random(mid.shape) >= 0.4
    want, h1 = two(mid.data * keep / 0.6)
    np.testing.assert_allclose(out.data, want.data, rtol=0, atol=1e-14)
    np.testing.assert_allclose(h_n.data, np.concatenate([h0.data, h1.data]), rtol=0, atol=1e-14)
    rnn.eval()
    np.testing.assert_allclose(rnn(x)[0].data, two(one(x)[0])[0].data, rtol=0, atol=1e-14)  # eval: no dropout
    with pytest.warns(UserWarning, match="does nothing with num_layers=1"):
        models.LSTM(3, 4, dropout=0.5)


# ---------------------------------------------------------------------------
# LayerNorm
# ---------------------------------------------------------------------------
def test_layernorm_passes_gradcheck_over_one_and_two_normalized_axes():
    rng = np.random.default_rng(0)
    for shape, norm in [((4, 5), 5), ((2, 3, 4), (3, 4))]:
        ln = LayerNorm(norm)
        ln.weight.data[...] = rng.standard_normal(ln.weight.shape)
        ln.bias.data[...] = rng.standard_normal(ln.bias.shape)
        x = mg.Tensor(rng.standard_normal(shape), requires_grad=True)
        assert mg.gradcheck(lambda x, w, b: ln(x), [x, ln.weight, ln.bias])
        axes = tuple(range(x.ndim - ln.weight.ndim, x.ndim))  # μ, σ² over all normalized axes together
        mu, var = x.data.mean(axes, keepdims=True), x.data.var(axes, keepdims=True)
        want = (x.data - mu) / np.sqrt(var + 1e-5) * ln.weight.data + ln.bias.data
        np.testing.assert_allclose(ln(x).data, want, rtol=0, atol=1e-13)


def test_layernorm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 6))
    w, b = rng.standard_normal(6), rng.standard_normal(6)
    ln = LayerNorm(6, eps=1e-3)
    ln.weight.data[...], ln.bias.data[...] = w, b
    xm = mg.Tensor(x, requires_grad=True)
    y = ln(xm)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.layer_norm(xt, (6,), wt, bt, eps=1e-3)
    yt.backward(torch.tensor(g))
    for ours, theirs in [(y.data, yt), (xm.grad, xt.grad), (ln.weight.grad, wt.grad), (ln.bias.grad, bt.grad)]:
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=1e-10)
    plain = LayerNorm(6, elementwise_affine=False)
    assert plain.parameters() == []
    with pytest.raises(ValueError, match=r"last dimensions are \(6,\), got shape \(2, 5\)"):
        plain(np.ones((2, 5)))


# ---------------------------------------------------------------------------
# cross_entropy options
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_options_match_torch(reduction, label_smoothing, ignore):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((7, 5))
    y = rng.integers(0, 5, 7)
    if ignore:
        y[[1, 4]] = 3
    kw = {"reduction": reduction, "label_smoothing": label_smoothing, "ignore_index": 3 if ignore else -100}
    zm = mg.Tensor(z, requires_grad=True)
    loss = mg.cross_entropy(zm, y, **kw)
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(y), **kw)
    w = rng.standard_normal(loss.shape)
    (loss * mg.Tensor(w)).sum().backward()
    (lt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(loss.data, lt.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(zm.grad, zt.grad.numpy(), rtol=0, atol=1e-10)


def test_cross_entropy_ignored_rows_may_hold_any_value_and_bad_options_are_named():
    z = mg.Tensor(np.zeros((3, 4)))
    assert np.isclose(mg.cross_entropy(z, np.array([-100, 1, 2])).item(), math.log(4))  # -100 skipped, not an index
    with pytest.raises(IndexError, match=r"targets must lie in \[0, 4\)"):
        mg.cross_entropy(z, np.array([-1, 1, 2]))
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        mg.cross_entropy(z, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must lie in"):
        mg.cross_entropy(z, np.array([0, 1, 2]), label_smoothing=-0.1)


# ---------------------------------------------------------------------------
# Embedding padding_idx
# ---------------------------------------------------------------------------
def test_embedding_padding_row_starts_at_zero_and_gets_no_gradient():
    emb = Embedding(5, 3, padding_idx=-1, rng=0)  # -1 → row 4, as torch
    assert emb.padding_idx == 4
    np.testing.assert_array_equal(emb.weight.data[4], 0)
    emb.weight.data[4] = 7.0  # changed by hand: the forward still reads it, as torch
    idx = np.array([[0, 4, 2], [4, 4, 0]])
    out = emb(idx)
    np.testing.assert_array_equal(out.data, emb.weight.data[idx])
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(emb.weight.grad[4], 0)
    np.testing.assert_array_equal(emb.weight.grad[0], [2, 2, 2])
    with pytest.raises(ValueError, match="padding_idx must lie in"):
        Embedding(5, 3, padding_idx=5)


# ---------------------------------------------------------------------------
# Seeding
# ---------------------------------------------------------------------------
def test_manual_seed_makes_module_init_reproducible_and_modules_in_sequence_differ():
    mg.manual_seed(0)
    a, b = Linear(3, 3), Linear(3, 3)
    mg.manual_seed(0)
    a2 = Linear(3, 3)
    np.testing.assert_array_equal(a.weight.data, a2.weight.data)
    assert not np.array_equal(a.weight.data, b.weight.data)
    # an explicit seed asks for exactly that stream (documented in nn.init._rng)
    np.testing.assert_array_equal(Linear(3, 3, rng=5).weight.data, Linear(3, 3, rng=5).weight.data)


# ---------------------------------------------------------------------------
# optim: param_groups, schedulers, duplicates, hyper-parameters
# ---------------------------------------------------------------------------
def test_param_groups_take_their_own_lr_and_the_defaults_otherwise():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(1))
    opt = mg.optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1, momentum=0.5)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]
    assert [g["momentum"] for g in opt.param_groups] == [0.5, 0.5]
    a.grad, b.grad = np.ones(2), np.ones(1)
    opt.step()
    np.testing.assert_allclose(a.data, [-0.1, -0.1])
    np.testing.assert_allclose(b.data, [-1.0])
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['lrr'\]"):
        mg.optim.Adam([{"params": [a], "lrr": 1}])


def test_adam_with_param_groups_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0, v0 = rng.standard_normal((3, 2)), rng.standard_normal(2)
    w, v = Parameter(w0.copy()), Parameter(v0.copy())
    opt = mg.optim.Adam([{"params": [w], "lr": 0.05}, {"params": [v], "betas": (0.8, 0.99)}], lr=0.01)
    wt, vt = torch.tensor(w0, requires_grad=True), torch.tensor(v0, requires_grad=True)
    topt = torch.optim.Adam([{"params": [wt], "lr": 0.05}, {"params": [vt], "betas": (0.8, 0.99)}], lr=0.01)
    for _ in range(5):
        g1, g2 = rng.standard_normal((3, 2)), rng.standard_normal(2)
        w.grad, v.grad = g1, g2
        wt.grad, vt.grad = torch.tensor(g1), torch.tensor(g2)
        opt.step()
        topt.step()
    np.testing.assert_allclose(w.data, wt.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(v.data, vt.detach().numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda o, s: s.StepLR(o, step_size=3, gamma=0.5),
        lambda o, s: s.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
        lambda o, s: s.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=6),
    ],
    ids=["StepLR", "CosineAnnealingLR", "LinearLR"],
)
def test_schedulers_give_torchs_learning_rates_exactly(make):
    torch = pytest.importorskip("torch")
    ours = mg.optim.SGD([{"params": [Parameter(np.zeros(1))]}, {"params": [Parameter(np.zeros(1))], "lr": 0.3}], lr=0.1)
    theirs = torch.optim.SGD(
        [{"params": [torch.zeros(1, requires_grad=True)]}, {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.3}],
        lr=0.1,
    )
    s, t = make(ours, mg.optim), make(theirs, torch.optim.lr_scheduler)
    got, want = [], []
    for _ in range(30):  # past T_max: torch's cosine goes back up, and so does ours
        got.append(s.get_last_lr())
        want.append(t.get_last_lr())
        ours.step()
        theirs.step()
        s.step()
        t.step()
    assert got == want  # bit for bit: the same recurrences
    assert [g["lr"] for g in ours.param_groups] == [g["lr"] for g in theirs.param_groups]


def test_a_parameter_listed_twice_is_refused_by_the_optimizers():
    p = Parameter(np.ones(2), name="w")
    for opt in (mg.optim.SGD, mg.optim.Adam):
        with pytest.raises(ValueError, match="parameter 'w' appears more than once"):
            opt([p, p], lr=0.1)
        with pytest.raises(ValueError, match="more than one parameter group"):
            opt([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_clip_grad_norm_counts_a_repeated_parameter_once():
    p = Parameter(np.ones(3))
    p.grad = np.full(3, 2.0)
    total = mg.optim.clip_grad_norm_([p, p], 1.0)
    assert math.isclose(total, math.sqrt(12))  # torch says √24 and then scales twice
    assert math.isclose(float(np.linalg.norm(p.grad)), 1.0, rel_tol=1e-6)
    assert math.isclose(mg.optim.clip_grad_norm_([p], math.inf), 1.0, rel_tol=1e-6)  # ∞ only measures, as torch
    with pytest.raises(ValueError, match="max_norm must be a finite number ≥ 0, got max_norm=-1"):
        mg.optim.clip_grad_norm_([p], -1)


def test_hyper_parameters_are_checked_by_name_and_numpy_scalars_accepted():
    p = Parameter(np.ones(2))
    assert mg.optim.SGD([p], lr=np.float32(0.1)).lr == pytest.approx(0.1)
    with pytest.raises(ValueError, match="SGD: momentum must be a finite number ≥ 0, got momentum=nan"):
        mg.optim.SGD([p], lr=0.1, momentum=float("nan"))
    with pytest.raises(ValueError, match="Adam: eps must be a finite number ≥ 0, got eps=-1"):
        mg.optim.Adam([p], eps=-1)
    with pytest.raises(ValueError, match=r"Adam: betas\[1\] must be a finite number in \[0, 1\)"):
        mg.optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive integer"):
        mg.optim.StepLR(mg.optim.SGD([p], lr=0.1), step_size=0)


# ---------------------------------------------------------------------------
# Clear errors
# ---------------------------------------------------------------------------
def test_adam_load_state_dict_without_t_names_it():
    p = Parameter(np.ones(2))
    opt = mg.optim.Adam([p])
    with pytest.raises(KeyError, match="no step count 't'"):
        opt.load_state_dict({"m.0": np.zeros(2), "v.0": np.zeros(2)})
    with pytest.raises(TypeError, match=r"mg.load\(path\)"):
        opt.load_state_dict("adam.npz")


def test_module_load_state_dict_of_a_path_suggests_mg_load():
    with pytest.raises(TypeError, match=r"expects a dict .* got str. To load a file: model.load_state_dict\(mg.load"):
        Linear(2, 2).load_state_dict("model.npz")


def test_module_load_state_dict_shape_mismatch_is_a_value_error_naming_key_and_shapes():
    lin = Linear(2, 3, rng=0)
    state = lin.state_dict()
    state["weight"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"weight: expected shape \(3, 2\), got \(2, 3\)") as e:
        lin.load_state_dict(state)
    assert isinstance(e.value, StateDictError) and isinstance(e.value, KeyError)  # older code caught KeyError
    assert not str(e.value).startswith("'")  # the message, not KeyError's quoted repr


def test_help_models_lists_the_api():
    assert "unroll" in models.__all__ and "tbptt_train" in models.__all__
    assert all(hasattr(models, n) for n in models.__all__)
    assert "unroll(cell, x, h0, truncate=None)" in models.__doc__
    assert all(hasattr(mg.nn, n) for n in mg.nn.__all__) and all(hasattr(mg.optim, n) for n in mg.optim.__all__)
