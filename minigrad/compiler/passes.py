"""The passes: each a small function from a program to a program (tests/test_compile.py tests each).

In the order ``optimize`` runs them (the first three on the trace, the others on the Wengert list):

sum_of_squares          Σ e ⊙ e (a mul of a value by itself, then a full sum) becomes one op
                        ``sumsq``: one dot product, δe = 2 δy e
common_subexpressions   an op repeated on the same inputs with the same attributes is computed
                        once (W_ihᵀ, taken again by every chunk of the input projection); the
                        δ of its users then meet in one sum
merge_projection_chunks the input projection eager makes chunk by chunk as one GEMM over all
                        steps (and one for δx, δW_ih): tried, and kept if the plan's peak holds
fold_zero_constants     a product with an all-zero constant (h_0 = 0) is zeros, or not computed
dead_code               drop every instruction whose result nothing needs: the gradients of
                        arguments that do not require grad (x, the targets) and what only they read
stack_in_place          h_1 … h_T written straight into their rows of the stacked output (no copy)
contiguous_transposes   W_hhᵀ copied once into C order (BLAS is faster on it); the backward reads W_hh
batch_weight_grads      the T contributions aₜᵀ gₜ of a shared weight (dL/dW_hh = Σ_t h_{t-1}ᵀ δa_t)
                        become one GEMM per chunk of stacked steps, as hand-written BPTT does
schedule_accumulation   each gradient sum written once: the first addend is taken as it is, the
                        second makes a new array (the first may be shared), later ones add in place
accumulate_in_place     δh_{t-1} = δout_{t-1} + δa_t W_hh added into δout's own row (no new array)
gradient_rows           each step's δa_t written into its row of δ(input projection), over δout's
                        own row where it can; the batched GEMM reads those rows as one slice
elementwise_in_place    y = a ∘ b written into a's array when a is the step's own and dies there
                        (the readout's e = out W_hyᵀ + b − target, and δe = 2 δL e)
transposed_weight_grads δW = Σ gᵀ a for x @ Wᵀ, instead of Σ aᵀ g and then a transpose
hand_over_grads         a δW the replay made itself (a GEMM's result) becomes .grad with no copy
plan_memory             free every buffer right after its last use (``del``), the memory plan
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from .program import Instr, Program, last_uses, lower, names_in
from .trace import TNode, Trace, _stable

__all__ = [
    "sum_of_squares",
    "common_subexpressions",
    "merge_projection_chunks",
    "fold_zero_constants",
    "dead_code",
    "contiguous_transposes",
    "batch_weight_grads",
    "schedule_accumulation",
    "accumulate_in_place",
    "gradient_rows",
    "elementwise_in_place",
    "transposed_weight_grads",
    "hand_over_grads",
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


def common_subexpressions(tr: Trace) -> Trace:
    """A node with the op, inputs and attributes of an earlier one is dropped, and its outputs'
    readers read the earlier node's outputs. Every op is a function of its inputs and attributes
    (random masks are constants, compared by content), so the values are equal; in the backward
    the δ of both nodes' readers arrive at the one node and are summed there, which is what
    the dropped node's VJP would have added to the same inputs."""
    seen: dict = {}
    same: dict[int, int] = {}  # dropped output id -> the earlier node's output id
    nodes = []
    for n in tr.nodes:
        ins = [same.get(v, v) for v in n.ins]
        key = (n.op, tuple(ins), _stable(n.attrs), tuple(tr.shapes[o] for o in n.outs))
        if key in seen:
            same.update(zip(n.outs, seen[key].outs))
            continue
        n = TNode(n.op, ins, n.outs, n.attrs, n.scope)
        seen[key] = n
        nodes.append(n)
    if not same:
        return tr
    r = tr.returns
    returns = tuple(same.get(v, v) for v in r) if isinstance(r, tuple) else same.get(r, r)
    return Trace(**{**tr.__dict__, "nodes": nodes, "root": same.get(tr.root, tr.root), "returns": returns})


