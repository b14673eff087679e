"""Where minigrad stands: one RNN/GRU/LSTM training-step gradient, timed side by side with the
best hand-written numpy BPTT (``models.reference``), PyTorch and HIPS autograd, plus memory.

    python benchmarks/bench_rnn.py                    # the default table (a few minutes); = `minigrad bench`
    python benchmarks/bench_rnn.py --models rnn --sizes 32,64,128,100 --dtypes float64 --quick
    python benchmarks/bench_rnn.py --memory --json bench.json

One training-step gradient is, for every implementation alike (no optimizer step):

    out = layer(x)                      x (T, B, I), out (T, B, H) = h_1..h_T, h_0 = 0
    L   = Σ_t <dout_t, h_t>             dout (T, B, H) fixed: the reference's own upstream gradient
    backward → dL/dW_ih, dL/dW_hh, dL/db_ih, dL/db_hh and dL/dx   (the reference always computes dx)

Columns (see benchmarks/README.md): ``numpy`` is ``models.reference.*_bptt`` (input projections and
weight gradients hoisted into one GEMM each; only the recurrence loops); ``minigrad`` is
``models.RNN/GRU/LSTM``; ``mg ops`` is the same RNN unrolled by hand from minigrad ops (the
engine without the layer's checks and scopes); ``torch eager`` is the same loop on torch ops;
``torch.nn`` is torch.nn.RNN/GRU/LSTM; ``autograd`` is HIPS autograd in the style of its
examples/rnn.py. Each time is the best of N calls after a warm-up; ``×np`` divides by ``numpy``.
Every implementation's dL/dW_hh is checked against the reference before it is timed.

Timing is on one thread: numpy's BLAS limited to 1 thread (threadpoolctl when installed, else
the OMP/OPENBLAS/MKL_NUM_THREADS variables, which only work when set before numpy is imported:
run as a script, this file sets them first; imported, it sets nothing) and
``torch.set_num_threads(1)``. ``minigrad bench`` runs this file as a script.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script, before numpy is imported
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")  # one BLAS thread (only takes effect before numpy loads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout's packages, installed or not

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad.serialization import atomic_write  # noqa: E402
from models import GRU, LSTM, RNN, reference  # noqa: E402
from viz.argtypes import positive_int, writable_path  # noqa: E402

__all__ = [
    "DEFAULT_SIZES", "Impl", "make_impls", "make_train_impls", "time_best", "run_cells", "memory_table", "flat_memory",
    "main",
]  # fmt: skip

Size = tuple[int, int, int, int]  # (B, I, H, T)
DEFAULT_SIZES: tuple[Size, ...] = ((1, 16, 32, 100), (32, 64, 128, 100), (32, 256, 512, 100), (32, 64, 128, 1000))
MODELS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
LAYERS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}
# Column order in the table; absent peers drop out.
IMPL_ORDER = ("numpy", "minigrad", "minigrad compiled", "mg ops", "torch eager", "torch.nn", "autograd")


# ---------------------------------------------------------------------------
# The problem: one set of weights, input and upstream gradient shared by every implementation
# ---------------------------------------------------------------------------
@dataclass
class Problem:
    model: str
    B: int
    I: int
    H: int
    T: int
    dtype: np.dtype
    params: dict[str, np.ndarray]  # PyTorch names without the "_l0" suffix
    x: np.ndarray  # (T, B, I)
    dout: np.ndarray  # (T, B, H) = ∂ℓ_t/∂h_t

    @property
    def size(self) -> Size:
        return (self.B, self.I, self.H, self.T)


def make_problem(model: str, size: Size, dtype: Any, seed: int = 0) -> Problem:
    """Weights uniform in ±1/√H (PyTorch's init), x ~ N(0, 1), dout ~ N(0, 1)/√(B·H)."""
    B, I, H, T = size
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    G, k = GATES[model], 1.0 / np.sqrt(H)
    shapes = {"weight_ih": (G * H, I), "weight_hh": (G * H, H), "bias_ih": (G * H,), "bias_hh": (G * H,)}
    params = {n: rng.uniform(-k, k, s).astype(dt) for n, s in shapes.items()}
    x = rng.standard_normal((T, B, I)).astype(dt)
    dout = (rng.standard_normal((T, B, H)) / np.sqrt(B * H)).astype(dt)
    return Problem(model, B, I, H, T, dt, params, x, dout)


@dataclass
class Impl:
    """One way to compute the training-step gradient: ``step()`` does it, ``grad_hh()`` reads dL/dW_hh after."""

    name: str
    step: Callable[[], object]
    grad_hh: Callable[[], np.ndarray]
    note: str = ""


# ---------------------------------------------------------------------------
# The implementations
# ---------------------------------------------------------------------------
def _numpy_impl(p: Problem) -> Impl:
    last: dict[str, Any] = {}

    if p.model == "rnn":

        def step():
            last["r"] = reference.rnn_bptt(p.params, p.x, None, p.dout)
    elif p.model == "gru":

        def step():
            last["r"] = reference.gru_bptt(p.params, p.x, None, p.dout)
    else:

        def step():
            last["r"] = reference.lstm_bptt(p.params, p.x, None, None, p.dout)

    return Impl("numpy", step, lambda: last["r"].grads["weight_hh"])


def _minigrad_layer_impl(p: Problem) -> Impl:
    layer = LAYERS[p.model](p.I, p.H, dtype=p.dtype)
    layer.load_state_dict({f"{k}_l0": v for k, v in p.params.items()})
    x = mg.Tensor(p.x, requires_grad=True)
    d = mg.Tensor(p.dout)

    def step():
        layer.zero_grad()
        x.grad = None
        out, _ = layer(x)
        (out * d).sum().backward()  # L = Σ_t <dout_t, h_t>

    return Impl("minigrad", step, lambda: layer.weight_hh_l0.grad)


def _minigrad_ops_impl(p: Problem) -> Impl | None:
    """The Elman RNN unrolled by hand from minigrad ops, the way the layer does it (RNN only):
    the engine's cost without the layer's checks, scopes and state bookkeeping."""
    if p.model != "rnn":
        return None
    T, B, I, H = p.T, p.B, p.I, p.H
    W_ih, W_hh, b_ih, b_hh = (mg.Tensor(p.params[k], requires_grad=True) for k in reference.PARAM_NAMES)
    x = mg.Tensor(p.x, requires_grad=True)
    d = mg.Tensor(p.dout)
    h0 = mg.Tensor(np.zeros((B, H), p.dtype))
    addmm = getattr(mg, "addmm", None) or (lambda c, a, b: c + a @ b)  # c + a @ b as one node when the engine has it

    def step():
        for t in (W_ih, W_hh, b_ih, b_hh, x):
            t.grad = None
        xw = addmm(b_ih + b_hh, x.reshape(T * B, I), W_ih.T).reshape(T, B, H)  # one GEMM for all steps
        W_hhT, h, hs = W_hh.T, h0, []  # W_hhᵀ transposed once
        for xw_t in mg.unbind(xw):  # one node splits the T steps
            h = mg.tanh(addmm(xw_t, h, W_hhT))  # h_t = tanh(W_ih x_t + b + W_hh h_{t-1})
            hs.append(h)
        (mg.stack(hs) * d).sum().backward()  # one node gathers the outputs

    return Impl("mg ops", step, lambda: W_hh.grad)


def _torch():
    """torch on one thread, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # allowed only once, before any parallel work
        torch.set_num_interop_threads(1)
    return torch


def _torch_eager_impl(p: Problem, torch) -> Impl:
    """The same loop as minigrad's layers on torch ops: hoisted input projection, per-step recurrence."""
    P = {k: torch.tensor(v, requires_grad=True) for k, v in p.params.items()}
    x = torch.tensor(p.x, requires_grad=True)
    d = torch.tensor(p.dout)
    T, B, I, H = p.T, p.B, p.I, p.H
    h0 = torch.zeros((B, H), dtype=x.dtype)
    sig, tanh = torch.sigmoid, torch.tanh

    def forward():
        W_hhT = P["weight_hh"].T
        if p.model == "gru":
            xw = (x.reshape(T * B, I) @ P["weight_ih"].T + P["bias_ih"]).reshape(T, B, 3 * H)
            h, hs = h0, []
            for xw_t in xw.unbind(0):
                gh = h @ W_hhT + P["bias_hh"]
                r, z = sig(xw_t[:, : 2 * H] + gh[:, : 2 * H]).chunk(2, dim=1)
                n = tanh(xw_t[:, 2 * H :] + r * gh[:, 2 * H :])
                h = n + z * (h - n)  # (1 − z) n + z h
                hs.append(h)
            return torch.stack(hs)
        xw = (x.reshape(T * B, I) @ P["weight_ih"].T + (P["bias_ih"] + P["bias_hh"])).reshape(T, B, -1)
        h, c, hs = h0, h0, []
        for xw_t in xw.unbind(0):
            a = xw_t + h @ W_hhT
            if p.model == "rnn":
                h = tanh(a)
            else:
                i, f, g, o = a.chunk(4, dim=1)
                c = sig(f) * c + sig(i) * tanh(g)
                h = sig(o) * tanh(c)
            hs.append(h)
        return torch.stack(hs)

    def step():
        for t in (*P.values(), x):
            t.grad = None
        (forward() * d).sum().backward()

    return Impl("torch eager", step, lambda: P["weight_hh"].grad.numpy())


def _torch_nn_impl(p: Problem, torch) -> Impl:
    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[p.model]
    m = cls(p.I, p.H).to(torch.float64 if p.dtype == np.float64 else torch.float32)
    m.load_state_dict({f"{k}_l0": torch.tensor(v) for k, v in p.params.items()})
    x = torch.tensor(p.x, requires_grad=True)
    d = torch.tensor(p.dout)

    def step():
        m.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = m(x)
        (out * d).sum().backward()

    return Impl("torch.nn", step, lambda: m.weight_hh_l0.grad.numpy())


def _autograd_impl(p: Problem) -> Impl | None:
    """HIPS autograd as its examples/rnn.py writes an RNN: per-step input projection from a constant x.

    Indexing a traced (T, B, ·) array per step would cost O(T²) in autograd's backward (each
    index's VJP allocates a zero array of the whole), so x stays a constant and dL/dx is not computed.
    """
    try:
        import autograd.numpy as anp
        from autograd import grad
    except ImportError:
        return None
    T, B, H, model = p.T, p.B, p.H, p.model
    x, dout = p.x, p.dout

    def sig(a):
        return 0.5 * (1.0 + anp.tanh(0.5 * a))

    def loss(params):
        W_ih, W_hh, b_ih, b_hh = params
        W_ihT, W_hhT = W_ih.T, W_hh.T
        h = c = anp.zeros((B, H), dtype=x.dtype)
        total = 0.0
        for t in range(T):
            gi = anp.dot(x[t], W_ihT) + b_ih
            gh = anp.dot(h, W_hhT) + b_hh
            if model == "rnn":
                h = anp.tanh(gi + gh)
            elif model == "gru":
                r = sig(gi[:, :H] + gh[:, :H])
                z = sig(gi[:, H : 2 * H] + gh[:, H : 2 * H])
                n = anp.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
                h = n + z * (h - n)
            else:
                a = gi + gh
                c = sig(a[:, H : 2 * H]) * c + sig(a[:, :H]) * anp.tanh(a[:, 2 * H : 3 * H])
                h = sig(a[:, 3 * H :]) * anp.tanh(c)
            total = total + anp.sum(h * dout[t])
        return total

    dloss = grad(loss)
    params = [p.params[k] for k in reference.PARAM_NAMES]
    last: dict[str, Any] = {}

    def step():
        last["g"] = dloss(params)

    return Impl("autograd", step, lambda: last["g"][1], note="no dL/dx")


def make_impls(p: Problem, peers: bool = True) -> list[Impl]:
    """Every implementation available here, in column order."""
    impls = [_numpy_impl(p), _minigrad_layer_impl(p), _minigrad_ops_impl(p)]
    if peers:
        torch = _torch()
        if torch is not None:
            impls += [_torch_eager_impl(p, torch), _torch_nn_impl(p, torch)]
        impls.append(_autograd_impl(p))
    return [i for i in impls if i is not None]


# ---------------------------------------------------------------------------
# The training step as users run it: layer, readout, loss, backward
# ---------------------------------------------------------------------------
#   out = layer(x)                      (T, B, H)
#   e   = out @ W_hyᵀ + b_hy − target   (T, B, O), O = I: predict a target of the input's size
#   L   = ½ Σ e ⊙ e
#   backward → every weight's gradient (the layer's, W_hy, b_hy) and dL/dx
def _readout(p: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W_hy (O, H), b_hy (O,) uniform in ±1/√H, and a target (T, B, O) ~ N(0, 1), O = I."""
    rng = np.random.default_rng(1)
    k = 1.0 / np.sqrt(p.H)
    W_hy = rng.uniform(-k, k, (p.I, p.H)).astype(p.dtype)
    b_hy = rng.uniform(-k, k, (p.I,)).astype(p.dtype)
    return W_hy, b_hy, rng.standard_normal((p.T, p.B, p.I)).astype(p.dtype)


def _numpy_train_impl(p: Problem) -> Impl:
    """The tightest hand-written numpy step: every buffer allocated once (``out=``), W_hhᵀ made
    contiguous once, the readout and its gradients one GEMM each over T·B rows, the loss one dot
    product, and every weight gradient one GEMM over all steps. The RNN is written out here in
    full; the GRU and LSTM recurrences are models.reference's (hoisted GEMMs, one loop each way)."""
    W_hy, b_hy, target = _readout(p)
    T, B, I, H, dt = p.T, p.B, p.I, p.H, p.dtype
    TB, P = T * B, p.params
    x2, tg2 = p.x.reshape(TB, I), target.reshape(TB, I)
    E = np.empty((TB, I), dt)  # e = out W_hyᵀ + b_hy − target
    dOut = np.empty((TB, H), dt)  # δout = e W_hy
    grads: dict[str, np.ndarray] = {}

    def readout(out2: np.ndarray) -> None:
        np.matmul(out2, W_hy.T, out=E)
        np.add(E, b_hy, out=E)
        np.subtract(E, tg2, out=E)
        e = E.ravel()
        grads["loss"] = 0.5 * float(np.dot(e, e))  # L = ½ Σ e ⊙ e: one dot product
        grads["W_hy"] = E.T @ out2  # δW_hy = eᵀ out
        grads["b_hy"] = E.sum(0)
        np.matmul(E, W_hy, out=dOut)  # δout = e W_hy

    if p.model == "rnn":
        W_ihT, W_hh = np.ascontiguousarray(P["weight_ih"].T), P["weight_hh"]
        W_hhT, b = np.ascontiguousarray(W_hh.T), P["bias_ih"] + P["bias_hh"]
        hs = np.zeros((T + 1, B, H), dt)  # h_0 = 0, h_1..h_T
        A = np.empty((T, B, H), dt)  # a_t, then δa_t
        A2, dA, dh, tmp = A.reshape(TB, H), np.empty((T, B, H), dt), np.empty((B, H), dt), np.empty((B, H), dt)
        dA2 = dA.reshape(TB, H)
        out2, prev2 = hs[1:].reshape(TB, H), hs[:-1].reshape(TB, H)

        def step():
            np.matmul(x2, W_ihT, out=A2)  # W_ih x_t for every t: one GEMM
            np.add(A2, b, out=A2)
            for t in range(T):  # h_t = tanh(a_t + h_{t-1} W_hhᵀ)
                np.matmul(hs[t], W_hhT, out=tmp)
                np.add(tmp, A[t], out=tmp)
                np.tanh(tmp, out=hs[t + 1])
            readout(out2)
            dh.fill(0)
            for t in range(T - 1, -1, -1):  # δa_t = (δout_t + δh_t) ⊙ (1 − h_t²),  δh_{t-1} = δa_t W_hh
                h = hs[t + 1]
                np.add(dOut[t * B : (t + 1) * B], dh, out=dA[t])
                np.multiply(h, h, out=tmp)
                np.subtract(1.0, tmp, out=tmp)
                np.multiply(dA[t], tmp, out=dA[t])
                np.matmul(dA[t], W_hh, out=dh)
            grads["weight_hh"] = dA2.T @ prev2  # Σ_t δa_t h_{t-1}ᵀ: ONE GEMM over all steps
            grads["weight_ih"] = dA2.T @ x2
            grads["bias"] = dA2.sum(0)
            grads["x"] = dA2 @ P["weight_ih"]
    else:
        h0 = np.zeros((B, H), dt)

        def step():
            cache = reference._STEPS[p.model](P, p.x, h0, h0, "tanh")
            readout(cache["hs"][1:].reshape(TB, H))
            r = reference._backward(p.model, P, p.x, cache, dOut.reshape(T, B, H), None, None, None)
            grads["weight_hh"] = r.grads["weight_hh"]

    return Impl("numpy", step, lambda: grads["weight_hh"])


def _minigrad_train_step(p: Problem) -> tuple[Callable[..., mg.Tensor], Any, tuple]:
    """The step as a user writes it on minigrad: (step(x, target) -> loss, layer, (x, target) tensors)."""
    layer = LAYERS[p.model](p.I, p.H, dtype=p.dtype)
    layer.load_state_dict({f"{k}_l0": v for k, v in p.params.items()})
    W_hy, b_hy, target = _readout(p)
    head = (mg.nn.Parameter(W_hy), mg.nn.Parameter(b_hy))
    params = [*layer.parameters(), *head]

    def step(x: mg.Tensor, target: mg.Tensor) -> mg.Tensor:
        for q in params:
            q.grad = None
        x.grad = None  # as torch.nn's step does: dL/dx of this step, not a running sum
        out, _ = layer(x)
        e = out @ head[0].T + head[1] - target  # the readout
        loss = 0.5 * (e * e).sum()  # L = ½ Σ e ⊙ e
        loss.backward()
        return loss

    return step, layer, (mg.Tensor(p.x, requires_grad=True), mg.Tensor(target))


def _minigrad_train_impl(p: Problem) -> Impl:
    step, layer, args = _minigrad_train_step(p)
    return Impl("minigrad", lambda: step(*args), lambda: layer.weight_hh_l0.grad)


def _compiled_train_impl(p: Problem) -> Impl | None:
    if not hasattr(mg, "compile"):
        return None
    step, layer, args = _minigrad_train_step(p)
    compiled = mg.compile(step)
    for _ in range(3):  # two traced eager calls, then the first replay (which measures its memory): not timed
        compiled(*args)
    mem = compiled.memory  # tracemalloc peaks of a traced (eager) call and of the first replay
    note = f"peak {_mb(mem['replay_peak'])} MiB replayed vs {_mb(mem['eager_peak'])} MiB eager" if mem else ""
    return Impl("minigrad compiled", lambda: compiled(*args), lambda: layer.weight_hh_l0.grad, note=note)


def _torch_nn_train_impl(p: Problem, torch) -> Impl:
    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[p.model]
    tdt = torch.float64 if p.dtype == np.float64 else torch.float32
    m = cls(p.I, p.H).to(tdt)
    m.load_state_dict({f"{k}_l0": torch.tensor(v) for k, v in p.params.items()})
    W_hy, b_hy, target = _readout(p)
    lin = torch.nn.Linear(p.H, p.I).to(tdt)
    lin.load_state_dict({"weight": torch.tensor(W_hy), "bias": torch.tensor(b_hy)})
    x, tg = torch.tensor(p.x, requires_grad=True), torch.tensor(target)

    def step():
        m.zero_grad(set_to_none=True)
        lin.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = m(x)
        e = lin(out) - tg
        (0.5 * (e * e).sum()).backward()

    return Impl("torch.nn", step, lambda: m.weight_hh_l0.grad.numpy())


def make_train_impls(p: Problem, peers: bool = True) -> list[Impl]:
    """The training step with readout and loss: hand-written numpy, minigrad, minigrad compiled, torch.nn."""
    impls = [_numpy_train_impl(p), _minigrad_train_impl(p), _compiled_train_impl(p)]
    if peers:
        torch = _torch()
        if torch is not None:
            impls.append(_torch_nn_train_impl(p, torch))
    return [i for i in impls if i is not None]


def peer_versions(peers: bool = True) -> dict[str, str]:
    """Versions of the peers that will be timed ({} with peers=False)."""
    out = {}
    if not peers:
        return out
    torch = _torch()
    if torch is not None:
        out["torch"] = f"{torch.__version__} ({torch.get_num_threads()} thread)"
    try:
        from importlib.metadata import version

        import autograd  # noqa: F401

        out["autograd"] = version("autograd")
    except Exception:  # noqa: BLE001 - absent or unversioned: just not listed
        pass
    return out


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------
@dataclass
class Timing:
    best: float  # seconds, the minimum over the repeats (the least noisy estimate)
    median: float
    repeats: int


def time_best(
    fn: Callable[[], object],
    budget: float = 0.6,
    min_repeats: int = 3,
    max_repeats: int = 200,
    warm: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Timing:
    """Best of N calls, timeit-style: one warm-up call, then more until ``budget`` seconds are
    spent and there are at least ``min_repeats`` samples (2 when one call already exceeds the budget).

    The warm-up is a complete step too, so it counts as a sample: it can only be slower than the
    steady state (first-call costs), never faster, and the minimum ignores it then. That keeps a
    cell of 1 s calls at two calls. ``warm``: the time of a warm-up call the caller already made."""
    if warm is None:
        t0 = clock()
        fn()
        warm = clock() - t0
    need = min(min_repeats, 2) if warm > budget else min_repeats
    times, spent = [warm], warm
    while len(times) < max_repeats and (len(times) < need or spent < budget):
        t0 = clock()
        fn()
        dt = clock() - t0
        times.append(dt)
        spent += dt
    return Timing(min(times), float(np.median(times)), len(times))


@dataclass
class Cell:
    model: str
    size: Size
    dtype: str
    times: dict[str, Timing] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)  # max |dW_hh − reference| / max |reference|
    notes: dict[str, str] = field(default_factory=dict)


def _rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - ref)) / max(float(np.max(np.abs(ref))), 1e-300))


