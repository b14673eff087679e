"""RNN/GRU/LSTM training-step gradient: minigrad vs hand-written numpy BPTT (and PyTorch, HIPS autograd).

    python benchmarks/bench_rnn.py                  # the default table (same as `minigrad bench`)
    python benchmarks/bench_rnn.py --help           # --models --sizes --dtypes --quick --no-peers --memory --json

See benchmarks/README.md for what the columns mean.
"""

import os
import sys
from pathlib import Path

# One BLAS thread: these only take effect before numpy is first imported, hence before the imports below.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from models.bench import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
