"""Argument types for the command line (argparse ``type=``): each refuses a bad value before
anything runs, with argparse's own message naming the flag ("argument --seed: ...").

Shared by ``minigrad render`` (viz/cli.py), ``minigrad compare`` (viz/compare_report.py) and
``minigrad bench`` (benchmarks/bench_rnn.py), so that an unwritable output path is found before a
run of minutes, not after it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["non_negative_int", "positive_int", "writable_path"]


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer ≥ 1."""
    v = _int(text, "a positive integer")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def non_negative_int(text: str) -> int:
    """An integer ≥ 0 (seeds)."""
    v = _int(text, "a non-negative integer")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {v}")
    return v


def writable_path(text: str) -> Path:
    """A file path that can be written: not a directory, in an existing writable directory.
    Nothing is created (the run writes the file at its end)."""
    path = Path(text)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory, expected a file path")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: permission denied")
    return path
