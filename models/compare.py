"""The comparison suite: minigrad's generic reverse mode against hand-written BPTT, side by side.

The same float64 weights and data go through two programs that share no code:

* minigrad: ``models.RNN/GRU/LSTM`` record the unrolled graph and ``loss.backward()`` walks it;
* ``models.reference``: BPTT written out by hand in numpy (and the O(T²) path sum and RTRL);
* and the compiled path: the same minigrad step under ``mg.compile``, its gradients read from a
  replay (the third call: two traced calls first), against the same hand-written BPTT.

The loss is linear in the outputs, so each upstream gradient is a fixed random array:

    L = Σ_t <dout_t, out_t> + <dh_n, h_n>  (+ <dc_n, c_n> for the LSTM)

and for every parameter θ (and dx, dh0, dc0, and δh_t = dL/dh_t of every step, read from
``retain_grad``) the suite reports

    max abs diff = max_i |a_i − b_i|,    max rel diff = max_i |a_i − b_i| / max(|a_i|, |b_i|)

(entries where both are 0 count as 0), and the time each method took (forward + backward,
best of ``repeat`` runs). In float64 both must agree to ≤ 1e-10. The compiled rows compare
everything but δh_t: a compiled step keeps no per-step gradients (``retain_grad`` is refused
inside it), so those are the eager rows' alone.

This module computes and returns the comparisons (``Case`` objects, ``ScalingPoint`` lists);
it prints nothing. The table, the verdict, the progress line and the plot are the report's,
``viz.compare_report``, run as ``minigrad compare``:

    minigrad compare                         # the full grid, a table and a verdict; exit 1 if any diff > tol
    minigrad compare --brief --sizes T=8,H=6 # one line per case, smaller sizes
    minigrad compare --scaling               # path sum O(T²) against BPTT and minigrad O(T), log-log slopes, plot
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import minigrad as mg

from . import reference
from .rnn import GRU, LSTM, RNN
from .worked_example import worked_example

__all__ = [
    "TOL",
    "MODELS",
    "Sizes",
    "Setting",
    "Case",
    "Row",
    "CaseData",
    "NOTES",
    "diff",
    "make_layer",
    "settings_grid",
    "case_data",
    "minigrad_bptt",
    "compiled_bptt",
    "reference_bptt",
    "compare_case",
    "compare_compiled_case",
    "compare_path_sum_and_rtrl",
    "worked_example_minigrad",
    "compare_worked_example",
    "Progress",
    "run_suite",
    "SCALING_T",
    "SCALING_METHODS",
    "ScalingPoint",
    "scaling_check",
    "loglog_slopes",
]

TOL = 1e-10  # float64: both programs round differently, but never by more than this

# model name -> (reference mode, nonlinearity)
MODELS: dict[str, tuple[str, str]] = {
    "rnn-tanh": ("rnn", "tanh"),
    "rnn-relu": ("rnn", "relu"),
    "rnn-identity": ("rnn", "identity"),
    "gru": ("gru", "tanh"),
    "lstm": ("lstm", "tanh"),
}

# The lecture notes' worked example (2 steps, scalar linear RNN): the numbers printed in the notes.
NOTES = {
    "L": 12.8125,
    "dL/dW_hy": -12.875,
    "dL/dW_hh": -3.25,
    "dL/dW_xh": -25.75,
    "dL/dh_1": -12.75,
    "dL/dh_2": -6.5,
}


# ---------------------------------------------------------------------------
# What is compared: sizes, settings, cases
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    """Sequence length T, batch B, input size I, hidden size H."""

    T: int = 16
    B: int = 4
    I: int = 5
    H: int = 8

    @classmethod
    def parse(cls, text: str) -> Sizes:
        """``"T=16,B=4,I=5,H=8"`` (any subset, the rest default) or four numbers ``"16,4,5,8"``."""
        parts = [p.strip() for p in text.split(",") if p.strip()]
        values: dict[str, int] = {}
        try:
            if parts and all("=" not in p for p in parts):
                if len(parts) != 4:
                    raise ValueError
                values = dict(zip("TBIH", (int(p) for p in parts)))
            else:
                for p in parts:
                    key, _, val = p.partition("=")
                    key = key.strip().upper()
                    if key not in ("T", "B", "I", "H") or key in values:
                        raise ValueError
                    values[key] = int(val)
        except ValueError:
            raise ValueError(f"--sizes: expected 'T=16,B=4,I=5,H=8' or '16,4,5,8', got {text!r}") from None
        bad = {k: v for k, v in values.items() if v < 1}
        if bad:
            raise ValueError(f"--sizes: every size must be a positive integer, got {bad}")
        return cls(**values)

    def __str__(self) -> str:
        return f"T={self.T}, B={self.B}, I={self.I}, H={self.H}"


@dataclass(frozen=True)
class Setting:
    """One point of the grid: layers, directions and truncation (None = full BPTT)."""

    num_layers: int = 1
    bidirectional: bool = False
    truncate: int | None = None
    T: int | None = None  # only to label truncate=T

    @property
    def label(self) -> str:
        k = "full" if self.truncate is None else f"k={self.truncate}"
        if self.truncate is not None and self.truncate == self.T:
            k = f"k=T={self.T}"
        return f"L={self.num_layers} {'bidir' if self.bidirectional else 'uni'} {k}"


def settings_grid(T: int) -> list[Setting]:
    """1 and 2 layers × uni/bidirectional × truncate in {None, 1, 3, T}."""
    return [
        Setting(L, bidir, k, T)
        for L in (1, 2)
        for bidir in (False, True)
        for k in (None, 1, 3, T)  # k = T cuts nothing: the same gradients as full BPTT
    ]


@dataclass
class Row:
    """One line of the table: one quantity compared between method A and method B."""

    model: str
    setting: str
    methods: tuple[str, str]
    quantity: str
    max_abs: float
    max_rel: float
    times: tuple[float | None, float | None] | None = None  # seconds; on the first row of a case only

    def passed(self, tol: float) -> bool:
        return self.max_abs <= tol  # False for NaN too


@dataclass
class Case:
    """Method A against method B on one model and setting: the arrays compared and the times."""

    model: str
    setting: str
    methods: tuple[str, str]
    pairs: dict[str, tuple[np.ndarray, np.ndarray]]
    times: tuple[float | None, float | None] = (None, None)
    rows: list[Row] = field(init=False)

    def __post_init__(self) -> None:
        self.rows = []
        for quantity, (a, b) in self.pairs.items():
            max_abs, max_rel = diff(a, b)
            first = not self.rows
            self.rows.append(
                Row(self.model, self.setting, self.methods, quantity, max_abs, max_rel, self.times if first else None)
            )

    def worst(self) -> Row:
        return max(self.rows, key=lambda r: (math.isnan(r.max_abs), r.max_abs))


def diff(a: Any, b: Any) -> tuple[float, float]:
    """(max |a − b|, max |a − b| / max(|a|, |b|)); a shape mismatch or NaN gives inf/NaN, never a pass."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf, math.inf
    if a.size == 0:
        return 0.0, 0.0
    d = np.abs(a - b)
    scale = np.maximum(np.abs(a), np.abs(b))
    rel = np.divide(d, scale, out=np.zeros_like(d), where=scale > 0)
    if np.isnan(d).any():
        return math.nan, math.nan
    return float(d.max()), float(rel.max())