def run_cells(
    models: list[str],
    sizes: list[Size],
    dtypes: list[str],
    peers: bool = True,
    budget: float = 0.6,
    min_repeats: int = 3,
    progress: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    impls_of: Callable[[Problem, bool], list[Impl]] | None = None,
) -> list[Cell]:
    """Time every implementation on every (model, size, dtype); check each one's dL/dW_hh first.

    ``clock``: time.perf_counter (wall time, the default) or time.process_time (CPU time of this
    process: steadier on a busy machine, as every implementation here runs on one thread).
    ``impls_of``: the implementations of a problem (default ``make_impls``; ``make_train_impls``
    for the training step with readout and loss)."""
    impls_of = impls_of or make_impls
    cells, n, k = [], len(models) * len(sizes) * len(dtypes), 0
    for model in models:
        for size in sizes:
            for dtype in dtypes:
                k += 1
                p = make_problem(model, size, dtype)
                cell = Cell(model, size, dtype)
                gc.collect()  # the previous cell's garbage is not collected on this cell's time
                impls = impls_of(p, peers)
                ref = None
                for impl in impls:  # impls[0] is the reference
                    t0 = clock()
                    impl.step()  # the warm-up call, whose gradient is checked
                    warm = clock() - t0
                    if ref is None:
                        ref = np.asarray(impl.grad_hh(), np.float64)
                    cell.errors[impl.name] = _rel_err(impl.grad_hh(), ref)
                    if impl.note:
                        cell.notes[impl.name] = impl.note
                    cell.times[impl.name] = time_best(impl.step, budget, min_repeats, warm=warm, clock=clock)
                del impls
                cells.append(cell)
                if progress:
                    parts = ", ".join(f"{name} {t.best * 1e3:.3g} ms" for name, t in cell.times.items())
                    progress(f"[{k}/{n}] {model} {dtype} {_size_str(size)}: {parts}")
    return cells


