"""Mutation score: plant known bugs one at a time and count how many the tests catch.

    python benchmarks/mutations.py                 # all mutations, a table and the score
    python benchmarks/mutations.py -k adam tanh    # only those whose name contains a word
    python benchmarks/mutations.py --list          # the list, nothing run

Each entry of ``MUTATIONS`` is one planted bug: a file, an exact source snippet (it must occur
exactly once: tests/test_mutations.py checks that, so the list cannot rot silently), its
replacement, and the test files that should catch it. The script copies the repository (without
.git and .venv) to a temporary directory once, and for each mutation writes the mutated file into
the copy, runs ``python -m pytest -x -q`` on the listed tests there, and puts the file back. The
working tree is never edited. A mutation is *caught* when pytest reports a failure (exit code 1);
an exit code other than 0 or 1 (a collection error, a crash) is reported as such.

It lives in benchmarks/ rather than tests/ because it is a measurement run on demand, like the
other harnesses here (it takes minutes: one pytest session per mutation), not something pytest
collects; tests/test_mutations.py is the fast guard that runs with the suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the repository root
    old: str  # exact snippet, found exactly once in the file
    new: str
    tests: tuple[str, ...]  # test files (or node ids) that should catch it


ENGINE = ("tests/test_engine.py", "tests/test_reliability.py", "tests/test_issue17.py")
SWEEP = ("tests/test_op_sweep.py",)
MODELS = ("tests/test_models.py", "tests/test_reference.py")
TRUNC = ("tests/test_truncation.py", "tests/test_missed_behaviours.py")
OPTIM = ("tests/test_missed_behaviours.py", "tests/test_engine.py", "tests/test_reliability.py")
SAVE = ("tests/test_missed_behaviours.py", "tests/test_serialization.py")
COMPILE = ("tests/test_compile.py", "tests/test_compare.py")

MUTATIONS: list[Mutation] = [
    # -- the ten the first round of planted bugs slipped past (issue 17) ----------------------
    Mutation(
        "gradcheck compares backward with itself",
        "minigrad/gradcheck.py",
        "numeric = numerical_grad(fn, inputs, i, eps, weights)",
        "numeric = analytic.copy()",
        ("tests/test_gradcheck_oracle.py",),
    ),
    Mutation(
        "Adam ignores weight_decay",
        "minigrad/optim.py",
        '            if group["weight_decay"]:\n                g = g + group["weight_decay"] * p.data\n            m, v',
        "            m, v",
        OPTIM,
    ),
    Mutation(
        "Adam.step skips the in-place-write mark",
        "minigrad/optim.py",
        '            p.data -= group["lr"] * (m / c1) / (np.sqrt(v / c2) + group["eps"])\n            p.mark_modified()',
        '            p.data -= group["lr"] * (m / c1) / (np.sqrt(v / c2) + group["eps"])',
        OPTIM,
    ),
    Mutation(
        "load_state_dict skips the in-place-write mark",
        "minigrad/nn.py",
        "own[k].data[...] = v  # in place: optimizers holding the parameter see the new values\n"
        "            own[k].mark_modified()",
        "own[k].data[...] = v  # in place: optimizers holding the parameter see the new values",
        OPTIM,
    ),
    Mutation(
        "tbptt_train ignores max_norm",
        "models/truncation.py",
        "            if max_norm is not None:\n                mg.optim.clip_grad_norm_(params, max_norm)\n",
        "",
        TRUNC,
    ),
    Mutation(
        "retain_grad overwrites instead of accumulating",
        "minigrad/tensor.py",
        "t._grad = np.array(g) if t._grad is None else t._grad + g",
        "t._grad = np.array(g)",
        ENGINE + ("tests/test_missed_behaviours.py",),
    ),
    Mutation(
        "save without fsync",
        "minigrad/serialization.py",
        "            f.flush()\n            os.fsync(f.fileno())",
        "            f.flush()",
        SAVE,
    ),
    Mutation(
        "clip_grad_norm_ clips each parameter on its own",
        "minigrad/optim.py",
        "    if total > max_norm:\n        scale = max_norm / (total + 1e-6)\n        for g in grads:\n            g *= scale",
        "    for g in grads:\n        n = math.sqrt(float(np.vdot(g, g)))\n        if n > max_norm:\n"
        "            g *= max_norm / (n + 1e-6)",
        OPTIM,
    ),
    Mutation(
        "Adam without bias correction",
        "minigrad/optim.py",
        "c1, c2 = 1 - b1**self.t, 1 - b2**self.t",
        "c1, c2 = 1.0, 1.0",
        OPTIM,
    ),
    Mutation(
        "non-atomic save (writes over the old file)",
        "minigrad/serialization.py",
        'fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)',
        "fd, tmp = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), str(path)",
        SAVE,
    ),
    Mutation(
        "tbptt_train never zeroes gradients",
        "models/truncation.py",
        "        if optimizer is not None:\n            optimizer.zero_grad()\n        loss.backward()",
        "        loss.backward()",
        TRUNC,
    ),
    # -- classic autodiff bugs --------------------------------------------------------------
    Mutation(
        "sub: wrong sign in δb",
        "minigrad/ops.py",
        "lambda g: (unbroadcast(g, sa), unbroadcast(-g, sb)))",
        "lambda g: (unbroadcast(g, sa), unbroadcast(g, sb)))",
        SWEEP,
    ),
    Mutation(
        "add: missing broadcast reduction",
        "minigrad/ops.py",
        'return _make(y, "add", (a, b), lambda g: (unbroadcast(g, sa), unbroadcast(g, sb)))',
        'return _make(y, "add", (a, b), lambda g: (g, g))',
        SWEEP,
    ),
    Mutation(
        "tanh' as 1 − h instead of 1 − h²",
        "minigrad/ops.py",
        'return _make(y, "tanh", (x,), lambda g: (g * (1 - y * y),))  # δx',
        'return _make(y, "tanh", (x,), lambda g: (g * (1 - y),))  # δx',
        SWEEP,
    ),
    Mutation(
        "exp's backward off by 1e-5 relative",
        "minigrad/ops.py",
        'return _make(y, "exp", (x,), lambda g: (g * y,))',
        'return _make(y, "exp", (x,), lambda g: (g * y * (1 + 1e-5),))',
        SWEEP,
    ),
    Mutation(
        "sigmoid' as σ instead of σ(1 − σ)",
        "minigrad/ops.py",
        "lambda g: (g * y * (1 - y),))",
        "lambda g: (g * y,))",
        SWEEP,
    ),
    Mutation(
        "log' as 1/x² ",
        "minigrad/ops.py",
        "lambda g: (g / xd,))  # δx = δy / x",
        "lambda g: (g / (xd * xd),))  # δx = δy / x",
        SWEEP,
    ),
    Mutation(
        "matmul: δa without the transpose",
        "minigrad/ops.py",
        "lambda g: (None if bd is None else g @ bd.T, None if ad is None else ad.T @ g),",
        "lambda g: (None if bd is None else g @ bd, None if ad is None else ad.T @ g),",
        SWEEP,
    ),
    Mutation(
        "mean: not divided by n",
        "minigrad/ops.py",
        "lambda g: (np.broadcast_to(_expand(g, axes, keepdims) / n, shape),),",
        "lambda g: (np.broadcast_to(_expand(g, axes, keepdims), shape),),",
        SWEEP,
    ),
    Mutation(
        "getitem: repeated indices overwrite instead of accumulating",
        "minigrad/ops.py",
        "            np.add.at(dx, idx, g)",
        "            dx[idx] = g",
        SWEEP + ("tests/test_op_sweep_properties.py",),
    ),
    Mutation(
        "softmax: δx = y ⊙ δy (the Σ term dropped)",
        "minigrad/ops.py",
        "lambda g: (y * (g - (g * y).sum(axis=axis, keepdims=True)),))",
        "lambda g: (y * g,))",
        SWEEP,
    ),
    Mutation(
        "scale_grad ignores ξ",
        "minigrad/ops.py",
        "lambda g: (g * xi,))  # δx = ξ δy",
        "lambda g: (g,))  # δx = ξ δy",
        SWEEP + TRUNC,
    ),
    Mutation(
        "detach does not cut",
        "minigrad/tensor.py",
        "        _init(out, self.data, False, None)",
        "        _init(out, self.data, self.requires_grad, self._edge)",
        ENGINE,
    ),
    Mutation(
        "truncate=k cuts one step late",
        "models/truncation.py",
        "return detach_state(state) if t % self.k == 0 else state",
        "return detach_state(state) if (t - 1) % self.k == 0 and t > 1 else state",
        TRUNC + ("tests/test_reference.py",),
    ),
    Mutation(
        "backward visits a producer in the wrong order (oldest first)",
        "minigrad/tensor.py",
        "heapq.heappush(heap, (-producer.seq, producer))",
        "heapq.heappush(heap, (producer.seq, producer))",
        ENGINE,
    ),
    Mutation(
        "a leaf's gradient is overwritten instead of accumulated",
        "minigrad/tensor.py",
        "        x._grad += g",
        "        x._grad = np.array(g)",
        ENGINE,
    ),
    Mutation(
        "a node's output gradients are overwritten instead of summed",
        "minigrad/tensor.py",
        "pending[i] = g if pending[i] is None else accumulate.add(pending[i], g, sums, (producer.seq, i))",
        "pending[i] = g",
        ENGINE,
    ),
    Mutation(
        "GRU: b_hn outside r ⊙ (…)",
        "models/cells.py",
        "    n = mg.tanh(xn + r * gh_n)",
        "    n = mg.tanh(xn + r * (gh_n - b_hn) + b_hn) if b_hn is not None else mg.tanh(xn + r * gh_n)",
        MODELS,
    ),
    Mutation(
        "LSTM: the forget gate multiplies the input term",
        "models/cells.py",
        "    c = f * c + i * g  # c_t = f ⊙ c_{t-1} + i ⊙ g",
        "    c = i * c + f * g  # c_t = f ⊙ c_{t-1} + i ⊙ g",
        MODELS,
    ),
    Mutation(
        "RandomTruncation keeps paths without rescaling by 1/p",
        "models/truncation.py",
        "            xi = 1.0 / self.p",
        "            xi = 1.0",
        TRUNC,
    ),
    Mutation(
        "stale-input check never runs",
        "minigrad/tensor.py",
        "            if node.version != checks.writes:",
        "            if False:",
        OPTIM,
    ),
    Mutation(
        "backward never frees the graph",
        "minigrad/tensor.py",
        "                node.vjp = None  # drop the closure: frees the arrays it saved",
        "                pass",
        ENGINE,
    ),
    # -- the compiler: a pass or a guard that would make a replay silently differ from eager ----
    Mutation(
        "common_subexpressions ignores attributes",
        "minigrad/compiler/passes.py",
        "key = (n.op, tuple(ins), _stable(n.attrs), tuple(tr.shapes[o] for o in n.outs))",
        "key = (n.op, tuple(ins), tuple(tr.shapes[o] for o in n.outs))",
        COMPILE,
    ),
    Mutation(
        "merged projection unbinds the chunks in reverse order",
        "minigrad/compiler/passes.py",
        "[o for k in range(len(pieces)) for o in chains[k][2].outs]",
        "[o for k in reversed(range(len(pieces))) for o in chains[k][2].outs]",
        COMPILE,
    ),
    Mutation(
        "fold_zero_constants folds any constant",
        "minigrad/compiler/passes.py",
        "c.size and not np.any(c)",
        "c.size",
        COMPILE,
    ),
    Mutation(
        "δa_t written over a row that was rebound to a new array",
        "minigrad/compiler/passes.py",
        "if len(rows) != 1 or rows[0] in rebound or",
        "if len(rows) != 1 or",
        COMPILE,
    ),
    Mutation(
        "hand_over_grads hands over a gradient it did not make (shared by two leaves)",
        "minigrad/compiler/passes.py",
        'if re.fullmatch(rf"{g} = [^=]*\\w(\\.T)? @ [^=]+", own[0]):',
        "if True:",
        COMPILE,
    ),
    Mutation(
        "a replay ignores cross_entropy's data guards",
        "minigrad/compiler/__init__.py",
        "if entry.trace.guards and entry.trace.broken_guard(targs) is not None:",
        "if False:",
        ("tests/test_compile_guards.py",),
    ),
]


def check_applies(root: Path = ROOT) -> list[str]:
    """Problems with the list: a snippet not found exactly once, a missing test file, a name twice."""
    problems, names = [], set()
    for m in MUTATIONS:
        if m.name in names:
            problems.append(f"{m.name}: the name is used twice")
        names.add(m.name)
        n = (root / m.file).read_text().count(m.old)
        if n != 1:
            problems.append(f"{m.name}: snippet found {n} times in {m.file}")
        mutated = (root / m.file).read_text().replace(m.old, m.new)
        try:
            compile(mutated, m.file, "exec")
        except SyntaxError as e:
            problems.append(f"{m.name}: the mutated {m.file} does not compile ({e})")
        for t in m.tests:
            if not (root / t.split("::")[0]).exists():
                problems.append(f"{m.name}: no test file {t}")
    return problems


def _copy_repo(dest: Path) -> None:
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info")
    shutil.copytree(ROOT, dest, ignore=ignore, dirs_exist_ok=True)


def run(mutations: list[Mutation], timeout: float = 600) -> list[tuple[Mutation, str, float]]:
    """Apply each mutation to a copy of the repository, run its tests; (mutation, outcome, seconds)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="minigrad-mutants-") as tmp:
        copy = Path(tmp) / "repo"
        _copy_repo(copy)
        env = dict(os.environ, PYTHONPATH=str(copy), OPENBLAS_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        env.pop("CI", None)  # a missing optional dependency skips here, as locally
        # the control: unmutated, every test file must pass, or a "caught" would mean nothing
        files = sorted({t for m in mutations for t in m.tests})
        control = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
            cwd=copy, env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if control.returncode != 0:
            raise SystemExit(f"the unmutated copy fails its tests: fix that first\n{control.stdout[-3000:]}")
        print(f"  control: the unmutated copy passes {len(files)} test files", file=sys.stderr, flush=True)
        for m in mutations:
            target = copy / m.file
            original = target.read_text()
            target.write_text(original.replace(m.old, m.new, 1))
            start = time.perf_counter()
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests],
                    cwd=copy, env=env, capture_output=True, text=True, timeout=timeout,
                )  # fmt: skip
                outcome = {0: "MISSED", 1: "caught"}.get(proc.returncode, f"error (exit {proc.returncode})")
            except subprocess.TimeoutExpired:
                outcome = "caught (timeout)"
            finally:
                target.write_text(original)
            results.append((m, outcome, time.perf_counter() - start))
            print(f"  {outcome:16s} {time.perf_counter() - start:6.1f} s  {m.name}", file=sys.stderr, flush=True)
    return results


def table(results: list[tuple[Mutation, str, float]]) -> str:
    width = max(len(m.name) for m, _, _ in results)
    lines = [f"| {'mutation':{width}s} | file | outcome | s |", f"|{'-' * (width + 2)}|---|---|---|"]
    for m, outcome, secs in results:
        lines.append(f"| {m.name:{width}s} | {m.file} | {outcome} | {secs:.1f} |")
    caught = sum(o.startswith("caught") for _, o, _ in results)
    lines.append(f"\nscore: {caught} of {len(results)} caught ({100 * caught / len(results):.0f}%)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", nargs="*", default=None, help="only mutations whose name contains one of these words")
    ap.add_argument("--list", action="store_true", help="print the mutations and exit")
    args = ap.parse_args(argv)
    problems = check_applies()
    if problems:
        print("the mutation list does not apply:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    chosen = [m for m in MUTATIONS if not args.k or any(w.lower() in m.name.lower() for w in args.k)]
    if args.list:
        for m in chosen:
            print(f"{m.name}  ({m.file}; {', '.join(m.tests)})")
        return 0
    results = run(chosen)
    print(table(results))
    return 0 if all(o.startswith("caught") for _, o, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