def _best_time(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """fn's result and its best wall time over ``repeat`` runs (seconds)."""
    best, result = math.inf, None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return result, best


# ---------------------------------------------------------------------------
# The two programs
# ---------------------------------------------------------------------------
@dataclass
class CaseData:
    """Inputs and upstream gradients of one case (float64, from the seed)."""

    x: np.ndarray  # (T, B, I)
    h0: np.ndarray  # (L*D, B, H)
    c0: np.ndarray | None  # (L*D, B, H), LSTM only
    dout: np.ndarray  # (T, B, D*H) = ∂L/∂out
    dh_n: np.ndarray  # (L*D, B, H) = ∂L/∂h_n
    dc_n: np.ndarray | None  # (L*D, B, H) = ∂L/∂c_n, LSTM only


def make_layer(model: str, setting: Setting, sizes: Sizes, seed: int) -> RNN | GRU | LSTM:
    """The minigrad layer of a case, PyTorch's init from ``seed`` (float64)."""
    mode, nonlinearity = MODELS[model]
    kw = dict(num_layers=setting.num_layers, bidirectional=setting.bidirectional, rng=seed)
    if mode == "rnn":
        return RNN(sizes.I, sizes.H, nonlinearity=nonlinearity, **kw)
    return {"gru": GRU, "lstm": LSTM}[mode](sizes.I, sizes.H, **kw)


def case_data(model: str, setting: Setting, sizes: Sizes, seed: int) -> CaseData:
    """Standard-normal x, h0, c0 and upstream gradients for one case."""
    rng = np.random.default_rng(seed)
    T, B, I, H = sizes.T, sizes.B, sizes.I, sizes.H
    D = 2 if setting.bidirectional else 1
    LD, lstm = setting.num_layers * D, MODELS[model][0] == "lstm"
    x, h0 = rng.standard_normal((T, B, I)), rng.standard_normal((LD, B, H))
    c0 = rng.standard_normal((LD, B, H)) if lstm else None
    dout, dh_n = rng.standard_normal((T, B, D * H)), rng.standard_normal((LD, B, H))
    dc_n = rng.standard_normal((LD, B, H)) if lstm else None
    return CaseData(x, h0, c0, dout, dh_n, dc_n)


def minigrad_bptt(layer: RNN | GRU | LSTM, data: CaseData, truncate: int | None) -> dict[str, np.ndarray]:
    """Generic reverse mode: forward with the layer, L = Σ <dout, out> + <dh_n, h_n> (+ <dc_n, c_n>), backward.

    Returns out, h_n (c_n), every parameter's grad under its state_dict name, dx, dh0 (dc0), and
    "δh_t[tag]" (T, B, H) = dL/dh_t of every step from ``retain_grad`` ("δc_t[tag]" for the LSTM).
    """
    layer.zero_grad()
    x = mg.Tensor(data.x, requires_grad=True)
    h0 = mg.Tensor(data.h0, requires_grad=True)
    if isinstance(layer, LSTM):
        c0 = mg.Tensor(data.c0, requires_grad=True)
        out, (h_n, c_n), states = layer(x, (h0, c0), truncate=truncate, return_states=True)
        loss = (out * data.dout).sum() + (h_n * data.dh_n).sum() + (c_n * data.dc_n).sum()
    else:
        c0 = c_n = None
        out, h_n, states = layer(x, h0, truncate=truncate, return_states=True)
        loss = (out * data.dout).sum() + (h_n * data.dh_n).sum()
    states.retain_grad()  # keep δh_t = dL/dh_t of every step
    loss.backward()
    res = {"out": out.data, "h_n": h_n.data}
    if c_n is not None:
        res["c_n"] = c_n.data
    for name, p in layer.named_parameters():
        res[name] = np.zeros_like(p.data) if p.grad is None else p.grad
    res["dx"], res["dh0"] = x.grad, h0.grad
    if c0 is not None:
        res["dc0"] = c0.grad
    for tag, dh in states.grads("h").items():
        res[f"δh_t[{tag}]"] = dh
    if c0 is not None:
        for tag, dc in states.grads("c").items():
            res[f"δc_t[{tag}]"] = dc
    return res


def compiled_bptt(layer: RNN | GRU | LSTM, data: CaseData, truncate: int | None, repeat: int = 1) -> tuple[dict, float]:
    """The loss of ``minigrad_bptt`` as a step under ``mg.compile``: (results from a replay, best replay time).

    The step is called twice (traced, eagerly), replayed once (its memory measured), then ``repeat``
    times replayed and timed; the results are the last replay's. Keys as ``minigrad_bptt``'s, without the δh_t (δc_t) a compiled step does not keep.
    """
    lstm = isinstance(layer, LSTM)

    def step(x, h0, dout, dh_n, *c):  # c = (c0, dc_n) for the LSTM
        layer.zero_grad()
        if lstm:
            out, (h_n, c_n) = layer(x, (h0, c[0]), truncate=truncate)
            loss = (out * dout).sum() + (h_n * dh_n).sum() + (c_n * c[1]).sum()
            loss.backward()
            return loss, out, h_n, c_n
        out, h_n = layer(x, h0, truncate=truncate)
        loss = (out * dout).sum() + (h_n * dh_n).sum()
        loss.backward()
        return loss, out, h_n

    compiled = mg.compile(step)

    def call() -> tuple:
        x, h0 = mg.Tensor(data.x, requires_grad=True), mg.Tensor(data.h0, requires_grad=True)
        c = (mg.Tensor(data.c0, requires_grad=True), data.dc_n) if lstm else ()
        return compiled(x, h0, data.dout, data.dh_n, *c), x, h0, c

    for _ in range(3):
        call()  # two traced calls (the program is built when they agree), one replay measuring its memory
    (results, x, h0, c), seconds = _best_time(call, repeat)
    if compiled.traces != 2 or compiled.program is None:
        raise RuntimeError(f"compiled_bptt: the step was traced {compiled.traces} times and never replayed")
    res = {"out": results[1].data, "h_n": results[2].data}
    if lstm:
        res["c_n"] = results[3].data
    for name, p in layer.named_parameters():
        res[name] = np.zeros_like(p.data) if p.grad is None else p.grad
    res["dx"], res["dh0"] = x.grad, h0.grad
    if lstm:
        res["dc0"] = c[0].grad
    return res, seconds


def reference_bptt(
    model: str, setting: Setting, state_dict: dict[str, np.ndarray], data: CaseData
) -> dict[str, np.ndarray]:
    """Hand-written BPTT (``reference.stacked_bptt``) under the same keys as ``minigrad_bptt``."""
    mode, nonlinearity = MODELS[model]
    r = reference.stacked_bptt(
        mode, state_dict, data.x, data.h0, data.dout, data.dh_n, data.c0, data.dc_n,
        num_layers=setting.num_layers, bidirectional=setting.bidirectional,
        truncate=setting.truncate, nonlinearity=nonlinearity,
    )  # fmt: skip
    res = {"out": r.out, "h_n": r.h_n}
    if r.c_n is not None:
        res["c_n"] = r.c_n
    res.update(r.grads)
    res["dx"], res["dh0"] = r.dx, r.dh0
    if r.dc0 is not None:
        res["dc0"] = r.dc0
    res.update({f"δh_t[{tag}]": dh for tag, dh in r.dh.items()})
    res.update({f"δc_t[{tag}]": dc for tag, dc in (r.dc or {}).items()})
    return res


def _pairs(a: dict[str, np.ndarray], b: dict[str, np.ndarray], a_name: str, b_name: str) -> dict:
    """Match two result dicts key by key; a key only one side has is an error (nothing skipped silently)."""
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise KeyError(
            f"{a_name} and {b_name} computed different quantities: only {a_name} {only_a}, only {b_name} {only_b}"
        )
    return {k: (a[k], b[k]) for k in a}


def compare_case(model: str, setting: Setting, sizes: Sizes, seed: int = 0, repeat: int = 3) -> Case:
    """minigrad against the hand-written BPTT on one model and setting."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: choose from {', '.join(MODELS)}")
    layer = make_layer(model, setting, sizes, seed)
    data = case_data(model, setting, sizes, seed)
    state_dict = layer.state_dict()
    mg_res, t_mg = _best_time(lambda: minigrad_bptt(layer, data, setting.truncate), repeat)
    ref_res, t_ref = _best_time(lambda: reference_bptt(model, setting, state_dict, data), repeat)
    pairs = _pairs(mg_res, ref_res, "minigrad", "reference")
    return Case(model, setting.label, ("minigrad", "bptt"), pairs, (t_mg, t_ref))


def compare_compiled_case(model: str, setting: Setting, sizes: Sizes, seed: int = 0, repeat: int = 3) -> Case:
    """The compiled step (``mg.compile``, a replay) against the hand-written BPTT on one model and setting.

    Every quantity of ``compare_case`` but the per-step δh_t (δc_t), which a compiled step does not keep."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: choose from {', '.join(MODELS)}")
    layer = make_layer(model, setting, sizes, seed)
    data = case_data(model, setting, sizes, seed)
    state_dict = layer.state_dict()
    comp, t_comp = compiled_bptt(layer, data, setting.truncate, repeat)
    ref_res, t_ref = _best_time(lambda: reference_bptt(model, setting, state_dict, data), repeat)
    ref_res = {k: v for k, v in ref_res.items() if not k.startswith(("δh_t", "δc_t"))}
    return Case(model, setting.label, ("compiled", "bptt"), _pairs(comp, ref_res, "compiled", "reference"),
                (t_comp, t_ref))  # fmt: skip