# ---------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------
@contextlib.contextmanager
def _traced() -> Any:
    """tracemalloc on for the block (numpy reports its array buffers to it)."""
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start()
    try:
        yield
    finally:
        if not was:
            tracemalloc.stop()


def _peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated during one call of fn, above what was live before it."""
    with _traced():  # allocations made before tracing started are not counted at all
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    return peak - base


def saved_activation_bytes(p: Problem) -> int:
    """Bytes of the arrays the hand-written reference's forward keeps for its backward (its cache)."""
    h0 = np.zeros((p.B, p.H), p.dtype)
    cache = reference._STEPS[p.model](p.params, p.x, h0, h0, "tanh")
    return sum(v.nbytes for v in cache.values() if isinstance(v, np.ndarray))


def memory_table(models: list[str], sizes: list[Size], dtypes: list[str]) -> list[dict]:
    """Peak memory of one minigrad step and of one reference step against the reference's saved activations."""
    rows = []
    for model in models:
        for size in sizes:
            for dtype in dtypes:
                p = make_problem(model, size, dtype)
                mg_impl, np_impl = _minigrad_layer_impl(p), _numpy_impl(p)
                saved = saved_activation_bytes(p)
                mg_peak, np_peak = _peak_bytes(mg_impl.step), _peak_bytes(np_impl.step)
                rows.append(
                    {"model": model, "size": list(size), "dtype": dtype, "minigrad_peak": mg_peak,
                     "numpy_peak": np_peak, "numpy_saved": saved, "ratio": mg_peak / saved}
                )  # fmt: skip
    return rows


