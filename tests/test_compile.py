"""The compiled training step (minigrad/compile.py) and the eager fold it builds on.

Gradients are compared with eager minigrad (and the hand-written references) to 1e-12 in float64.
No timing is asserted: speed is measured by benchmarks/bench_rnn.py.
"""

import re

import numpy as np
import pytest

import minigrad as mg


# ---------------------------------------------------------------------------
# Eager: x @ W with an N-d x and a 2-D W folds its leading axes into one GEMM
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 2, 3), (4, 5, 2, 3), (1, 1, 3), (2, 3, 1, 3)])
def test_nd_at_2d_matmul_matches_finite_differences(shape):
    rng = np.random.default_rng(0)
    x = mg.Tensor(rng.standard_normal(shape), requires_grad=True)
    W = mg.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert mg.gradcheck(mg.matmul, [x, W])


@pytest.mark.parametrize("shape", [(5, 2, 3), (4, 5, 2, 3)])
def test_nd_at_2d_matmul_matches_torch(shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    xa, Wa, ga = rng.standard_normal(shape), rng.standard_normal((3, 4)), rng.standard_normal((*shape[:-1], 4))
    x, W = mg.Tensor(xa, requires_grad=True), mg.Tensor(Wa, requires_grad=True)
    y = x @ W
    y.backward(ga)
    tx, tW = torch.tensor(xa, requires_grad=True), torch.tensor(Wa, requires_grad=True)
    ty = tx @ tW
    ty.backward(torch.tensor(ga))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(W.grad, tW.grad.numpy(), rtol=0, atol=1e-10)


def test_nd_at_2d_matmul_keeps_only_what_the_flowing_gradient_needs():
    rng = np.random.default_rng(2)
    x = mg.Tensor(rng.standard_normal((3, 2, 4)))  # a constant: δW needs it, δx is not wanted
    W = mg.Tensor(rng.standard_normal((4, 5)), requires_grad=True)
    (x @ W).sum().backward()
    np.testing.assert_allclose(W.grad, x.data.reshape(-1, 4).T @ np.ones((6, 5)), atol=1e-12)
    assert x.grad is None


# ---------------------------------------------------------------------------
# Compiled gradients equal eager gradients
# ---------------------------------------------------------------------------
import warnings  # noqa: E402

import models  # noqa: E402
from minigrad.compiler import CompileError, passes  # noqa: E402
from models import architectures, reference  # noqa: E402

CALLS = 5  # two traced calls, then three replays


def _readout_step(model, W_hy, params, clear=True, **kw):
    """The training step users write: layer, readout, ½ Σ e⊙e, backward; returns the loss."""

    def step(x, target):
        if clear:
            for p in params:
                p.grad = None
        out, _ = model(x, **kw)
        e = out @ W_hy.T - target
        loss = 0.5 * (e * e).sum()
        loss.backward()
        return loss

    return step


def _twins(make, out_size):
    """Two models with the same weights and readouts: one run eagerly, one compiled."""
    pair = []
    for _ in range(2):
        m = make()
        W = mg.nn.Parameter(np.random.default_rng(5).uniform(-0.3, 0.3, (3, out_size)))
        pair.append((m, W, [*m.parameters(), W]))
    return pair


def _assert_compiled_equals_eager(make, x_shape, out_size, clear=True, **kw):
    (m1, W1, p1), (m2, W2, p2) = _twins(make, out_size)
    eager = _readout_step(m1, W1, p1, clear, **kw)
    compiled = mg.compile(_readout_step(m2, W2, p2, clear, **kw))
    rng = np.random.default_rng(3)
    tshape = (*x_shape[:-1], 3)
    for call in range(CALLS):  # fresh data every call: the replay reads its arguments anew
        x, target = rng.standard_normal(x_shape), rng.standard_normal(tshape)
        l1, l2 = eager(mg.Tensor(x), mg.Tensor(target)), compiled(x, target)
        assert abs(float(l1.data) - float(l2.data)) <= 1e-12 * max(1.0, abs(float(l1.data))), call
        for a, b in zip(p1, p2):
            np.testing.assert_allclose(b.grad, a.grad, rtol=1e-12, atol=1e-12, err_msg=f"call {call}")
    assert compiled.traces == 2 and compiled.program is not None  # replayed from call 3 on
    return compiled


LAYER_CASES = [
    dict(),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True),
    dict(batch_first=True),
]


@pytest.mark.parametrize("cls", [models.RNN, models.GRU, models.LSTM])
@pytest.mark.parametrize("options", LAYER_CASES, ids=lambda o: ",".join(o) or "plain")
def test_compiled_layer_gradients_equal_eager(cls, options):
    D = 2 if options.get("bidirectional") else 1
    shape = (3, 6, 4) if options.get("batch_first") else (6, 3, 4)
    _assert_compiled_equals_eager(lambda: cls(4, 5, rng=0, **options), shape, D * 5)


@pytest.mark.parametrize("cls", [models.RNN, models.GRU, models.LSTM])
def test_compiled_truncated_layer_gradients_equal_eager(cls):
    _assert_compiled_equals_eager(lambda: cls(4, 5, rng=0), (7, 2, 4), 5, truncate=3)


