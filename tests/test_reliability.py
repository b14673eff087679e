"""Reliability: no silent wrong gradient, and every bad input a clear error.

Each test hands the engine one kind of bad input (or one hard situation: a NaN
deep inside an unroll, a 100,000-step graph, a crash halfway through a save)
and checks the exception type and that the message names the problem: the op,
the shapes, the argument, the file.
"""

from __future__ import annotations

import gc
import os
import pickle
import weakref
import zipfile

import numpy as np
import pytest

import minigrad as mg
import models
from minigrad.nn import Embedding, Linear, Module, Parameter


def leaf(*shape, seed=0, dtype=np.float64, name=None):
    return mg.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=True, name=name)


class TwoLayer(Module):
    def __init__(self, seed=0):
        super().__init__()
        self.hidden = Linear(4, 8, rng=seed)
        self.out = Linear(8, 1, rng=seed + 1)

    def forward(self, x):
        return self.out(self.hidden(x).tanh())


# ---------------------------------------------------------------------------
# Tensor construction
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, says",
    [
        (np.array([1.0, None], dtype=object), "dtype object"),
        (np.array(["a", "b"]), "dtype <U1"),
        ("abc", "dtype <U3"),
        ([[1.0, 2.0], [3.0]], "ragged"),
        ([1.0, "x"], "dtype <U"),
        ({"a": 1}, "dtype object"),
        (np.array([1 + 2j]), "dtype complex128"),
    ],
    ids=["object array", "string array", "string", "ragged list", "mixed list", "dict", "complex"],
)
def test_tensor_from_non_numeric_or_ragged_data_is_a_type_error_naming_the_problem(data, says):
    with pytest.raises(TypeError, match="cannot make a Tensor") as e:
        mg.Tensor(data)
    assert says in str(e.value)


def test_an_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating-point tensors can require grad, got dtype int64"):
        mg.Tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(TypeError, match="got dtype bool"):
        mg.Tensor([True]).requires_grad_()


