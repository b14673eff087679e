"""``mg.compile(step)``: trace a training step once, replay it as a flat numpy program.

    @mg.compile
    def step(x, target):                      # Tensors (numpy arrays are wrapped)
        out, _ = rnn(x)
        e = out @ W_hy.T - target
        loss = 0.5 * (e * e).sum()
        loss.backward()                       # inside the step: the backward is compiled too
        return loss                           # a Tensor (or a tuple of Tensors the step made)

    for x, y in batches:
        opt.zero_grad()                       # outside, or p.grad = None inside: both honoured
        loss = step(x, y)                     # a Tensor without a graph; p.grad filled as eagerly
        opt.step()                            # outside, or inside the step after backward: both replay

The contract (docs/compiler.md says why):

* Calls 1 and 2 with a new signature (the shapes and dtypes of the Tensor arguments, the values
  of the others) run eagerly and are traced (trace.py). If the two traces agree (the same ops,
  attributes, wiring, parameters, constants), the trace is lowered to a program (program.py),
  the passes run (passes.py) and later calls replay it (replay.py). Two traces, because that is
  how a structure that changes from call to call (``RandomTruncation``'s fresh cuts, a dropout
  mask, an ``if`` on the data) is seen at all: a trace that differs from the one before retraces,
  eagerly; when it keeps differing, a warning says so once and names the first op that differs.
* Everything that varies between calls must come in as an argument or live in a parameter's
  ``.data`` (read fresh every call). Other arrays the step makes are constants of the program.
  Python side effects in the step (printing, appending to a list) happen only in the traced calls.
* Data guards (``minigrad/dataguards.py``): what library code decided from an argument's values
  (``cross_entropy``'s ignored rows, its targets in range) is checked on the fresh arguments
  before each replay; a difference runs that call eagerly (a structure change: it warns when it
  repeats). Extreme indices (``max(x, dim=d)``, ``argmax``) used as data are refused by name.
* Optimizer calls inside the step (``opt.step()``, ``opt.zero_grad()``, a scheduler's ``step()``,
  ``mg.optim.clip_grad_norm_``) are recorded in order, before the forward or after backward, and
  every replay makes them again at the same point; any other write to a parameter is refused.
* Leaf hooks (``p.register_hook``, outside the step) run in the replay as eagerly: in order, once,
  on the leaf's δ summed over its uses (as torch calls them), before ``.grad`` accumulates.
* ``check_every=N`` re-runs the step eagerly every N replays and retraces if its trace changed:
  the guard for data-dependent control flow that the first two calls did not show.
* Refused with ``CompileError``: anomaly mode, grad-norm recording, ``retain_grad``, a non-leaf
  hook, a hook registered or ``mg.grad`` in the step, more than one backward, an op without a
  replay kernel (named), ``checkpoint`` (saying why), returning values no op made, extreme
  indices used as data, a parameter write no recorded optimizer call made.
"""

from __future__ import annotations

import functools
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import checks, dataguards, gradnorms, hooks
from ..tensor import Tensor
from . import passes
from .program import Program
from .replay import generate
from .trace import CompileError, Trace, trace_call

__all__ = ["compile", "Compiled", "CompileError"]


@dataclass
class _Entry:
    """What is known about one signature: the last trace, and the program once two traces agree."""

    trace: Trace
    before: Program | None = None
    program: Program | None = None
    replay: Callable[..., Any] | None = None
    source: str = ""
    replays: int = 0
    eager_peak: int | None = None
    replay_peak: int | None = None


