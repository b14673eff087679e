"""Recording one eager call of a training step: its tape, as a list of ops on numbered values.

The step runs eagerly, exactly as without the compiler. While it runs, ``tensor.backward`` is
wrapped: when the step calls ``loss.backward()``, the wrapper first walks the graph from the
root (iteratively, oldest node first) and copies out of every node what a replay needs

    op name, inputs (a leaf, or (producer, output index)), output shapes, and its attributes

then lets the real backward run. The attributes (an axis, a permutation, split sizes, a
gradient scale ξ) are the non-array values the node's VJP closure holds: ``ops.py`` keeps them
there, beside the formula, and the tracer reads them by name (``closure_attrs``), so ops.py
needs no second description of each op. Arrays a closure holds are saved forward values, which
the replay recomputes; the only arrays kept are constants (masks, indices).

Leaves are sorted into three kinds: an *input* (an argument of the step, read fresh every call),
a *parameter* (a leaf that requires grad: its ``.data`` is read every call and its ``.grad``
written), a *constant* (any other array the step made: baked into the program, and compared
between traces, so a fresh random mask shows up as a change).

Arguments that do not require grad are switched to ``requires_grad=True`` for the traced call
only, so that every op on them is recorded instead of happening invisibly in numpy; their
gradients are removed by the dead-code pass, and their ``.grad`` is restored afterwards.

*Guards* (``minigrad/dataguards.py``): library code that decides its structure from an array's
values (``cross_entropy``'s ignored rows) declares it while the call is traced; the trace keeps
each such fact with the argument it is about (``Trace.guards``), and a replay first checks the
facts on the fresh arguments (``Trace.broken_guard``): if one differs, that call runs eagerly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import checks, dataguards, gradnorms, hooks, optim
from .. import tensor as _tensor
from ..tensor import Tensor

__all__ = ["ArgRef", "Call", "CompileError", "TNode", "Trace", "trace_call", "closure_attrs"]


class CompileError(RuntimeError):
    """A step the compiler cannot replay faithfully (it says which op or which rule)."""


@dataclass(frozen=True)
class ArgRef:
    """An attribute that is argument ``index``'s data, in ``shape`` (read fresh on every replay);
    ``replace=(value, by)``: with its entries equal to ``value`` set to ``by`` (dataguards.replaced)."""

    index: int
    shape: tuple
    replace: tuple | None = None

    def code(self) -> str:
        a = f"_in[{self.index}].data.reshape({self.shape!r})"
        if self.replace is None:
            return a
        value, by = self.replace
        return f"np.where({a} == {value!r}, {by!r}, {a})"


@dataclass
class Call:
    """An optimizer call the step made (``SGD.step(opt)``, ``clip_grad_norm_(params, 1.0)``), repeated by
    every replay at the same point: before the program (``after`` False) or after its backward."""

    label: str
    fn: Any
    args: tuple
    kwargs: dict
    after: bool

    def run(self) -> None:
        self.fn(*self.args, **self.kwargs)

    def key(self) -> tuple:
        """What a fingerprint compares: the call, on which objects (by identity), with which values."""
        parts = [
            id(a) if isinstance(a, optim.Optimizer | optim.LRScheduler | Tensor) else _stable(a) for a in self.args
        ]
        return (self.label, self.after, parts, _stable(self.kwargs))


@dataclass
class TNode:
    """One op of the trace: ``ins`` are value ids, ``outs`` the ids of its outputs."""

    op: str
    ins: list[int]
    outs: list[int]
    attrs: dict[str, Any]
    scope: str = ""


@dataclass
class Trace:
    """The recorded step: values are numbered; ``shapes``/``dtypes`` per value id."""

    nodes: list[TNode] = field(default_factory=list)
    shapes: dict[int, tuple] = field(default_factory=dict)
    dtypes: dict[int, np.dtype] = field(default_factory=dict)
    inputs: dict[int, int] = field(default_factory=dict)  # value id -> argument index
    params: dict[int, Tensor] = field(default_factory=dict)  # value id -> the leaf tensor
    consts: dict[int, np.ndarray] = field(default_factory=dict)  # value id -> the array
    needs_grad: set[int] = field(default_factory=set)  # leaves whose .grad the step fills (params, inputs)
    clears: set[int] = field(default_factory=set)  # leaves whose .grad the step set to None first
    grad_start: dict[int, bool] = field(default_factory=dict)  # leaf -> its .grad was None when the call began
    root: int | None = None  # the value backward started from
    seed: np.ndarray | None = None  # δroot (ones for a scalar root)
    returns: Any = None  # the step's result: a value id, or a tuple of them, or None
    guards: list[tuple[ArgRef | None, dataguards.Guard]] = field(default_factory=list)  # facts about arguments
    calls: list[Call] = field(default_factory=list)  # optimizer calls inside the step, in order

    def fingerprint(self) -> str:
        """A digest of everything the program depends on: ops, attributes, wiring, shapes, dtypes,
        which leaf is which (parameters by identity), the constants' bytes, the result."""
        h = hashlib.sha256()
        for n in self.nodes:
            h.update(repr((n.op, n.ins, n.outs, _stable(n.attrs))).encode())
        h.update(repr(sorted((k, self.shapes[k], str(self.dtypes[k])) for k in self.shapes)).encode())
        h.update(repr((sorted(self.inputs.items()), sorted((k, id(t)) for k, t in self.params.items()))).encode())
        for k in sorted(self.consts):
            h.update(repr((k, self.consts[k].shape, str(self.consts[k].dtype))).encode())
            h.update(np.ascontiguousarray(self.consts[k]).tobytes())
        h.update(repr((self.root, sorted(self.needs_grad), self.returns)).encode())
        if self.seed is not None:
            h.update(np.ascontiguousarray(self.seed).tobytes())
        h.update(repr([(ref, g.what, _stable(g.value)) for ref, g in self.guards]).encode())
        h.update(repr([c.key() for c in self.calls]).encode())
        return h.hexdigest()

    def broken_guard(self, args: tuple) -> str | None:
        """The first guard whose facts differ on these arguments (its ``what``), or None: replay."""
        for ref, g in self.guards:
            if ref is not None and not g.holds(args[ref.index].data.reshape(ref.shape)):
                return g.what
        return None

    def grad_state_differs(self, args: tuple) -> bool:
        """Does a leaf's .grad begin this call None where the traced call's was not (or the reverse)?
        Whether the step clears a .grad itself is seen only where it was there to clear."""
        for v, was_none in self.grad_start.items():
            t = self.params[v] if v in self.params else args[self.inputs[v]]
            if (t._grad is None) != was_none:
                return True
        return False

    def describe(self, k: int) -> str:
        n = self.nodes[k]
        return f"op {k} {n.op} ({n.scope})" if n.scope else f"op {k} {n.op}"