def merge_projection_chunks(tr: Trace) -> Trace:
    """The input projection the layers make chunk by chunk (``RNNBase.projection_rows``: eager keeps
    one chunk of W_ih x_t + b in memory at a time) as ONE GEMM over all T·B rows, as by hand:

        split(x) → per chunk: reshape → x_k W_ihᵀ + b → reshape → unbind     becomes
        reshape(x) → x W_ihᵀ + b → reshape → unbind (the same step values)

    Its backward is then one GEMM for δx, one for δW_ih and one sum for δb over all steps. It
    holds the whole projection during the forward, so ``optimize`` keeps it only when the memory
    plan's peak does not grow (the RNN's peak is in the backward; an LSTM's four gates are not)."""
    readers: dict[int, list[TNode]] = {}
    for n in tr.nodes:
        for v in n.ins:
            readers.setdefault(v, []).append(n)

    def only_reader(v: int, *ops: str) -> TNode | None:
        r = readers.get(v, [])
        return r[0] if len(r) == 1 and r[0].op in ops and v not in results else None

    results = {tr.root, *(tr.returns if isinstance(tr.returns, tuple) else (tr.returns,))}

    shapes, dtypes, nodes, extra = dict(tr.shapes), dict(tr.dtypes), list(tr.nodes), {}
    next_id = max(shapes) + 1
    for split in [n for n in tr.nodes if n.op == "split" and n.attrs["axis"] % len(tr.shapes[n.ins[0]]) == 0]:
        pieces = [only_reader(piece, "reshape") for piece in split.outs]  # x_k as rows (one reshape each)
        if len(pieces) < 2 or None in pieces:
            continue
        # every GEMM that reads a chunk x_k as its left operand, by weight (W_ihᵀ, and b): a
        # bidirectional layer's two directions read the same chunks (common_subexpressions)
        groups: dict[tuple, dict[int, tuple]] = {}
        for k, r in enumerate(pieces):
            for m in readers.get(r.outs[0], []):
                s3 = only_reader(m.outs[0], "reshape") if m.op in ("addmm", "matmul") else None
                u = s3 and only_reader(s3.outs[0], "unbind")
                if u is None or m.ins[-2] != r.outs[0] or len(shapes[m.outs[0]]) != 2 or u.attrs["axis"] != 0:
                    groups = {}  # a reader that is not a chunk's projection: leave this split alone
                    break
                groups.setdefault((m.op, *m.ins[:-2], m.ins[-1]), {})[k] = (m, s3, u)
            else:
                continue
            break
        if not groups or any(len(chains) != len(pieces) for chains in groups.values()):
            continue  # each weight must project every chunk
        x, (T, *rest) = split.ins[0], tr.shapes[split.ins[0]]
        rows = T * int(np.prod(rest[:-1], dtype=np.int64))
        R, next_id = next_id, next_id + 1
        shapes[R], dtypes[R] = (rows, rest[-1]), tr.dtypes[x]
        gone = {id(split), *(id(r) for r in pieces)}
        first_gemm = min(nodes.index(m) for chains in groups.values() for m, _, _ in chains.values())
        for chains in groups.values():
            m0 = chains[0][0]
            width = shapes[m0.outs[0]][1]
            M, S, next_id = next_id, next_id + 1, next_id + 2
            shapes[M], shapes[S] = (rows, width), (T, *rest[:-1], width)
            dtypes[M] = dtypes[S] = dtypes[R]
            merged = [
                TNode(m0.op, [*m0.ins[:-2], R, m0.ins[-1]], [M], dict(m0.attrs), m0.scope),
                TNode("reshape", [M], [S], {}, m0.scope),
                TNode("unbind", [S], [o for k in range(len(pieces)) for o in chains[k][2].outs], {"axis": 0}, m0.scope),
            ]
            at = min(chains.values(), key=lambda c: nodes.index(c[0]))[0]  # where this weight's first chunk ran
            if nodes.index(at) == first_gemm:
                merged.insert(0, TNode("reshape", [x], [R], {}, m0.scope))
            extra[id(at)] = merged
            gone.update(id(n) for c in chains.values() for n in c if n is not at)
        nodes = [n for n in nodes if id(n) not in gone]
    if not extra:
        return tr
    out = [m for n in nodes for m in extra.get(id(n), [n])]
    return Trace(**{**tr.__dict__, "nodes": out, "shapes": shapes, "dtypes": dtypes})