# ---------------------------------------------------------------------------
# The lecture notes' extras: path sum and RTRL against BPTT, the worked example
# ---------------------------------------------------------------------------
def compare_path_sum_and_rtrl(
    nonlinearity: str, truncate: int | None, sizes: Sizes, seed: int = 0, repeat: int = 1
) -> list[Case]:
    """The O(T²) path sum and RTRL (forward mode) against BPTT for one Elman layer (T ≤ 12)."""
    model = f"rnn-{nonlinearity}"
    T = min(sizes.T, 12)
    setting = Setting(1, False, truncate, T)
    small = Sizes(T, sizes.B, sizes.I, sizes.H)
    params = {k[: -len("_l0")]: v for k, v in make_layer(model, setting, small, seed).state_dict().items()}
    data = case_data(model, setting, small, seed)
    args = (params, data.x, data.h0[0], data.dout, data.dh_n[0])
    kw = dict(nonlinearity=nonlinearity, truncate=truncate)

    bptt, t_bptt = _best_time(lambda: reference.rnn_bptt(*args, **kw), repeat)
    ps, t_ps = _best_time(lambda: reference.path_sum_grads(*args, **kw), repeat)
    rtrl, t_rtrl = _best_time(lambda: reference.rtrl_grads(*args, **kw), repeat)

    def as_dict(r: reference.BPTTResult) -> dict[str, np.ndarray]:
        return {**r.grads, "dx": r.dx, "dh0": r.dh0, "δh_t": r.dh}

    label = f"T={T} " + ("full" if truncate is None else f"k={truncate}")
    ps_case = Case(
        model, label, ("path-sum", "bptt"), _pairs(as_dict(ps), as_dict(bptt), "path-sum", "bptt"), (t_ps, t_bptt)
    )
    rtrl_res = {**{k: v for k, v in rtrl.items() if k != "h0"}, "dh0": rtrl["h0"]}
    bptt_res = {**bptt.grads, "dh0": bptt.dh0}
    rtrl_case = Case(model, label, ("rtrl", "bptt"), _pairs(rtrl_res, bptt_res, "rtrl", "bptt"), (t_rtrl, t_bptt))
    return [ps_case, rtrl_case]