def test_compiled_gradients_accumulate_across_calls_like_eager():
    # the step does not clear .grad: both sides keep summing, call after call
    _assert_compiled_equals_eager(lambda: models.GRU(4, 5, rng=0), (5, 2, 4), 5, clear=False)


def test_compiled_relu_and_unbatched_input_equal_eager():
    _assert_compiled_equals_eager(lambda: models.RNN(4, 5, nonlinearity="relu", rng=0), (6, 4), 5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: architectures.ResidualRNN(4, 5, rng=0),
        lambda: architectures.AttentionRNN(4, 5, rng=0),
        lambda: architectures.SkipRNN(4, 5, rng=0),
    ],
    ids=["residual", "attention", "skip"],
)
def test_compiled_architectures_gradients_equal_eager(make):
    _assert_compiled_equals_eager(make, (6, 2, 4), 5)


def test_compiled_user_cell_from_raw_ops_equals_eager():
    class Cell(mg.nn.Module):  # a user's own gated cell, unrolled by hand from raw ops
        def __init__(self):
            super().__init__()
            r = np.random.default_rng(0)
            self.W = mg.nn.Parameter(r.uniform(-0.4, 0.4, (4, 10)))
            self.U = mg.nn.Parameter(r.uniform(-0.4, 0.4, (5, 10)))
            self.b = mg.nn.Parameter(r.uniform(-0.4, 0.4, (10,)))

        def __call__(self, x):
            h, outs = mg.Tensor(np.zeros((x.shape[1], 5))), []
            for t in range(x.shape[0]):
                a = x[t] @ self.W + h @ self.U + self.b
                gate, cand = mg.split(a, 2, axis=-1)
                g = mg.sigmoid(gate)
                h = g * mg.tanh(cand) + (1 - g) * h / 2.0 - mg.exp(-(h * h)).mean() * 0.1
                outs.append(h)
            return mg.stack(outs), h

    _assert_compiled_equals_eager(Cell, (5, 2, 4), 5)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_compiled_layer_matches_the_hand_written_bptt(kind):
    layer = {"rnn": models.RNN, "gru": models.GRU, "lstm": models.LSTM}[kind](3, 4, rng=1)
    rng = np.random.default_rng(2)
    x, dout = rng.standard_normal((6, 2, 3)), rng.standard_normal((6, 2, 4))

    def step(x, dout):
        layer.zero_grad()
        out, _ = layer(x)
        loss = (out * dout).sum()  # L = Σ_t <dout_t, h_t>
        loss.backward()
        return loss

    compiled = mg.compile(step)
    for _ in range(3):
        compiled(x, dout)
    params = {k[:-3]: v for k, v in layer.state_dict().items()}
    bptt = {"rnn": lambda: reference.rnn_bptt(params, x, None, dout),
            "gru": lambda: reference.gru_bptt(params, x, None, dout),
            "lstm": lambda: reference.lstm_bptt(params, x, None, None, dout)}[kind]()  # fmt: skip
    for name, g in bptt.grads.items():
        np.testing.assert_allclose(getattr(layer, f"{name}_l0").grad, g, rtol=1e-10, atol=1e-12)


def test_a_step_that_returns_the_state_replays_it():
    rnn = models.LSTM(3, 4, rng=0)

    def step(x):
        out, (h, c) = rnn(x)
        loss = (out * out).sum()
        loss.backward()
        return loss, h

    compiled = mg.compile(step)
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    for _ in range(3):
        loss, h = compiled(x)
    with mg.no_grad():
        np.testing.assert_allclose(h.data, rnn(x)[1][0].data, atol=1e-14)
    assert h._edge is None  # results carry no graph


# ---------------------------------------------------------------------------
# Guards
# ---------------------------------------------------------------------------
def _tiny_step():
    rnn = models.RNN(3, 4, rng=0)

    def step(x):
        rnn.zero_grad()
        out, _ = rnn(x)
        loss = (out * out).sum()
        loss.backward()
        return loss

    return rnn, step


def test_a_new_input_shape_retraces_and_stays_correct():
    rnn, step = _tiny_step()
    compiled = mg.compile(step)
    rng = np.random.default_rng(0)
    for T in (5, 5, 5, 7, 7, 7, 5):
        x = rng.standard_normal((T, 2, 3))
        compiled(x)
        got = rnn.weight_hh_l0.grad.copy()
        step(mg.Tensor(x))
        np.testing.assert_allclose(got, rnn.weight_hh_l0.grad, atol=1e-13)
    assert compiled.traces == 4  # two per shape; going back to T = 5 replays its program
    assert len(compiled.entries) == 2


def test_a_structure_change_retraces_and_warns_when_it_repeats():
    rnn = models.RNN(3, 4, rng=0)
    policy = models.RandomTruncation(0.5, rng=0)  # fresh cuts every call

    def step(x):
        rnn.zero_grad()
        out, _ = rnn(x, truncate=policy)
        loss = (out * out).sum()
        loss.backward()
        return loss

    compiled = mg.compile(step)
    x = np.random.default_rng(0).standard_normal((12, 2, 3))
    with pytest.warns(UserWarning, match="different program"):
        for _ in range(6):
            compiled(x)
    assert compiled.traces == 6 and compiled.changes >= 2  # every call ran eagerly: the gradients are eager's