def fold_zero_constants(prog: Program) -> Program:
    """A product with a constant that is all zeros (h_0 = 0, the usual initial state) is zeros:
    the forward's h_0 W_hhᵀ becomes an array of zeros, and the contribution h_0ᵀ δa_1 to δW_hh
    is not computed at all. The constant is part of the trace's fingerprint, so a program made
    for h_0 = 0 is never replayed for another h_0."""
    zeros = {n for n, c in prog.consts.items() if isinstance(c, np.ndarray) and c.size and not np.any(c)}
    loaded = {i.outs[0] for i in prog.instrs if i.kind == "load" and i.code.endswith(tuple(f"[{n!r}]" for n in zeros))}
    if not loaded:
        return prog
    product = re.compile(r"(\w+) @ (\w+)")

    def zero_product(expr: str) -> bool:
        m = product.fullmatch(expr.replace(".T", ""))
        return bool(m) and bool({m.group(1), m.group(2)} & loaded)

    target = {i.ins[0]: i.outs[0] for i in prog.instrs if i.kind == "acc"}  # contribution d -> its sum g
    left = Counter(target.values())  # contributions per sum
    gone: set[str] = set()
    instrs, folded = [], 0
    for ins in prog.instrs:
        lines = ins.code.splitlines()
        head = re.fullmatch(r"(\w+) = (.+)", lines[0]) if lines else None
        if ins.kind in ("op", "grad") and head and zero_product(head.group(2)):
            d = ins.outs[0]
            if ins.kind == "grad" and d in target and left[target[d]] > 1:
                left[target[d]] -= 1
                gone.add(d)  # a zero contribution to a sum that has others: not computed, not added
                folded += 1
                continue
            code = "\n".join([f"{head.group(1)} = np.zeros({ins.shape!r}, np.{np.dtype(ins.dtype).name})", *lines[1:]])
            ins = Instr(ins.kind, ins.op, ins.outs, names_in_code(code, ins.outs), code, ins.shape, ins.dtype)
            folded += 1
        elif ins.kind == "acc" and ins.ins[0] in gone:
            continue
        instrs.append(ins)
    if not folded:
        return prog
    return prog.copy(instrs, f"fold_zero_constants: {folded} products with an all-zero constant (h_0 = 0) not computed")


def dead_code(prog: Program) -> Program:
    """Keep an instruction only if a later kept one reads what it writes (or it writes .grad / returns)."""
    need = prog.kept()
    kept = []
    for ins in reversed(prog.instrs):
        if ins.kind in ("write", "ret") or any(o in need for o in ins.outs):
            kept.append(ins)
            need.update(ins.ins)
    return prog.copy(kept[::-1], f"dead_code: {len(prog.instrs) - len(kept)} instructions removed")


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
    return prog.copy(instrs, f"stack_in_place: {len(stacks)} stacks written row by row, no copy")


def contiguous_transposes(prog: Program) -> Program:
    """A 2-D transpose of a weight (W_hhᵀ, read by every step's GEMM) copied once into C order,
    and its own transpose, where the backward reads it, replaced by the weight itself: BLAS runs
    a (B, H) @ (H, H) product on a C-ordered right operand about 1.7× faster at H = 128. A
    transpose read by one GEMM only (W_ihᵀ of the whole projection, W_hyᵀ) is left as a view: one
    big GEMM runs as fast on it, and the copy would cost a pass over the weight."""
    loads = {i.outs[0] for i in prog.instrs if i.kind == "load"}
    forward_reads = Counter(v for i in prog.instrs if i.kind == "op" for v in i.ins)
    swap: dict[str, str] = {}
    instrs = []
    for ins in prog.instrs:
        if (
            ins.kind == "op" and ins.op == "transpose" and len(ins.shape) == 2 and ins.ins[0] in loads
            and forward_reads[ins.outs[0]] >= 2
        ):  # fmt: skip
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
    return prog.copy(instrs, f"contiguous_transposes: {len(swap)} weight transposes made C-contiguous once per call")


def names_in_code(code: str, outs: list[str]) -> list[str]:
    return [v for v in names_in(code) if v not in outs]


def batch_weight_grads(prog: Program, rows: int = 256) -> Program:
    """Σ_t aₜᵀ gₜ into one gradient → (a_1; …; a_k)ᵀ (g_1; …; g_k): one GEMM per chunk of stacked steps.

    A chunk has about ``rows`` rows (k·B ≥ rows: BLAS runs near full speed there), so the
    gₜ of a chunk are freed once its GEMM ran: the stacked copies never hold all T steps at once.
    A product that has ``rows``/2 rows or more (a chunk of the input projection) stays apart.
    """
    made = {i.outs[0]: i for i in prog.instrs if i.kind == "grad"}
    shapes = {o: i.shape for i in prog.instrs for o in i.outs}
    groups: dict[str, list[Instr]] = {}
    for ins in prog.instrs:
        if ins.kind == "acc" and ins.ins[0] in made and made[ins.ins[0]].pattern:
            groups.setdefault(ins.outs[0], []).append(ins)
    groups = {g: accs for g, accs in groups.items() if len(accs) >= 2}
    drop, at, batched, gemms = set(), {}, 0, 0

    def height(acc: Instr) -> int:  # rows of aₜ (B for a step's product)
        a = shapes.get(made[acc.ins[0]].pattern[1], (1,))
        return a[0] if len(a) == 2 else 1

    for target, accs in groups.items():
        chunks: list[list[Instr]] = [[]]
        for acc in accs:  # greedily: a chunk closes at ``rows`` rows; a product of rows/2 or more stays alone
            if height(acc) * 2 >= rows:
                chunks.append([])
                continue
            chunks[-1].append(acc)
            if sum(height(a) for a in chunks[-1]) >= rows:
                chunks.append([])
        for chunk in chunks:
            if len(chunk) < 2:
                continue  # a lone product stays as it was
            terms = [made[a.ins[0]] for a in chunk]
            drop.update(id(x) for x in [*terms, *chunk])
            batched += len(terms)
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
    return prog.copy(
        instrs, f"batch_weight_grads: {batched} weight-gradient products of shared weights -> {gemms} GEMM(s)"
    )


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


