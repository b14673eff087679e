"""mg.compile is honest about what a replay cannot see: data the structure depended on (guards),
indices computed from forward values, hooks, casts and an optimizer step inside the step.

Each compiled run is compared with the same step run eagerly on twin parameters, call by call,
to 1e-12 in float64 (losses, gradients, and weights where an optimizer runs). No timing.
"""

import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import dataguards
from minigrad.compiler import CompileError

CALLS = 6  # two traced calls, then replays


def _twin_params(shape=(3, 5), n=2, seed=4):
    """n parameters with the same values (one for the eager step, one for the compiled one)."""
    return [mg.nn.Parameter(np.random.default_rng(seed).standard_normal(shape)) for _ in range(n)]


def _close(a, b, what):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12, err_msg=what)


# ---------------------------------------------------------------------------
# 1. cross_entropy(ignore_index): the targets' values decide the structure
# ---------------------------------------------------------------------------
def _ce_steps(reduction="mean"):
    W1, W2 = _twin_params()

    def make(W):
        def step(x, y):
            W.grad = None
            loss = mg.cross_entropy(x @ W, y, ignore_index=-100, reduction=reduction)
            if reduction == "none":
                loss = loss.sum()
            loss.backward()
            return loss

        return step

    return (make(W1), W1), (mg.compile(make(W2)), W2)


def _run_ce(targets, reduction="mean"):
    (eager, W1), (compiled, W2) = _ce_steps(reduction)
    rng = np.random.default_rng(0)
    for call, y in enumerate(targets):
        x = rng.standard_normal((6, 3))
        l1, l2 = eager(mg.Tensor(x), y.copy()), compiled(x, y.copy())
        _close(l2.data, l1.data, f"loss, call {call}")
        _close(W2.grad, W1.grad, f"grad, call {call}")
    return compiled


def _targets(ignored_rows):
    """Targets in [0, 5) for 6 rows, -100 (ignored) in the rows given for each call."""
    rng = np.random.default_rng(1)
    out = []
    for rows in ignored_rows:
        y = rng.integers(0, 5, 6)
        y[list(rows)] = -100
        out.append(y)
    return out


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ignored_positions_that_move_after_the_program_is_built_give_eagers_loss_and_grads(reduction):
    # calls 1-3 ignore rows 4, 5 (traced, traced, replayed); then the padding's length changes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # three changes in a row: the warning is tested below
        compiled = _run_ce(_targets([(4, 5), (4, 5), (4, 5), (1, 4, 5), (5,), (4, 5)]), reduction)
    assert compiled.traces == 5  # call 3 was a replay; calls 4-6 saw other ignored rows and ran eagerly


def test_a_replay_runs_when_the_ignored_positions_stay_the_same():
    compiled = _run_ce(_targets([(4, 5)] * CALLS))
    assert compiled.traces == 2  # calls 3-6 were replays: the guard costs no retrace


def test_no_ignored_target_in_the_two_traced_calls_then_some_gives_eagers_loss():
    # the first two calls take the branch without a mask; the third must not replay that branch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = _run_ce(_targets([(), (), (), (2,), (2,), (2,), ()]))
    assert compiled.traces == 5  # replays: call 3 (no mask) and call 6 (the mask of calls 4, 5)


def test_a_target_out_of_range_in_a_replayed_call_raises_eagers_index_error():
    (eager, _), (compiled, _) = _ce_steps()
    x = np.random.default_rng(2).standard_normal((6, 3))
    for y in _targets([(4,), (4,), (4,)]):
        compiled(x, y)
    assert compiled.program is not None
    bad = np.array([0, 1, -1, 2, -100, 3])  # -1 is not ignore_index (-100): numpy would wrap it silently
    with pytest.raises(IndexError) as eager_error:
        eager(mg.Tensor(x), bad)
    with pytest.raises(IndexError) as compiled_error:
        compiled(x, bad)
    assert str(compiled_error.value) == str(eager_error.value)
    assert "targets must lie in [0, 5)" in str(compiled_error.value)