def test_a_one_off_structure_change_retraces_without_a_warning():
    rnn = models.RNN(3, 4, rng=0)
    truncate = [None]

    def step(x):
        rnn.zero_grad()
        out, _ = rnn(x, truncate=truncate[0])
        loss = (out * out).sum()
        loss.backward()
        return loss

    compiled = mg.compile(step)
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    compiled(x)
    truncate[0] = 2  # the structure changes once, between the first two calls
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(4):
            compiled(x)
    assert compiled.traces == 3 and compiled.changes == 1


def test_check_every_catches_control_flow_that_changed_after_compiling():
    rnn = models.RNN(3, 4, rng=0)
    use_relu = [False]

    def step(x):
        rnn.zero_grad()
        out, _ = rnn(x)
        loss = (out.relu() if use_relu[0] else out).sum()
        loss.backward()
        return loss

    compiled = mg.compile(step, check_every=2)
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    for _ in range(4):
        compiled(x)
    use_relu[0] = True  # a branch the first calls never took
    for _ in range(6):
        loss = compiled(x)
    eager = step(mg.Tensor(x))
    assert float(loss.data) == pytest.approx(float(eager.data), abs=1e-12)
    assert compiled.changes == 1


def test_anomaly_mode_and_grad_norm_recording_are_refused():
    _, step = _tiny_step()
    compiled = mg.compile(step)
    x = np.zeros((3, 1, 3))
    with mg.detect_anomaly(), pytest.raises(CompileError, match="anomaly"):
        compiled(x)
    with mg.record_grad_norms(), pytest.raises(CompileError, match="record_grad_norms"):
        compiled(x)


def test_an_op_without_a_kernel_is_refused_by_name(monkeypatch):
    from minigrad.compiler import kernels

    monkeypatch.delitem(kernels.KERNELS, "tanh")  # as if ops.py had an op the replay does not know
    W = mg.Tensor(np.ones((3, 3)), requires_grad=True)

    def step(x):
        loss = (x @ W).tanh().sum()
        loss.backward()
        return loss

    compiled = mg.compile(step)
    compiled(np.ones((2, 3)))
    with pytest.raises(CompileError, match="op 'tanh' .*has no replay kernel"):
        compiled(np.ones((2, 3)))


def test_a_vjp_without_the_attribute_the_trace_reads_fails_loudly(monkeypatch):
    from minigrad.compiler import trace

    monkeypatch.setitem(trace.ATTRS, "clip", ("lo_hi",))  # as if ops.clip's VJP stopped keeping its bounds
    W = mg.Tensor(np.ones((3, 3)), requires_grad=True)

    def step(x):
        loss = mg.clip(x @ W, -1, 1).sum()
        loss.backward()
        return loss

    with pytest.raises(CompileError, match=r"VJP of 'clip' holds no \['lo_hi'\]"):
        mg.compile(step)(np.ones((2, 3)))


# Every op with a kernel, compiled against eager on fresh data every call (so a data-dependent
# mask or arg-max recomputed by the replay is checked, not a stale one baked in): (name, f(h, y)).
# h = x @ W (4, 3) takes the gradient to W; y is a second argument of the same shape.
OP_CASES = [
    ("pow tensor ** tensor", lambda h, y: mg.pow(mg.abs(h) + 0.5, y * 0.3)),
    ("pow ** scalar", lambda h, y: h**3),
    ("pow at a = 0 (δb masked)", lambda h, y: mg.pow(h * h, h * 0.5 + 1.5) * y),
    ("pow at b = 0 (δa masked)", lambda h, y: mg.pow(h * h, h * 0.0) * y),
    ("pow broadcast", lambda h, y: mg.pow(mg.abs(h) + 0.5, (y[0] * 0.2).reshape(1, 3))),
    ("max all", lambda h, y: mg.max(h) * y),
    ("max axis", lambda h, y: mg.max(h, axis=0) * y),
    ("max axis keepdims, ties", lambda h, y: mg.max(mg.concat([h, h], axis=1), axis=1, keepdims=True) * y),
    ("max dim= values", lambda h, y: mg.max(h, dim=1)[0].reshape(4, 1) * y),
    ("min axis", lambda h, y: mg.min(h, axis=(0, 1)) * y),
    ("min dim= keepdim", lambda h, y: mg.min(h, dim=0, keepdim=True).values * y),
    ("maximum", lambda h, y: mg.maximum(h, y)),
    ("maximum ties", lambda h, y: mg.maximum(h, h.detach()) * y),
    ("minimum broadcast", lambda h, y: mg.minimum(h, y[:1])),
    ("clip lo hi", lambda h, y: mg.clip(h, -0.5, 0.5) * y),
    ("clip hi only", lambda h, y: h.clip(hi=0.3) * y),
    ("clip at its bounds", lambda h, y: mg.clip(h - h.detach(), lo=0.0, hi=0.0) * y),
    ("unsqueeze squeeze", lambda h, y: mg.squeeze(mg.unsqueeze(h, 1) * mg.unsqueeze(y, 1), 1)),
    ("flatten", lambda h, y: mg.flatten(h * y) * 2.0),
    ("permute", lambda h, y: mg.permute(mg.unsqueeze(h, 0), 2, 0, 1) * mg.permute(mg.unsqueeze(y, 0), (2, 0, 1))),
    ("view", lambda h, y: mg.view(h, 3, 4) * mg.view(y, (3, 4))),
]


