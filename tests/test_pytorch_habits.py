"""What a PyTorch user writes without thinking, and what minigrad now does with it.

Each test closes one hole from issue 15 that used to fail silently or obscurely: it proves the
right answer, or a clear error that names the problem. The torch comparisons at the end (forward
and gradient to 1e-10 for every op added for PyTorch's vocabulary) skip cleanly without torch.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn


def leaf(a, **kw):
    return mg.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True, **kw)


# ---------------------------------------------------------------------------
# In-place operators
# ---------------------------------------------------------------------------
def test_the_manual_sgd_loop_of_every_tutorial_trains_the_model():
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal((32, 3)))
    y = mg.Tensor(x.data @ np.array([[1.5], [-2.0], [0.5]]) + 0.3)
    model = nn.Linear(3, 1, rng=1)
    params = model.parameters()
    before = [p.data for p in params]  # the arrays themselves: the update must write into them
    losses = []
    for _ in range(50):
        loss = mg.mse_loss(model(x), y)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with mg.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert losses[-1] < 0.01 * losses[0], losses[::10]
    assert all(p is q for p, q in zip(params, model.parameters()))  # still the same leaves
    assert all(p.data is b and p.is_leaf and p.requires_grad for p, b in zip(params, before))


def test_an_in_place_update_bumps_the_version_the_stale_input_check_reads():
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()  # mul saved w's array
    with mg.no_grad():
        w -= 1.0
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_plus_equals_on_a_parameter_with_grad_mode_on_raises_as_torch():
    p = nn.Parameter(np.ones(3))
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad.*in-place operation.*no_grad"):
        p += 1
    np.testing.assert_array_equal(p.data, np.ones(3))  # and nothing was written


def test_plus_equals_on_an_op_result_is_recorded_and_keeps_the_tensors_identity():
    x = leaf([1.0, -2.0, 3.0])
    h = x * 2.0
    same = h
    h += x * x  # h = 2x + x²
    assert h is same and h.op == "add"
    h.sum().backward()
    np.testing.assert_allclose(x.grad, 2 + 2 * x.data)


def test_an_accumulator_made_of_zeros_collects_a_gradient_carrying_sum():
    x = leaf([1.0, 2.0])
    acc = mg.zeros(2)
    for k in range(3):
        acc += x * float(k + 1)  # torch: the constant becomes part of the graph
    assert acc.requires_grad and not acc.is_leaf
    acc.sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])


def test_in_place_writes_refuse_a_result_of_another_shape_or_dtype():
    with pytest.raises(ValueError, match=r"\+= in place on a tensor of shape \(3,\).*shape \(2, 3\)"):
        t = mg.zeros(3)
        t += np.ones((2, 3))
    with pytest.raises(TypeError, match=r"/= in place on a tensor of shape \(2,\) and dtype int64"):
        i = mg.arange(2)
        i /= 2
    i = mg.arange(3)
    i *= 2
    np.testing.assert_array_equal(i.data, [0, 2, 4])  # an integer result stays in place


def test_in_place_on_a_0d_reduction_result_under_no_grad():
    loss = mg.Tensor(np.ones(3)).sum()  # a numpy scalar inside: cannot be written into
    loss /= 3
    assert loss.item() == 1.0


def test_torchs_in_place_methods_follow_the_same_rules():
    p = leaf([1.0, 2.0])
    with mg.no_grad():
        p.sub_(0.5).mul_(2.0)
    np.testing.assert_array_equal(p.data, [1.0, 3.0])
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        p.add_(1.0)
    with pytest.raises(RuntimeError, match="fill_/zero_ on a leaf tensor that requires grad.*no_grad"):
        p.zero_()
    with mg.no_grad():
        p.fill_(4.0)
    np.testing.assert_array_equal(p.data, [4.0, 4.0])
    assert mg.Tensor(np.ones(3)).sum().zero_().item() == 0.0  # a 0-d result holding a numpy scalar


# ---------------------------------------------------------------------------
# Comparisons and truth
# ---------------------------------------------------------------------------
def test_equals_and_not_equals_give_elementwise_masks_that_where_uses():
    x = mg.Tensor(np.array([1.0, 2.0, 3.0, 2.0]))
    np.testing.assert_array_equal((x == 2).data, [False, True, False, True])
    np.testing.assert_array_equal((x != 2).data, [True, False, True, False])
    np.testing.assert_array_equal(mg.where(x == 2, 1.0, 0.0).data, [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal((x == mg.Tensor(np.array([1.0, 0, 3, 0]))).data, [True, False, True, False])
    assert (x == None) is False and (x != "a") is True  # noqa: E711 (not comparable: identity, as torch)


def test_tensors_still_hash_by_identity_as_dict_keys_and_set_members():
    a, b = mg.Tensor(np.ones(2)), mg.Tensor(np.ones(2))
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b" and len({a, b, a}) == 2


def test_bool_takes_the_value_of_one_element_and_refuses_many():
    assert bool(mg.Tensor(1.0)) and not bool(mg.Tensor(0.0)) and not bool(mg.Tensor([0.0]))
    zeros = mg.zeros(3)
    with pytest.raises(RuntimeError, match="Boolean value of a Tensor with more than one value.*ambiguous"):
        if zeros > 5:  # used to take the branch
            pass
    with pytest.raises(RuntimeError, match="with no values is ambiguous"):
        bool(mg.zeros(0))
    assert (zeros > 5).any().item() is False and (zeros == 0).all()


def test_if_loss_below_best_and_min_of_best_and_loss_work_on_a_0d_loss():
    best = float("inf")
    for v in (3.0, 1.0, 2.0):
        loss = (leaf(v) * 1.0).sum()
        if loss < best:
            best = loss.item()
    assert best == 1.0
    loss = mg.Tensor(0.5)
    assert min(2.0, loss) is loss and max(loss, 2.0) == 2.0
    assert float(loss) == 0.5 and int(mg.Tensor([7.9])) == 7
    assert [10, 20, 30][mg.Tensor(np.int64(2))] == 30  # __index__: a one-element integer tensor
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        [10, 20][mg.Tensor(1.0)]
    with pytest.raises(ValueError, match=r"one-element tensors.*shape \(2,\)"):
        float(mg.zeros(2))


def test_f_format_of_a_0d_or_one_element_tensor_formats_its_value():
    assert f"{mg.Tensor(1.23456):.3f}" == "1.235" and f"{mg.Tensor([2.0]):>5.1f}" == "  2.0"
    assert f"{mg.zeros(2)}" == str(mg.zeros(2))
    with pytest.raises(TypeError, match=r"format spec '.3f' needs a one-element tensor, got shape \(2,\)"):
        f"{mg.zeros(2):.3f}"


# ---------------------------------------------------------------------------
# Builtins that iterate
# ---------------------------------------------------------------------------
def test_len_and_iteration_walk_dim_0_and_refuse_a_0d_tensor():
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(mg.Tensor(3.0))  # used to return []
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(mg.Tensor(3.0))
    m = leaf(np.arange(6.0).reshape(2, 3))
    rows = list(m)
    assert len(m) == 2 and [r.shape for r in rows] == [(3,), (3,)]
    (rows[0] * 2 + rows[1]).sum().backward()  # iterating is differentiable
    np.testing.assert_array_equal(m.grad, [[2, 2, 2], [1, 1, 1]])
    assert 4.0 in m and 9.0 not in m


def test_builtin_max_over_a_tensor_behaves_as_torch():
    assert max(mg.Tensor(np.array([1.0, 5.0, 2.0]))).item() == 5.0
    with pytest.raises(RuntimeError, match="more than one value"):  # rows compared: torch's error too
        max(mg.Tensor(np.ones((2, 3))))


# ---------------------------------------------------------------------------
# numpy functions on tensors
# ---------------------------------------------------------------------------
def test_np_asarray_gives_the_float_values_detached_never_an_object_array():
    x = leaf([[1.0, 2.0]])
    a = np.asarray(x)
    assert a.dtype == np.float64 and type(a) is np.ndarray and a is x.data
    assert np.array([mg.Tensor(1.0), mg.Tensor(2.0)]).dtype == np.float64
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    assert np.array(x, copy=True) is not x.data


def test_numpy_ufuncs_and_functions_dispatch_to_minigrad_ops_with_gradients():
    x = leaf([0.5, -1.0, 2.0])
    y = np.exp(x) * np.ones(3) + np.maximum(x, 0.0)
    assert isinstance(y, mg.Tensor)
    np.sum(y).backward()
    np.testing.assert_allclose(x.grad, np.exp(x.data) + (x.data > 0))
    z = np.zeros_like(x)
    assert isinstance(z, mg.Tensor) and z.shape == (3,) and z.dtype == np.float64 and not z.requires_grad
    assert isinstance(np.ones(3) == x, mg.Tensor) and np.isfinite(x).all()
    assert np.allclose(x, x.data) and np.shape(x) == (3,)
    np.testing.assert_allclose(np.clip(x, a_min=0, a_max=1).data, [0.5, 0.0, 1.0])


def test_numpy_functions_without_a_minigrad_op_raise_naming_the_function_and_the_way_out():
    x = leaf([0.5, 1.0])
    with pytest.raises(TypeError, match=r"numpy\.sin has no minigrad op.*np\.sin\(t\.numpy\(\)\)"):
        np.sin(x)
    with pytest.raises(TypeError, match=r"numpy\.cumsum is not supported.*t\.numpy\(\)"):
        np.cumsum(x)
    with pytest.raises(TypeError, match=r"numpy\.add.*out"):
        np.add(x, 1.0, out=np.empty(2))
    with pytest.raises(TypeError, match=r"numpy\.add\.reduce"):
        np.add.reduce(x)


# ---------------------------------------------------------------------------
# dim= and keepdim=
# ---------------------------------------------------------------------------
def test_reductions_take_pytorchs_dim_and_keepdim_and_refuse_both_spellings():
    a = np.arange(6.0).reshape(2, 3)
    x = mg.Tensor(a)
    np.testing.assert_array_equal(x.sum(dim=1, keepdim=True).data, a.sum(1, keepdims=True))
    np.testing.assert_array_equal(mg.mean(x, dim=(0, 1)).data, a.mean())
    np.testing.assert_allclose(x.softmax(dim=0).data, mg.softmax(x, axis=0).data)
    np.testing.assert_allclose(mg.log_softmax(x, dim=0).data, mg.log_softmax(x, 0).data)
    values, indices = x.max(dim=1)  # torch's (values, indices)
    np.testing.assert_array_equal(values.data, [2, 5])
    np.testing.assert_array_equal(x.min(dim=0, keepdim=True).indices.data, [[0, 0, 0]])
    np.testing.assert_array_equal(x.max(axis=1).data, [2, 5])  # numpy's axis= keeps giving values
    for call in (
        lambda: x.sum(axis=0, dim=0),
        lambda: x.mean(keepdims=True, keepdim=True),
        lambda: x.softmax(0, dim=0),
    ):
        with pytest.raises(TypeError, match="not both"):
            call()
    with pytest.raises(TypeError, match=r"max\(dim=...\) takes one int dim"):
        x.max(dim=(0, 1))


# ---------------------------------------------------------------------------
# Creation helpers and the global seed
# ---------------------------------------------------------------------------
def test_creation_helpers_take_pytorchs_shapes_dtypes_and_requires_grad():
    assert mg.zeros(2, 3).shape == (2, 3) == mg.ones((2, 3)).shape and mg.zeros(2).dtype == np.float64
    assert mg.ones(2, dtype=mg.float32).dtype == np.float32 and mg.zeros(2, requires_grad=True).is_leaf
    assert mg.full((2,), 3).dtype == np.int64 and mg.full(2, 0.5).data.tolist() == [0.5, 0.5]
    np.testing.assert_array_equal(mg.arange(4).data, [0, 1, 2, 3])
    assert mg.arange(4).dtype == np.int64 and mg.arange(0, 1, 0.25).dtype == np.float64
    like = mg.Tensor(np.ones((2, 1), np.float32))
    for f in (mg.zeros_like, mg.ones_like, mg.randn_like, mg.rand_like):
        t = f(like)
        assert t.shape == (2, 1) and t.dtype == np.float32
    assert mg.full_like(like, 7.0).data.tolist() == [[7.0], [7.0]]
    r = mg.rand(1000, generator=0)
    assert 0 <= r.data.min() and r.data.max() < 1
    with pytest.raises(TypeError, match="floating-point dtype"):
        mg.randn(2, dtype=np.int64)
    with pytest.raises(TypeError, match="only floating-point tensors can require grad"):
        mg.arange(3, requires_grad=True)
    with pytest.raises(ValueError, match="non-negative"):
        mg.zeros(-1)


def test_manual_seed_makes_random_helpers_reproducible_and_a_generator_overrides_it():
    mg.manual_seed(0)
    a = mg.randn(3).data
    mg.manual_seed(0)
    assert np.array_equal(a, mg.randn(3).data) and not np.array_equal(a, mg.randn(3).data)
    g = np.random.default_rng(5)
    np.testing.assert_array_equal(mg.randn(3, generator=g).data, np.random.default_rng(5).standard_normal(3))


# ---------------------------------------------------------------------------
# Hooks and mg.grad
# ---------------------------------------------------------------------------
def test_a_hook_on_a_non_leaf_sees_and_replaces_its_gradient_before_retain_grad_keeps_it():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    seen = []
    h.retain_grad()
    h.register_hook(lambda g: seen.append(g.copy()))  # registered after retain_grad: still runs first
    h.register_hook(lambda g: g * 10)
    (h * h).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * h.data)
    np.testing.assert_allclose(h.grad, 20 * h.data)  # the hooked δ, as torch
    np.testing.assert_allclose(x.grad, 3 * 20 * h.data)


def test_a_hook_on_a_leaf_runs_before_its_grad_accumulates_and_can_be_removed():
    w = leaf([1.0, -1.0])
    handle = w.register_hook(lambda g: -g)
    (w * 2.0).sum().backward()
    np.testing.assert_array_equal(w.grad, [-2.0, -2.0])
    handle.remove()
    w.zero_grad()
    (w * 2.0).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0])


def test_hooks_refuse_tensors_without_grad_and_replacements_of_another_shape():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.zeros(2).register_hook(lambda g: g)
    x = leaf([1.0, 2.0])
    y = x * 2.0
    y.register_hook(lambda g: g[:1])
    with pytest.raises(RuntimeError, match=r"returned a gradient of shape \(1,\).*shape \(2,\)"):
        y.sum().backward()


def test_mg_grad_returns_the_gradients_and_touches_no_grad_at_all():
    w, b, other = leaf([1.0, 2.0]), leaf(0.5), leaf([3.0, 4.0])
    h = w * other + b
    h.retain_grad()
    loss = (h * h).sum()
    dw, db, dh = mg.grad(loss, [w, b, h], retain_graph=True)
    assert w.grad is None and b.grad is None and other.grad is None and h._grad is None
    loss.backward()
    np.testing.assert_allclose(dw, w.grad)
    np.testing.assert_allclose(db, b.grad)
    np.testing.assert_allclose(dh, h.grad)


def test_mg_grad_weights_outputs_by_grad_outputs_and_reports_unused_inputs():
    x, unused = leaf([1.0, 2.0]), leaf([0.0])
    y1, y2 = x * 2.0, x * x
    (gx,) = mg.grad([y1, y2], [x], grad_outputs=[np.ones(2), np.array([1.0, 0.5])])
    np.testing.assert_allclose(gx, 2 + np.array([1.0, 0.5]) * 2 * x.data)
    with pytest.raises(RuntimeError, match=r"input\(s\) \[1\] were not used.*allow_unused=True"):
        mg.grad((x * x).sum(), [x, unused])
    gx, gu = mg.grad((x * x).sum(), [x, unused], allow_unused=True)
    assert gu is None and x.grad is None
    loss = (x * x).sum()
    mg.grad(loss, x)
    with pytest.raises(mg.GraphFreedError):  # retain_graph=False frees the graph, as backward does
        loss.backward()
    with pytest.raises(NotImplementedError, match="higher-order gradients are not supported"):
        mg.grad((x * x).sum(), x, create_graph=True)


# ---------------------------------------------------------------------------
# Discoverability
# ---------------------------------------------------------------------------
def test_help_minigrad_lists_the_api_and_every_public_name_exists_with_a_docstring():
    import pydoc

    text = pydoc.render_doc(mg, renderer=pydoc.plaintext)
    for name in ("unsqueeze", "register_hook", "manual_seed", "zeros_like", "dim="):
        assert name in text, name
    for name in mg.__all__:
        obj = getattr(mg, name)
        if callable(obj) and not isinstance(obj, type) and getattr(obj, "__module__", "").startswith("minigrad"):
            assert obj.__doc__, f"mg.{name} has no docstring"


# ---------------------------------------------------------------------------
# Against PyTorch: forward and gradient to 1e-10
# ---------------------------------------------------------------------------
TORCH_CASES = {
    "unsqueeze": (lambda m, x: m.unsqueeze(x, 1), [(2, 3)]),
    "squeeze": (lambda m, x: m.squeeze(x), [(2, 1, 3, 1)]),
    "squeeze dim": (lambda m, x: m.squeeze(x, 1), [(2, 1, 3)]),
    "flatten": (lambda m, x: m.flatten(x, 1), [(2, 3, 4)]),
    "permute": (lambda m, x: x.permute(2, 0, 1), [(2, 3, 4)]),
    "view": (lambda m, x: x.view(3, -1), [(2, 3, 2)]),
    "min": (lambda m, x: m.min(x), [(3, 4)]),
    "min dim": (lambda m, x: m.min(x, dim=1).values, [(3, 4)]),
    "max dim keepdim": (lambda m, x: m.max(x, dim=0, keepdim=True)[0], [(3, 4)]),
    "sum dim keepdim": (lambda m, x: m.sum(x, dim=1, keepdim=True), [(3, 4)]),
    "mean dims": (lambda m, x: m.mean(x, dim=(0, 2)), [(2, 3, 4)]),
    "softmax dim": (lambda m, x: m.softmax(x, dim=0), [(3, 4)]),
    "maximum": (lambda m, a, b: m.maximum(a, b), [(2, 3), (3,)]),
    "minimum": (lambda m, a, b: m.minimum(a, b), [(2, 1), (1, 3)]),
    "float then double": (lambda m, x: (x.float() * 3).double(), [(2, 3)]),
}


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_new_ops_match_torch_forward_and_gradient(name):
    torch = pytest.importorskip("torch")
    fn, shapes = TORCH_CASES[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    arrays = [rng.standard_normal(s) for s in shapes]
    if name in ("maximum", "minimum"):  # plant ties where the shapes broadcast: torch splits them ½ : ½
        arrays[1] = np.round(arrays[1])
        arrays[0] = np.round(arrays[0])
    ours = [leaf(a) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = fn(mg, *ours), fn(torch, *theirs)
    weights = rng.standard_normal(y.shape)
    (y * weights).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    tol = 1e-6 if "float" in name else 1e-10  # a float32 round trip
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=tol, atol=tol)
    for x, tx in zip(ours, theirs):
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=tol, atol=tol)


def test_argmax_argmin_and_max_indices_match_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]])
    x, t = mg.Tensor(a), torch.tensor(a)
    assert mg.argmax(x).item() == torch.argmax(t).item()
    np.testing.assert_array_equal(x.argmax(dim=1).data, t.argmax(dim=1).numpy())
    np.testing.assert_array_equal(x.argmin(dim=0, keepdim=True).data, t.argmin(dim=0, keepdim=True).numpy())
    np.testing.assert_array_equal(x.max(dim=1).indices.data, t.max(dim=1).indices.numpy())


def test_mg_grad_and_hooks_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((2,))
    x, w = leaf(a), leaf(b)
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    h, th = (x * w).tanh(), (tx * tw).tanh()
    h.register_hook(lambda g: g * 2)
    th.register_hook(lambda g: g * 2)
    gx, gw = mg.grad((h * h).sum(), [x, w])
    tgx, tgw = torch.autograd.grad((th * th).sum(), [tx, tw])
    np.testing.assert_allclose(gx, tgx.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw, tgw.numpy(), rtol=1e-10, atol=1e-12)


def test_in_place_sgd_step_matches_torch():
    torch = pytest.importorskip("torch")
    a = np.array([0.5, -1.5])
    p, tp = leaf(a), torch.tensor(a, requires_grad=True)
    for _ in range(3):
        p.zero_grad()
        tp.grad = None
        ((p * p * p).sum()).backward()
        ((tp * tp * tp).sum()).backward()
        with mg.no_grad():
            p -= 0.1 * p.grad
        with torch.no_grad():
            tp -= 0.1 * tp.grad
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12)


def test_transpose_with_two_dims_swaps_them_as_torch_does_even_on_a_2d_tensor():
    x = mg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    np.testing.assert_array_equal(x.transpose(0, 1).data, x.data.T)  # numpy's (0, 1) would be the identity
    np.testing.assert_array_equal(mg.transpose(x, -1, 0).data, x.data.T)
    y = mg.Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    assert mg.transpose(y, 0, 2).shape == (4, 3, 2)  # torch: swap dims 0 and 2
    assert mg.transpose(y, 1, 0, 2).shape == (3, 2, 4)  # three integers: numpy's permutation
    assert mg.transpose(y, (2, 0, 1)).shape == (4, 2, 3)  # a tuple: numpy's permutation
    assert np.transpose(y, (2, 0, 1)).shape == (4, 2, 3)
    assert mg.gradcheck(lambda t: mg.transpose(t, 0, 2) * np.arange(24.0).reshape(4, 3, 2), [y])


def test_transpose_matches_torch_for_two_dims():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((2, 3, 4))
    for d0, d1 in [(0, 1), (0, 2), (1, 2), (-1, 0), (1, 1)]:
        np.testing.assert_array_equal(
            mg.transpose(mg.Tensor(a), d0, d1).data, torch.tensor(a).transpose(d0, d1).numpy()
        )


def test_min_takes_a_list_as_max_does():
    assert float(mg.min([3.0, 1.0, 2.0])) == 1.0 and float(mg.max([3.0, 1.0, 2.0])) == 3.0


def test_a_leaf_hook_runs_once_per_backward_on_the_gradient_summed_over_its_uses_as_torch():
    torch = pytest.importorskip("torch")
    calls, tcalls = [], []
    W = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    W.register_hook(lambda g: calls.append(g.copy()) or np.minimum(g, 1.5))
    ((W * 3).sum() + (W * W).sum()).backward()  # two uses: δ = 3 + 2W = (5, 7), clipped to 1.5 once
    tW = torch.tensor([1.0, 2.0], requires_grad=True)
    tW.register_hook(lambda g: tcalls.append(g.clone()) or g.clamp(max=1.5))
    ((tW * 3).sum() + (tW * tW).sum()).backward()
    assert len(calls) == len(tcalls) == 1
    np.testing.assert_array_equal(calls[0], tcalls[0].numpy())
    np.testing.assert_array_equal(W.grad, tW.grad.numpy())  # (1.5, 1.5), not (3.5, 4.5) per use
    (dW,) = mg.grad((W * 3).sum() + (W * W).sum(), [W])  # mg.grad: the same rule
    np.testing.assert_array_equal(dW, [1.5, 1.5])


def test_a_backward_that_fails_mid_walk_leaves_no_held_hook_gradient_for_the_next():
    W = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    W.register_hook(lambda g: g)
    b = (W * W).sum()  # older: reached last by the walk
    a = (W * 3).sum()  # newer: its δ = 3 reaches W (and is held) before the walk meets b
    b.backward()  # frees b's graph
    with pytest.raises(RuntimeError, match="backward"):
        (b + a).backward()  # fails at b's freed node, after a's contribution was held
    W.grad = None
    (W * 1.0).sum().backward()
    np.testing.assert_array_equal(W.grad, [1.0, 1.0])  # not 1 + a stale 3
