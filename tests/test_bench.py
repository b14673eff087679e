"""Smoke test of the benchmark table (benchmarks/bench_rnn.py): it runs at a tiny size and prints
every column and section. No timing is asserted — only that the instrument works and checks gradients.

The benchmarks are scripts of the checkout, not an installed package: they are loaded from their file."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load_script(name: str):
    """benchmarks/<name>.py as a module (imported, not run: its ``__main__`` part stays out)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


bench = _load_script("bench_rnn")

TINY = "2,3,4,5"  # B, I, H, T
TINY_LONG = "2,3,4,10"  # same B, I, H at a longer T: the growth-with-T summary appears


def test_bench_table_prints_every_column_and_section_at_a_tiny_size(capsys, tmp_path):
    out_json = tmp_path / "bench.json"
    code = bench.main(
        ["--quick", "--budget", "0", "--no-peers", "--sizes", TINY, TINY_LONG, "--memory", "--memory-steps", "12",
         "--json", str(out_json)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0  # every implementation's dL/dW_hh matched the reference
    for column in ("model", "dtype", "(B,I,H,T)", "numpy ms", "minigrad ms", "mg ops ms", "×np"):
        assert column in out
    for model in ("rnn", "gru", "lstm"):
        for dtype in ("float64", "float32"):
            assert re.search(rf"^{model} +{dtype} +\(2,3,4,5\) ", out, re.M), (model, dtype)
    assert "The training step as users run it" in out  # the step with readout and loss, its own table
    train_table = out.split("The training step as users run it")[1].split("Growth with T")[0]
    assert re.search(r"^lstm +float32 +\(2,3,4,10\) ", train_table, re.M)
    assert "Growth with T" in out and "10/5 = 2×" in out
    assert "minigrad peak MiB" in out and "numpy saved MiB" in out and "peak ÷ saved" in out
    assert "live after 10 KB" in out and "growth KB" in out
    assert "[1/12]" in err and "[12/12]" in err  # progress per cell goes to stderr
    report = json.loads(out_json.read_text())
    assert (
        len(report["cells"]) == 12
        and len(report["train_cells"]) == 12
        and report["scaling"]
        and report["memory"]
        and report["flat_memory"]
    )


@pytest.mark.parametrize("model", ["rnn", "gru", "lstm"])
def test_every_implementation_computes_the_reference_gradient(model):
    p = bench.make_problem(model, (2, 3, 4, 5), "float64")
    impls = bench.make_impls(p, peers=True)  # torch and autograd join when installed
    for impl in impls:
        impl.step()
    ref = impls[0].grad_hh()
    for impl in impls[1:]:
        assert bench._rel_err(impl.grad_hh(), ref) < 1e-10, impl.name


@pytest.mark.parametrize("model", ["rnn", "gru", "lstm"])
def test_every_training_step_implementation_computes_the_same_gradient(model):
    p = bench.make_problem(model, (2, 3, 4, 5), "float64")
    impls = bench.make_train_impls(p, peers=True)  # the readout-and-loss step: numpy by hand, minigrad, ...
    assert [i.name for i in impls][:2] == ["numpy", "minigrad"]
    for impl in impls:
        impl.step()
        impl.step()  # twice: the hand-written buffers are reused, a compiled step replays
    ref = impls[0].grad_hh()
    for impl in impls[1:]:
        assert bench._rel_err(impl.grad_hh(), ref) < 1e-10, impl.name


def test_bad_size_is_rejected_with_a_message_naming_the_format(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "1,2,3"])
    assert "B,I,H,T" in capsys.readouterr().err


def test_ops_bench_runs_every_case_and_its_table_shows_overhead_and_ratio():
    ops = _load_script("bench_ops")
    cases = ops._cases(np.random.default_rng(0))
    assert [op for op, *_ in cases] == ["tanh", "matmul"] * 3
    for _, _, mg_fn, np_fn in cases:  # one call each: the script runs on today's engine
        mg_fn()
        np_fn()
    table = ops.format_table([{"op": "tanh", "shape": "1x32", "numpy_us": 2.0, "minigrad_us": 5.0}])
    assert re.search(r"^tanh +1x32 +2\.0 +5\.0 +3\.0 +2\.50x$", table, re.M)  # overhead 5 − 2, ratio 5 ÷ 2