@pytest.mark.parametrize("f", [f for _, f in OP_CASES], ids=[n for n, _ in OP_CASES])
def test_compiled_op_equals_eager(f):
    Ws = [mg.nn.Parameter(np.random.default_rng(4).standard_normal((2, 3))) for _ in range(2)]

    def make(W):
        def step(x, y):
            W.grad = None
            z = f(x @ W, y)
            loss = (z * z).sum() + z.sum()
            loss.backward()
            return loss

        return step

    eager, compiled = make(Ws[0]), mg.compile(make(Ws[1]))
    rng = np.random.default_rng(6)
    for call in range(CALLS):
        x, y = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
        if call == 3:
            x[:] = 0.0  # h = 0: pow's, max's and maximum's 0 points and ties
        l1, l2 = eager(mg.Tensor(x), mg.Tensor(y)), compiled(x, y)
        np.testing.assert_allclose(l2.data, l1.data, rtol=1e-12, atol=1e-12, err_msg=f"call {call}")
        np.testing.assert_allclose(Ws[1].grad, Ws[0].grad, rtol=1e-12, atol=1e-12, err_msg=f"call {call}")
        assert np.isfinite(Ws[0].grad).all()  # no NaN that would compare equal on both sides
    assert compiled.traces == 2 and compiled.program is not None


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_compiled_cross_entropy_with_label_smoothing_equals_eager(smoothing):
    Ws = [mg.nn.Parameter(np.random.default_rng(4).standard_normal((3, 5))) for _ in range(2)]

    def make(W):
        def step(x, y):
            W.grad = None
            loss = mg.cross_entropy(x @ W, y, label_smoothing=smoothing)
            loss.backward()
            return loss

        return step

    eager, compiled = make(Ws[0]), mg.compile(make(Ws[1]))
    rng = np.random.default_rng(7)
    for _ in range(CALLS):
        x, y = rng.standard_normal((6, 3)), rng.integers(0, 5, 6)
        l1, l2 = eager(mg.Tensor(x), y), compiled(x, y)
        np.testing.assert_allclose(l2.data, l1.data, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(Ws[1].grad, Ws[0].grad, rtol=1e-12, atol=1e-12)
    assert compiled.traces == 2


def test_retain_grad_a_hand_written_update_and_two_backwards_inside_are_refused():
    W = mg.Tensor(np.ones((3, 3)), requires_grad=True)

    def retains(x):
        y = x @ W
        y.retain_grad()
        loss = y.sum()
        loss.backward()
        return loss

    def optimizes(x):
        loss = (x @ W).sum()
        loss.backward()
        W.data -= 0.1 * W.grad  # not an optimizer call: a replay would not repeat it (an optimizer's step replays)
        return loss

    def twice(x):
        (x @ W).sum().backward()
        loss = (x @ W).sum()
        loss.backward()
        return loss

    for fn, msg in ((retains, "retain_grad"), (optimizes, "not through a recorded"), (twice, "more than once")):
        with pytest.raises(CompileError, match=msg):
            mg.compile(fn)(np.ones((2, 3)))


def test_a_value_made_outside_the_graph_is_refused():
    W = mg.Tensor(np.ones((3, 3)), requires_grad=True)

    def step(x):
        loss = (x @ W).sum()
        loss.backward()
        with mg.no_grad():
            total = (x @ W).sum()  # recomputed outside the tape: a replay could not redo it
        return total

    with pytest.raises(CompileError, match="no recorded op made"):
        mg.compile(step)(np.ones((2, 3)))


def test_a_detached_result_is_the_value_it_was_cut_from():
    W = mg.Tensor(np.ones((3, 3)), requires_grad=True)

    def step(x):
        loss = (x @ W).sum()
        loss.backward()
        return loss.detach()

    compiled = mg.compile(step)
    for k in range(4):
        assert float(compiled(np.full((2, 3), float(k))).data) == 18.0 * k


# ---------------------------------------------------------------------------
# The passes, each on its own
# ---------------------------------------------------------------------------
def _compiled_readout(H=4, T=5):
    rnn = models.RNN(3, H, rng=0)
    W = mg.nn.Parameter(np.ones((3, H)) * 0.1)
    c = mg.compile(_readout_step(rnn, W, [*rnn.parameters(), W]))
    rng = np.random.default_rng(0)
    for _ in range(3):
        c(rng.standard_normal((T, 2, 3)), rng.standard_normal((T, 2, 3)))
    return c


def test_sum_of_squares_becomes_one_dot_product():
    c = _compiled_readout()
    ops = [n.op for n in passes.sum_of_squares(c._last.trace).nodes]
    assert "sumsq" in ops and ops.count("mul") == [n.op for n in c._last.trace.nodes].count("mul") - 1
    assert "np.dot(" in c.source


def test_dead_code_removes_the_gradients_no_one_reads():
    c = _compiled_readout()
    before = c.program_before
    after = passes.dead_code(before)
    assert len(after.instrs) < len(before.instrs)
    x_grads = [i for i in after.instrs if i.kind == "grad" and any(v.startswith("x") for v in i.outs)]
    assert not x_grads  # x and the target take no gradient: nothing computes one


def test_batch_weight_grads_makes_one_gemm_per_shared_weight():
    T = 6
    c = _compiled_readout(T=T)
    before = passes.dead_code(c.program_before)
    per_step = [i for i in before.instrs if i.kind == "grad" and i.pattern]
    after = passes.batch_weight_grads(before)
    left = [i for i in after.instrs if i.kind == "grad" and i.pattern]
    assert len(per_step) == T + 1 and len(left) == 1  # T products for W_hhᵀ batched; W_ih's one product stays
    assert [i.op for i in after.instrs].count("δbatched") == 1  # W_hhᵀ: T products → one GEMM


def _replayed_equals_eager(step, W, x):
    """Replay ``step`` (after its two traced calls) and check W.grad against one eager call."""
    c = mg.compile(step)
    for _ in range(3):
        W.grad = None
        c(x)
    got = W.grad.copy()
    W.grad = None
    step(mg.Tensor(x))
    np.testing.assert_allclose(got, W.grad, atol=1e-12)
    return c


def test_schedule_accumulation_never_writes_into_a_shared_first_addend():
    W = mg.Tensor(np.full((2, 2), 0.5), requires_grad=True)

    def step(x):
        h = x @ W
        s = h + h  # add hands the same δ to both of its inputs, which are the same value
        loss = (s * h).sum() + (h * 3.0).sum()
        loss.backward()
        return loss

    c = _replayed_equals_eager(step, W, np.arange(4.0).reshape(2, 2))
    codes = [i.code for i in c.program.instrs if i.kind == "grad"]
    assert any(" = g" in line and " + " in line for line in codes)  # the second addend makes a new array


def test_the_memory_plan_frees_buffers_and_reports_peaks():
    c = _compiled_readout(H=16, T=20)
    planned = c.program
    assert any(i.kind == "del" for i in planned.instrs)
    mem = c.memory
    assert mem["replay_peak"] < mem["eager_peak"]  # measured by tracemalloc on a traced and a replayed call
    no_free = sum(i.nbytes for i in c.program_before.instrs)
    assert c.program_before.peak_bytes() < no_free


def test_the_program_prints_as_a_wengert_list_with_names_and_sizes():
    c = _compiled_readout()
    text = str(c.program)
    assert "instructions, plan peak" in text and "dead_code:" in text and "batch_weight_grads:" in text
    assert re.search(r"v\d+ = np\.tanh\(v\d+, out=v\d+\[\d+\]\)\s+# tanh\s+\(2, 4\)\s+float64\s+view", text)
    assert re.search(r"v\d+ = np\.tanh\(v\d+\)\s+# tanh\s+\(2, 4\)\s+float64\s+64 B", str(c.program_before))
    assert (
        "_grad(_leaf[" in text
        and len(str(c.program_before).splitlines())
        > len([line for line in text.splitlines() if not line.startswith("del ")]) - 5
    )


def test_integer_targets_in_an_index_are_read_fresh_every_replay():
    rnn, head = models.GRU(5, 8, rng=0), mg.nn.Linear(8, 5, rng=0)
    params = [*rnn.parameters(), *head.parameters()]

    def step(x, y):
        for p in params:
            p.grad = None
        out, _ = rnn(x)
        loss = models.sequence_cross_entropy(head(out), y)  # getitem with the targets as its index
        loss.backward()
        return loss

    compiled, rng = mg.compile(step), np.random.default_rng(0)
    for _ in range(5):
        x, y = rng.standard_normal((6, 2, 5)), rng.integers(0, 5, (6, 2))
        loss = compiled(x, y)
        got = [p.grad.copy() for p in params]
        assert float(loss.data) == pytest.approx(float(step(mg.Tensor(x), y).data), abs=1e-12)
        for g, p in zip(got, params):
            np.testing.assert_allclose(g, p.grad, atol=1e-12)
    assert compiled.traces == 2


@pytest.mark.parametrize("cls", [models.RNN, models.LSTM])
def test_tbptt_train_with_compile_gives_eager_losses_and_weights(cls):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((23, 2, 3)), rng.standard_normal((23, 2, 4))
    runs = []
    for flag in (False, True):
        rnn = cls(3, 4, rng=0)
        opt = mg.optim.SGD(rnn.parameters(), lr=0.1)

        def loss_fn(out, target):
            e = out - target
            return 0.5 * (e * e).sum()

        r = models.tbptt_train(rnn, x, y, loss_fn, opt, k1=5, max_norm=1.0, compile=flag)
        runs.append((r.losses, [p.data.copy() for p in rnn.parameters()]))
    np.testing.assert_allclose(
        runs[1][0], runs[0][0], rtol=1e-12
    )  # 5 windows: 4 of 5 steps (traced twice, replayed), 1 of 3
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_allclose(b, a, atol=1e-12)


def test_char_rnn_with_compile_trains_to_the_same_losses(tmp_path):
    import importlib.util
    import sys
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples"
    if str(examples) not in sys.path:
        sys.path.insert(0, str(examples))  # the examples import their shared helpers as `_common`
    path = examples / "char_rnn.py"
    spec = importlib.util.spec_from_file_location("example_char_rnn_compiled", path)
    char_rnn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(char_rnn)
    histories = []
    for flag in ([], ["--compile"]):
        out = tmp_path / ("c" if flag else "e")
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # no retrace warning: the step replays
            char_rnn.main(["--quick", "--steps", "5", "--eval-every", "1e9", "--out", str(out), *flag])
        histories.append(char_rnn.load_checkpoint(out / "char_rnn_lstm.npz")["history"]["train_loss"])
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-5)  # float32