class Compiled:
    """A compiled step; call it like the step. ``program`` / ``program_before``: the Wengert list
    after / before the passes; ``source``: the generated replay; ``memory``: peak bytes, eager
    against the replay; ``traces``: how many eager traced calls ran."""

    def __init__(self, fn: Callable[..., Any], check_every: int = 0, warn_after: int = 2):
        self.fn = fn
        self.check_every = int(check_every)
        self.warn_after = warn_after
        self.entries: dict[Any, _Entry] = {}
        self.traces = 0
        self.changes = 0  # traces that differed from the one before
        self._warned = False
        self._last: _Entry | None = None
        functools.update_wrapper(self, fn)

    # -- what a user reads ----------------------------------------------------
    @property
    def program(self) -> Program | None:
        return None if self._last is None else self._last.program

    @property
    def program_before(self) -> Program | None:
        return None if self._last is None else self._last.before

    @property
    def source(self) -> str:
        return "" if self._last is None else self._last.source

    @property
    def memory(self) -> dict[str, int | None]:
        e = self._last
        if e is None or e.program is None:
            return {}
        return {"eager_peak": e.eager_peak, "replay_peak": e.replay_peak, "plan_peak": e.program.peak_bytes()}

    # -- the call -----------------------------------------------------------------
    def __call__(self, *args: Any) -> Any:
        if checks.anomaly or gradnorms.recording:
            what = "anomaly mode (detect_anomaly)" if checks.anomaly else "record_grad_norms()"
            raise CompileError(f"mg.compile: {what} is not supported by a compiled step: call the step eagerly")
        targs = tuple(Tensor(a) if isinstance(a, np.ndarray) else a for a in args)
        key = tuple(
            (a.shape, a.dtype.str, a.requires_grad) if isinstance(a, Tensor) else ("value", repr(a)) for a in targs
        )
        entry = self.entries.get(key)
        if entry is not None and entry.replay is not None:
            if self.check_every and entry.replays and entry.replays % self.check_every == 0:
                entry.replays += 1
                return self._trace(key, targs, entry)  # an eager check: retraces if the structure moved
            if entry.trace.grad_state_differs(targs):
                return self._trace(key, targs, entry)  # a .grad there (or not) that the trace did not see: retrace
            if entry.trace.guards and entry.trace.broken_guard(targs) is not None:
                return self._trace(key, targs, entry)  # the data decide another structure: this call runs eagerly
            entry.replays += 1
            return self._replay(entry, targs)
        return self._trace(key, targs, entry)

    def _replay(self, e: _Entry, args: tuple) -> Any:
        measure = e.replay_peak is None
        if measure:
            was = tracemalloc.is_tracing()
            if not was:
                tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        calls = e.trace.calls
        for c in calls:  # optimizer calls the step made before its forward (trace.py: Call)
            if not c.after:
                c.run()
        out = e.replay(args, e.program.params_by_id, e.program.consts)
        for c in calls:  # and after its backward: optimizer.step() reads the .grad the replay just wrote
            if c.after:
                c.run()
        if measure:
            e.replay_peak = tracemalloc.get_traced_memory()[1] - base
            if not was:
                tracemalloc.stop()
        if out is None:
            return None
        return tuple(Tensor(o) for o in out) if isinstance(out, tuple) else Tensor(out)

    def _trace(self, key: Any, args: tuple, entry: _Entry | None) -> Any:
        known = [] if entry is None else list(entry.trace.params.values())
        was = tracemalloc.is_tracing()
        if not was:
            tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        try:
            result, tr = trace_call(self.fn, args, {}, known)
        finally:
            peak = tracemalloc.get_traced_memory()[1] - base
            if not was:
                tracemalloc.stop()
        self.traces += 1
        if entry is None:
            self.entries[key] = self._last = _Entry(tr, eager_peak=peak)
            return result
        if tr.fingerprint() == entry.trace.fingerprint():
            if entry.program is None or (tr.grad_start, tr.clears) != (entry.trace.grad_start, entry.trace.clears):
                entry.trace = tr  # (the same ops, but the .grad writes the program makes have changed)
                entry.eager_peak = peak
                self._build(entry)
            self._last = entry
            return result
        # the structure changed: keep this trace, replay nothing until two traces agree again
        self.changes += 1
        why = _first_difference(entry.trace, tr)
        self.entries[key] = self._last = _Entry(tr, eager_peak=peak)
        if self.changes >= self.warn_after and not self._warned:
            self._warned = True
            warnings.warn(
                f"mg.compile({getattr(self.fn, '__name__', 'step')}): the step recorded a different program on "
                f"{self.changes} calls ({why}), so it runs eagerly and is retraced each time. Data-dependent "
                "control flow or fresh randomness inside the step (RandomTruncation, dropout) cannot be "
                "replayed; run such a step without mg.compile.",
                UserWarning,
                stacklevel=3,
            )
        return result

    def _build(self, e: _Entry) -> None:
        before, prog = passes.optimize(e.trace)
        prog.params_by_id = {int(name[1:]): t for name, t in prog.params.items()}  # type: ignore[attr-defined]
        e.before, e.program = before, prog
        e.replay, e.source = generate(prog)


def _first_difference(a: Trace, b: Trace) -> str:
    """Where two traces part: a guarded fact (dataguards.py), the first op that differs, or what else does."""
    for (_, g), (_, h) in zip(a.guards, b.guards):
        if g.what != h.what or not dataguards.same(g.value, h.value):
            return f"the values of {g.what} decided a different structure"
    for k, (m, n) in enumerate(zip(a.nodes, b.nodes)):
        if (m.op, m.ins, m.outs) != (n.op, n.ins, n.outs) or repr(m.attrs) != repr(n.attrs):
            return f"first at op {k}: {m.op} in scope {m.scope!r} became {n.op} in scope {n.scope!r}"
    if len(a.nodes) != len(b.nodes):
        return f"{len(a.nodes)} ops became {len(b.nodes)}"
    return "the same ops, but different constants, parameters or shapes (fresh random masks?)"


def compile(fn: Callable[..., Any] | None = None, *, check_every: int = 0) -> Any:  # noqa: A001 (the pinned name)
    """``mg.compile(step)`` or ``@mg.compile(check_every=100)``: see this module's docstring."""
    from ..nn import Module

    if isinstance(fn, Module):  # torch.compile(model) compiles a forward; here the unit is the step
        raise CompileError(
            f"mg.compile compiles a training step (forward, loss and backward), not a module ({type(fn).__name__}): "
            "torch.compile(model) compiles a forward and leaves the backward to autograd, but here the backward "
            "is what a replay speeds up. Use models.train_step(model, loss_fn, optimizer), or write the step as "
            "a function that calls loss.backward() and compile that (docs/compiler.md)."
        )
    if fn is None:
        return lambda f: Compiled(f, check_every)
    return Compiled(fn, check_every)
