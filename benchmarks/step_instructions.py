"""Machine instructions per training step, counted by valgrind: a speed measure that does not
move with the load of a shared machine (the same code and inputs give the same count).

    python benchmarks/step_instructions.py rnn 1 16 32 100              # this checkout
    python benchmarks/step_instructions.py rnn 1 16 32 100 --tree ../old  # another checkout, same Python
    python benchmarks/step_instructions.py rnn 32 256 512 100 --train compiled --steps 3

It runs one step and 1 + ``--steps`` steps of ``models.RNN/GRU/LSTM`` (forward, L = Σ_t <dout_t, h_t>,
backward) under ``valgrind --tool=callgrind`` and prints (count₁₊ₖ − count₁) / k, so start-up and
imports cancel. ``--train numpy|eager|compiled`` counts bench_rnn.py's training step with readout
and loss instead (the hand-written one, minigrad's, or minigrad's under mg.compile, whose traced
calls run before the counted ones in both runs). Needs valgrind (Debian: ``apt-get install
valgrind``); slow (~50× a plain run).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

STEPS = """
import sys
import numpy as np
import models
model, B, I, H, T, n = sys.argv[1], *map(int, sys.argv[2:7])
rng = np.random.default_rng(0)
layer = {"rnn": models.RNN, "gru": models.GRU, "lstm": models.LSTM}[model](I, H, rng=0)
x, dout = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H))
for _ in range(n):
    for p in layer.parameters():
        p.grad = None
    out, _ = layer(x)
    out.backward(dout)
"""

TRAIN = """
import sys
sys.path.insert(0, sys.argv[8] + "/benchmarks")
import numpy as np
import bench_rnn
model, B, I, H, T, n = sys.argv[1], *map(int, sys.argv[2:7])
p = bench_rnn.make_problem(model, (B, I, H, T), np.float64)
make = {"numpy": bench_rnn._numpy_train_impl, "eager": bench_rnn._minigrad_train_impl,
        "compiled": bench_rnn._compiled_train_impl}[sys.argv[7]]
impl = make(p)
impl.step()  # one call before the counted ones in both runs (the compiled impl has made its three)
for _ in range(n):
    impl.step()
"""


def instructions(tree: Path, args: list[str], steps: int, train: str = "layer") -> int:
    """Instructions callgrind counts for ``steps`` training steps of the checkout ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    code, extra = (STEPS, []) if train == "layer" else (TRAIN, [train, str(tree)])
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code]
    run = subprocess.run([*cmd, *args, str(steps), *extra], env=env, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", run.stderr).group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=("rnn", "gru", "lstm"))
    ap.add_argument("size", nargs=4, type=int, metavar="B I H T")
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to measure")
    ap.add_argument(
        "--train",
        choices=("layer", "numpy", "eager", "compiled"),
        default="layer",
        help="the layer's step (default) or bench_rnn.py's training step with readout and loss",
    )
    ap.add_argument("--steps", type=int, default=10, help="counted steps (k)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    argv = [args.model, *map(str, args.size)]
    k = args.steps
    one, more = instructions(args.tree, argv, 1, args.train), instructions(args.tree, argv, 1 + k, args.train)
    what = "" if args.train == "layer" else f" {args.train} training step"
    print(f"{args.model}{what} (B,I,H,T)={tuple(args.size)} {args.tree}: {(more - one) // k:,} instructions per step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