def test_stack_in_place_writes_each_state_into_its_row():
    c = _compiled_readout(T=4)
    before = passes.dead_code(c.program_before)
    after = passes.stack_in_place(before)
    assert not [i for i in after.instrs if i.op == "stack" and "np.stack(" in i.code]  # no copying stack left
    rows = [i.code for i in after.instrs if "out=" in i.code and i.op == "tanh"]
    assert len(rows) == 4 and all(re.search(r"out=v\d+\[\d\]\)", r) for r in rows)


def test_contiguous_transposes_copies_w_hh_t_once_and_the_backward_reads_w_hh():
    c = _compiled_readout()
    before = passes.dead_code(c.program_before)
    after = passes.contiguous_transposes(before)
    made = [i for i in after.instrs if i.op == "transpose" and i.kind == "op" and "np.ascontiguousarray(" in i.code]
    assert len(made) == 1  # W_hhᵀ, read by every step; W_ihᵀ and W_hyᵀ, read by one GEMM each, stay views
    reads = sum(made[0].outs[0] in i.ins for i in after.instrs if i.kind == "op")
    assert reads == 5  # T = 5 steps
    swapped = {i.outs[0] for i in made}
    assert not any(f"{y}.T" in i.code for i in after.instrs for y in swapped)  # the backward reads W itself


