"""Plots of ‖∂L/∂h_t‖ and loss curves (matplotlib is optional: these skip without it)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import viz


def test_grad_norm_plot_is_a_png_with_one_line_per_model(tmp_path):
    pytest.importorskip("matplotlib")
    t = np.arange(1, 31)
    out = viz.plot_grad_norms(
        {"tanh RNN": 0.8**t, "LSTM": 0.97**t, "cut": np.where(t > 10, 1.0, 0.0)}, tmp_path / "g.png"
    )
    assert out.read_bytes().startswith(b"\x89PNG")


def test_loss_curve_plot_accepts_a_single_curve(tmp_path):
    pytest.importorskip("matplotlib")
    out = viz.plot_loss_curves(np.linspace(3, 1, 50), tmp_path / "loss.png", log=True)
    assert out.read_bytes().startswith(b"\x89PNG")


def test_plots_are_png_only_and_refuse_empty_curves(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="PNG"):
        viz.plot_loss_curves([1, 2], tmp_path / "loss.svg")
    with pytest.raises(ValueError, match="empty"):
        viz.plot_grad_norms({"rnn": []}, tmp_path / "g.png")


def test_without_matplotlib_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"minigrad\[plots\]"):
        viz.plot_loss_curves([1.0, 0.5], tmp_path / "loss.png")
    assert not (tmp_path / "loss.png").exists()