def _own_rows(prog: Program) -> dict[str, tuple[str, int, int]]:
    """g -> (G, k, n) for each ``g = G[k]`` (instruction n) whose array is provably the step's own:
    G is a δ a GEMM made fresh (defined once, not a result or a .grad), and every reader of G
    takes a different row of it, so no two names share a row and no one reads G whole."""
    defs = Counter(o for i in prog.instrs for o in i.outs)
    keep = prog.kept()
    fresh = {i.outs[0] for i in prog.instrs if i.kind == "grad" and " @ " in i.code and defs[i.outs[0]] == 1}
    rows: dict[str, tuple[str, int, int]] = {}
    taken: dict[str, list[str]] = {}
    for n, ins in enumerate(prog.instrs):
        m = re.fullmatch(r"(g\d+) = (g\d+)\[(\d+)\]", ins.code)
        if m and m.group(2) in fresh and m.group(2) not in keep:
            taken.setdefault(m.group(2), []).append(m.group(3))
            rows[m.group(1)] = (m.group(2), int(m.group(3)), n)
    readers = Counter(v for i in prog.instrs for v in i.ins)
    ok = {G for G, ks in taken.items() if len(set(ks)) == len(ks) == readers[G]}
    return {g: r for g, r in rows.items() if r[0] in ok and g not in keep}


def accumulate_in_place(prog: Program) -> Program:
    """``g = g + expr`` becomes ``g += expr`` where g's array is provably the step's own: g is row k
    of a δ (``g = G[k]``, the δ of a stack) that a GEMM made fresh, every reader of G takes a
    different row, and nothing read g before this sum. (δh_{t-1} = δout_{t-1} + δa_t W_hh: one
    (B, H) array fewer per step, as hand-written BPTT adds in place.)"""
    defs = Counter(o for i in prog.instrs for o in i.outs)
    rows = {g: r for g, r in _own_rows(prog).items() if defs[g] == 2}  # the row, then its sum
    instrs, changed = list(prog.instrs), 0
    for n, ins in enumerate(instrs):
        m = re.fullmatch(r"(g\d+) = \1 \+ (.*)", ins.code, re.S)
        if not m or m.group(1) not in rows:
            continue
        g, start = m.group(1), rows[m.group(1)][2]
        if any(g in instrs[j].ins for j in range(start + 1, n)):
            continue  # read before the sum: an alias may hold it
        instrs[n] = Instr(ins.kind, ins.op, ins.outs, ins.ins, f"{g} += {m.group(2)}", ins.shape, ins.dtype, True)
        changed += 1
    if not changed:
        return prog
    return prog.copy(instrs, f"accumulate_in_place: {changed} sums added in place into a row of their own δ")