def flat_memory(model: str, size: Size, dtype: str = "float64", steps: int = 1000) -> dict:
    """Train ``steps`` SGD steps of the minigrad layer under tracemalloc; memory live after step 10
    and after the last (the step's own names deleted, then gc.collect(), which also empties
    Python's free lists, so only what is really still reachable counts).

    Flat means no graph stays alive from one step to the next: a kept graph would add the
    whole step's saved arrays (``minigrad peak``) per step."""
    p = make_problem(model, size, dtype)
    layer = LAYERS[model](p.I, p.H, dtype=p.dtype)
    layer.load_state_dict({f"{k}_l0": v for k, v in p.params.items()})
    opt = mg.optim.SGD(layer.parameters(), lr=1e-3)
    x, d = mg.Tensor(p.x), mg.Tensor(p.dout)
    live = {}
    checkpoints = {10, min(100, steps), steps}
    with _traced():
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        for i in range(1, steps + 1):
            opt.zero_grad()
            out, _ = layer(x)
            loss = (out * d).sum()  # L = Σ_t <dout_t, h_t>
            loss.backward()
            opt.step()
            del out, loss, _
            if i in checkpoints:
                gc.collect()
                live[i] = tracemalloc.get_traced_memory()[0] - base
    first = min(live)
    return {"model": model, "size": list(size), "dtype": dtype, "steps": steps, "live": live,
            "live_after_10": live[first], "live_after_last": live[steps], "growth": live[steps] - live[first]}  # fmt: skip


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------
def _size_str(size: Size) -> str:
    return "({},{},{},{})".format(*size)