def worked_example_minigrad() -> dict[str, float]:
    """The notes' worked example written with minigrad ops (models.worked_example)."""
    return worked_example()[0]


def compare_worked_example() -> list[Case]:
    """minigrad, the hand-written scalar BPTT and the path sum against the numbers in the notes."""
    mg_res, t_mg = _best_time(worked_example_minigrad, 1)
    ref, t_ref = _best_time(reference.worked_example, 1)
    path_sum = ref.pop("path_sum")
    notes_grads = {k: v for k, v in NOTES.items() if k != "L"}
    return [
        Case(
            "worked example",
            "notes, T=2",
            ("minigrad", "notes"),
            _pairs(mg_res, NOTES, "minigrad", "notes"),
            (t_mg, None),
        ),
        Case("worked example", "notes, T=2", ("bptt", "notes"), _pairs(ref, NOTES, "bptt", "notes"), (t_ref, None)),
        Case("worked example", "notes, T=2", ("path-sum", "notes"), _pairs(path_sum, notes_grads, "path-sum", "notes")),
    ]


# ---------------------------------------------------------------------------
# The whole suite
# ---------------------------------------------------------------------------
# Told before each job: (its number from 1, the number of jobs, what it is), e.g. (12, 96, "gru L=2 bidir k=3").
Progress = Callable[[int, int, str], None]