def gradient_rows(prog: Program) -> Program:
    """δ of an ``unbind`` (the per-step δa_t of the input projection): each step's gradient is
    written straight into its row of the result, instead of being copied there afterwards; and a
    batched weight-gradient GEMM over those same steps reads the rows as one slice, not a copy.

    Where δa_t is computed from a row the step owns (δa_t = (δout_t + δh_t) ⊙ (1 − h_t²), with
    δout_t + δh_t summed in δout's own row by ``accumulate_in_place``) and that row is read by
    nothing after, δa_t is written over it, and the result is a slice of δout: no new array at
    all, and every step's δa_t sits in one array, so the weight gradient reads all steps as one
    slice even across the chunks of the input projection."""
    alias = {
        i.outs[0]: i.code.split(" = ")[1]
        for i in prog.instrs
        if i.kind == "grad" and re.fullmatch(r"g\d+ = g\d+", i.code)
    }
    defs = Counter(o for i in prog.instrs for o in i.outs)
    made = {i.outs[0]: i for i in prog.instrs if i.kind == "grad" and not i.view and defs[i.outs[0]] == 1}
    at = {id(i): n for n, i in enumerate(prog.instrs)}
    last_read = {v: n for n, i in enumerate(prog.instrs) for v in i.ins}
    owned = _own_rows(prog)
    rebound = {  # names given a new array after they were a row (``g = g + …``): no longer the row
        o for i in prog.instrs for o in i.outs if o in owned and re.search(rf"^{o} = (?!{owned[o][0]}\[)", i.code, re.M)
    }
    shapes = {o: i.shape for i in prog.instrs for o in i.outs}
    rows: dict[str, tuple[str, int]] = {}  # root gradient -> (buffer, row)
    over: dict[str, str] = {}  # root gradient -> the owned row it overwrites
    result: dict[str, str] = {}  # root gradient -> the δ of the unbind it is a row of
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
        src = [_overwritable(made[r], owned, last_read, at, rebound) for r in roots]
        G = {owned[g][0] for g in src if g is not None}
        if None not in src and len(G) == 1:
            (G,) = G
            j0 = owned[src[0]][1]
            if [owned[g][1] for g in src] == list(range(j0, j0 + len(src))) and shapes[G][1:] == ins.shape[1:]:
                code = f"{D} = {G}[{j0}:{j0 + len(src)}]"  # the rows of δout, overwritten by δa_t
                allocs[D] = Instr("grad", "δunbind", [D], [G], code, ins.shape, ins.dtype, True)
                for k, (r, g) in enumerate(zip(roots, src)):
                    rows[r], over[r], result[r] = (G, j0 + k), g, D
                continue
        code = f"{D} = np.empty({m.group(2)}, {m.group(3)})"
        allocs[D] = Instr("grad", "δunbind", [D], [], code, ins.shape, ins.dtype)
        for k, r in enumerate(roots):
            rows[r], result[r] = (D, k), D
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
            first.setdefault(result[ins.outs[0]], i)
    instrs, scratch = [], {}
    for i, ins in enumerate(prog.instrs):
        for D, where in first.items():
            if where == i:
                instrs.append(allocs[D])
        if ins.code.startswith(tuple(f"{D} = _rows(" for D in allocs)):
            continue  # the rows are already written
        if ins.outs and ins.outs[0] in rows and ins.kind == "grad":
            r, (D, k) = ins.outs[0], rows[ins.outs[0]]
            expr = ins.code.split(" = ", 1)[1]
            row, reads = over.get(r, f"{D}[{k}]"), [*ins.ins, D]
            code = f"{row}[...] = {expr}\n{r} = {row}" if r in over else f"{row} = {expr}\n{r} = {row}"
            m = re.fullmatch(r"(\w+) \* \(1 - (\w+) \* \2\)", expr)
            if m:  # δa = δh ⊙ (1 − h²) with no temporaries: h², 1 − h², ⊙ δh, each out=
                g, y = m.groups()
                tmp = r if r not in over else scratch.setdefault(ins.shape, f"s{len(scratch)}")
                if r in over and tmp not in {o for x in instrs for o in x.outs}:
                    alloc = f"{tmp} = np.empty({ins.shape!r}, np.{np.dtype(ins.dtype).name})"
                    instrs.append(Instr("grad", "scratch", [tmp], [], alloc, ins.shape, ins.dtype))
                head = f"{r} = {row}" if r in over else f"{r} = {D}[{k}]"
                code = (f"{head}\nnp.multiply({y}, {y}, out={tmp})\nnp.subtract(1, {tmp}, out={tmp})\n"
                        f"np.multiply({g}, {tmp}, out={r})")  # fmt: skip
                reads = [*reads, tmp] if r in over else reads
            ins = Instr("grad", ins.op, ins.outs, reads, code, ins.shape, ins.dtype, True)
        instrs.append(ins)
    refers = {**{g: (G, j) for g, (G, j, _) in owned.items()}, **rows, **states}
    for x in alias:  # a name for another name's row is a name for that row
        y = x
        while y in alias and y not in refers:
            y = alias[y]
        if y in refers:
            refers[x] = refers[y]
    instrs = _join_batched(instrs, rows, states, refers)  # the chunks of one weight's gradient as one
    instrs = [_batched_from_rows(i, rows, states) if i.op == "δbatched" else i for i in instrs]  # the rest
    n_new = sum(1 for a in allocs.values() if not a.view)
    note = f"gradient_rows: {len(rows)} step gradients written into their rows ({len(over)} over their own δ row)"
    return prog.copy(instrs, f"{note}, {n_new} new array(s)")


def _overwritable(ins: Instr, owned: dict, last_read: dict, at: dict, rebound: set) -> str | None:
    """The owned row δa_t may be written over: the one owned row ``ins`` reads, if it is still that
    row (only ever added to in place) and nothing reads it later."""
    rows = [v for v in ins.ins if v in owned]
    if len(rows) != 1 or rows[0] in rebound or last_read.get(rows[0]) != at[id(ins)]:
        return None
    return rows[0]