def test_gradient_rows_writes_each_step_gradient_into_its_row_and_the_batched_gemm_reads_a_slice():
    c = _compiled_readout(T=4)
    text = str(c.program)
    assert "_rows(" not in text and "gradient_rows: 4 step gradients" in text
    batched = [i.code for i in c.program.instrs if i.op == "δbatched"]
    # δa_1ᵀ h_0 on its own (h_0 is no row of the stacked states), then δa_2..δa_4 against h_1..h_3: two slices
    # (δW_hh itself, = Σ δa_tᵀ h_{t-1}: transposed_weight_grads swapped the operands of Σ h_{t-1}ᵀ δa_t)
    assert len(batched) == 1 and "np.concatenate" not in batched[0]
    assert re.search(r"g\d+\[1:4\]\.reshape\(-1, g\d+\.shape\[-1\]\)\.T @ v\d+\[0:3\]\.reshape\(", batched[0])


# ---------------------------------------------------------------------------
# models.train_step: a model, a loss and an optimizer as one step, compiled with one flag
# ---------------------------------------------------------------------------
def _train(cls, compile, steps=6, **kw):
    model, head = cls(4, 5, rng=0), models.Readout(5, 3, rng=1)
    opt = mg.optim.Adam([*model.parameters(), *head.parameters()], lr=0.01)

    def loss_fn(out, target):
        e = head(out) - target
        return 0.5 * (e * e).sum()

    step = models.train_step(model, loss_fn, opt, compile=compile, **kw)
    rng, losses = np.random.default_rng(8), []
    for _ in range(steps):
        losses.append(float(step(rng.standard_normal((6, 2, 4)), rng.standard_normal((6, 2, 3))).data))
    return step, losses, [p.data.copy() for p in [*model.parameters(), *head.parameters()]]


@pytest.mark.parametrize("cls", [models.RNN, models.GRU, models.LSTM])
@pytest.mark.parametrize("kw", [{}, {"max_norm": 0.5}, {"truncate": 2}], ids=["plain", "max_norm", "truncate"])
def test_train_step_compiled_trains_to_eager_losses_and_weights(cls, kw):
    eager, l_e, w_e = _train(cls, False, **kw)
    compiled, l_c, w_c = _train(cls, True, **kw)
    np.testing.assert_allclose(l_c, l_e, rtol=1e-12)
    for a, b in zip(w_e, w_c):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    assert eager.compiled is None
    assert compiled.compiled.traces == 2 and compiled.compiled.program is not None  # steps 3-6 replayed
    # the readout's weights are in the program: its parameters' .grad are written by the replay
    assert len(compiled.compiled.program.params) == len(compiled.params)


def test_train_step_without_an_optimizer_only_fills_grads():
    model = models.GRU(4, 5, rng=0)
    step = models.train_step(model, lambda out, y: ((out - y) * (out - y)).mean())
    x, y = np.ones((3, 2, 4)), np.zeros((3, 2, 5))
    for _ in range(3):
        step(x, y)
    got = [p.grad.copy() for p in model.parameters()]
    before = [p.data.copy() for p in model.parameters()]
    models.train_step(model, lambda out, y: ((out - y) * (out - y)).mean(), compile=False)(x, y)
    for g, p, d in zip(got, model.parameters(), before):
        np.testing.assert_allclose(g, p.grad, atol=1e-14)  # replayed = eager, and .grad not summed across calls
        np.testing.assert_array_equal(p.data, d)  # no optimizer: nothing moved


def test_train_step_refuses_max_norm_without_an_optimizer_and_non_callables():
    with pytest.raises(ValueError, match="max_norm"):
        models.train_step(models.RNN(2, 3), lambda o, y: o.sum(), max_norm=1.0)
    with pytest.raises(TypeError, match="callable"):
        models.train_step(models.RNN(2, 3), "mse")