def test_ignored_positions_that_keep_moving_warn_once_naming_cross_entropys_targets():
    with pytest.warns(UserWarning, match="cross_entropy's targets") as record:
        _run_ce(_targets([(1,), (1,), (2,), (3,), (4,), (5,)]))
    assert len([w for w in record if "cross_entropy" in str(w.message)]) == 1


def test_targets_that_are_a_piece_of_an_argument_are_refused_by_name():
    (W,) = _twin_params(n=1)

    def step(x, y):
        loss = mg.cross_entropy(x @ W, y[0], ignore_index=-100)  # y[0]: a piece of argument 1
        loss.backward()
        return loss

    with pytest.raises(CompileError, match="cross_entropy's targets.*piece of argument 1"):
        mg.compile(step)(np.ones((6, 3)), np.zeros((2, 6), dtype=np.int64))


def test_a_single_example_with_a_scalar_target_is_guarded_too():
    W1, W2 = _twin_params()

    def make(W):
        def step(x, y):
            W.grad = None
            loss = mg.cross_entropy(x @ W, y, ignore_index=-100)  # logits (C,), target a 0-d array
            loss.backward()
            return loss

        return step

    eager, compiled = make(W1), mg.compile(make(W2))
    x = np.random.default_rng(3).standard_normal(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ignored call's mean over no rows is nan, as in torch
        for y in (2, 2, 4, -100, 1):
            l1, l2 = eager(mg.Tensor(x), np.array(y)), compiled(x, np.array(y))
            np.testing.assert_array_equal(l2.data, l1.data)
            np.testing.assert_array_equal(W2.grad, W1.grad)
    assert compiled.traces == 4  # calls 1, 2 traced, 3 replayed, 4 ignored (eager), 5 retraced


def test_no_guard_is_recorded_and_no_fact_computed_outside_a_traced_call():
    seen = []

    def facts(y):
        seen.append(y)
        return y

    dataguards.depends_on(np.zeros(3), facts, "test")
    assert dataguards.recording is None and seen == []


# ---------------------------------------------------------------------------
# 2. max/min(x, dim=d)'s indices (and argmax's) are made from forward values
# ---------------------------------------------------------------------------
INDEX_USES = [
    ("max(dim=) indices into getitem", lambda h: h[mg.max(h, dim=1).indices], "max\\(dim=\\)'s indices"),
    ("min(dim=) indices as a constant factor", lambda h: h * mg.min(h, dim=1, keepdim=True)[1], "min\\(dim=\\)'s"),
    ("argmax into embedding", lambda h: mg.embedding(h, mg.argmax(h, dim=1)), "argmax's indices"),
    ("indices as cross_entropy's targets", lambda h: mg.cross_entropy(h, mg.max(h, dim=1).indices), "max\\(dim=\\)"),
]


@pytest.mark.parametrize("use", [u for _, u, _ in INDEX_USES], ids=[n for n, _, _ in INDEX_USES])
def test_indices_of_an_extreme_used_as_data_are_refused_by_name(use):
    msg = next(m for _, u, m in INDEX_USES if u is use)
    (W,) = _twin_params((3, 3), n=1)

    def step(x):
        loss = use(x @ W).sum()
        loss.backward()
        return loss

    with pytest.raises(CompileError, match=msg + ".*computed from forward values"):
        mg.compile(step)(np.random.default_rng(0).standard_normal((4, 3)))


def test_the_values_of_max_dim_still_replay_with_fresh_data():
    W1, W2 = _twin_params((3, 3))

    def make(W):
        def step(x):
            W.grad = None
            values, _ = mg.max(x @ W, dim=1)  # the indices exist but are not used
            loss = (values * values).sum()
            loss.backward()
            return loss

        return step

    eager, compiled = make(W1), mg.compile(make(W2))
    rng = np.random.default_rng(1)
    for call in range(CALLS):
        x = rng.standard_normal((4, 3))
        _close(compiled(x).data, eager(mg.Tensor(x)).data, f"loss, call {call}")
        _close(W2.grad, W1.grad, f"grad, call {call}")
    assert compiled.traces == 2


# ---------------------------------------------------------------------------
# 3. Hooks and mg.grad
# ---------------------------------------------------------------------------
def _linear_steps(clear=True):
    """(eager step, its W), (compiled step, its W): loss = Σ tanh(x W)², W used once."""
    W1, W2 = _twin_params((3, 4))

    def make(W):
        def step(x):
            if clear:
                W.grad = None
            h = (x @ W).tanh()
            loss = (h * h).sum()
            loss.backward()
            return loss

        return step

    return (make(W1), W1), (mg.compile(make(W2)), W2)


@pytest.mark.parametrize("clear", [True, False], ids=["grad cleared in the step", "grads accumulate"])
def test_a_leaf_hook_that_scales_the_gradient_replays_as_eager(clear):
    (eager, W1), (compiled, W2) = _linear_steps(clear)
    seen = {1: [], 2: []}
    for k, W in ((1, W1), (2, W2)):  # two hooks each, in order: the first sees δW, the second scales it
        W.register_hook(lambda g, k=k: seen[k].append(g.copy()))
        W.register_hook(lambda g: g * -0.5)
    rng = np.random.default_rng(3)
    for call in range(CALLS):
        x = rng.standard_normal((5, 3))
        _close(compiled(x).data, eager(mg.Tensor(x)).data, f"loss, call {call}")
        _close(W2.grad, W1.grad, f"grad, call {call}")
        _close(seen[2][-1], seen[1][-1], f"the hook's input, call {call}")  # δW of this call only
    assert compiled.traces == 2 and len(seen[2]) == CALLS
    assert not np.allclose(W1.grad, 0)


def test_a_hook_registered_after_compiling_runs_in_the_replay_and_its_removal_too():
    (eager, W1), (compiled, W2) = _linear_steps()
    x = np.random.default_rng(4).standard_normal((5, 3))
    for _ in range(3):
        compiled(x)
    handles = [W.register_hook(lambda g: 3 * g) for W in (W1, W2)]
    eager(mg.Tensor(x)), compiled(x)
    _close(W2.grad, W1.grad, "hooked")
    for h in handles:
        h.remove()
    eager(mg.Tensor(x)), compiled(x)
    _close(W2.grad, W1.grad, "hook removed")
    assert compiled.traces == 2


def test_a_hook_on_a_leaf_used_several_times_replays_once_on_the_summed_gradient():
    W1, W2 = _twin_params((3, 3))
    seen = {1: [], 2: []}

    def make(W):
        def step(x):
            W.grad = None
            h = (x @ W).tanh()
            loss = ((h @ W).tanh()).sum()  # W used twice: its hook sees the sum of both δ, once
            loss.backward()
            return loss

        return step

    eager, compiled = make(W1), mg.compile(make(W2))
    x = np.random.default_rng(6).standard_normal((2, 3))
    for _ in range(3):
        compiled(x)
    for k, W in ((1, W1), (2, W2)):  # registered after compiling; clipping is not linear: once ≠ per use
        W.register_hook(lambda g, k=k: seen[k].append(g.copy()) or np.clip(g, -0.05, 0.05))
    for call in range(CALLS):
        eager(mg.Tensor(x)), compiled(x)
        _close(W2.grad, W1.grad, f"grad, call {call}")
    assert len(seen[1]) == len(seen[2]) == CALLS  # one hook call per backward on each side
    _close(seen[2][-1], seen[1][-1], "the hook's input: δW summed over both uses")


def test_a_hook_on_a_non_leaf_inside_the_step_is_refused_with_its_own_message():
    (W,) = _twin_params((3, 3), n=1)

    def step(x):
        h = (x @ W).tanh()
        h.register_hook(lambda g: g * 2)
        loss = h.sum()
        loss.backward()
        return loss

    with pytest.raises(CompileError, match="register_hook on a non-leaf tensor \\(the result of 'tanh'"):
        mg.compile(step)(np.ones((2, 3)))


def test_a_leaf_hook_registered_inside_the_step_is_refused():
    (W,) = _twin_params((3, 3), n=1)

    def step(x):
        W.register_hook(lambda g: g * 2)  # a new hook on every eager call, none in a replay
        loss = (x @ W).sum()
        loss.backward()
        return loss

    with pytest.raises(CompileError, match="registers \\(or removes\\) a hook on a leaf"):
        mg.compile(step)(np.ones((2, 3)))


def test_mg_grad_inside_a_compiled_step_is_refused_and_leaves_no_state_behind():
    (W,) = _twin_params((3, 3), n=1)

    def step(x):
        loss = (x @ W).sum()
        (dW,) = mg.grad(loss, [W])
        return loss

    with pytest.raises(CompileError, match="mg.grad\\(...\\) inside a compiled step"):
        mg.compile(step)(np.ones((2, 3)))
    from minigrad import hooks

    assert not hooks.collecting and W.grad is None
    loss = (mg.Tensor(np.ones((2, 3))) @ W).sum()
    loss.backward()  # the ordinary backward still fills .grad
    np.testing.assert_allclose(W.grad, np.full((3, 3), 2.0))


# ---------------------------------------------------------------------------
# 4. The cast (to, .float(), .double()) and checkpoint
# ---------------------------------------------------------------------------
CASTS = [
    ("float64 -> float32 -> float64", lambda h: h.float().tanh().double() * 2.0),
    ("to(np.float32) at the loss", lambda h: (h * h).to(np.float32)),
    ("float32 branch added to the float64 one", lambda h: h.to("float32").sigmoid() + h),
]


@pytest.mark.parametrize("cast", [c for _, c in CASTS], ids=[n for n, _ in CASTS])
def test_a_step_that_casts_replays_as_eager(cast):
    W1, W2 = _twin_params((3, 4))

    def make(W):
        def step(x):
            W.grad = None
            loss = cast(x @ W).sum()
            loss.backward()
            return loss

        return step

    eager, compiled = make(W1), mg.compile(make(W2))
    rng = np.random.default_rng(5)
    for _ in range(CALLS):
        x = rng.standard_normal((5, 3))
        l1, l2 = eager(mg.Tensor(x)), compiled(x)
        assert l2.dtype == l1.dtype and W2.grad.dtype == W1.grad.dtype == np.float64
        np.testing.assert_array_equal(l2.data, l1.data)  # the same numpy calls: bit for bit
        np.testing.assert_array_equal(W2.grad, W1.grad)
    assert compiled.traces == 2
    assert "astype(np.float32)" in compiled.source


def test_each_output_of_the_trace_has_its_ops_dtype():
    from minigrad.compiler.trace import trace_call

    W = mg.nn.Parameter(np.ones((3, 2)))
    x32 = mg.Tensor(np.ones((4, 3), np.float32))

    def step(x):
        loss = ((x @ W.float()).double() * W.sum()).sum()  # float32 in the middle, float64 around it
        loss.backward()
        return loss

    _, tr = trace_call(step, (x32,), {})
    got = [(n.op, str(tr.dtypes[n.outs[0]])) for n in tr.nodes]
    assert got[:3] == [("to", "float32"), ("matmul", "float32"), ("to", "float64")]
    assert all(dt == "float64" for _, dt in got[3:])


def test_checkpoint_is_refused_saying_why():
    import models

    rnn = models.RNN(3, 4, rng=0)

    def step(x):
        out, _ = models.checkpointed(rnn, x, segments=2)
        loss = (out * out).sum()
        loss.backward()
        return loss

    with pytest.raises(CompileError, match="'checkpoint'.*reruns its segment's forward"):
        mg.compile(step)(np.ones((6, 1, 3)))


# ---------------------------------------------------------------------------
# 5. An optimizer step inside the compiled step
# ---------------------------------------------------------------------------
import models  # noqa: E402

OPTIMIZERS = {
    "SGD momentum": lambda ps: mg.optim.SGD(ps, lr=0.05, momentum=0.9),
    "Adam": lambda ps: mg.optim.Adam(ps, lr=0.01),
}


def _gru_training(make_opt, body, compile_it, calls=CALLS):
    """Losses and final weights of `calls` steps of a GRU + readout trained by `body(opt, params, loss_fn)`."""
    rnn, head = models.GRU(4, 5, rng=0), mg.nn.Linear(5, 3, rng=1)
    params = [*rnn.parameters(), *head.parameters()]
    opt = make_opt(params)

    def loss_of(x, y):
        out, _ = rnn(x)
        e = head(out) - y
        return 0.5 * (e * e).sum()

    step = body(opt, params, loss_of)
    step = mg.compile(step) if compile_it else step
    rng, losses = np.random.default_rng(8), []
    for _ in range(calls):
        x, y = rng.standard_normal((6, 2, 4)), rng.standard_normal((6, 2, 3))
        losses.append(float((step(x, y) if compile_it else step(mg.Tensor(x), mg.Tensor(y))).data))
    return losses, [p.data.copy() for p in params], [None if p.grad is None else p.grad.copy() for p in params], step


def _zero_loss_backward_step(opt, params, loss_of):
    def step(x, y):
        opt.zero_grad()
        loss = loss_of(x, y)
        loss.backward()
        opt.step()
        return loss

    return step


def _backward_clip_step_zero(opt, params, loss_of):
    def step(x, y):
        loss = loss_of(x, y)
        loss.backward()
        mg.optim.clip_grad_norm_((p for p in params), 0.5)  # a generator: recorded as its list; it clips
        opt.step()
        opt.zero_grad()  # after the step, as some training loops do
        return loss

    return step


def _step_first(opt, params, loss_of):
    def step(x, y):
        opt.step()  # the update from the previous call's gradients, before the forward
        opt.zero_grad()
        loss = loss_of(x, y)
        loss.backward()
        return loss

    return step


BODIES = {"zero, backward, step": _zero_loss_backward_step, "backward, clip, step, zero": _backward_clip_step_zero,
          "step, zero, backward": _step_first}  # fmt: skip


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_an_optimizer_step_inside_the_compiled_step_trains_as_eager(name, body):
    eager = _gru_training(OPTIMIZERS[name], body, False)
    compiled = _gru_training(OPTIMIZERS[name], body, True)
    for k, (a, b) in enumerate(zip(eager[0], compiled[0])):
        assert abs(a - b) <= 1e-12 * max(1.0, abs(a)), f"loss, call {k}"
    for a, b in zip(eager[1], compiled[1]):
        _close(b, a, "weights after 6 steps")
    for a, b in zip(eager[2], compiled[2]):
        assert (a is None) == (b is None)
        if a is not None:
            _close(b, a, "grads after 6 steps")
    assert compiled[3].traces == 2 and compiled[3].program is not None
    assert len(set(eager[0])) == CALLS  # the weights moved: every loss differs


def test_a_scheduler_step_inside_the_compiled_step_keeps_eagers_learning_rates():
    def body(opt, params, loss_of):
        sched = mg.optim.StepLR(opt, step_size=2, gamma=0.5)
        inner = _zero_loss_backward_step(opt, params, loss_of)

        def step(x, y):
            loss = inner(x, y)
            sched.step()
            return loss

        step.opt = opt
        return step

    eager = _gru_training(OPTIMIZERS["SGD momentum"], body, False)
    compiled = _gru_training(OPTIMIZERS["SGD momentum"], body, True)
    _close(compiled[0], eager[0], "losses")
    for a, b in zip(eager[1], compiled[1]):
        _close(b, a, "weights")
    assert compiled[3].fn.opt.lr == eager[3].opt.lr == 0.05 * 0.5**3


def _w_step(write):
    """A step on one weight whose `write(W, opt)` runs at the place the test puts it."""
    W = mg.nn.Parameter(np.ones((3, 3)), name="W")
    opt = mg.optim.SGD([W], lr=0.1)
    return W, opt, write


@pytest.mark.parametrize(
    "where, write, message",
    [
        ("after", lambda W, opt: W.grad.__imul__(0.5), "writes the .grad of parameter 'W' at the end"),
        ("after", lambda W, opt: setattr(W, "grad", None), "writes the .grad of parameter 'W' at the end"),
        ("before", lambda W, opt: W.data.__imul__(0.99), "writes the .data of parameter 'W' before backward"),
        ("middle", lambda W, opt: opt.step(), "SGD.step\\(\\) runs between the forward and backward"),
    ],
    ids=["grad scaled by hand", "grad set to None after backward", "data decayed by hand", "step mid-forward"],
)
def test_a_write_to_a_parameter_that_no_recorded_call_makes_is_refused(where, write, message):
    W, opt, write = _w_step(write)

    def step(x):
        if where == "before":
            write(W, opt)
        h = x @ W
        if where == "middle":
            W.grad = np.zeros((3, 3))  # a gradient for opt.step() to apply
            write(W, opt)
        loss = (h * 1.0).sum()
        loss.backward()
        if where == "after":
            write(W, opt)
        return loss

    compiled = mg.compile(step)
    with pytest.raises(CompileError, match=message):
        for _ in range(2):  # the first call knows no parameters yet: a write before backward shows in call 2
            compiled(np.ones((2, 3)))


def test_clip_grad_norm_imported_by_name_is_not_recorded_and_so_refused():
    from minigrad.optim import clip_grad_norm_  # bound before the trace: the tracer cannot see the call

    W, opt, _ = _w_step(None)

    def step(x):
        loss = (x @ W).sum()
        loss.backward()
        clip_grad_norm_([W], 0.1)
        opt.step()
        return loss

    with pytest.raises(CompileError, match="writes the .grad of parameter 'W' before SGD.step"):
        mg.compile(step)(np.ones((2, 3)))


def test_train_step_with_the_optimizer_outside_still_trains_as_eager():
    runs = []
    for flag in (False, True):
        rnn, head = models.LSTM(4, 5, rng=0), mg.nn.Linear(5, 3, rng=1)
        opt = mg.optim.Adam([*rnn.parameters(), *head.parameters()], lr=0.01)

        def loss_fn(out, y, head=head):
            e = head(out) - y
            return 0.5 * (e * e).sum()

        step = models.train_step(rnn, loss_fn, opt, compile=flag, max_norm=1.0)
        rng = np.random.default_rng(9)
        runs.append([float(step(rng.standard_normal((6, 2, 4)), rng.standard_normal((6, 2, 3))).data)
                     for _ in range(CALLS)])  # fmt: skip
    _close(runs[1], runs[0], "losses")


# ---------------------------------------------------------------------------
# .grad at the start of a call: whether the step clears it is seen only where there was one
# ---------------------------------------------------------------------------
def _grad_loop(clear_x: bool, clear_w: bool, outside: list, compiled: bool) -> list:
    """x.grad[0, 0] and W.grad[0, 0] after each of five calls with the same x tensor; ``outside[k]``:
    W.grad is set to None before call k, outside the step."""
    W = mg.nn.Parameter(np.ones((3, 2)))
    x = mg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)

    def step(x):
        if clear_w:
            W.grad = None
        if clear_x:
            x.grad = None
        loss = ((x @ W) ** 2).sum()
        loss.backward()
        return loss

    run = mg.compile(step) if compiled else step
    seen = []
    for k in range(5):
        if outside[k]:
            W.grad = None
        run(x)
        seen.append((float(x.grad[0, 0]), float(W.grad[0, 0])))
    return seen


@pytest.mark.parametrize("clear_x", [True, False], ids=["x-cleared", "x-accumulates"])
@pytest.mark.parametrize("clear_w", [True, False], ids=["W-cleared", "W-accumulates"])
@pytest.mark.parametrize(
    "outside", [[False] * 5, [True] * 5, [True, True, False, False, False]], ids=["never", "always", "first-two"]
)
def test_a_replay_clears_or_sums_grad_exactly_as_the_eager_step(clear_x, clear_w, outside):
    # the same x tensor every call: a step that sets x.grad = None itself must not sum in a replay,
    # and a .grad that was None through both traced calls (zeroed outside) then is not, retraces
    assert _grad_loop(clear_x, clear_w, outside, True) == _grad_loop(clear_x, clear_w, outside, False)