_BATCHED = re.compile(r"(\w+) (=|\+=) (\w+ \+ )?np\.concatenate\(\[(.*)\]\)\.T @ np\.concatenate\(\[(.*)\]\)")


def _batched_pairs(ins: Instr) -> tuple[str, str, str, list[tuple[str, str]]] | None:
    """A batched GEMM ``g (=|+=) [g +] concat(A)ᵀ concat(G)`` as (g, its form, the pairs (aₜ, gₜ))."""
    m = _BATCHED.fullmatch(ins.code)
    if not m:
        return None
    A, G = [a.strip() for a in m.group(4).split(",")], [g.strip() for g in m.group(5).split(",")]
    return m.group(1), m.group(2), m.group(3) or "", list(zip(A, G))


def _sliced_gemms(
    target: str, op: str, plus: str, pairs: list, rows: dict[str, tuple[str, int]], states: dict[str, tuple[str, int]]
) -> str | None:
    """(a_1; …; a_k)ᵀ (g_1; …; g_k) as slices, no copies: each run of steps whose g's are consecutive
    rows of one δ array (``rows``) and whose a's are consecutive rows of one stacked output
    (``states``: h_t written into its row by ``stack_in_place``) is one GEMM on two slices; the
    products of the runs are added. A step that fits no run keeps its own small product.
    None when no two steps make a run (the concatenated GEMM stays)."""
    pairs = sorted(pairs, key=lambda ag: rows[ag[1]] if ag[1] in rows else ("~", 0))  # rows in time order
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
        return None

    def side(names: list[str], where: dict[str, tuple[str, int]]) -> str:
        if len(names) == 1:
            return names[0]
        buf, k = where[names[0]]
        return f"{buf}[{k}:{k + len(names)}].reshape(-1, {buf}.shape[-1])"

    terms = [f"{side([a for a, _ in r], states)}.T @ {side([g for _, g in r], rows)}" for r in runs]
    first = f"{target} += {terms[0]}" if op == "+=" else f"{target} = {plus}{terms[0]}"
    return "\n".join([first, *(f"{target} += {t}" for t in terms[1:])])


def _batched_from_rows(ins: Instr, rows: dict[str, tuple[str, int]], states: dict[str, tuple[str, int]]) -> Instr:
    """One batched GEMM read from slices where its steps' rows allow it (``_sliced_gemms``)."""
    parsed = _batched_pairs(ins)
    code = None if parsed is None else _sliced_gemms(*parsed, rows, states)
    if code is None:
        return ins
    target, op, plus, _ = parsed
    reads = names_in_code(code, [] if op == "+=" or plus else [target])
    return Instr(ins.kind, ins.op, ins.outs, reads, code, ins.shape, ins.dtype, ins.view, ins.pattern)


def _join_batched(instrs: list[Instr], rows: dict, states: dict, refers: dict[str, tuple[str, int]]) -> list[Instr]:
    """The chunks of one weight's batched gradient (``batch_weight_grads`` cuts them at ~256 rows,
    for the copies its concatenation makes) as one set of slices, at the last chunk's place, now
    that slices copy nothing: Σ_t h_{t-1}ᵀ δa_t over all steps is one GEMM, as by hand.

    Moving a chunk's product later is safe only if nothing between writes its target or any row
    it reads (``refers``: every name that is a view of a row, and which row)."""
    chunks: dict[str, list[tuple[int, tuple]]] = {}
    for n, ins in enumerate(instrs):
        if ins.op == "δbatched" and (parsed := _batched_pairs(ins)) is not None:
            chunks.setdefault(parsed[0], []).append((n, parsed))
    alias_def = re.compile(r"g\d+ = g\d+")
    drop, put = set(), {}
    for target, found in chunks.items():
        if len(found) < 2:
            continue
        first, last = found[0][0], found[-1][0]
        ns = {n for n, _ in found}
        if any(target in instrs[j].ins or target in instrs[j].outs for j in range(first + 1, last) if j not in ns):
            continue

        def safe(n: int, pairs: list) -> bool:  # no instruction after n, up to the last chunk, writes what pairs read
            written = {o for j in range(n + 1, last) if not alias_def.fullmatch(instrs[j].code) for o in instrs[j].outs}
            hit = {refers[o] for o in written if o in refers}
            return not any({a, g} & written or {refers.get(a), refers.get(g)} & hit - {None} for a, g in pairs)

        if not all(safe(n, parsed[3]) for n, parsed in found[:-1]):
            continue
        moved = [ag for _, (_, _, _, ps) in found[:-1] for ag in ps]  # the products that will run later
        pairs = [*moved, *found[-1][1][3]]
        _, op, plus, _ = found[0][1]
        code = _sliced_gemms(target, op, plus, pairs, rows, states)
        if code is None:
            continue
        ins = instrs[last]
        reads = names_in_code(code, [] if op == "+=" or plus else [target])
        put[last] = Instr(ins.kind, ins.op, ins.outs, reads, code, ins.shape, ins.dtype, ins.view, ins.pattern)
        drop.update(n for n, _ in found[:-1])
    return [put.get(n, ins) for n, ins in enumerate(instrs) if n not in drop]


