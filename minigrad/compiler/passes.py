"""The passes: each a small function from a program to a program (tests/test_compile.py tests each).

In the order they run (``sum_of_squares`` on the trace, the others on the Wengert list):

sum_of_squares          Σ e ⊙ e (a mul of a value by itself, then a full sum) becomes one op
                        ``sumsq``: one dot product, δe = 2 δy e
dead_code               drop every instruction whose result nothing needs: the gradients of
                        arguments that do not require grad (x, the targets) and what only they read
stack_in_place          h_1 … h_T written straight into their rows of the stacked output (no copy)
contiguous_transposes   W_hhᵀ copied once into C order (BLAS is faster on it); the backward reads W_hh
batch_weight_grads      the T contributions aₜᵀ gₜ of a shared weight (dL/dW_hh = Σ_t h_{t-1}ᵀ δa_t)
                        become one GEMM per chunk of stacked steps, as hand-written BPTT does
schedule_accumulation   each gradient sum written once: the first addend is taken as it is, the
                        second makes a new array (the first may be shared), later ones add in place
accumulate_in_place     δh_{t-1} = δout_{t-1} + δa_t W_hh added into δout's own row (no new array)
gradient_rows           each step's δa_t written into its row of δ(input projection); the batched
                        GEMM reads those rows as one slice
plan_memory             free every buffer right after its last use (``del``), the memory plan
"""

from __future__ import annotations

import re
from collections import Counter

from .program import Instr, Program, last_uses, names_in
from .trace import TNode, Trace

__all__ = [
    "sum_of_squares",
    "dead_code",
    "contiguous_transposes",
    "batch_weight_grads",
    "schedule_accumulation",
    "accumulate_in_place",
    "gradient_rows",
    "plan_memory",
    "PASSES",
]


def sum_of_squares(tr: Trace) -> Trace:
    """sum(mul(e, e)) over all axes → sumsq(e), when the product is used by that sum only."""
    uses = Counter(v for n in tr.nodes for v in n.ins)
    producer = {n.outs[0]: n for n in tr.nodes if len(n.outs) == 1}
    drop, nodes = set(), []
    for n in tr.nodes:
        m = producer.get(n.ins[0]) if n.op == "sum" else None
        if (
            m is not None and m.op == "mul" and m.ins[0] == m.ins[1] and uses[m.outs[0]] == 1
            and not n.attrs["keepdims"] and len(n.attrs["axes"]) == len(tr.shapes[m.outs[0]])
            and tr.shapes[m.ins[0]] == tr.shapes[m.outs[0]]
        ):  # fmt: skip
            drop.add(id(m))
            n = TNode("sumsq", [m.ins[0]], n.outs, {}, n.scope)
        nodes.append(n)
    out = Trace(**{**tr.__dict__, "nodes": [n for n in nodes if id(n) not in drop]})
    return out


def dead_code(prog: Program) -> Program:
    """Keep an instruction only if a later kept one reads what it writes (or it writes .grad / returns)."""
    need = prog.kept()
    kept = []
    for ins in reversed(prog.instrs):
        if ins.kind in ("write", "ret") or any(o in need for o in ins.outs):
            kept.append(ins)
            need.update(ins.ins)
    out = prog.copy(kept[::-1])
    out.notes.append(f"dead_code: {len(prog.instrs) - len(kept)} instructions removed")
    return out


