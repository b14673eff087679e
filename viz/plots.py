"""Plots a person would rather look at than read: ‖∂L/∂h_t‖ against t, and loss curves.

matplotlib is an optional extra (``pip install "minigrad[plots]"``); it is imported only
when a plot is made, and its absence gives a clear error. Plots are saved as PNG, atomically.

    norms = viz.step_grad_norms(loss)        # after `with mg.record_grad_norms(): loss.backward()`
    viz.plot_grad_norms({"tanh RNN": norms["l0"], "LSTM": lstm_norms["l0"]}, "grad_norms.png")
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minigrad.serialization import atomic_write

__all__ = ["plot_grad_norms", "plot_loss_curves"]


def _figure() -> Any:
    try:
        from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    except ImportError:
        raise ImportError('plots need matplotlib, an optional extra: pip install "minigrad[plots]"') from None
    return Figure(figsize=(6.4, 3.8), dpi=120, layout="constrained")


def _curves(curves: Mapping[str, Sequence[float]] | Sequence[float], what: str) -> dict[str, np.ndarray]:
    items = dict(curves) if isinstance(curves, Mapping) else {"": curves}
    if not items:
        raise ValueError(f"{what}: nothing to plot")
    out = {}
    for name, ys in items.items():
        arr = np.asarray(ys, dtype=float).ravel()
        if arr.size == 0:
            raise ValueError(f"{what}: curve {name!r} is empty")
        out[str(name)] = arr
    return out


def _save(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plots are saved as PNG: give a path ending in .png, got {path.name!r}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write(path, lambda f: f.write(buf.getvalue()), "wb")
    return path


def plot_grad_norms(
    curves: Mapping[str, Sequence[float]] | Sequence[float],
    path: str | os.PathLike,
    *,
    title: str = "How far back the gradient reaches: ‖∂L/∂h_t‖ against t",
) -> Path:
    """‖∂L/∂h_t‖ for t = 1..T on a log scale, one line per model; returns the PNG path.

    A line falling steeply to the left is a vanishing gradient: early steps barely learn.
    """
    data = _curves(curves, "plot_grad_norms")
    fig = _figure()
    ax = fig.add_subplot()
    for name, ys in data.items():
        t = np.arange(1, len(ys) + 1)
        ok = np.isfinite(ys) & (ys > 0)  # a log axis cannot show 0 (e.g. steps cut off by truncation)
        ax.plot(t[ok], ys[ok], marker="o", markersize=2.5, linewidth=1.5, label=name or None)
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel("‖∂L/∂h_t‖  (log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if any(data):
        ax.legend(frameon=False)
    return _save(fig, path)


def plot_loss_curves(
    curves: Mapping[str, Sequence[float]] | Sequence[float],
    path: str | os.PathLike,
    *,
    title: str = "Training loss",
    xlabel: str = "step",
    log: bool = False,
) -> Path:
    """Loss against training step, one line per run; returns the PNG path."""
    data = _curves(curves, "plot_loss_curves")
    fig = _figure()
    ax = fig.add_subplot()
    for name, ys in data.items():
        ax.plot(np.arange(len(ys)), ys, linewidth=1.5, label=name or None)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if any(data):
        ax.legend(frameon=False)
    return _save(fig, path)