def _stable(v: Any) -> Any:
    """Attributes as a comparable value (arrays by content)."""
    if isinstance(v, np.ndarray):
        return ("array", v.shape, str(v.dtype), hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest())
    if isinstance(v, dict):
        return tuple((k, _stable(x)) for k, x in sorted(v.items()))
    if isinstance(v, tuple | list):
        return tuple(_stable(x) for x in v)
    if isinstance(v, Tensor):
        return ("tensor", id(v))
    if isinstance(v, np.generic):
        return repr(v.item())
    return repr(v)


# The closure variables each op's VJP holds that the replay needs (ops.py's own names).
ATTRS: dict[str, tuple[str, ...]] = {
    "sum": ("axes", "keepdims"),
    "mean": ("axes", "keepdims", "n"),
    "max": ("axes", "keepdims"),
    "min": ("axes", "keepdims"),
    "transpose": ("inverse",),
    "permute": ("inverse",),
    "stack": ("axis",),
    "concat": ("axis", "cuts"),
    "split": ("axis",),
    "unbind": ("axis",),
    "getitem": ("idx", "basic"),
    "scale_grad": ("xi",),
    "where": ("c",),
    "clip": ("bounds",),
    "softmax": ("axis",),
    "log_softmax": ("axis",),
    "embedding": ("idx",),
    "to": ("old", "new"),
}
# Ops that one name covers with two VJPs: ``max(x, dim=d)`` returns (values, indices) and its VJP
# holds the dim ``d``, not ``axes``; the trace records it as its own op.
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "max": ("max_dim", ("d", "keep")),
    "min": ("min_dim", ("d", "keep")),
}