def test_compiling_a_module_is_refused_and_points_at_train_step():
    with pytest.raises(CompileError, match=r"not a module \(RNN\).*models\.train_step"):
        mg.compile(models.RNN(2, 3))


def test_accumulate_in_place_adds_delta_h_into_the_row_of_its_own_delta():
    c = _compiled_readout(T=5)
    before = c.program_before
    for p in passes.PASSES[: passes.PASSES.index(passes.accumulate_in_place)]:
        before = p(before)
    sums = [i.code for i in before.instrs if re.fullmatch(r"(g\d+) = \1 \+ g\d+ @ p\d+", i.code)]
    after = passes.accumulate_in_place(before)
    in_place = [i.code for i in after.instrs if re.fullmatch(r"g\d+ \+= g\d+ @ p\d+", i.code)]
    assert len(sums) == 4 and len(in_place) == 4  # δh_{t-1} += δa_t W_hh for t = T … 2
    assert "accumulate_in_place: 4 sums" in str(c.program)


def test_accumulate_in_place_leaves_a_sum_whose_first_addend_is_shared():
    W = mg.Tensor(np.full((2, 2), 0.5), requires_grad=True)

    def step(x):
        h = x @ W
        s = mg.stack([h, h])  # one δ array, two rows into the same h: the sum must not write into a row
        loss = (s * s).sum() + (h * 3.0).sum()
        loss.backward()
        return loss

    _replayed_equals_eager(step, W, np.arange(4.0).reshape(2, 2))


# ---------------------------------------------------------------------------
# The passes that reach the hand-written step at H = 512 (each on its own, and replay = eager)
# ---------------------------------------------------------------------------
def _chunked(cls, rows=4, **kw):
    """A layer that projects its input chunk by chunk, as eager layers do past 256 rows."""

    def make():
        m = cls(4, 5, rng=0, **kw)
        m.projection_rows = rows  # T·B = 12 rows here: three chunks of two steps
        return m

    return make


@pytest.mark.parametrize("cls", [models.RNN, models.GRU, models.LSTM])
@pytest.mark.parametrize("options", LAYER_CASES, ids=lambda o: ",".join(o) or "plain")
def test_chunked_projection_layers_replay_to_eager_gradients(cls, options):
    D = 2 if options.get("bidirectional") else 1
    shape = (2, 6, 4) if options.get("batch_first") else (6, 2, 4)
    _assert_compiled_equals_eager(_chunked(cls, **options), shape, D * 5)


def test_common_subexpressions_takes_w_ih_transposed_once_for_all_chunks():
    c = _assert_compiled_equals_eager(_chunked(models.RNN), (6, 2, 4), 5)
    trace = c._last.trace
    before = sum(n.op == "transpose" for n in trace.nodes)
    after = sum(n.op == "transpose" for n in passes.common_subexpressions(trace).nodes)
    assert before == 3 + 2 and after == 3  # W_ihᵀ per chunk (3), W_hhᵀ, W_hyᵀ → one each


def test_merge_projection_chunks_projects_all_steps_in_one_gemm():
    c = _assert_compiled_equals_eager(_chunked(models.RNN), (6, 2, 4), 5)
    assert "merge_projection_chunks: the input projection as one GEMM" in str(c.program)
    x = next(name for name, i in c.program.inputs.items() if i == 0)
    gemms = [i.code for i in c.program.instrs if i.kind == "op" and " @ " in i.code]
    projections = [g for g in gemms if re.search(r"= v\d+ @ v\d+$", g.splitlines()[0])]
    assert f"{x}.reshape((12, 4))" in c.source and len(projections) == 1 + 5  # x W_ihᵀ once, and h_t W_hhᵀ
    assert "np.concatenate" not in c.source  # δx is one GEMM, not chunks joined


def _plans(trace):
    """(peak of the chunked plan, peak of the merged plan, the notes of the plan ``optimize`` keeps)."""
    from minigrad.compiler.program import lower

    tr = passes.common_subexpressions(passes.sum_of_squares(trace))
    peaks = []
    for t in (tr, passes.merge_projection_chunks(tr)):
        prog = lower(t)
        for p in passes.PASSES:
            prog = p(prog)
        peaks.append(prog.peak_bytes())
    return (*peaks, passes.optimize(trace)[1].notes)


@pytest.mark.parametrize("cls,merged", [(models.RNN, True), (models.LSTM, False)])
def test_merge_projection_chunks_is_kept_only_where_the_peak_does_not_grow(cls, merged):
    # the RNN's peak is in the backward, so holding the whole projection in the forward costs
    # nothing; an LSTM's projection (four gates) on top of its forward values would raise it
    c = _assert_compiled_equals_eager(_chunked(cls, rows=8), (16, 2, 4), 5)
    chunked, whole, notes = _plans(c._last.trace)
    assert (whole <= chunked) is merged
    assert ("as one GEMM" in notes[0]) is merged and ("not applied" in notes[0]) is (not merged)


def test_fold_zero_constants_skips_products_with_a_zero_initial_state():
    c = _compiled_readout(T=5)
    zero = [n for n, v in c.program.consts.items() if isinstance(v, np.ndarray) and v.shape == (2, 4)]
    assert zero and not any(re.search(rf"\b{z}\b", c.source) for z in zero)  # h_0 = 0 is read by nothing
    assert "fold_zero_constants: 2 products" in str(c.program)  # h_0 W_hhᵀ, and h_0ᵀ δa_1 in δW_hh