# ---------------------------------------------------------------------------
# Ops: shape and dtype errors name the op and the shapes
# ---------------------------------------------------------------------------
def test_matmul_shape_mismatch_names_the_op_both_shapes_and_the_inner_sizes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align \(3 != 4\)"):
        leaf(2, 3) @ leaf(4, 5)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 2, 3\) and \(3, 3, 4\) .*batch dimensions"):
        leaf(2, 2, 3) @ leaf(3, 3, 4)
    with pytest.raises(
        ValueError, match=r"matmul: operands must have at least 1 dimension, got shapes \(\) and \(3,\)"
    ):
        mg.matmul(leaf(), leaf(3))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_broadcasting_failure_names_the_op_and_both_shapes(op):
    with pytest.raises(ValueError, match=rf"{op}: shapes \(2, 3\) and \(4,\) do not broadcast"):
        getattr(mg, op)(leaf(2, 3), np.ones(4))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: mg.where(np.ones(3) > 0, leaf(2, 3), leaf(4)),
            ValueError,
            r"where: shapes cond \(3,\), a \(2, 3\), b \(4,\)",
        ),
        (lambda: mg.concat([leaf(2, 3), leaf(2, 4)]), ValueError, r"concat along axis 0: shapes \(2, 3\), \(2, 4\)"),
        (lambda: mg.stack([leaf(2, 3), leaf(3, 2)]), ValueError, r"stack: .*same shape, got \(2, 3\), \(3, 2\)"),
        (
            lambda: mg.split(leaf(2, 3), 2, axis=1),
            ValueError,
            r"split: cannot split shape \(2, 3\) into 2 along axis 1",
        ),
        (
            lambda: mg.unbind(leaf(2, 3), axis=2),
            ValueError,
            "unbind: axis 2 is out of range for a tensor with 2 dimensions",
        ),
        (
            lambda: leaf(2, 3).reshape(4),
            ValueError,
            r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\)",
        ),
        (lambda: leaf(2, 3).transpose((0, 0)), ValueError, r"transpose: axes \(0, 0\) are not a permutation"),
        (lambda: leaf(2, 3).sum(axis=2), ValueError, "sum: axis 2 is out of range for a tensor with 2 dimensions"),
        (lambda: leaf(2, 3).mean(axis=(1, -1)), ValueError, r"mean: axis \(1, -1\) names the same axis twice"),
        (lambda: leaf(0, 3).max(), ValueError, r"max of an empty tensor of shape \(0, 3\)"),
        (lambda: leaf(2, 3)[5], IndexError, r"getitem: index 5 is invalid for a tensor of shape \(2, 3\)"),
        (lambda: mg.softmax(mg.Tensor([1, 2])), TypeError, "softmax needs a floating-point tensor, got dtype int64"),
        (lambda: mg.log_softmax(mg.Tensor([1, 2])), TypeError, "log_softmax needs a floating-point tensor"),
        (
            lambda: mg.embedding(leaf(4, 3), [4]),
            IndexError,
            r"embedding: indices must lie in \[0, 4\), got range \[4, 4\]",
        ),
        (lambda: mg.embedding(leaf(4, 3), [1.0]), TypeError, "embedding: indices must be integers, got dtype float64"),
        (
            lambda: mg.cross_entropy(leaf(4, 3), [1, 2]),
            ValueError,
            r"cross_entropy: .*logits \(4, 3\) and targets \(2,\)",
        ),
        (lambda: mg.cross_entropy(leaf(2, 3), [0.0, 1.0]), TypeError, "cross_entropy: targets must be integer"),
        (lambda: mg.cross_entropy(leaf(2, 3), [0, 3]), IndexError, r"cross_entropy: targets must lie in \[0, 3\)"),
        (lambda: mg.mse_loss(leaf(4, 3), np.ones((3, 4))), ValueError, r"mse_loss: pred has shape \(4, 3\) but target"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_op_errors_name_the_op_and_the_shapes_or_dtypes(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_op_errors_are_raised_by_minigrad_not_from_deep_inside_numpy():
    with pytest.raises(ValueError) as e:
        leaf(2, 3) @ leaf(4, 5)
    assert e.value.__suppress_context__ and e.traceback[-1].path.name == "ops.py"


def test_layers_and_models_name_the_expected_sizes():
    with pytest.raises(ValueError, match=r"Linear: expected input with last dimension 4, got shape \(2, 5\)"):
        Linear(4, 3)(leaf(2, 5))
    with pytest.raises(IndexError, match=r"embedding: indices must lie in \[0, 5\)"):
        Embedding(5, 2)(np.array([5]))
    rnn = models.RNN(3, 4)
    with pytest.raises(ValueError, match=r"RNN: expected input of shape \(T, B, 3\)"):
        rnn(np.zeros((5, 2, 7)))
    with pytest.raises(ValueError, match=r"RNN: expected h0 of shape \(1, 2, 4\)"):
        rnn(np.zeros((5, 2, 3)), h0=np.zeros((1, 2, 5)))
    with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
        models.GRU(3, 0)


# ---------------------------------------------------------------------------
# backward misuse
# ---------------------------------------------------------------------------
def test_backward_on_a_tensor_that_does_not_require_grad_says_so():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (mg.Tensor(np.ones(3)) * 2).sum().backward()
    x = leaf(3)
    with pytest.raises(RuntimeError, match="does not require grad"):
        x.detach().sum().backward()


def test_backward_on_a_non_scalar_root_without_grad_asks_for_one():
    with pytest.raises(RuntimeError, match=r"non-scalar tensor of shape \(2, 3\) needs an explicit grad="):
        leaf(2, 3).tanh().backward()
    with pytest.raises(ValueError, match=r"backward\(grad=...\) has shape \(3,\), root has shape \(2, 3\)"):
        leaf(2, 3).tanh().backward(np.ones(3))


def test_second_backward_through_a_freed_graph_names_the_node_and_suggests_detach_state():
    W = leaf(3, 3, name="W_hh")
    with mg.scope("t=1"):
        h = (leaf(1, 3, seed=1) @ W).tanh()
    h.sum().backward()
    with pytest.raises(mg.GraphFreedError) as e:
        (h * 2).sum().backward()
    msg = str(e.value)
    assert "tanh" in msg and "'t=1'" in msg and "already freed" in msg
    assert "models.detach_state(state)" in msg and "retain_graph=True" in msg
    assert msg.index("detach_state") < msg.index("retain_graph")  # detaching is the first suggestion


def test_carrying_an_rnn_state_into_the_next_window_without_detaching_meets_the_freed_graph_error():
    rnn = models.RNN(2, 3)
    x = np.random.default_rng(0).standard_normal((4, 1, 2))
    out, h = rnn(x)
    out.sum().backward()
    out, h = rnn(x, h0=h)  # the classic TBPTT mistake: h still hangs on window 1's graph
    with pytest.raises(mg.GraphFreedError, match="detach_state"):
        out.sum().backward()
    out, _ = rnn(x, h0=models.detach_state(h))  # the fix
    out.sum().backward()


def test_an_in_place_update_after_use_names_the_stale_tensor():
    net = TwoLayer()
    opt = mg.optim.SGD(net.parameters(), lr=0.1)
    loss = net(leaf(5, 4)).sum()
    for p in net.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()  # before backward: the graph saved the old weights
    # the newest node that saved an updated parameter is the output layer's matmul (it saved Wᵀ,
    # a view of the weight, for δh = δy W); the bias add saved nothing and does not mind
    with pytest.raises(
        RuntimeError, match=r"'weight', saved by node %\d+ \(matmul, shape \(5, 1\)\) for its backward, was modified"
    ):
        loss.backward()


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("opt", [mg.optim.SGD, mg.optim.Adam])
def test_optimizers_reject_a_negative_or_nan_learning_rate_and_an_empty_parameter_list(opt):
    p = Parameter(np.ones(2))
    for lr in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=rf"{opt.__name__}: learning rate must be a finite number ≥ 0, got lr="):
            opt([p], lr=lr)
    with pytest.raises(ValueError, match=rf"{opt.__name__}: got an empty parameter list"):
        opt([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        opt(iter(()), lr=0.1)  # an exhausted generator, e.g. model.parameters() consumed twice
    with pytest.raises(TypeError, match="parameter 0 is not a leaf tensor with requires_grad=True"):
        opt([p * 2], lr=0.1)


# ---------------------------------------------------------------------------
# load_state_dict: mismatches are named, and a failed load changes nothing
# ---------------------------------------------------------------------------
def assert_unchanged(module, before):
    after = module.state_dict()
    assert after.keys() == before.keys()
    for k in before:
        assert after[k].tobytes() == before[k].tobytes(), k


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("out.bias"), "missing keys: out.bias"),
        (lambda d: d.update(extra=np.zeros(1)), "unexpected keys: extra"),
        (
            lambda d: d.update({"hidden.weight": np.zeros((4, 8))}),
            r"hidden.weight: expected shape \(8, 4\), got \(4, 8\)",
        ),
        (lambda d: d.update({"out.bias": np.array(["x"])}), "out.bias: expected a numeric array, got dtype <U1"),
    ],
    ids=["missing", "unexpected", "shape mismatch", "not numeric"],
)
def test_load_state_dict_names_the_bad_key_and_leaves_the_module_unchanged(edit, message):
    net = TwoLayer()
    before = net.state_dict()
    state = {k: v + 1.0 for k, v in TwoLayer(seed=5).state_dict().items()}  # every good key would change a weight
    edit(state)
    with pytest.raises(KeyError, match=message):
        net.load_state_dict(state)
    assert_unchanged(net, before)