def stack_in_place(prog: Program) -> Program:
    """``stack([h_1, …, h_T])`` along axis 0, where each h_t is made by an op that can write into a
    given array: allocate the stack's array first and let each op write h_t into row t (eager's
    ``out=`` rows in rnn.py): the states are in memory once, and the stack copies nothing."""
    producer = {i.outs[0]: i for i in prog.instrs if i.kind == "op" and len(i.outs) == 1}
    plans: dict[int, tuple] = {}
    for ins in prog.instrs:
        if ins.kind != "op" or ins.op != "stack" or not ins.code.endswith("axis=0)"):
            continue
        xs = [v for v in re.findall(r"\b\w+\b", ins.code.split("[", 1)[1].rsplit("]", 1)[0])]
        if len(set(xs)) != len(xs) or not all(x in producer and producer[x].into for x in xs):
            continue
        if any(id(producer[x]) in plans for x in xs):
            continue
        buf = ins.outs[0]
        for i, x in enumerate(xs):
            plans[id(producer[x])] = (buf, i)
        plans[id(ins)] = (buf, None)
    if not plans:
        return prog
    instrs, allocated = [], set()
    stacks = {id(i): i for i in prog.instrs if plans.get(id(i), (None, 0))[1] is None}
    for ins in prog.instrs:
        plan = plans.get(id(ins))
        if plan is None:
            instrs.append(ins)
            continue
        buf, row = plan
        if row is None:
            continue  # the stack itself: its rows are already written
        if buf not in allocated:
            allocated.add(buf)
            st = next(s for s in stacks.values() if s.outs[0] == buf)
            code = f"{buf} = np.empty({st.shape!r}, np.{st.dtype})"
            instrs.append(Instr("op", "stack", [buf], [], code, st.shape, st.dtype))
        code = ins.into(f"{buf}[{row}]")
        instrs.append(Instr("op", ins.op, ins.outs, [*ins.ins, buf], code, ins.shape, ins.dtype, True))
    out = prog.copy(instrs)
    out.notes.append(f"stack_in_place: {len(stacks)} stacks written row by row, no copy")
    return out


def contiguous_transposes(prog: Program) -> Program:
    """A 2-D transpose of a weight (W_hhᵀ, read by every step's GEMM) copied once into C order,
    and its own transpose, where the backward reads it, replaced by the weight itself: BLAS runs
    a (B, H) @ (H, H) product on a C-ordered right operand about 1.7× faster at H = 128."""
    loads = {i.outs[0] for i in prog.instrs if i.kind == "load"}
    swap: dict[str, str] = {}
    instrs = []
    for ins in prog.instrs:
        if ins.kind == "op" and ins.op == "transpose" and len(ins.shape) == 2 and ins.ins[0] in loads:
            (x,), (y,) = ins.ins, ins.outs
            swap[y] = x
            ins = Instr("op", "transpose", [y], [x], f"{y} = np.ascontiguousarray({x}.T)", ins.shape, ins.dtype)
        elif swap and ".T" in ins.code:
            code = ins.code
            for y, x in swap.items():
                code = re.sub(rf"\b{y}\.T\b", x, code)
            if code != ins.code:
                ins = Instr(ins.kind, ins.op, ins.outs, names_in_code(code, ins.outs), code, ins.shape, ins.dtype,
                            ins.view, ins.pattern)  # fmt: skip
        instrs.append(ins)
    out = prog.copy(instrs)
    out.notes.append(f"contiguous_transposes: {len(swap)} weight transposes made C-contiguous once per call")
    return out


def names_in_code(code: str, outs: list[str]) -> list[str]:
    return [v for v in names_in(code) if v not in outs]


