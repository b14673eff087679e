"""Machine instructions per training step, counted by valgrind: a speed measure that does not
move with the load of a shared machine (the same code and inputs give the same count).

    python benchmarks/step_instructions.py rnn 1 16 32 100              # this checkout
    python benchmarks/step_instructions.py rnn 1 16 32 100 --tree ../old  # another checkout, same Python

It runs one step and eleven steps of ``models.RNN/GRU/LSTM`` (forward, L = Σ_t <dout_t, h_t>,
backward) under ``valgrind --tool=callgrind`` and prints (count₁₁ − count₁) / 10, so start-up and
imports cancel. Needs valgrind (Debian: ``apt-get install valgrind``); slow (~50× a plain run).
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


def instructions(tree: Path, args: list[str], steps: int) -> int:
    """Instructions callgrind counts for ``steps`` training steps of the checkout ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", STEPS]
    run = subprocess.run([*cmd, *args, str(steps)], env=env, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", run.stderr).group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=("rnn", "gru", "lstm"))
    ap.add_argument("size", nargs=4, type=int, metavar="B I H T")
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to measure")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    argv = [args.model, *map(str, args.size)]
    one, eleven = instructions(args.tree, argv, 1), instructions(args.tree, argv, 11)
    print(f"{args.model} (B,I,H,T)={tuple(args.size)} {args.tree}: {(eleven - one) // 10:,} instructions per step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