def _vjp_names(vjp: Any) -> dict[str, Any]:
    """A VJP's closure cells and its keyword defaults (``def vjp(g, bounds=(lo, hi))``), by name."""
    code = vjp.__code__
    cells = dict(zip(code.co_freevars, [c.cell_contents for c in vjp.__closure__ or ()]))
    defaults = vjp.__defaults__ or ()
    cells.update(zip(code.co_varnames[code.co_argcount - len(defaults) : code.co_argcount], defaults))
    return cells


def closure_attrs(op: str, vjp: Any) -> tuple[str, dict[str, Any]]:
    """(the op's name in the trace, the attributes ``ATTRS[op]`` read from its VJP by name).

    A name that is not there fails loudly: ops.py changed, and a replay guessing would be wrong."""
    names = ATTRS.get(op, ())
    if not names:
        return op, {}
    cells = _vjp_names(vjp)
    if op in VARIANTS and not all(a in cells for a in names):
        variant, names = VARIANTS[op]
        if all(a in cells for a in names):
            return variant, {a: cells[a] for a in names}
    missing = [a for a in names if a not in cells]
    if missing:
        raise CompileError(f"mg.compile: the VJP of {op!r} holds no {missing} (ops.py changed?)")
    return op, {a: cells[a] for a in names}