def _ms(t: float) -> str:
    ms = t * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _mb(n: float) -> str:
    return f"{n / 2**20:.2f}"


def _aligned(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A monospace table: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = [(str.ljust if i < left else str.rjust) for i in range(len(header))]

    def line(r):
        return "  ".join(f(c, w) for f, c, w in zip(fmt, r, widths)).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def format_time_table(cells: list[Cell]) -> str:
    names = [n for n in IMPL_ORDER if any(n in c.times for c in cells)]
    header = ["model", "dtype", "(B,I,H,T)"]
    for n in names:
        header += [f"{n} ms"] if n == "numpy" else [f"{n} ms", "×np"]
    rows, bad = [], []
    for c in cells:
        base = c.times["numpy"].best
        row = [c.model, c.dtype, _size_str(c.size)]
        for n in names:
            t = c.times.get(n)
            mark = "!" if c.errors.get(n, 0.0) > (1e-8 if c.dtype == "float64" else 1e-3) else ""
            if mark:
                bad.append(f"{c.model} {c.dtype} {_size_str(c.size)} {n}: dL/dW_hh differs by {c.errors[n]:.1e}")
            if n == "numpy":
                row.append(_ms(t.best))
            elif t is None:
                row += ["—", ""]
            else:
                row += [_ms(t.best) + mark, f"{t.best / base:.2f}"]
        rows.append(row)
    out = _aligned(header, rows, left=3)
    if bad:
        out += "\n! gradient check failed (relative max error of dL/dW_hh against the reference):\n  " + "\n  ".join(
            bad
        )
    return out


def scaling_rows(cells: list[Cell]) -> list[dict]:
    """cost(T_max) / cost(T_min) for each (model, dtype, B, I, H) timed at more than one T."""
    groups: dict[tuple, list[Cell]] = {}
    for c in cells:
        groups.setdefault((c.model, c.dtype, *c.size[:3]), []).append(c)
    rows = []
    for (model, dtype, B, I, H), cs in groups.items():
        if len(cs) < 2:
            continue
        lo, hi = min(cs, key=lambda c: c.size[3]), max(cs, key=lambda c: c.size[3])
        ratios = {n: hi.times[n].best / lo.times[n].best for n in hi.times if n in lo.times}
        rows.append(
            {"model": model, "dtype": dtype, "B,I,H": [B, I, H], "T": [lo.size[3], hi.size[3]], "ratio": ratios}
        )
    return rows


def format_scaling(rows: list[dict]) -> str:
    names = [n for n in IMPL_ORDER if any(n in r["ratio"] for r in rows)]
    header = ["model", "dtype", "(B,I,H)", "T ratio", *(f"{n}" for n in names)]
    body = []
    for r in rows:
        t0, t1 = r["T"]
        body.append(
            [r["model"], r["dtype"], "({},{},{})".format(*r["B,I,H"]), f"{t1}/{t0} = {t1 / t0:g}×"]
            + [f"{r['ratio'][n]:.2f}×" if n in r["ratio"] else "—" for n in names]
        )
    return _aligned(header, body, left=3)


def format_memory(rows: list[dict]) -> str:
    header = ["model", "dtype", "(B,I,H,T)", "minigrad peak MiB", "numpy saved MiB", "peak ÷ saved", "numpy peak MiB",
              "peak ÷ numpy peak"]  # fmt: skip
    body = [
        [r["model"], r["dtype"], _size_str(tuple(r["size"])), _mb(r["minigrad_peak"]), _mb(r["numpy_saved"]),
         f"{r['ratio']:.2f}×", _mb(r["numpy_peak"]), f"{r['minigrad_peak'] / r['numpy_peak']:.2f}×"]
        for r in rows
    ]  # fmt: skip
    return _aligned(header, body, left=3)


def format_flat(rows: list[dict]) -> str:
    steps = sorted({i for r in rows for i in r["live"]})
    header = ["model", "dtype", "(B,I,H,T)", *(f"live after {i} KB" for i in steps), "growth KB", "per step B"]
    body = [
        [r["model"], r["dtype"], _size_str(tuple(r["size"]))]
        + [f"{r['live'][i] / 1024:.1f}" if i in r["live"] else "—" for i in steps]
        + [f"{r['growth'] / 1024:+.1f}", f"{r['growth'] / max(r['steps'] - min(r['live']), 1):+.0f}"]
        for r in rows
    ]
    return _aligned(header, body, left=3)


def blas_threads() -> str:
    """numpy's BLAS thread count as threadpoolctl sees it, or what the environment asked for."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} (threadpoolctl not installed to confirm)"
    info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i.get('internal_api')} {i.get('num_threads')} thread" for i in info) or "no BLAS found"


def _load() -> str:
    """The 1-minute load average (runnable processes), where the OS has one."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):
        return "n/a"


def environment(peers: bool) -> dict[str, str]:
    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": str(os.cpu_count()),
        "load": _load(),  # other work on the machine moves the numbers: say how busy it was
    }
    env.update(peer_versions(peers))
    return env