_UFUNCS = {"+": "np.add", "-": "np.subtract", "*": "np.multiply", "/": "np.divide"}


def elementwise_in_place(prog: Program) -> Program:
    """``y = a ∘ b`` (∘ one of + − ⊙ /) written into a's own array, when a is provably the step's
    own: a GEMM or an elementwise op made it fresh, this is its last reader, nothing else read it
    but to make a number, and y has a's shape and dtype. (The readout's e = out W_hyᵀ + b − target
    and δe = 2 δL e: the one (T·B, I) array by hand, not three.)"""
    defs = Counter(o for i in prog.instrs for o in i.outs)
    keep = prog.kept()
    info = {o: i for i in prog.instrs for o in i.outs}
    readers = _readers(prog.instrs)
    fresh = {
        i.outs[0]
        for i in prog.instrs
        if i.kind in ("op", "grad") and len(i.outs) == 1 and defs[i.outs[0]] == 1
        and re.fullmatch(rf"{i.outs[0]} = (\(?\w+(\.reshape\([^()]*\))? @ \w+\)?(\.reshape\(\([\d, ]*\)\))?"
                         rf"|\w+ [-+*/] [^=]+)", i.code)
    }  # fmt: skip
    instrs, changed = list(prog.instrs), 0
    for n, ins in enumerate(instrs):
        m = re.fullmatch(r"(\w+) = (\w+) ([-+*/]) ([^=\n]+)", ins.code)
        if not m or ins.kind not in ("op", "grad") or defs[m.group(1)] != 1:
            continue
        y, a, op, b = m.groups()
        if a not in fresh or a in keep or a == y or readers.get(a, [])[-1:] != [n]:
            continue
        if any(info[o].shape != () for r in readers[a][:-1] for o in instrs[r].outs):
            continue  # another reader may have kept a view of a
        if info[a].shape != ins.shape or not ins.shape or np.dtype(info[a].dtype) != np.dtype(ins.dtype):
            continue  # (a 0-d result may be a numpy scalar, which has no array to write into)
        code = f"{_UFUNCS[op]}({a}, {b}, out={a})\n{y} = {a}"
        instrs[n] = Instr(ins.kind, ins.op, ins.outs, ins.ins, code, ins.shape, ins.dtype, True)
        fresh.add(y)
        changed += 1
    if not changed:
        return prog
    return prog.copy(instrs, f"elementwise_in_place: {changed} elementwise results written into an operand's own array")


def _readers(instrs: list[Instr]) -> dict[str, list[int]]:
    """name -> the indices of the instructions that read it, in order."""
    readers: dict[str, list[int]] = {}
    for n, ins in enumerate(instrs):
        for v in ins.ins:
            readers.setdefault(v, []).append(n)
    return readers


def transposed_weight_grads(prog: Program) -> Program:
    """δW for ``x @ Wᵀ``: the sum δ(Wᵀ) = Σ aᵀ g, then transposed (a copy into .grad), becomes
    δW = Σ gᵀ a, each product with its operands swapped: no transpose, and BLAS writes δW in the
    layout .grad keeps (by hand: δW_hy = eᵀ out)."""
    readers = _readers(prog.instrs)
    keep = prog.kept()
    lines: dict[str, list[int]] = {}
    for n, ins in enumerate(prog.instrs):
        for o in ins.outs:
            lines.setdefault(o, []).append(n)
    swap: dict[int, Instr] = {}
    drop = set()
    for n, ins in enumerate(prog.instrs):
        m = re.fullmatch(r"(g\d+) = (g\d+)\.transpose\(\(1, 0\)\)", ins.code)
        if not m or m.group(2) in keep:
            continue
        w, t = m.groups()
        if set(readers.get(t, [])) - set(lines[t]) != {n}:
            continue  # δ(Wᵀ) is read by something else than its own sum and this transpose
        new = {}
        for j in lines[t]:
            out = []
            for line in prog.instrs[j].code.splitlines():
                k = re.fullmatch(rf"{t} (=|\+=) ({t} \+ )?(.+)", line)
                parts = k.group(3).split(" @ ") if k else []
                if (
                    len(parts) != 2
                    or not parts[0].endswith(".T")
                    or ".T" in parts[1]
                    or " " in parts[0].replace(", ", ",")
                ):
                    break
                plus = f"{w} + " if k.group(2) else ""
                out.append(f"{w} {k.group(1)} {plus}{parts[1]}.T @ {parts[0][:-2]}")
            else:
                new[j] = out
                continue
            break
        else:
            for j, out in new.items():
                old = prog.instrs[j]
                code = "\n".join(out)
                outs = [w if o == t else o for o in old.outs]
                reads = [w if v == t else v for v in old.ins]
                swap[j] = Instr(old.kind, old.op, outs, reads, code, old.shape[::-1], old.dtype, old.view, old.pattern)
            drop.add(n)
    if not drop:
        return prog
    instrs = [swap.get(j, ins) for j, ins in enumerate(prog.instrs) if j not in drop]
    return prog.copy(instrs, f"transposed_weight_grads: {len(drop)} weight gradients formed as gᵀ a, not transposed")