class _Recorder:
    """The state of one traced call: value ids for leaves and node outputs, and the trace."""

    def __init__(self, args: list, declared: dataguards.Recording):
        self.args = args
        self.declared = declared  # what library code declared while this call ran (dataguards.py)
        self.trace = Trace()
        self.ids: dict[Any, int] = {}  # id(leaf tensor) or (id(node), index) -> value id
        self.keep: list = []  # the objects behind those ids, alive while the trace is built
        self.backwards = 0
        self.first_seq: int | None = None  # the tape place of the oldest recorded node
        self.was_grad = [isinstance(a, Tensor) and a.requires_grad for a in args]
        self.writes_after_backward = 0

    def _new(self, key: Any, obj: Any, shape: tuple, dtype: np.dtype) -> int:
        v = len(self.trace.shapes)
        self.ids[key] = v
        self.keep.append(obj)
        self.trace.shapes[v], self.trace.dtypes[v] = tuple(shape), np.dtype(dtype)
        return v

    def leaf(self, t: Tensor) -> int:
        key = id(t)
        if key in self.ids:
            return self.ids[key]
        v = self._new(key, t, t.data.shape, t.data.dtype)
        for i, a in enumerate(self.args):
            if isinstance(a, Tensor) and (a is t or a.data is t.data):
                self.trace.inputs[v] = i
                if self.was_grad[i]:
                    self.trace.needs_grad.add(v)
                return v
        if t.requires_grad:
            self.trace.params[v] = t
            self.trace.needs_grad.add(v)
            return v
        cut = t._cut_from[0]() if t._cut_from is not None else None
        if cut is not None and type(cut) is not Tensor and (id(cut), t._cut_from[1]) not in self.ids:
            self.capture([(cut, t._cut_from[1])])  # the value it was cut from, if no one else needed it
        if cut is not None and (id(cut), t._cut_from[1]) in self.ids:  # h.detach() inside the step: a cut
            src = self.ids[(id(cut), t._cut_from[1])]
            self.trace.nodes.append(TNode("detach", [src], [v], {}))
            return v
        self._not_derived(t.data, f"a constant tensor of shape {t.shape}")
        for i, a in enumerate(self.args):
            if isinstance(a, Tensor) and np.may_share_memory(a.data, t.data):
                raise CompileError(
                    f"mg.compile: a constant of shape {t.shape} shares memory with argument {i} but is not "
                    "that argument: it was made from it outside the graph (under no_grad, or from .data), "
                    "so a replay could not recompute it. Make it with minigrad ops."
                )
        self.trace.consts[v] = np.array(t.data)  # a copy: the program's own constant
        return v

    def capture(self, roots: list) -> None:
        """Record every node reachable from ``roots`` (edges (node, index)) not yet recorded, oldest first."""
        found, stack = {}, [r[0] for r in roots]
        while stack:  # iterative walk: no recursion on long unrolls
            node = stack.pop()
            if id(node) in found or (id(node), 0) in self.ids:
                continue
            found[id(node)] = node
            for x in node.inputs:
                if type(x) is tuple:
                    stack.append(x[0])
        for node in sorted(found.values(), key=lambda n: n.seq):
            if self.first_seq is None or node.seq < self.first_seq:
                self.first_seq = node.seq
            if node.vjp is None:
                raise CompileError(f"mg.compile: {node!r} was already backpropagated before it was recorded")
            if node.retained is not None and any(type(x) is hooks._Hook for _, x in node.retained):
                raise CompileError(
                    f"mg.compile: register_hook on a non-leaf tensor (the result of {node.op!r}, shape "
                    f"{node.shape}) inside a compiled step is not supported: the replay's backward is one flat "
                    "numpy program with no place to call a Python function between ops. Hook a parameter "
                    "(leaf hooks replay, registered outside the step), or run this step eagerly."
                )
            if node.retained is not None:
                raise CompileError(
                    "mg.compile: retain_grad() inside a compiled step is not supported (the replay keeps "
                    "no per-node gradients); run that step eagerly"
                )
            if node.op == "checkpoint":
                raise CompileError(
                    "mg.compile: 'checkpoint' (models.checkpointed) cannot be replayed: its backward reruns its "
                    "segment's forward eagerly inside the VJP (a graph made and walked during backward), which a "
                    "flat program has no place for, and the replay keeps the forward values it needs instead of "
                    "recomputing them. Run a checkpointed step eagerly, or compile it without checkpointing."
                )
            ins = [self.ids[(id(x[0]), x[1])] if type(x) is tuple else self.leaf(x) for x in node.inputs]
            op, attrs = closure_attrs(node.op, node.vjp)
            dtype = np.dtype(attrs["new"]) if op == "to" else np.result_type(*[self.trace.dtypes[i] for i in ins])
            outs = [self._new((id(node), j), node, s, dtype) for j, s in enumerate(node.shapes)]
            attrs = {k: self._arg_refs(a) for k, a in attrs.items()}
            self.trace.nodes.append(TNode(op, ins, outs, attrs, node.scope))

    def _argument(self, a: np.ndarray) -> tuple[int, bool] | None:
        """(i, whole): ``a`` is argument i's data (whole, perhaps reshaped) or a piece of it; None."""
        for i, arg in enumerate(self.args):
            d = arg.data if isinstance(arg, Tensor) else None
            if d is None or not np.may_share_memory(a, d):
                continue
            same_start = a.__array_interface__["data"][0] == d.__array_interface__["data"][0]
            return i, a is d or same_start and a.size == d.size and a.flags.c_contiguous and d.flags.c_contiguous
        return None

    def _arg_refs(self, a: Any) -> Any:
        """An attribute array that is an argument's data (integer targets in an index) as ``ArgRef``."""
        if isinstance(a, tuple):
            return tuple(self._arg_refs(x) for x in a)
        if not isinstance(a, np.ndarray):
            return a
        where = self._argument(a)
        if where is None:
            for out, source, value, by in self.declared.replaced:
                if a is out and (src := self._argument(source)) is not None and src[1]:
                    return ArgRef(src[0], source.shape, (value, by))  # recomputed from the fresh argument
            self._not_derived(a, f"an index of shape {a.shape}")
            return a
        if where[1]:
            return ArgRef(where[0], a.shape)  # the argument itself, perhaps reshaped
        raise CompileError(
            f"mg.compile: an op's attribute of shape {a.shape} is a piece of argument {where[0]}; pass it whole"
        )

    def _not_derived(self, a: np.ndarray, role: str) -> None:
        """Refuse a constant made from forward values (dataguards.derived): a replay would bake it."""
        what = self.declared.derived_from(a)
        if what is not None:
            raise CompileError(
                f"mg.compile: {what} are used as data later in the step ({role}): they are computed from "
                "forward values, so a replay would reuse the traced call's instead of recomputing them. Use only "
                "the values (max(x, dim=d).values replays), or run this step eagerly."
            )

    def guards(self) -> None:
        """Keep the facts the library declared (dataguards.py) so far, each with the argument it is about."""
        for g in self.declared.guards[len(self.trace.guards) :]:
            where = self._argument(g.array)
            if where is None:  # not an argument: a constant of the step, its facts are in the fingerprint
                self._not_derived(g.array, g.what)
                self.trace.guards.append((None, g))
            elif where[1]:
                self.trace.guards.append((ArgRef(where[0], g.array.shape), g))
            else:
                raise CompileError(
                    f"mg.compile: {g.what} (shape {g.array.shape}) are a piece of argument {where[0]}: the replay "
                    "checks what the step decided from their values on the argument, so pass them as an argument whole"
                )

    def value_of(self, t: Tensor) -> int:
        """The value id of a tensor the step returns (a detached tensor: the value it was cut from)."""
        if t._edge is not None:
            key = (id(t._edge[0]), t._edge[1])
            if key not in self.ids:
                self.capture([t._edge])
            return self.ids[key]
        if id(t) in self.ids:
            return self.ids[id(t)]
        v = self.leaf(t)
        if v in self.trace.consts:
            raise CompileError(
                f"mg.compile: the step returns a tensor of shape {t.shape} that no recorded op made (made "
                "under no_grad, from .data, or detached): a replay could not recompute it. Return the "
                "tensor itself (not .detach()), or detach it outside the compiled step."
            )
        return v