def run_suite(
    sizes: Sizes = Sizes(),
    seed: int = 0,
    models: Iterable[str] = tuple(MODELS),
    repeat: int = 3,
    extras: bool = True,
    progress: Progress | None = None,
    compiled: bool = True,
) -> list[Case]:
    """Every model × setting of the grid (``compiled``: eager and compiled, each against BPTT), then
    (``extras``) path sum / RTRL and the worked example.

    ``progress``, when given, is called before each job (the report draws a progress line with it)."""
    models = list(models)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}: choose from {', '.join(MODELS)}")
    grid = settings_grid(sizes.T)
    rnn_nls = [MODELS[m][1] for m in models if MODELS[m][0] == "rnn"] if extras else []
    jobs: list[tuple[str, Callable[[], list[Case]]]] = []
    for model in models:
        for s in grid:
            jobs.append((f"{model} {s.label}", lambda m=model, s=s: [compare_case(m, s, sizes, seed, repeat)]))
            if compiled:
                jobs.append(
                    (
                        f"{model} {s.label} compiled",
                        lambda m=model, s=s: [compare_compiled_case(m, s, sizes, seed, repeat)],
                    )
                )
    for nl in rnn_nls:
        for k in (None, 3):
            jobs.append(
                (f"path sum / RTRL rnn-{nl}", lambda nl=nl, k=k: compare_path_sum_and_rtrl(nl, k, sizes, seed, repeat))
            )
    if extras:
        jobs.append(("worked example", compare_worked_example))
    cases: list[Case] = []
    for i, (what, job) in enumerate(jobs, 1):
        if progress:
            progress(i, len(jobs), what)
        try:
            cases.extend(job())
        except Exception as e:  # one broken case becomes a FAIL row; the rest of the table still prints
            model, _, setting = what.partition(" ")
            methods = ("compiled", "bptt") if setting.endswith(" compiled") else ("minigrad", "bptt")
            setting = setting.removesuffix(" compiled")
            error = f"error {type(e).__name__}: {e}"[:100]
            cases.append(Case(model, setting, methods, {error: (np.array(np.nan), np.array(0.0))}))
    return cases


