"""Command-line mistakes get one clear line naming the flag, before anything runs (issue 17)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from viz import cli
from viz.argtypes import non_negative_int, positive_int, writable_path

ROOT = Path(__file__).resolve().parents[1]


def test_render_refuses_a_hidden_size_too_big_to_draw_before_allocating(capsys):
    assert cli.main(["render", "--hidden", "1000000", "-o", "never.svg"]) == 1
    err = capsys.readouterr().err
    assert "minigrad render: --hidden 1000000" in err and "GiB of weights" in err
    assert not Path("never.svg").exists()


def test_render_names_seed_when_it_is_negative(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["render", "--seed", "-1"])
    assert e.value.code == 2
    assert "argument --seed: expected a non-negative integer, got -1" in capsys.readouterr().err


def test_bench_refuses_a_negative_memory_steps_and_an_unwritable_json_path_before_running():
    for args, says in (
        (["--memory", "--memory-steps", "-5"], "argument --memory-steps: expected a positive integer, got -5"),
        (["--json", "/nonexistent-dir/bench.json"], "argument --json: cannot write '/nonexistent-dir/bench.json'"),
    ):
        run = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "bench_rnn.py"), *args],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )  # fmt: skip
        assert run.returncode == 2 and says in run.stderr, run.stderr


def test_compare_refuses_an_unwritable_plot_path_before_running(capsys):
    with pytest.raises(SystemExit):
        cli.main(["compare", "--scaling", "--plot", "/nonexistent-dir/p.png"])
    assert "argument --plot: cannot write '/nonexistent-dir/p.png': directory '/nonexistent-dir' does not exist" in (
        capsys.readouterr().err
    )


def test_the_argument_types_accept_good_values_and_explain_bad_ones(tmp_path):
    assert positive_int("3") == 3 and non_negative_int("0") == 0
    assert writable_path(str(tmp_path / "out.json")) == tmp_path / "out.json"
    for f, bad, says in (
        (positive_int, "0", "positive integer, got 0"),
        (positive_int, "x", "positive integer, got 'x'"),
        (non_negative_int, "-2", "non-negative integer, got -2"),
        (writable_path, str(tmp_path), "is a directory"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=says):
            f(bad)