def _parse_size(s: str) -> Size:
    parts = s.replace("x", ",").split(",")
    if len(parts) != 4 or not all(q.strip().isdigit() and int(q) > 0 for q in parts):
        raise argparse.ArgumentTypeError(f"a size is B,I,H,T (four positive integers), got {s!r}")
    return tuple(int(q) for q in parts)  # type: ignore[return-value]


def _parse_list(allowed: tuple[str, ...], what: str) -> Callable[[str], list[str]]:
    def parse(s: str) -> list[str]:
        items = [q.strip().lower() for q in s.split(",") if q.strip()]
        wrong = [q for q in items if q not in allowed]
        if wrong or not items:
            raise argparse.ArgumentTypeError(f"{what} must be a comma list of {', '.join(allowed)}, got {s!r}")
        return items

    return parse


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="minigrad bench",
        description="One RNN/GRU/LSTM training-step gradient on minigrad vs hand-written numpy BPTT "
        "(and PyTorch, HIPS autograd when installed), on one thread; peak memory against the "
        "reference's saved activations. Progress goes to stderr, the tables to stdout.",
    )
    ap.add_argument("--models", type=_parse_list(MODELS, "--models"), default=list(MODELS), help="e.g. rnn,gru")
    ap.add_argument(
        "--sizes", type=_parse_size, nargs="+", default=list(DEFAULT_SIZES), metavar="B,I,H,T",
        help="one or more sizes, e.g. --sizes 1,16,32,100 32,64,128,100 (default: the four of issue 8)",
    )  # fmt: skip
    ap.add_argument("--dtypes", type=_parse_list(("float64", "float32"), "--dtypes"), default=["float64", "float32"])
    ap.add_argument("--quick", action="store_true", help="few repeats (a smoke run; numbers are noisier)")
    ap.add_argument("--budget", type=float, default=None, help="seconds per timed implementation (default 0.6)")
    ap.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall",
        help="wall time (default) or this process's CPU time (steadier when other work shares the cores)",
    )  # fmt: skip
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True, help="time torch/autograd too")
    ap.add_argument(
        "--memory", action="store_true",
        help="also check memory stays flat over --memory-steps training steps (tracemalloc; slower)",
    )  # fmt: skip
    ap.add_argument("--memory-steps", type=positive_int, default=1000)
    ap.add_argument("--no-peak", action="store_true", help="skip the peak-memory table")
    ap.add_argument(
        "--train", action=argparse.BooleanOptionalAction, default=True,
        help="also time the training step with readout and loss (numpy by hand, minigrad, compiled, torch.nn)",
    )  # fmt: skip
    ap.add_argument(
        "--json", metavar="PATH", type=writable_path, help="also write every number as JSON (checked first)"
    )
    return ap