# ---------------------------------------------------------------------------
# Scaling: the path sum is O(T²), BPTT and minigrad are O(T)
# ---------------------------------------------------------------------------
SCALING_T = (10, 20, 50, 100, 200, 300, 500, 1000)
SCALING_METHODS = ("path-sum", "bptt", "minigrad")


@dataclass
class ScalingPoint:
    """CPU times (seconds, time.process_time; None = skipped) of each method at one T, and how far path
    sum / minigrad are from BPTT."""

    T: int
    seconds: dict[str, float | None]
    max_abs: dict[str, float | None]
    grad_scale: float = 1.0  # max |∂L/∂θ| by BPTT: the diffs are judged relative to max(1, this)


def _linear_rnn(sizes: Sizes, seed: int) -> dict[str, np.ndarray]:
    """A linear (identity) Elman layer with W_hh = 0.9·(orthogonal): h_t stays bounded for any T."""
    rng = np.random.default_rng(seed)
    H, I = sizes.H, sizes.I
    Q, _ = np.linalg.qr(rng.standard_normal((H, H)))
    k = 1 / np.sqrt(H)
    return {
        "weight_ih_l0": rng.uniform(-k, k, (H, I)),
        "weight_hh_l0": 0.9 * Q,
        "bias_ih_l0": rng.uniform(-k, k, H),
        "bias_hh_l0": rng.uniform(-k, k, H),
    }


def _time_enough(fn: Callable[[], Any], repeat: int, min_total: float = 0.3) -> tuple[Any, float]:
    """Best CPU time of up to ``repeat`` runs, stopping once ``min_total`` CPU seconds were spent.

    CPU time of this process (``time.process_time``), not wall clock: on a busy machine other
    programs stretch wall time by whatever share of the cores they take, and a slope fitted to
    wall times swings with the load; CPU time moves much less (as in examples/complexity.py)."""
    best, spent, result = math.inf, 0.0, None
    for _ in range(max(1, repeat)):
        t0 = time.process_time()
        result = fn()
        dt = time.process_time() - t0
        best, spent = min(best, dt), spent + dt
        if spent >= min_total:
            break
    return result, best


