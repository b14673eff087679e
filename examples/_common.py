"""Small helpers every example shares: output folder, optional matplotlib, progress lines.

Nothing here is about autodiff; it only keeps the example scripts about their story.
Run an example from the project root, e.g. ``python examples/deq.py``; ``--quick`` runs
it at a tiny size (that is what tests/test_examples.py does).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout: use the minigrad, models and viz next to this folder
    sys.path.insert(1, str(ROOT))

from minigrad.serialization import atomic_write  # noqa: E402

DEFAULT_OUT = ROOT / "examples" / "out"


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An ArgumentParser with the options every example takes: --out, --quick, --seed."""
    first = (doc or "").strip().splitlines()[0] if doc else None
    p = argparse.ArgumentParser(description=first, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for figures (and checkpoints)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a few seconds, for smoke tests")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    return p


def pyplot() -> Any | None:
    """matplotlib.pyplot with a file-only backend, or None (and a message) when it is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed, so no figure: pip install 'minigrad[plots]')")
        return None
    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Write a matplotlib figure as PNG atomically (a crash never leaves half a file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, lambda f: f.write(buf.getvalue()))
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"figure: {path}")
    return path


class Progress:
    """A one-line progress display: tqdm when installed, else a plain line rewritten in place.

    ``with Progress(total, "train") as bar: bar.update(n, loss=1.23)`` — extra keywords are
    shown after the count (loss, chars/s, ...).
    """

    def __init__(self, total: int | None, desc: str = "", unit: str = "it", every: float = 0.5):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n, self.start, self._last, self._fields = 0, time.perf_counter(), 0.0, {}
        self._tty = sys.stdout.isatty()
        if not self._tty:  # a log file: a full line now and then, not a line rewritten in place
            self.every = max(every, 10.0)
        self._shown = -1
        try:
            from tqdm import tqdm

            self._tqdm = tqdm(total=total, desc=desc, unit=unit, leave=True)
        except ImportError:
            self._tqdm = None

    def update(self, n: int = 1, **fields: Any) -> None:
        self.n += n
        self._fields = fields
        if self._tqdm is not None:
            self._tqdm.update(n)
            if fields:
                self._tqdm.set_postfix({k: _fmt(v) for k, v in fields.items()}, refresh=False)
            return
        now = time.perf_counter()
        if now - self._last >= self.every or (self.total is not None and self.n >= self.total):
            self._last = now
            self._print()

    def _print(self, end: str = "") -> None:
        self._shown = self.n
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        extra = "  ".join(f"{k} {_fmt(v)}" for k, v in self._fields.items())
        line = f"{self.desc}: {count} {self.unit}  {time.perf_counter() - self.start:6.1f}s  {extra}"
        sys.stdout.write("\r" + line.ljust(79) + end if self._tty else line + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            return
        if self._shown != self.n:
            self._print()  # the final count
        if self._tty:
            sys.stdout.write("\n")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(items: Iterable, total: int | None = None, desc: str = "", unit: str = "it") -> Iterator:
    """Iterate ``items`` showing a Progress line."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit) as bar:
        for item in items:
            yield item
            bar.update(1)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)