def _limit_threads() -> contextlib.AbstractContextManager:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    budget = args.budget if args.budget is not None else (0.05 if args.quick else 0.6)
    min_repeats = 1 if args.quick else 3

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    with _limit_threads():
        env = environment(args.peers)
        print("minigrad bench: one training-step gradient (forward, L = Σ_t <dout_t, h_t>, backward to all weights")
        print(
            f"and to x; no optimizer): best of N calls (the first a warm-up), ~{budget:g} s per implementation and cell."
        )
        print("One thread everywhere: numpy BLAS " + env["blas"] + "; torch.set_num_threads(1).")
        clock_note = "CPU time of this process" if args.clock == "cpu" else "wall time"
        busy = env["load"] != "n/a" and float(env["load"]) > (os.cpu_count() or 1)
        print(
            f"Clock: {clock_note}."
            + (
                " The machine is busy (load above the core count): --clock cpu is steadier."
                if busy and args.clock == "wall"
                else ""
            )
        )
        print("  ".join(f"{k} {v}" for k, v in env.items() if k != "blas"))
        print("numpy = models.reference hand-written BPTT (hoisted GEMMs); ×np = time ÷ numpy's time;")
        print(
            "mg ops = the RNN unrolled from minigrad ops by hand; autograd: x constant (no dL/dx), per-step input GEMMs."
        )
        print()
        t_start = time.perf_counter()
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        cells = run_cells(args.models, args.sizes, args.dtypes, args.peers, budget, min_repeats, progress, clock)
        print(format_time_table(cells))
        train: list[Cell] = []
        if args.train:
            progress("training step with readout and loss ...")
            train = run_cells(
                args.models, args.sizes, args.dtypes, args.peers, budget, min_repeats, progress, clock, make_train_impls
            )
            print("\nThe training step as users run it: out = layer(x), e = out @ W_hyᵀ + b_hy − target (O = I),")
            print("L = ½ Σ e⊙e, backward to every weight and x. numpy = the tightest hand-written step (see")
            print(
                "_numpy_train_impl: out= buffers, contiguous W_hhᵀ, the loss one dot, dW_hh one GEMM over all steps);"
            )
            print("minigrad compiled = mg.compile(step), replayed after its traces:")
            print(format_time_table(train))
            notes = [f"  {c.model} {c.dtype} {_size_str(c.size)}: {c.notes['minigrad compiled']}" for c in train
                     if c.notes.get("minigrad compiled")]  # fmt: skip
            if notes:
                print("Memory of one step (tracemalloc peak above what was live before it):", *notes, sep="\n")
        scaling = scaling_rows(cells)
        if scaling:
            print("\nGrowth with T (cost at the longer T ÷ cost at the shorter; linear = the T ratio):")
            print(format_scaling(scaling))
        report: dict[str, Any] = {
            "environment": env,
            "budget_s": budget,
            "clock": args.clock,
            "cells": [
                {"model": c.model, "size": list(c.size), "dtype": c.dtype,
                 "times_ms": {n: {"best": t.best * 1e3, "median": t.median * 1e3, "repeats": t.repeats}
                              for n, t in c.times.items()},
                 "ratio_to_numpy": {n: t.best / c.times["numpy"].best for n, t in c.times.items()},
                 "grad_rel_err": c.errors, "notes": c.notes}
                for c in cells
            ],
            "scaling": scaling,
            "train_cells": [
                {"model": c.model, "size": list(c.size), "dtype": c.dtype,
                 "times_ms": {n: t.best * 1e3 for n, t in c.times.items()},
                 "ratio_to_numpy": {n: t.best / c.times["numpy"].best for n, t in c.times.items()},
                 "grad_rel_err": c.errors}
                for c in train
            ],
        }  # fmt: skip
        if not args.no_peak:
            progress("peak memory of one step ...")
            mem = memory_table(args.models, args.sizes, args.dtypes)
            print("\nPeak memory of one step (tracemalloc, above what was live before it) vs the bytes of")
            print("activations the hand-written reference saves for its backward:")
            print(format_memory(mem))
            report["memory"] = mem
        if args.memory:
            small = min(args.sizes, key=lambda s: s[0] * s[2] * s[3])
            flat = []
            for model in args.models:
                progress(f"memory over {args.memory_steps} training steps: {model} {_size_str(small)} ...")
                flat.append(flat_memory(model, small, args.dtypes[0], args.memory_steps))
            print(
                f"\nMemory live across {args.memory_steps} SGD training steps (tracemalloc current after gc.collect();"
            )
            print("flat = no graph kept alive between steps, which would add about the step's peak every step):")
            print(format_flat(flat))
            report["flat_memory"] = flat
        print(f"\n({time.perf_counter() - t_start:.0f} s; load average at the end {_load()} on {os.cpu_count()} cores)")
    if args.json:
        atomic_write(args.json, lambda f: f.write(json.dumps(report, indent=1)), mode="w")
        progress(f"wrote {args.json}")
    tol = {"float64": 1e-8, "float32": 1e-3}
    return 1 if any(e > tol[c.dtype] for c in [*cells, *train] for e in c.errors.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