class _OptimizerCalls:
    """While a step is traced: ``Optimizer.step`` / ``zero_grad``, ``LRScheduler.step`` and
    ``optim.clip_grad_norm_`` are wrapped, so that each call the step makes is recorded (``Call``) in
    order, before or after backward, for the replay to repeat. Between recorded points the parameters
    are watched: a write to a parameter's ``.data`` (or, after backward, ``.grad``) that no recorded
    call made would not be repeated by a replay, so it is refused."""

    def __init__(self, rec: _Recorder, watched: list):
        self.rec, self.calls, self.depth, self.writes = rec, rec.trace.calls, 0, 0
        self.moves: list[tuple[str, int]] = []  # calls before backward that may move parameters, tape place
        self.watch(watched)
        self.patched: list[tuple[Any, str, Any]] = []
        for cls in _family(optim.Optimizer):
            for name in ("step", "zero_grad"):
                self._patch(cls, name, f"{cls.__name__}.{name}")
        for cls in _family(optim.LRScheduler):
            self._patch(cls, "step", f"{cls.__name__}.step")
        self._patch(optim, "clip_grad_norm_", "clip_grad_norm_")

    def _patch(self, owner: Any, name: str, label: str) -> None:
        real = owner.__dict__.get(name)
        if real is None:
            return

        def recorded(*args: Any, **kwargs: Any) -> Any:
            return self.call(label, real, args, kwargs)

        self.patched.append((owner, name, real))
        setattr(owner, name, recorded)

    def restore(self) -> None:
        for owner, name, real in reversed(self.patched):
            setattr(owner, name, real)

    def call(self, label: str, real: Any, args: tuple, kwargs: dict) -> Any:
        if self.depth:  # inside a recorded call (a subclass's step calling super().step()): not a new point
            return real(*args, **kwargs)
        after = self.rec.backwards > 0
        self.check(f"before {label}()", grads=after)
        if label == "clip_grad_norm_" and args:
            args = (list(args[0]), *args[1:])  # a generator of parameters: the replay needs the list
        if not after and not label.endswith("zero_grad"):
            self.before_forward(label)
        self.depth, w = 1, checks.writes
        try:
            out = real(*args, **kwargs)
        finally:
            self.depth = 0
        if after:
            self.writes += checks.writes - w  # in-place writes the replay repeats by repeating the call
        self.calls.append(Call(label, real, args, kwargs, after))
        self.watch()
        return out

    def before_forward(self, label: str) -> None:
        """A call before backward that moves parameters must come before the forward's first op."""
        self.moves.append((label, next(_tensor._seq)))  # its place on the tape (a gap in the numbering is harmless)

    def watch(self, params: list | None = None) -> None:
        """Remember the parameters' arrays (and copies) as they are now: the last recorded point."""
        if params is not None:
            self.params = list({id(p): p for p in params}.values())
        self.seen = [(p, p.data, p.data.copy(), p._grad, None if p._grad is None else p._grad.copy())
                     for p in self.params]  # fmt: skip

    def check(self, where: str, grads: bool) -> None:
        """No parameter was written since the last recorded point (``.grad`` too, after backward)."""
        for p, data, copy, grad, gcopy in self.seen:
            what = f"{p.name!r}" if p.name else f"of shape {p.shape}"
            if p.data is not data or not np.array_equal(p.data, copy, equal_nan=True):
                written = ".data"
            elif grads and (p._grad is not grad or gcopy is not None and not np.array_equal(p._grad, gcopy, True)):
                written = ".grad"
            else:
                continue
            raise CompileError(
                f"mg.compile: the step writes the {written} of parameter {what} {where}, but not through a recorded "
                "optimizer call (optimizer.step(), zero_grad(), mg.optim.clip_grad_norm_, a scheduler's step()): "
                "a replay would not repeat that write. Use the optimizer, or write it outside the compiled step."
            )


