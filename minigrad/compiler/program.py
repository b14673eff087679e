"""The Wengert list: a traced step lowered to one flat list of numpy statements.

Every value has a name: ``x0`` an argument, ``p3`` a parameter, ``c5`` a constant, ``v12`` an
op's output, ``g12`` dL/dv12 (the sum of its contributions), ``d40`` one contribution, ``s0`` a
scratch array a pass allocates. The list
holds the forward in tape order, then the backward in reverse tape order (the schedule eager
``backward`` finds with its heap, fixed here once), then the writes into ``.grad``:

    v7 = v5 @ p1               # matmul     (1, 32) float64     256 B
    ...
    d40 = g7 @ p1.T            # δmatmul[0]  (1, 16) float64    128 B
    g5 += d40                  # acc
    _grad(_leaf[1], g1)        # p1.grad += g1

Each instruction knows what it reads and writes, so the passes (passes.py) can delete, merge and
schedule them, and the replay (replay.py) turns the list into one Python function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .kernels import KERNELS, Emit
from .trace import ArgRef, CompileError, Trace

__all__ = ["Instr", "Program", "lower"]

_SHAPE_OPS = ("unsqueeze", "squeeze", "flatten", "permute")  # their results are views of their input


@dataclass
class Instr:
    """One statement. ``kind``: load | op | grad | acc | write | ret."""

    kind: str
    op: str
    outs: list[str]
    ins: list[str]
    code: str
    shape: tuple = ()
    dtype: Any = None
    view: bool = False  # its output shares memory with an input (no new buffer)
    pattern: tuple | None = None  # ("AtG", a, g): the contribution is aᵀ g (for the batching pass)
    into: Any = None  # into(out) -> the same op written into the array ``out`` (numpy's out=), if it can

    @property
    def nbytes(self) -> int:
        if self.dtype is None or self.view:
            return 0
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class Program:
    instrs: list[Instr]
    consts: dict[str, Any]  # name -> array (the program's constants)
    inputs: dict[str, int]  # name -> argument index
    params: dict[str, Any]  # name -> the parameter tensor
    writes: dict[str, tuple[str, bool]] = field(default_factory=dict)  # leaf name -> (grad name, clear first)
    returns: Any = None  # a value name, a tuple of them, or None
    notes: list[str] = field(default_factory=list)  # what each pass did

    def copy(self, instrs: list[Instr], note: str | None = None) -> Program:
        """The same program with other instructions (and ``note``, what the pass did, appended)."""
        notes = [*self.notes, note] if note is not None else list(self.notes)
        return Program(instrs, self.consts, self.inputs, self.params, self.writes, self.returns, notes)

    def peak_bytes(self) -> int:
        """The plan's peak: the bytes of buffers alive at once, freed after their last use."""
        dying: dict[int, list[str]] = {}
        for v, at in last_uses(self.instrs, self.kept()).items():
            dying.setdefault(at, []).append(v)
        size, live, peak = {}, 0, 0
        for i, ins in enumerate(self.instrs):
            for o in ins.outs:
                if o not in size:
                    size[o] = ins.nbytes
                    live += ins.nbytes
            peak = max(peak, live)
            for o in dying.get(i, ()):
                live -= size.pop(o, 0)
        return peak

    def kept(self) -> set[str]:
        """Names that must survive the program: the results and the gradients written to .grad."""
        keep = {g for g, _ in self.writes.values()}
        r = self.returns
        keep |= set(r) if isinstance(r, tuple) else ({r} if r is not None else set())
        return keep

    def __str__(self) -> str:
        lines = []
        for ins in self.instrs:
            for k, line in enumerate(ins.code.splitlines()):
                if k == 0 and ins.kind in ("op", "grad", "load"):
                    dt = "" if ins.dtype is None else np.dtype(ins.dtype).name
                    size = "view" if ins.view else f"{ins.nbytes:,} B"
                    lines.append(f"{line:<58}  # {ins.op:<14} {str(ins.shape):<14} {dt:<8} {size}")
                else:
                    lines.append(line)
        head = f"# {len(self.instrs)} instructions, plan peak {self.peak_bytes():,} B"
        return "\n".join([head, *(f"# {n}" for n in self.notes), *lines])


def names_in(code: str) -> list[str]:
    """The value names a line of code reads (x0, p3, c5, k2, v12, g12, d40, s0)."""
    return list(dict.fromkeys(re.findall(r"\b[xpcvgdks]\d+\b", code)))


def last_uses(instrs: list[Instr], keep: set[str]) -> dict[str, int]:
    """name -> index of the last instruction that reads it (names in ``keep`` never die)."""
    last: dict[str, int] = {}
    for i, ins in enumerate(instrs):
        for v in ins.ins:
            last[v] = i
        for o in ins.outs:
            last.setdefault(o, i)
    for v in keep:
        last.pop(v, None)
    return last