def hand_over_grads(prog: Program) -> Program:
    """A gradient the replay made itself (a GEMM's result, and what was added into it in place)
    becomes the leaf's ``.grad`` as it is, not copied: nothing else holds it once the replay
    returns. A gradient that is a view, a constant, shared by two leaves, or read by anything
    else is copied as before."""
    readers = Counter(v for i in prog.instrs if i.kind != "write" for v in i.ins if v not in i.outs)
    written = Counter(v for i in prog.instrs if i.kind == "write" for v in i.ins)
    keep_returns = prog.kept() - {g for g, _ in prog.writes.values()}
    lines: dict[str, list[str]] = {}
    for ins in prog.instrs:
        for line in ins.code.splitlines():
            m = re.match(r"(\w+) (\+?=) ", line)
            if m:
                lines.setdefault(m.group(1), []).append(line)

    def made_here(g: str) -> bool:  # a GEMM's result (added into in place), or a reshape of one read by it alone
        own = lines.get(g, [])
        if not own or not all(re.match(rf"{g} (\+= |= {g} \+ )", line) for line in own[1:]):
            return False
        if re.fullmatch(rf"{g} = [^=]*\w(\.T)? @ [^=]+", own[0]):
            return True
        m = re.fullmatch(rf"{g} = (g\d+)\.reshape\([^=]*\)", own[0])
        return bool(m) and readers[m.group(1)] == 1 and written[m.group(1)] == 0 and made_here(m.group(1))

    instrs, handed = [], 0
    for ins in prog.instrs:
        if ins.kind == "write" and ins.code.endswith(("True)", "False)")):
            (g,) = ins.ins
            if written[g] == 1 and readers[g] == 0 and g not in keep_returns and made_here(g):
                code = ins.code[:-1] + ", own=True)"
                ins = Instr(ins.kind, ins.op, ins.outs, ins.ins, code)
                handed += 1
        instrs.append(ins)
    if not handed:
        return prog
    return prog.copy(instrs, f"hand_over_grads: {handed} gradients become .grad without a copy")


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
    return prog.copy(instrs, f"plan_memory: freed after last use; plan peak {prog.peak_bytes():,} B")


TRACE_PASSES = (sum_of_squares, common_subexpressions)  # on the trace, before it is lowered
PASSES = (
    fold_zero_constants,
    dead_code,
    stack_in_place,
    contiguous_transposes,
    batch_weight_grads,
    schedule_accumulation,
    accumulate_in_place,
    gradient_rows,
    elementwise_in_place,
    transposed_weight_grads,
    hand_over_grads,
    plan_memory,
)


def optimize(tr: Trace) -> tuple[Program, Program]:
    """(the program before the passes, after them): the trace passes, ``lower``, the list passes.
    ``merge_projection_chunks`` is tried too and kept where the plan's peak does not grow."""
    for p in TRACE_PASSES:
        tr = p(tr)

    def run(t: Trace) -> tuple[Program, Program]:
        before = prog = lower(t)
        for p in PASSES:
            prog = p(prog)
        return before, prog

    best = run(tr)
    merged = merge_projection_chunks(tr)
    if merged is not tr:
        other = run(merged)
        if other[1].peak_bytes() <= best[1].peak_bytes():
            other[1].notes.insert(0, "merge_projection_chunks: the input projection as one GEMM (peak kept)")
            return other
        best[1].notes.insert(0, "merge_projection_chunks: not applied (the whole projection would raise the peak)")
    return best
