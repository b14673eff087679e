"""Every example runs end to end at a tiny size (--quick), prints its finding and writes its figure.

The examples are loaded from their files and their ``main(argv)`` called in this process (one
interpreter start for all of them); one test runs a script as a user would, from the shell.
"""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))  # the examples import their shared helpers as `_common`

try:
    import matplotlib  # noqa: F401

    HAVE_MPL = True
except ImportError:
    HAVE_MPL = False


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str, out: Path, *args: str):
    return load(name).main(["--quick", "--out", str(out), *args])


def assert_figure(path: Path) -> None:
    if HAVE_MPL:
        assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_worked_example_prints_the_notes_numbers_from_every_method(tmp_path, capsys):
    run("worked_example", tmp_path)
    out = capsys.readouterr().out
    assert "12.8125" in out and "-12.7500" in out and "-25.7500" in out
    assert "largest difference between the four ways: 0.0e+00" in out


def test_differentiable_physics_gradients_pass_gradcheck_and_the_figure_is_written(tmp_path, capsys):
    run("differentiable_physics", tmp_path)
    out = capsys.readouterr().out
    assert out.count("matches finite differences") == 2
    assert_figure(tmp_path / "differentiable_physics.png")


def test_deq_unroll_and_implicit_gradients_agree(tmp_path, capsys):
    run("deq", tmp_path)
    assert "gradients agree" in capsys.readouterr().out
    assert_figure(tmp_path / "deq.png")


def test_vanishing_gradients_prints_a_factor_per_model(tmp_path, capsys):
    run("vanishing_gradients", tmp_path)
    out = capsys.readouterr().out
    for name in ("tanh RNN, ρ=0.5", "residual RNN", "GRU", "LSTM, forget-gate bias +3"):
        assert name in out
    assert_figure(tmp_path / "vanishing_gradients.png")


def test_long_range_prints_the_baseline_and_each_model(tmp_path, capsys):
    run("long_range", tmp_path)
    out = capsys.readouterr().out
    assert "baseline (predict the mean): test MSE 0.1667" in out
    assert "tanh RNN" in out and "GRU" in out and "LSTM" in out
    assert_figure(tmp_path / "long_range.png")


def test_truncation_trains_every_variant(tmp_path, capsys):
    run("truncation", tmp_path)
    out = capsys.readouterr().out
    for name in ("full BPTT", "window k=2", "window k=8", "random p=0.95"):
        assert name in out
    assert_figure(tmp_path / "truncation.png")


def test_complexity_methods_give_the_same_gradient(tmp_path, capsys):
    run("complexity", tmp_path)
    out = capsys.readouterr().out
    diffs = [float(line.split()[-1]) for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert diffs and max(diffs) < 1e-10
    assert_figure(tmp_path / "complexity.png")


def test_window_one_keeps_only_the_diagonal_for_the_rnn_and_everything_for_attention(tmp_path, capsys):
    run("window_one", tmp_path)
    out = capsys.readouterr().out
    assert "tanh RNN        window 1            6 of 21" in out  # T = 6: only the 6 pairs (t, t)
    assert "attention RNN   window 1           21 of 21" in out
    assert_figure(tmp_path / "window_one.png")


def test_char_rnn_trains_samples_and_writes_its_curve(tmp_path, capsys):
    summary = run("char_rnn", tmp_path, "--steps", "4")
    out = capsys.readouterr().out
    assert summary["step"] == 4 and np.isfinite(summary["val_loss"])
    assert "validation loss" in out and "chars/s" in out
    assert (tmp_path / "char_rnn_lstm.npz").exists()
    assert_figure(tmp_path / "char_rnn_lstm.png")


def test_char_rnn_resumed_from_a_checkpoint_continues_with_the_same_losses(tmp_path, capsys, model="lstm"):
    char_rnn = load("char_rnn")
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = ["--quick", "--model", model, "--eval-every", "1e9"]
    char_rnn.main([*args, "--out", str(straight), "--steps", "6"])
    char_rnn.main([*args, "--out", str(split), "--steps", "3"])
    char_rnn.main([*args, "--out", str(split), "--steps", "6", "--resume"])
    out = capsys.readouterr().out
    a = char_rnn.load_checkpoint(straight / f"char_rnn_{model}.npz")
    b = char_rnn.load_checkpoint(split / f"char_rnn_{model}.npz")
    np.testing.assert_array_equal(a["history"]["train_loss"], b["history"]["train_loss"])
    assert a["history"]["val_loss"][-1] == b["history"]["val_loss"][-1]
    for k in a["model"]:
        np.testing.assert_array_equal(a["model"][k], b["model"][k])
    # on resume the validation loss is recomputed and equals the one saved with the checkpoint
    line = next(s for s in out.splitlines() if s.startswith("resumed"))
    now, was = re.search(r"validation loss (\S+) \(it was (\S+) when saved\)", line).groups()
    assert float(now) == float(was)


def test_an_example_runs_from_the_shell(tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "deq.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "gradients agree" in done.stdout