def scaling_check(
    Ts: Iterable[int] = SCALING_T,
    sizes: Sizes = Sizes(B=1),
    seed: int = 0,
    budget: float = 3.0,
    repeat: int = 3,
    progress: Progress | None = None,
) -> list[ScalingPoint]:
    """CPU-time ∂L/∂θ of the linear RNN with ℓ_t = ½‖h_t‖² by the path sum, BPTT and minigrad.

    The path sum runs while its predicted time (last time × (T/T_last)²) stays under ``budget``
    seconds; BPTT and minigrad run at every T. ``progress``, when given, is called before each T.
    """
    sd = _linear_rnn(sizes, seed)
    params = {k[: -len("_l0")]: v for k, v in sd.items()}
    layer = RNN(sizes.I, sizes.H, nonlinearity="identity")
    layer.load_state_dict(sd)
    points: list[ScalingPoint] = []
    last_ps: tuple[int, float] | None = None
    Ts = sorted(set(int(T) for T in Ts))

    def minigrad_grads(x: np.ndarray) -> dict[str, np.ndarray]:
        layer.zero_grad()
        out, _ = layer(mg.Tensor(x))
        loss = 0.5 * (out * out).sum()  # L = Σ_t ½‖h_t‖²
        loss.backward()
        return {n[: -len("_l0")]: p.grad for n, p in layer.named_parameters()}

    for i, T in enumerate(Ts, 1):
        if progress:
            progress(i, len(Ts), f"scaling T={T}")
        x = np.random.default_rng([seed, T]).standard_normal((T, sizes.B, sizes.I))
        args = (params, x, None, reference.half_sq_norm)
        bptt, t_bptt = _time_enough(lambda: reference.rnn_bptt(*args, nonlinearity="identity").grads, repeat)
        mgr, t_mg = _time_enough(lambda: minigrad_grads(x), repeat)
        seconds: dict[str, float | None] = {"path-sum": None, "bptt": t_bptt, "minigrad": t_mg}
        max_abs: dict[str, float | None] = {"path-sum": None, "minigrad": _max_abs_over(mgr, bptt)}
        if last_ps is None or last_ps[1] * (T / last_ps[0]) ** 2 <= budget:
            ps, t_ps = _time_enough(lambda: reference.path_sum_grads(*args, nonlinearity="identity").grads, repeat)
            seconds["path-sum"], max_abs["path-sum"] = t_ps, _max_abs_over(ps, bptt)
            last_ps = (T, t_ps)
        scale = max(float(np.abs(g).max()) for g in bptt.values())
        points.append(ScalingPoint(T, seconds, max_abs, scale))
    return points


def _max_abs_over(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(diff(a[k], b[k])[0] for k in b)


def loglog_slopes(points: list[ScalingPoint], min_T: int = 50) -> dict[str, float | None]:
    """Least-squares slope of log(time) against log(T) per method, over T ≥ min_T (time ∝ T^slope).

    Small T is left out of the fit: there a fixed per-call cost, not the work per step, dominates.
    """
    slopes: dict[str, float | None] = {}
    for m in SCALING_METHODS:
        pts = [(p.T, p.seconds[m]) for p in points if p.seconds[m] is not None and p.T >= min_T]
        if len(pts) < 2:
            pts = [(p.T, p.seconds[m]) for p in points if p.seconds[m] is not None]
        if len(pts) < 2:
            slopes[m] = None
            continue
        Ts, ts = np.log([t for t, _ in pts]), np.log([s for _, s in pts])
        slopes[m] = float(np.polyfit(Ts, ts, 1)[0])
    return slopes


if __name__ == "__main__":  # not a command any more: say where it went rather than exit 0 having compared nothing
    raise SystemExit("models.compare is the comparison library and has no command line; run `minigrad compare`")