def lower(tr: Trace) -> Program:
    """The trace as a Wengert list: loads, the forward, the backward, the .grad writes, the result."""
    names: dict[int, str] = {}
    consts: dict[str, Any] = {}
    instrs: list[Instr] = []
    inputs, params = {}, {}
    for v, i in tr.inputs.items():
        names[v] = f"x{v}"
        inputs[names[v]] = i
        instrs.append(
            Instr("load", "argument", [names[v]], [], f"x{v} = _in[{i}].data", tr.shapes[v], tr.dtypes[v], True)
        )
    for v, p in tr.params.items():
        names[v] = f"p{v}"
        params[names[v]] = p
        instrs.append(
            Instr("load", "parameter", [names[v]], [], f"p{v} = _leaf[{v}].data", tr.shapes[v], tr.dtypes[v], True)
        )
    for v, c in tr.consts.items():
        names[v] = f"c{v}"
        consts[names[v]] = c
        instrs.append(Instr("load", "constant", [names[v]], [], f"c{v} = _c[{names[v]!r}]", c.shape, c.dtype, True))

    def const(value: Any) -> str:  # an array attribute (a mask, an index) becomes a named constant
        if isinstance(value, ArgRef):
            return value.code()
        if isinstance(value, tuple):
            return "(" + "".join(f"{const(v)}, " for v in value) + ")"
        if isinstance(value, np.ndarray):
            name = f"k{len(consts)}"
            consts[name] = value
            load = Instr("load", "constant", [name], [], f"{name} = _c[{name!r}]", value.shape, value.dtype, True)
            instrs.append(load)
            return name
        return repr(value)

    emits = []
    for n in tr.nodes:  # the forward, in tape order
        kernel = KERNELS.get(n.op)
        if kernel is None:
            where = f" (scope {n.scope!r})" if n.scope else ""
            raise CompileError(
                f"mg.compile: op {n.op!r}{where} has no replay kernel (minigrad/compiler/kernels.py); "
                f"ops with kernels: {', '.join(sorted(KERNELS))}. Run this step eagerly."
            )
        for o in n.outs:
            names[o] = f"v{o}"
        e = Emit([names[i] for i in n.ins], [tr.shapes[i] for i in n.ins], [names[o] for o in n.outs],
                 [tr.shapes[o] for o in n.outs], n.attrs, tr.dtypes[n.outs[0]], const=const)  # fmt: skip
        emits.append(e)
        view = n.op in ("reshape", "transpose", "unbind", "split", "scale_grad", "detach", *_SHAPE_OPS)
        code = kernel.fwd(e)  # once: it may name new constants
        reads = [x for x in names_in(code) if x not in e.ys]
        into = None if kernel.into is None else (lambda o, k=kernel, e=e: k.into(e, o))
        shape, dtype = tr.shapes[n.outs[0]], tr.dtypes[n.outs[0]]
        instrs.append(Instr("op", n.op, e.ys, reads, code, shape, dtype, view, into=into))

    # the backward: reverse tape order, each op's VJP once, its δ added to each input's sum
    has_grad = {tr.root}
    seed = "seed"
    consts[seed] = tr.seed
    instrs.append(
        Instr("load", "δroot", [f"g{tr.root}"], [], f"g{tr.root} = _c['seed']", tr.seed.shape, tr.seed.dtype, True)
    )
    count = 0
    for n, e in zip(reversed(tr.nodes), reversed(emits)):
        if not any(o in has_grad for o in n.outs):
            continue
        e.gs = [f"g{o}" if o in has_grad else None for o in n.outs]
        kernel = KERNELS[n.op]
        for k, v in enumerate(n.ins):
            if v in tr.consts or n.op == "detach":
                continue
            d = f"d{count}"
            count += 1
            pattern = kernel.pattern.get(k, lambda _: None)(e)
            view = n.op in ("reshape", "transpose", "stack", "concat", "sum", "mean", *_SHAPE_OPS)
            expr = kernel.grad(e, k)
            instrs.append(Instr("grad", f"δ{n.op}[{k}]", [d], names_in(expr), f"{d} = {expr}",
                                tr.shapes[v], tr.dtypes[v], view, pattern))  # fmt: skip
            instrs.append(Instr("acc", "acc", [f"g{v}"], [d, f"g{v}"] if v in has_grad else [d], f"g{v} += {d}"))
            has_grad.add(v)

    writes = {}
    for v in sorted(tr.needs_grad):
        if v in has_grad:
            target = f"_in[{tr.inputs[v]}]" if v in tr.inputs else f"_leaf[{v}]"
            clear = v in tr.clears
            writes[names[v]] = (f"g{v}", clear)
            instrs.append(Instr("write", "write", [], [f"g{v}"], f"_grad({target}, g{v}, {clear})"))
    r = tr.returns
    returns = tuple(names[x] for x in r) if isinstance(r, tuple) else (None if r is None else names[r])
    ret_code = "return " + (
        repr(None) if returns is None else ", ".join(returns) if isinstance(returns, tuple) else returns
    )
    if isinstance(returns, tuple):
        ret_code = "return (" + ", ".join(returns) + ",)"
    rets = [] if returns is None else list(returns) if isinstance(returns, tuple) else [returns]
    instrs.append(Instr("ret", "return", [], rets, ret_code))
    return Program(instrs, consts, inputs, params, writes, returns)