def _family(cls: type) -> list[type]:
    """``cls`` and all its subclasses (iteratively)."""
    out, stack = [], [cls]
    while stack:
        c = stack.pop()
        if c not in out:
            out.append(c)
            stack.extend(c.__subclasses__())
    return out


def trace_call(fn: Any, args: tuple, kwargs: dict, known: list | None = None) -> tuple[Any, Trace]:
    """Run ``fn(*args, **kwargs)`` eagerly and record it: (its result, the trace).

    ``known``: the parameters of an earlier trace; whether the step clears their ``.grad`` itself
    (``p.grad = None`` / ``zero_grad()`` inside the step) is seen by comparing before and at backward."""
    if checks.anomaly:
        raise CompileError("mg.compile: anomaly mode (detect_anomaly) is not supported under compile: run eagerly")
    if gradnorms.recording:
        raise CompileError("mg.compile: record_grad_norms() is not supported under compile: run eagerly")
    targs = [a if isinstance(a, Tensor) or not isinstance(a, np.ndarray) else Tensor(a) for a in args]
    declared = dataguards.Recording()
    rec = _Recorder(targs, declared)
    flipped = []
    for a in targs:
        if isinstance(a, Tensor):
            if not a.requires_grad and a.data.dtype.kind == "f":
                a.requires_grad = True  # record every op on it (see the module docstring)
                flipped.append(a)
    params_before = {id(p): p._grad for p in known or ()}
    inputs_before = {i: a._grad for i, a in enumerate(targs) if isinstance(a, Tensor)}
    hooks_before = {k: len(e[1]) for k, e in hooks._leaf_hooks.items()}
    real_backward = _tensor.backward
    outer = dataguards.recording

    def recording_backward(root: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
        rec.backwards += 1
        if hooks.collecting:
            raise CompileError(
                "mg.compile: mg.grad(...) inside a compiled step is not supported: the replay fills .grad and "
                "returns only the step's result. Call loss.backward() in the step and read p.grad."
            )
        if rec.backwards > 1:
            raise CompileError("mg.compile: the step calls backward() more than once; compile one backward per step")
        if root._edge is None:
            raise CompileError("mg.compile: backward() from a leaf: nothing to compile")
        rec.guards()  # first: a guard's own message names what the library decided from the data
        calls.check("before backward", grads=False)
        rec.capture([root._edge])
        tr = rec.trace
        for label, seq in calls.moves:
            if rec.first_seq is not None and seq > rec.first_seq:
                raise CompileError(
                    f"mg.compile: {label}() runs between the forward and backward of the step: a replay runs the "
                    "optimizer calls before the program or after its backward. Call it before the forward "
                    "or after backward()."
                )
        tr.root = rec.ids[(id(root._edge[0]), root._edge[1])]
        if tr.dtypes[tr.root] != root.data.dtype:  # each output's dtype is its op's (a cast's is its target)
            raise CompileError(f"mg.compile: the trace gives the loss dtype {tr.dtypes[tr.root]}, eager made "
                               f"{root.data.dtype} (an op whose output dtype the trace misreads)")  # fmt: skip
        tr.seed = np.array(_tensor._seed(root, grad))
        leaves = [(v, p, params_before.get(id(p), p._grad), id(p) in params_before) for v, p in tr.params.items()]
        leaves += [(v, targs[i], inputs_before[i], True) for v, i in tr.inputs.items() if v in tr.needs_grad]
        for v, t, before, known_start in leaves:  # the step set t.grad = None itself (zero_grad inside it)?
            if known_start:  # the replay is valid for calls that begin with the same .grad state (None or not)
                tr.grad_start[v] = before is None
            if before is not None and t._grad is None:
                tr.clears.add(v)
            elif t._grad is not before:
                kind = "a parameter's" if v in tr.params else "an argument's"
                raise CompileError(f"mg.compile: the step wrote {kind} .grad (shape {t.shape}) other than to None")
        real_backward(root, grad, retain_graph)
        if hooks.held:  # hooked leaves: their summed δ through the hooks now, as Tensor.backward does after
            hooks.release()
        rec.writes_after_backward = checks.writes  # an in-place write after this must be a recorded call's
        calls.watch([*calls.params, *tr.params.values()])

    calls = _OptimizerCalls(rec, list(known or ()))
    _tensor.backward = recording_backward
    dataguards.recording = declared
    try:
        result = fn(*targs, **kwargs)
        calls.check("at the end of the step", grads=rec.backwards > 0)
    finally:
        _tensor.backward = real_backward
        dataguards.recording = outer
        calls.restore()
        for a in flipped:
            a.requires_grad, a._grad = False, None
    if rec.backwards == 0:
        raise CompileError(
            "mg.compile: the step never called backward(): compile a training step (see docs/compiler.md)"
        )
    if checks.writes != rec.writes_after_backward + calls.writes:
        raise CompileError(
            "mg.compile: the step writes a tensor in place after backward, not through a recorded optimizer call "
            "(optimizer.step(), zero_grad(), mg.optim.clip_grad_norm_): the replay would not repeat that."
        )
    leaves = [*rec.trace.params.values(), *(a for a in targs if isinstance(a, Tensor))]
    if any(len(hooks._leaf_hooks.get(id(t), (None, ()))[1]) != hooks_before.get(id(t), 0) for t in leaves):
        raise CompileError(
            "mg.compile: the step registers (or removes) a hook on a leaf: that happens on every eager call but "
            "never in a replay. Register the hook once, outside the compiled step."
        )
    rec.trace.returns = _returns(rec, result)
    rec.guards()
    return result, rec.trace


def _returns(rec: _Recorder, result: Any) -> Any:
    if result is None:
        return None
    if isinstance(result, Tensor):
        return rec.value_of(result)
    if isinstance(result, tuple | list) and all(isinstance(r, Tensor) for r in result):
        return tuple(rec.value_of(r) for r in result)
    raise CompileError(
        f"mg.compile: the step returns {type(result).__name__}; return the loss Tensor (or a tuple of Tensors)"
    )