# ---------------------------------------------------------------------------
# Files: save is atomic and bit-exact, load never unpickles and names bad files
# ---------------------------------------------------------------------------
def test_save_then_load_round_trips_bit_exactly(tmp_path):
    state = {
        "w": np.random.default_rng(0).standard_normal((3, 4)),
        "w32": np.random.default_rng(1).standard_normal(5).astype(np.float32),
        "scalar": np.array(-0.0),
        "special": np.array([np.nan, np.inf, -np.inf, 5e-324, np.finfo(float).max]),
        "ints": np.arange(4, dtype=np.int32),
    }
    mg.save(state, tmp_path / "s.npz")
    back = mg.load(tmp_path / "s.npz")
    assert back.keys() == state.keys()
    for k, v in state.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and back[k].tobytes() == v.tobytes(), k


def test_a_saved_module_loads_into_a_fresh_one_bit_exactly(tmp_path):
    net, fresh = TwoLayer(seed=0), TwoLayer(seed=9)
    mg.save(net, tmp_path / "net.npz")
    fresh.load_state_dict(mg.load(tmp_path / "net.npz"))
    assert_unchanged(fresh, net.state_dict())


def test_save_leaves_no_temporary_files_behind(tmp_path):
    for _ in range(3):
        mg.save(TwoLayer(), tmp_path / "net.npz")
    assert os.listdir(tmp_path) == ["net.npz"]