def batch_weight_grads(prog: Program, rows: int = 256) -> Program:
    """Σ_t aₜᵀ gₜ into one gradient → (a_1; …; a_k)ᵀ (g_1; …; g_k): one GEMM per chunk of stacked steps.

    A chunk has about ``rows`` rows (k·B ≥ rows: BLAS runs near full speed there), so the
    gₜ of a chunk are freed once its GEMM ran: the stacked copies never hold all T steps at once.
    """
    made = {i.outs[0]: i for i in prog.instrs if i.kind == "grad"}
    shapes = {o: i.shape for i in prog.instrs for o in i.outs}
    groups: dict[str, list[Instr]] = {}
    for ins in prog.instrs:
        if ins.kind == "acc" and ins.ins[0] in made and made[ins.ins[0]].pattern:
            groups.setdefault(ins.outs[0], []).append(ins)
    drop, at, batched, gemms = set(), {}, 0, 0
    for target, accs in groups.items():
        if len(accs) < 2:
            continue
        b = shapes.get(made[accs[0].ins[0]].pattern[1], (1,))
        k = max(2, -(-rows // max(1, b[0] if len(b) == 2 else 1)))  # steps per chunk
        for c in range(0, len(accs), k):
            chunk = accs[c : c + k]
            terms = [made[a.ins[0]] for a in chunk]
            drop.update(id(x) for x in [*terms, *chunk])
            batched += len(terms)
            if len(terms) == 1:  # a lone product stays as it was
                drop.difference_update((id(terms[0]), id(chunk[0])))
                continue
            A = ", ".join(t.pattern[1] for t in terms)
            G = ", ".join(t.pattern[2] for t in terms)
            d = f"{terms[-1].outs[0]}b"
            ins = [*(t.pattern[1] for t in terms), *(t.pattern[2] for t in terms)]
            code = f"{d} = np.concatenate([{A}]).T @ np.concatenate([{G}])"
            grad = Instr("grad", "δbatched", [d], ins, code, terms[0].shape, terms[0].dtype)
            at[id(chunk[-1])] = [grad, Instr("acc", "acc", [target], [d], f"{target} += {d}")]
            gemms += 1
    if not at:
        return prog
    instrs = []
    for ins in prog.instrs:
        if id(ins) in at:
            instrs.extend(at[id(ins)])
        elif id(ins) not in drop:
            instrs.append(ins)
    out = prog.copy(instrs)
    out.notes.append(f"batch_weight_grads: {batched} weight-gradient products of shared weights -> {gemms} GEMM(s)")
    return out


def schedule_accumulation(prog: Program) -> Program:
    """Each contribution ``d = expr`` and its ``g += d`` as one statement, as it will run:
    ``g = expr`` (the first addend, taken as it is), ``g = g + expr`` (the second: a new array,
    since the first may be shared with another gradient), ``g += expr`` (later ones, in place)."""
    seen: Counter = Counter()
    made = {i.outs[0]: i for i in prog.instrs if i.kind == "grad"}
    instrs = []
    for ins in prog.instrs:
        if ins.kind == "grad":
            continue  # written where its sum takes it
        if ins.kind == "acc":
            g, d = ins.outs[0], ins.ins[0]
            term = made[d]
            expr = term.code.split(" = ", 1)[1]
            seen[g] += 1
            n = seen[g]
            code = f"{g} = {expr}" if n == 1 else f"{g} = {g} + {expr}" if n == 2 else f"{g} += {expr}"
            reads = term.ins if n == 1 else [*term.ins, g]
            ins = Instr("grad", term.op, [g], reads, code, term.shape, term.dtype, term.view and n == 1)
        instrs.append(ins)
    return prog.copy(instrs)


def accumulate_in_place(prog: Program) -> Program:
    """``g = g + expr`` becomes ``g += expr`` where g's array is provably the step's own: g is row k
    of a δ (``g = G[k]``, the δ of a stack) that a GEMM made fresh, every reader of G takes a
    different row, and nothing read g before this sum. (δh_{t-1} = δout_{t-1} + δa_t W_hh: one
    (B, H) array fewer per step, as hand-written BPTT adds in place.)"""
    defs = Counter(o for i in prog.instrs for o in i.outs)
    keep = prog.kept()
    fresh = {i.outs[0] for i in prog.instrs if i.kind == "grad" and " @ " in i.code and defs[i.outs[0]] == 1}
    rows: dict[str, tuple[str, int]] = {}  # g -> (G, index of the instruction that took the row)
    taken: dict[str, list[str]] = {}
    for n, ins in enumerate(prog.instrs):
        m = re.fullmatch(r"(g\d+) = (g\d+)\[(\d+)\]", ins.code)
        if m and m.group(2) in fresh and m.group(2) not in keep:
            taken.setdefault(m.group(2), []).append(m.group(3))
            if defs[m.group(1)] == 2:  # the row, then its sum
                rows[m.group(1)] = (m.group(2), n)
    readers = Counter(v for i in prog.instrs for v in i.ins)
    ok_parent = {G for G, ks in taken.items() if len(set(ks)) == len(ks) == readers[G]}
    instrs, changed = list(prog.instrs), 0
    for n, ins in enumerate(instrs):
        m = re.fullmatch(r"(g\d+) = \1 \+ (.*)", ins.code, re.S)
        if not m or m.group(1) not in rows or rows[m.group(1)][0] not in ok_parent:
            continue
        g, start = m.group(1), rows[m.group(1)][1]
        if any(g in instrs[j].ins for j in range(start + 1, n)):
            continue  # read before the sum: an alias may hold it
        instrs[n] = Instr(ins.kind, ins.op, ins.outs, ins.ins, f"{g} += {m.group(2)}", ins.shape, ins.dtype, True)
        changed += 1
    if not changed:
        return prog
    out = prog.copy(instrs)
    out.notes.append(f"accumulate_in_place: {changed} sums added in place into a row of their own δ")
    return out


def gradient_rows(prog: Program) -> Program:
    """δ of an ``unbind`` (the per-step δa_t of the input projection): each step's gradient is
    written straight into its row of the result, instead of being copied there afterwards; and a
    batched weight-gradient GEMM over those same steps reads the rows as one slice, not a copy."""
    alias = {
        i.outs[0]: i.code.split(" = ")[1]
        for i in prog.instrs
        if i.kind == "grad" and re.fullmatch(r"g\d+ = g\d+", i.code)
    }
    defs = Counter(o for i in prog.instrs for o in i.outs)
    made = {i.outs[0]: i for i in prog.instrs if i.kind == "grad" and not i.view and defs[i.outs[0]] == 1}
    rows: dict[str, tuple[str, int]] = {}  # root gradient -> (buffer, row)
    allocs: dict[str, Instr] = {}
    for ins in prog.instrs:
        m = re.fullmatch(r"(g\d+) = _rows\((\(.*?\)), (np\.\w+), 0, \(([\w, ]*),?\)\)", ins.code)
        if not m:
            continue
        names = [n.strip() for n in m.group(4).split(",") if n.strip()]
        roots = []
        for n in names:
            while n in alias:
                n = alias[n]
            roots.append(n)
        if len(set(roots)) != len(roots) or not all(r in made and r not in rows for r in roots):
            continue
        D = m.group(1)
        allocs[D] = Instr(
            "grad", "δunbind", [D], [], f"{D} = np.empty({m.group(2)}, {m.group(3)})", ins.shape, ins.dtype
        )
        for k, r in enumerate(roots):
            rows[r] = (D, k)
    if not rows:
        return prog
    states = {}  # h_t -> (the stacked output, t): the rows stack_in_place writes
    for ins in prog.instrs:
        m = re.match(r"(v\d+) = .*, out=(v\d+)\[(\d+)\]\)$", ins.code.splitlines()[0])
        if m:
            states[m.group(1)] = (m.group(2), int(m.group(3)))
    first = {}
    for i, ins in enumerate(prog.instrs):
        if ins.outs and ins.outs[0] in rows:
            first.setdefault(rows[ins.outs[0]][0], i)
    instrs = []
    for i, ins in enumerate(prog.instrs):
        for D, at in first.items():
            if at == i:
                instrs.append(allocs[D])
        if ins.code.startswith(tuple(f"{D} = _rows(" for D in allocs)):
            continue  # the rows are already written
        if ins.outs and ins.outs[0] in rows and ins.kind == "grad":
            D, k = rows[ins.outs[0]]
            expr = ins.code.split(" = ", 1)[1]
            code = f"{D}[{k}] = {expr}\n{ins.outs[0]} = {D}[{k}]"
            m = re.fullmatch(r"(\w+) \* \(1 - (\w+) \* \2\)", expr)
            if m:  # δa = δh ⊙ (1 − h²) computed in its row, no temporaries: h², 1 − h², ⊙ δh, each out=
                r, (g, y) = ins.outs[0], m.groups()
                code = (f"{r} = {D}[{k}]\nnp.multiply({y}, {y}, out={r})\nnp.subtract(1, {r}, out={r})\n"
                        f"np.multiply({g}, {r}, out={r})")  # fmt: skip
            ins = Instr("grad", ins.op, ins.outs, [*ins.ins, D], code, ins.shape, ins.dtype, True)
        elif ins.op == "δbatched":
            ins = _batched_from_rows(ins, rows, states)
        instrs.append(ins)
    out = prog.copy(instrs)
    out.notes.append(f"gradient_rows: {len(rows)} step gradients written into their rows of {len(allocs)} array(s)")
    return out


def _batched_from_rows(ins: Instr, rows: dict[str, tuple[str, int]], states: dict[str, tuple[str, int]]) -> Instr:
    """(a_1; …; a_k)ᵀ (g_1; …; g_k) as slices, no copies: each run of steps whose g's are consecutive
    rows of one δ array (``rows``) and whose a's are consecutive rows of one stacked output
    (``states``: h_t written into its row by ``stack_in_place``) is one GEMM on two slices; the
    products of the runs are added. A step that fits no run keeps its own small product."""
    m = re.fullmatch(r"(\w+) (=|\+=) (\w+ \+ )?np\.concatenate\(\[(.*)\]\)\.T @ np\.concatenate\(\[(.*)\]\)", ins.code)
    if not m:
        return ins
    A, G = [a.strip() for a in m.group(4).split(",")], [g.strip() for g in m.group(5).split(",")]
    pairs = sorted(zip(A, G), key=lambda ag: rows[ag[1]] if ag[1] in rows else ("~", 0))  # rows in time order
    runs: list[list[tuple[str, str]]] = []
    for a, g in pairs:
        last = runs[-1][-1] if runs else None
        if (
            last is not None and g in rows and a in states and last[1] in rows and last[0] in states
            and rows[g] == (rows[last[1]][0], rows[last[1]][1] + 1)
            and states[a] == (states[last[0]][0], states[last[0]][1] + 1)
        ):  # fmt: skip
            runs[-1].append((a, g))
        else:
            runs.append([(a, g)])
    if len(runs) == len(pairs):
        return ins  # nothing to slice: the concatenated GEMM stays

    def side(names: list[str], where: dict[str, tuple[str, int]]) -> str:
        if len(names) == 1:
            return names[0]
        buf, k = where[names[0]]
        return f"{buf}[{k}:{k + len(names)}].reshape(-1, {buf}.shape[-1])"

    terms = [f"{side([a for a, _ in r], states)}.T @ {side([g for _, g in r], rows)}" for r in runs]
    target, op, plus = m.group(1), m.group(2), m.group(3)
    first = f"{target} += {terms[0]}" if op == "+=" else f"{target} = {plus or ''}{terms[0]}"
    code = "\n".join([first, *(f"{target} += {t}" for t in terms[1:])])
    reads = names_in_code(code, [] if op == "+=" or plus else [target])
    return Instr(ins.kind, ins.op, ins.outs, reads, code, ins.shape, ins.dtype, ins.view, ins.pattern)


def plan_memory(prog: Program) -> Program:
    """``del`` every name right after the instruction that reads it last: buffers are freed by liveness."""
    last = last_uses(prog.instrs, prog.kept())
    dying: dict[int, list[str]] = {}
    for v, i in last.items():
        dying.setdefault(i, []).append(v)
    instrs = []
    for i, ins in enumerate(prog.instrs):
        instrs.append(ins)
        if i in dying and ins.kind != "ret":
            names = sorted(dying[i])
            instrs.append(Instr("del", "del", [], [], "del " + ", ".join(names)))
    out = prog.copy(instrs)
    out.notes.append(f"plan_memory: freed after last use; plan peak {prog.peak_bytes():,} B")
    return out


PASSES = (
    dead_code,
    stack_in_place,
    contiguous_transposes,
    batch_weight_grads,
    schedule_accumulation,
    accumulate_in_place,
    gradient_rows,
    plan_memory,
)
