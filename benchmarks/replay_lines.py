"""Where a compiled step's time goes: every line of the generated replay, timed.

    python benchmarks/replay_lines.py rnn 32,256,512,100          # the 20 costliest kinds of line
    python benchmarks/replay_lines.py lstm 32,64,128,100 --lines  # every line over 0.2 ms, in order

The step is bench_rnn.py's training step (layer, readout, ½ Σ e⊙e, backward) under mg.compile.
The replay's source is rewritten with a clock read after each statement and run ``--calls``
times; lines are grouped by their shape (numbers replaced by #), so "x 99  g# += g# @ p#" is the
recurrent δh GEMM of 99 steps. The clock reads add about 0.1 µs per line, so the total is a
little above an untimed replay. One BLAS thread, as in the bench. The first line also gives the
minor page faults per replayed step (getrusage): 0 means every array the replay allocates is
memory the allocator already holds from the call before, so no fresh page is touched.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_rnn  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad.compiler.kernels import HELPERS  # noqa: E402
from minigrad.compiler.replay import grad_into  # noqa: E402


def timed_replay(source: str) -> tuple:
    """(the replay with a clock read after every statement, the statements' texts)."""
    body, labels = ["    _t = _clock()"], []
    for line in source.splitlines()[1:]:
        text = line.strip()
        if text.startswith("return"):
            body.append(line.replace("return", "_result =", 1))
            continue
        body.append(line)
        if not text.startswith("del"):
            body.append(f"    _now = _clock(); _spent[{len(labels)}] += _now - _t; _t = _now")
            labels.append(text)
    body.append("    return _result")
    namespace = {**HELPERS, "_grad": grad_into, "_clock": time.perf_counter}
    exec("def replay(_in, _leaf, _c, _spent):\n" + "\n".join(body), namespace)  # noqa: S102 - our own text
    return namespace["replay"], labels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=["rnn", "gru", "lstm"])
    ap.add_argument("size", help="B,I,H,T")
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--lines", action="store_true", help="every line over 0.2 ms, in program order")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.split(","))
    p = bench_rnn.make_problem(args.model, size, np.float64)
    step, _, targs = bench_rnn._minigrad_train_step(p)
    compiled = mg.compile(step)
    for _ in range(3):  # two traced calls, one replay
        compiled(*targs)
    entry = compiled._last
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(args.calls):
        compiled(*targs)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / args.calls
    replay, labels = timed_replay(entry.source)
    spent = np.zeros(len(labels))
    for _ in range(args.calls):
        replay(targs, entry.program.params_by_id, entry.program.consts, spent)
    spent /= args.calls
    print(
        f"{args.model} {size}: {spent.sum() * 1e3:.2f} ms per replayed step, {len(labels)} statements, "
        f"{faults:.1f} page faults per step"
    )
    if args.lines:
        for text, t in zip(labels, spent):
            if t > 2e-4:
                print(f"{t * 1e3:8.3f} ms  {text[:110]}")
        return 0
    kinds, count = defaultdict(float), Counter()
    for text, t in zip(labels, spent):
        kind = re.sub(r"\d+", "#", text)
        kinds[kind] += t
        count[kind] += 1
    for kind, t in sorted(kinds.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{t * 1e3:8.3f} ms  x{count[kind]:4d}  {kind[:110]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