def test_an_existing_file_survives_a_save_that_fails_halfway(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    mg.save(TwoLayer(), path)
    good = path.read_bytes()

    def crash_halfway(f, arrays):
        f.write(b"\x89minigrad half a file")
        raise OSError("disk full")

    monkeypatch.setattr(mg.serialization, "_write", crash_halfway)
    with pytest.raises(OSError, match="disk full"):
        mg.save(TwoLayer(seed=3), path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["net.npz"]  # the temp file was removed
    monkeypatch.undo()
    assert mg.load(path).keys() == TwoLayer().state_dict().keys()


def test_save_refuses_non_numeric_entries_before_touching_the_file(tmp_path):
    path = tmp_path / "s.npz"
    mg.save({"a": np.ones(2)}, path)
    with pytest.raises(TypeError, match="save: entry 'b' is not a numeric array"):
        mg.save({"a": np.zeros(2), "b": np.array([{}], dtype=object)}, path)
    assert mg.load(path)["a"].tolist() == [1.0, 1.0]


def test_loading_a_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"load: no such file: .*nothing\.npz"):
        mg.load(tmp_path / "nothing.npz")


@pytest.mark.parametrize(
    "write",
    [
        lambda p: p.write_text("hello, not an archive"),
        lambda p: p.write_bytes(b""),
        lambda p: np.save(p.open("wb"), np.ones(3)),  # a bare .npy array
        lambda p: zipfile.ZipFile(p, "w").writestr("readme.txt", "a zip, but not of arrays"),
    ],
    ids=["text", "empty", "npy", "zip of text"],
)
def test_loading_a_file_that_is_not_ours_is_a_clear_value_error(tmp_path, write):
    path = tmp_path / "bad.npz"
    write(path)
    with pytest.raises(ValueError, match=r"load: .*bad\.npz is not a readable minigrad parameter file"):
        mg.load(path)


def test_loading_a_truncated_file_is_a_clear_value_error_at_every_cut(tmp_path):
    mg.save(TwoLayer(), tmp_path / "full.npz")
    raw = (tmp_path / "full.npz").read_bytes()
    cut = tmp_path / "cut.npz"
    for n in sorted({0, 1, 10, 100, len(raw) // 2, len(raw) - 30, len(raw) - 1, *range(0, len(raw), 97)}):
        cut.write_bytes(raw[:n])
        with pytest.raises(ValueError, match="not a readable minigrad parameter file: .*truncated"):
            mg.load(cut)


class _Boom:
    """Unpickling this runs code: the thing loading must never do."""

    ran = False

    def __reduce__(self):
        return (_Boom._explode, ())

    @staticmethod
    def _explode():
        _Boom.ran = True
        return "exploded"


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    arr = np.empty(1, dtype=object)
    arr[0] = _Boom()
    np.savez(path, w=arr)
    assert isinstance(pickle.loads(pickle.dumps(_Boom())), str) and _Boom.ran  # the payload is live
    _Boom.ran = False
    with pytest.raises(ValueError, match="Object arrays cannot be loaded when allow_pickle=False"):
        mg.load(path)
    assert not _Boom.ran


# ---------------------------------------------------------------------------
# Anomaly mode: the first NaN/Inf, with its op, scope and shapes
# ---------------------------------------------------------------------------
H, T = 4, 50


def unrolled_rnn(xs, W_xh, W_hh):
    """h_t = tanh(x_t W_xh + h_{t-1} W_hh), one scope per step; returns Σ_t Σ h_t."""
    h = mg.Tensor(np.zeros((1, H)))
    total = 0.0
    for t in range(T):
        with mg.scope(f"t={t}"):
            h = (xs[t] @ W_xh + h @ W_hh).tanh()
            total = total + h.sum()
    return total


def rnn_weights():
    rng = np.random.default_rng(0)
    return (
        mg.Tensor(rng.standard_normal((3, H)) * 0.5, requires_grad=True, name="W_xh"),
        mg.Tensor(rng.standard_normal((H, H)) * 0.5, requires_grad=True, name="W_hh"),
    )


def test_anomaly_mode_finds_a_nan_planted_at_step_37_and_names_the_step():
    xs = [mg.Tensor(np.random.default_rng(t).standard_normal((1, 3))) for t in range(T)]
    xs[37].data[0, 1] = np.nan
    W_xh, W_hh = rnn_weights()
    unrolled_rnn(xs, W_xh, W_hh)  # without anomaly mode the NaN spreads silently
    with mg.detect_anomaly():
        with pytest.raises(mg.AnomalyError) as e:
            unrolled_rnn(xs, W_xh, W_hh)
    msg = str(e.value)
    assert "scope 't=37'" in msg and "NaN" in msg and "'matmul'" in msg and "(1, 3), (3, 4)" in msg


def test_anomaly_mode_finds_an_inf_gradient_born_at_step_37_in_backward():
    W_xh, W_hh = rnn_weights()
    xs = [mg.Tensor(np.random.default_rng(t).standard_normal((1, 3)), requires_grad=True) for t in range(T)]
    xs[37].data[...] = 0.0  # ‖x_37‖ = 0: finite forward, infinite derivative of the norm
    with mg.detect_anomaly():
        loss = unrolled_rnn(xs, W_xh, W_hh)
        for t in range(T):
            with mg.scope(f"t={t}"):
                loss = loss + 1e-3 * mg.sqrt((xs[t] * xs[t]).sum())  # a norm penalty per step
        with pytest.raises(mg.AnomalyError) as e, np.errstate(divide="ignore"):
            loss.backward()
    msg = str(e.value)
    assert "gradient" in msg and "'sqrt'" in msg and "scope 't=37'" in msg and "Inf" in msg


def test_anomaly_mode_is_off_outside_its_block_and_costs_nothing_there():
    with mg.detect_anomaly():
        pass
    with np.errstate(invalid="ignore"):
        assert np.isnan(mg.log(leaf(1) * 0 - 1).data).all()  # no error: the block has ended


# ---------------------------------------------------------------------------
# Deep graphs and memory
# ---------------------------------------------------------------------------
def test_a_100000_step_rnn_unroll_backprops_without_recursion():
    T_long, H_small = 100_000, 8
    rng = np.random.default_rng(0)
    W_hh = mg.Tensor(rng.standard_normal((H_small, H_small)) * 0.3, requires_grad=True)
    b = mg.Tensor(np.zeros(H_small), requires_grad=True)
    xs = rng.standard_normal((T_long, 1, H_small)) * 0.5  # inputs as constants: 3 nodes a step
    h = mg.Tensor(np.zeros((1, H_small)))
    # The cyclic GC would rescan the ~2 million live graph objects again and again while
    # the unroll grows, tripling its time; the graph has no cycles (reference counting
    # frees it, see the training test below), so it is paused while building.
    gc.disable()
    try:
        for t in range(T_long):
            h = (h @ W_hh + (xs[t] + b)).tanh() if t % 1000 == 0 else (h @ W_hh + xs[t]).tanh()
    finally:
        gc.enable()
    loss = h.sum()
    assert len(mg.tape(loss)) >= 3 * T_long  # walking the graph: no recursion either
    loss.backward()
    assert np.isfinite(W_hh.grad).all() and np.abs(W_hh.grad).max() > 0 and np.abs(b.grad).max() > 0
    del loss, h  # tearing the 300,000-node chain down must not recurse either
    gc.collect()


def saved_arrays(node):
    return [c.cell_contents for c in node.vjp.__closure__ or () if isinstance(c.cell_contents, np.ndarray)]


def test_backward_frees_the_arrays_the_graph_saved():
    x = leaf(3, 4)
    y = mg.relu(x)  # saves a mask only its VJP closure holds
    node = y._node
    (mask,) = saved_arrays(node)
    mask_ref, vjp_ref = weakref.ref(mask), weakref.ref(node.vjp)
    del mask
    (y * 2).sum().backward()
    assert vjp_ref() is None and mask_ref() is None  # freed at once, no gc.collect needed


def test_retain_graph_keeps_the_saved_arrays_until_the_last_backward():
    x = leaf(3, 4)
    y = mg.relu(x)
    mask_ref = weakref.ref(saved_arrays(y._node)[0])
    loss = (y * 2).sum()
    loss.backward(retain_graph=True)
    assert mask_ref() is not None
    loss.backward()
    assert mask_ref() is None


def test_an_intermediate_no_vjp_saves_is_freed_once_dropped_and_the_gradient_is_still_right():
    x, W = leaf(2, 3), leaf(3, 4, seed=1)
    a = x @ W  # the pre-activation: matmul saves x and W, tanh saves its output, nobody saves a
    a_data = weakref.ref(a.data)
    h = a.tanh()
    del a  # the graph keeps a's place (node, shape, name), not its array
    assert a_data() is None  # freed by reference counting alone, before any backward
    assert "tanh(%" in mg.format_tape(h)
    h.sum().backward()
    np.testing.assert_allclose(W.grad, x.data.T @ (1 - h.data**2))  # dL/dW = xᵀ (1 − tanh²(a))


# Each op applied to an intermediate x (a tensor another op made). Its VJP may save arrays,
# never the input tensors themselves: a closure holding x would keep x alive (and its array).
OPS_ON_AN_INTERMEDIATE = {
    "add": lambda x: x + 1.0,
    "mul": lambda x: x * leaf(3, 4, seed=1),
    "mul by a constant": lambda x: x * np.ones((3, 4)),
    "div": lambda x: leaf(3, 4, seed=1) / (x * x + 1.0),
    "pow": lambda x: (x * x + 1.0) ** leaf(3, 4, seed=1),
    "matmul": lambda x: x @ leaf(4, 2, seed=1),
    "batched matmul": lambda x: x.reshape(3, 1, 4) @ leaf(3, 4, 2, seed=1),
    "addmm": lambda x: mg.addmm(x, x, leaf(4, 4, seed=1)),
    "tanh": mg.tanh,
    "max": lambda x: x.max(axis=1),
    "getitem": lambda x: x[[0, 2]],
    "split": lambda x: mg.split(x, 2, axis=1)[0],
    "unbind": lambda x: mg.unbind(x)[1],
    "stack": lambda x: mg.stack([x, x]),
    "where": lambda x: mg.where(x > 0, x, 0.0),
}


@pytest.mark.parametrize("op", OPS_ON_AN_INTERMEDIATE)
def test_no_vjp_keeps_its_input_tensors_alive(op):
    x = leaf(3, 4) * 1.0
    y = OPS_ON_AN_INTERMEDIATE[op](x)
    x_ref = weakref.ref(x)
    del x
    assert x_ref() is None  # the graph keeps x's place, the closure at most some arrays
    y.sum().backward()  # and the gradient still flows


def test_an_op_saves_only_what_the_gradients_that_flow_need():
    # δx of x * c and x @ C needs c and C, never x: with constant c and C, x's array is not kept
    for f in (lambda x: x * np.full((3, 4), 2.0), lambda x: x @ np.ones((4, 2))):
        w = leaf(3, 4)
        x = w * 1.0
        x_data = weakref.ref(x.data)
        y = f(x)
        del x
        assert x_data() is None
        y.sum().backward()
        assert w.grad is not None


def test_splitting_keeps_no_copy_of_the_whole_once_the_pieces_are_consumed():
    # the RNN layers unbind the (T, B, G·H) input projection and split each step's gates: the
    # VJPs need the shapes only, so the whole is freed once the pieces are used and dropped
    for pieces in (mg.unbind, lambda a: mg.split(a, 3, axis=1), lambda a: (a[[0, 1]], a[[2]])):
        w = leaf(3, 6)
        a = w * 1.0
        a_data = weakref.ref(a.data)
        hs = [p.tanh() for p in pieces(a)]
        del a
        assert a_data() is None
        mg.concat([h.reshape(-1) for h in hs]).sum().backward()
        np.testing.assert_allclose(w.grad, 1 - np.tanh(w.data) ** 2)


def live_tensors():
    return sum(isinstance(o, mg.Tensor) for o in gc.get_objects())


def test_training_for_200_steps_does_not_grow_the_number_of_live_tensors():
    net = TwoLayer()
    opt = mg.optim.Adam(net.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 1))
    counts = []
    gc.collect()
    gc.disable()  # each step's graph must be freed by reference counting alone: no cycles
    try:
        for step in range(200):
            opt.zero_grad()
            loss = mg.mse_loss(net(x), y)
            loss.backward()
            opt.step()
            if step in (9, 199):
                counts.append(live_tensors())
    finally:
        gc.enable()
    assert counts[1] <= counts[0], f"live tensors grew from {counts[0]} to {counts[1]}"


# ---------------------------------------------------------------------------
# Gradient semantics users rely on
# ---------------------------------------------------------------------------
def test_reading_grad_of_a_non_leaf_warns_and_suggests_retain_grad():
    x = leaf(3)
    h = x.tanh()
    h.sum().backward()
    with pytest.warns(UserWarning, match=r"non-leaf tensor \(made by 'tanh'\).*retain_grad\(\)"):
        assert h.grad is None


def test_retain_grad_gives_dl_dh_for_an_intermediate_without_warning(recwarn):
    x, W = leaf(2, 3), leaf(3, 3, seed=1)
    h = (x @ W).retain_grad()
    loss = (h.tanh() ** 2).sum()
    loss.backward()
    th = np.tanh(h.data)
    np.testing.assert_allclose(h.grad, 2 * th * (1 - th**2))  # dL/dh = 2 tanh(h) (1 − tanh²(h))
    np.testing.assert_allclose(x.grad, h.grad @ W.data.T)
    assert not recwarn.list


def test_gradients_accumulate_across_two_backwards_on_a_retained_graph():
    x = leaf(3)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    loss.backward()
    np.testing.assert_allclose(first, 2 * x.data)
    np.testing.assert_allclose(x.grad, 2 * first)


def test_detach_stops_the_gradient():
    x = leaf(3)
    y = x * 3
    loss = (y.detach() * x).sum()  # only the direct path to x counts
    loss.backward()
    np.testing.assert_allclose(x.grad, 3 * x.data)
    assert y.detach()._node is None and not y.detach().requires_grad


def test_scale_grad_by_one_half_halves_the_gradient_and_leaves_the_value():
    x = leaf(4)
    y = mg.scale_grad(x.tanh(), 0.5)
    np.testing.assert_array_equal(y.data, np.tanh(x.data))
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 0.5 * (1 - np.tanh(x.data) ** 2))


def test_no_grad_records_nothing():
    x = leaf(3)
    with mg.no_grad():
        y = (x * 2).tanh().sum()
        assert not mg.is_grad_enabled()
    assert y._node is None and not y.requires_grad and mg.tape(y) == []
    assert mg.is_grad_enabled()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