def test_a_nonzero_constant_initial_state_is_still_multiplied():
    rnn, W = models.RNN(3, 4, rng=0), mg.nn.Parameter(np.full((3, 4), 0.1))

    def step(x, target):
        for p in [*rnn.parameters(), W]:
            p.grad = None
        out, _ = rnn(x, mg.Tensor(np.full((1, 2, 4), 0.3)))  # a constant h_0 that is not zero
        e = out @ W.T - target
        loss = 0.5 * (e * e).sum()
        loss.backward()
        return loss

    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    c = _replayed_equals_eager(lambda xx: step(xx, mg.Tensor(np.zeros((5, 2, 3)))), W, x)
    assert "fold_zero_constants" not in str(c.program)


def test_gradient_rows_writes_delta_a_over_delta_out_and_one_gemm_reads_every_step():
    rnn, W = models.RNN(3, 4, rng=0), mg.nn.Parameter(np.full((3, 4), 0.1))
    rnn.projection_rows = 16  # chunks of 8 steps (B = 2), and batch_weight_grads cuts at 128 steps
    T = 300
    c = mg.compile(_readout_step(rnn, W, [*rnn.parameters(), W]))
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.standard_normal((T, 2, 3)), rng.standard_normal((T, 2, 3))
        c(x, y)
    got = rnn.weight_hh_l0.grad.copy()
    _readout_step(rnn, W, [*rnn.parameters(), W])(mg.Tensor(x), mg.Tensor(y))
    np.testing.assert_allclose(got, rnn.weight_hh_l0.grad, rtol=1e-12, atol=1e-12)
    text = str(c.program)
    assert f"gradient_rows: {T} step gradients written into their rows ({T} over their own δ row), 0 new" in text
    batched = [i.code for i in c.program.instrs if i.op == "δbatched"]
    hh = [b for b in batched if f"[1:{T}]" in b]  # δW_hh = δa_{2..T}ᵀ h_{1..T-1}: one slice of every step
    assert len(hh) == 1 and len(hh[0].splitlines()) == 1


def test_elementwise_in_place_writes_the_readout_into_its_own_array():
    c = _compiled_readout()
    assert re.search(r"np\.subtract\(v\d+, x\d+, out=v\d+\)", c.source)  # e = out W_hyᵀ − target, in place
    assert re.search(r"np\.multiply\(v\d+, \(2 \* g\d+\), out=v\d+\)", c.source)  # δe = 2 δL e over e


def test_elementwise_in_place_leaves_an_operand_that_is_read_again():
    W = mg.Tensor(np.full((2, 3), 0.5), requires_grad=True)

    def step(x):
        e = x @ W - 1.0
        f = e * 3.0  # e is read again below: f may not take e's array
        loss = (f * f).sum() + (e * e).sum()
        loss.backward()
        return loss

    c = _replayed_equals_eager(step, W, np.arange(8.0).reshape(4, 2))
    assert not re.search(r"np\.multiply\(v\d+, 3\.0, out=", c.source)


def test_transposed_weight_grads_form_dw_without_a_transpose():
    c = _compiled_readout()
    assert not re.search(r"g\d+ = g\d+\.transpose\(\(1, 0\)\)", c.source)
    assert "transposed_weight_grads: 3 weight gradients" in str(c.program)  # W_ih, W_hh, W_hy


def test_hand_over_grads_gives_each_leaf_its_own_array():
    rnn, W = models.RNN(3, 4, rng=0), mg.nn.Parameter(np.full((3, 4), 0.1))
    params = [*rnn.parameters(), W]
    c = mg.compile(_readout_step(rnn, W, params))
    rng = np.random.default_rng(0)
    for _ in range(3):
        c(rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 3)))
    assert "own=True" in c.source and "hand_over_grads" in str(c.program)
    grads = [p.grad for p in params]
    assert len({id(g) for g in grads}) == len(grads)  # bias_ih and bias_hh share one δ: one of them is a copy
    assert not any(np.shares_memory(a, b) for i, a in enumerate(grads) for b in grads[i + 1 :])
    kept = rnn.weight_hh_l0.grad
    before = kept.copy()
    c(rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 3)))
    np.testing.assert_array_equal(kept, before)  # the next replay made new arrays: the old .grad is untouched
    assert rnn.weight_hh_l0.grad is not kept


def test_merge_projection_chunks_merges_both_directions_that_read_the_same_chunks():
    # common_subexpressions gives both directions one split of x and one reshape per chunk: each
    # chunk is read by two GEMMs (W_ihᵀ and W_ih_reverseᵀ), and each weight gets its one GEMM
    c = _assert_compiled_equals_eager(_chunked(models.RNN, bidirectional=True), (6, 2, 4), 10)
    assert "merge_projection_chunks: the input projection as one GEMM" in str(c.program)
    x = next(name for name, i in c.program.inputs.items() if i == 0)
    (rows,) = [i.outs[0] for i in c.program.instrs if i.outs and i.code == f"{i.outs[0]} = {x}.reshape((12, 4))"]
    assert sum(re.match(rf"v\d+ = {rows} @ ", i.code) is not None for i in c.program.instrs) == 2
