"""The comparison suite: minigrad's generic reverse mode is BPTT.

The same float64 weights and data go through the minigrad layers (loss.backward()) and through
the hand-written numpy BPTT of models/reference.py; every parameter gradient, dx, dh0 (dc0) and
δh_t of every step must agree to 1e-10. Then the path sum and RTRL against BPTT, the lecture
notes' worked example through minigrad, and the `minigrad compare` command (its exit status
proved by perturbing one reference gradient).
"""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from models import compare, reference
from viz import compare_report

TOL = 1e-10
SIZES = compare.Sizes(T=5, B=2, I=3, H=4)
QUICK = ["--sizes", "T=5,B=2,I=3,H=4", "--repeat", "1"]

GRID = [(model, s) for model in compare.MODELS for s in compare.settings_grid(SIZES.T)]


def _id(case) -> str:
    model, s = case
    return f"{model}-{s.label.replace(' ', '-')}"


def _expected_quantities(model: str, setting: compare.Setting) -> set[str]:
    """What a case must compare: every parameter by name, forward outputs, dx, dh0, δh_t per layer/direction."""
    layer = compare.make_layer(model, setting, SIZES, seed=0)
    tags = [f"l{k}{'_reverse' if d else ''}" for k in range(setting.num_layers) for d in range(layer.num_directions)]
    names = {name for name, _ in layer.named_parameters()} | {"out", "h_n", "dx", "dh0"}
    names |= {f"δh_t[{tag}]" for tag in tags}
    if model == "lstm":
        names |= {"c_n", "dc0"} | {f"δc_t[{tag}]" for tag in tags}
    return names


# ---------------------------------------------------------------------------
# The grid: RNN (tanh, relu, identity), GRU, LSTM × 1/2 layers × uni/bidirectional × truncate None/1/3/T
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("model,setting", GRID, ids=[_id(c) for c in GRID])
def test_every_parameter_gradient_dx_and_dh0_match_handwritten_bptt_to_1e_10(model, setting):
    case = compare.compare_case(model, setting, SIZES, seed=0, repeat=1)
    assert set(case.pairs) == _expected_quantities(model, setting)
    for quantity, (ours, ref) in case.pairs.items():
        assert ours.shape == ref.shape, quantity
        assert np.abs(ref).max() > 0, f"{quantity} is all zeros: comparing it would prove nothing"
        np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL, err_msg=f"{model} {setting.label} {quantity}")
    assert all(row.passed(TOL) for row in case.rows)


@pytest.mark.parametrize("model,setting", GRID, ids=[_id(c) for c in GRID])
def test_delta_h_t_from_retain_grad_matches_the_reference_at_every_step(model, setting):
    case = compare.compare_case(model, setting, SIZES, seed=0, repeat=1)
    deltas = {q: pair for q, pair in case.pairs.items() if q.startswith(("δh_t", "δc_t"))}
    assert deltas, "no per-step states were compared"
    for quantity, (ours, ref) in deltas.items():
        assert len(ours) == len(ref) == SIZES.T
        for t in range(SIZES.T):  # step t+1 of the notes
            np.testing.assert_allclose(ours[t], ref[t], rtol=0, atol=TOL, err_msg=f"{quantity} at t={t + 1}")


@pytest.mark.parametrize("model,setting", GRID, ids=[_id(c) for c in GRID])
def test_the_compiled_step_matches_handwritten_bptt_to_1e_10(model, setting):
    case = compare.compare_compiled_case(model, setting, SIZES, seed=0, repeat=1)
    assert case.methods == ("compiled", "bptt")
    expected = {q for q in _expected_quantities(model, setting) if not q.startswith(("δh_t", "δc_t"))}
    assert set(case.pairs) == expected  # everything but the per-step δh_t, which a compiled step keeps none of
    for quantity, (ours, ref) in case.pairs.items():
        assert np.abs(ref).max() > 0, f"{quantity} is all zeros: comparing it would prove nothing"
        np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL, err_msg=f"{model} {setting.label} {quantity}")


def test_the_compiled_rows_compare_the_replay_not_the_eager_trace(monkeypatch):
    from minigrad.compiler import kernels

    wrong = kernels.Kernel(kernels.KERNELS["tanh"].fwd, [lambda n: f"{n.g} * (1 - {n.y})"])  # a planted bug: 1 − y
    monkeypatch.setitem(kernels.KERNELS, "tanh", wrong)
    setting = compare.Setting(1, False, None, SIZES.T)
    compiled = compare.compare_compiled_case("rnn-tanh", setting, SIZES, repeat=1)
    eager = compare.compare_case("rnn-tanh", setting, SIZES, repeat=1)
    assert not compiled.worst().passed(TOL) and eager.worst().passed(TOL)


def test_compare_shows_the_compiled_rows_and_no_compiled_drops_them(capsys):
    assert compare_report.main([*QUICK, "--models", "gru", "--no-extras", "--brief"]) == 0
    with_compiled = [line for line in capsys.readouterr().out.splitlines() if line.startswith("gru ")]
    assert compare_report.main([*QUICK, "--models", "gru", "--no-extras", "--brief", "--no-compiled"]) == 0
    without = [line for line in capsys.readouterr().out.splitlines() if line.startswith("gru ")]
    n = len(compare.settings_grid(SIZES.T))
    assert sum("compiled vs bptt" in line for line in with_compiled) == n == len(with_compiled) // 2
    assert len(without) == n and all("minigrad vs bptt" in line for line in without)


@pytest.mark.parametrize("model", list(compare.MODELS))
def test_truncate_1_changes_the_recurrent_gradient_and_truncate_T_does_not(model):
    full, k1, kT = (
        compare.compare_case(model, compare.Setting(1, False, k, SIZES.T), SIZES, repeat=1) for k in (None, 1, SIZES.T)
    )
    grad = lambda case: case.pairs["weight_hh_l0"][1]  # noqa: E731  (the reference's side)
    assert np.abs(grad(k1) - grad(full)).max() > 1e-6  # the cut removes real gradient paths
    np.testing.assert_array_equal(grad(kT), grad(full))  # k >= T cuts nothing


# ---------------------------------------------------------------------------
# Path sum and RTRL (lecture notes) against BPTT, T ≤ 12
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("truncate", [None, 3], ids=["full", "k=3"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "identity"])
def test_path_sum_and_rtrl_agree_with_bptt_on_every_parameter(nonlinearity, truncate):
    sizes = compare.Sizes(T=12, B=2, I=3, H=4)
    path_sum, rtrl = compare.compare_path_sum_and_rtrl(nonlinearity, truncate, sizes, seed=1)
    assert path_sum.methods == ("path-sum", "bptt") and rtrl.methods == ("rtrl", "bptt")
    params = set(reference.PARAM_NAMES)
    assert set(path_sum.pairs) == params | {"dx", "dh0", "δh_t"}
    assert set(rtrl.pairs) == params | {"dh0"}
    assert path_sum.pairs["δh_t"][0].shape == (12, 2, 4)
    for case in (path_sum, rtrl):
        for quantity, (a, b) in case.pairs.items():
            np.testing.assert_allclose(a, b, rtol=0, atol=TOL, err_msg=f"{case.methods[0]} {quantity}")


# ---------------------------------------------------------------------------
# The worked example of the lecture notes
# ---------------------------------------------------------------------------
def test_worked_example_through_minigrad_gives_the_numbers_of_the_notes():
    got = compare.worked_example_minigrad()
    # x = [1, 2], h0 = 0, W_xh = 0.5, W_hh = 1.5, W_hy = 1.0, targets [2, 5]: the notes' numbers
    assert got["L"] == pytest.approx(12.8125, abs=1e-12)
    assert got["dL/dW_hy"] == pytest.approx(-12.875, abs=1e-12)
    assert got["dL/dW_hh"] == pytest.approx(-3.25, abs=1e-12)
    assert got["dL/dW_xh"] == pytest.approx(-25.75, abs=1e-12)
    assert got["dL/dh_2"] == pytest.approx(-6.5, abs=1e-12)
    assert got["dL/dh_1"] == pytest.approx(-12.75, abs=1e-12)


def test_worked_example_minigrad_bptt_and_path_sum_give_the_same_numbers():
    ours, ref = compare.worked_example_minigrad(), reference.worked_example()
    for key, value in ours.items():
        assert value == pytest.approx(ref[key], abs=1e-12), key
        if key != "L":
            assert value == pytest.approx(ref["path_sum"][key], abs=1e-12), f"path sum {key}"
    assert all(row.passed(TOL) for case in compare.compare_worked_example() for row in case.rows)


# ---------------------------------------------------------------------------
# The measure of agreement
# ---------------------------------------------------------------------------
def test_diff_reports_max_abs_and_max_relative_difference():
    max_abs, max_rel = compare.diff(np.array([1.0, 0.0, -2.0]), np.array([1.5, 0.0, -2.0]))
    assert max_abs == 0.5 and max_rel == pytest.approx(0.5 / 1.5)  # both-zero entries count as 0


def test_nan_or_a_shape_mismatch_never_passes():
    nan_row = compare.Case("m", "s", ("a", "b"), {"w": (np.array([np.nan]), np.array([1.0]))}).rows[0]
    shape_row = compare.Case("m", "s", ("a", "b"), {"w": (np.zeros(3), np.zeros(4))}).rows[0]
    assert not nan_row.passed(TOL) and not shape_row.passed(TOL)


def test_sizes_accept_keys_or_four_numbers_and_refuse_anything_else():
    assert compare.Sizes.parse("T=7,H=3") == compare.Sizes(T=7, H=3)
    assert compare.Sizes.parse("7,2,3,4") == compare.Sizes(7, 2, 3, 4)
    for bad in ("T=x", "7,2", "Q=3", "T=0", "T=2,T=3"):
        with pytest.raises(ValueError, match="sizes"):
            compare.Sizes.parse(bad)


# ---------------------------------------------------------------------------
# `minigrad compare`: the table, the verdict and the exit status
# ---------------------------------------------------------------------------
def test_compare_prints_a_row_per_parameter_and_exits_0_when_everything_agrees(capsys):
    assert compare_report.main([*QUICK, "--models", "rnn-tanh,lstm"]) == 0
    out = capsys.readouterr().out
    for name in ("weight_ih_l1_reverse", "bias_hh_l0", "dx", "dh0", "dc0", "δh_t[l1_reverse]", "δc_t[l0]"):
        assert name in out
    assert "path-sum vs bptt" in out and "rtrl vs bptt" in out and "minigrad vs notes" in out
    assert out.strip().splitlines()[-1].startswith("PASS")


def _perturb_one_reference_gradient(monkeypatch, eps):
    """The reference's ∂L/∂weight_hh_l0[0, 0] moves by eps, as a bug in one of the two programs would."""
    original = reference.stacked_bptt

    def perturbed(*args, **kwargs):
        result = original(*args, **kwargs)
        result.grads["weight_hh_l0"][0, 0] += eps
        return result

    monkeypatch.setattr(reference, "stacked_bptt", perturbed)


def test_one_gradient_off_by_1e_6_makes_compare_exit_1_and_name_the_parameter(monkeypatch, capsys):
    _perturb_one_reference_gradient(monkeypatch, 1e-6)
    assert compare_report.main([*QUICK, "--models", "gru", "--no-extras"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("FAIL") and "weight_hh_l0" in lines[-1]
    failing = [line for line in lines if line.endswith("FAIL")]
    assert failing and all("weight_hh_l0 " in line for line in failing)  # only that parameter is flagged
    assert any("minigrad vs bptt" in line for line in failing) and any("compiled vs bptt" in line for line in failing)


def test_a_looser_tol_accepts_the_same_perturbation(monkeypatch, capsys):
    _perturb_one_reference_gradient(monkeypatch, 1e-6)
    assert compare_report.main([*QUICK, "--models", "gru", "--no-extras", "--brief", "--tol", "1e-5"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("PASS")


def test_unknown_model_is_refused_with_the_choices(capsys):
    assert compare_report.main([*QUICK, "--models", "transformer"]) == 2
    assert "rnn-tanh" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Scaling check: path sum O(T²), BPTT and minigrad O(T)
# ---------------------------------------------------------------------------
def test_loglog_slope_recovers_the_power_of_a_time_law():
    points = [
        compare.ScalingPoint(T, {"path-sum": 1e-6 * T**2, "bptt": 1e-5 * T, "minigrad": None}, {})
        for T in (50, 100, 200, 400)
    ]
    slopes = compare.loglog_slopes(points)
    assert slopes["path-sum"] == pytest.approx(2.0) and slopes["bptt"] == pytest.approx(1.0)
    assert slopes["minigrad"] is None


def test_scaling_check_agrees_across_methods_and_stops_the_path_sum_at_the_budget():
    points = compare.scaling_check((5, 10, 20), compare.Sizes(B=1, I=3, H=4), budget=0.0, repeat=1)
    assert [p.T for p in points] == [5, 10, 20]
    assert points[0].seconds["path-sum"] is not None  # the first T always runs
    assert all(p.seconds["path-sum"] is None for p in points[1:])  # predicted over budget: skipped
    for p in points:
        assert p.seconds["bptt"] > 0 and p.seconds["minigrad"] > 0
        assert p.max_abs["minigrad"] <= TOL * max(1.0, p.grad_scale)
    assert points[0].max_abs["path-sum"] <= TOL * max(1.0, points[0].grad_scale)


def test_compare_scaling_prints_times_and_slopes_and_writes_the_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "scaling.png"
    assert (
        compare_report.main(
            ["--scaling", "--T", "5,10,20", "--sizes", "T=1,B=1,I=3,H=4", "--repeat", "1", "--plot", str(plot)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "log-log slope" in out and "path-sum" in out and out.strip().splitlines()[-1].startswith("PASS")
    assert "CPU time" in out and "process_time" in out  # the table says what it timed
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scaling_times_are_cpu_time_not_wall_clock(monkeypatch):
    import types

    clock = {"cpu": 0.0, "wall": 0.0}

    def cpu():
        clock["cpu"] += 1.0  # each reading of the CPU clock advances it by 1 s
        return clock["cpu"]

    def wall():
        clock["wall"] += 100.0  # the wall clock runs 100 times faster: a busy machine
        return clock["wall"]

    monkeypatch.setattr(compare, "time", types.SimpleNamespace(process_time=cpu, perf_counter=wall, time=wall))
    _, best = compare._time_enough(lambda: None, repeat=3)
    assert best == 1.0


def test_a_case_that_raises_becomes_a_fail_row_naming_the_error(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("reference exploded")

    monkeypatch.setattr(reference, "stacked_bptt", broken)
    assert compare_report.main([*QUICK, "--models", "rnn-relu", "--no-extras", "--brief"]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("FAIL") and "RuntimeError: reference exploded" in last


# ---------------------------------------------------------------------------
# The library computes, the report prints
# ---------------------------------------------------------------------------
def test_the_library_prints_nothing_and_tells_progress_through_its_callback(capsys):
    calls = []
    cases = compare.run_suite(SIZES, models=["rnn-tanh"], repeat=1, progress=lambda *a: calls.append(a))
    points = compare.scaling_check((5, 10), compare.Sizes(B=1, I=3, H=4), repeat=1, progress=lambda *a: calls.append(a))
    assert capsys.readouterr() == ("", "")
    grid = 2 * len(compare.settings_grid(SIZES.T))  # each point eager and compiled
    jobs = grid + 2 + 1  # the grid, path sum / RTRL full and k=3, the worked example
    assert [c[:2] for c in calls[:jobs]] == [(i, jobs) for i in range(1, jobs + 1)]
    assert calls[0][2] == "rnn-tanh L=1 uni full" and calls[1][2] == "rnn-tanh L=1 uni full compiled"
    assert calls[jobs - 1][2] == "worked example"
    assert calls[jobs:] == [(1, 2, "scaling T=5"), (2, 2, "scaling T=10")]
    assert len(cases) == grid + 2 * 2 + 3 and len(points) == 2  # path sum / RTRL: 2 cases each; notes: 3


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_redraws_in_place_on_a_terminal_and_is_silent_elsewhere():
    tty, pipe = _Terminal(), io.StringIO()
    for stream in (tty, pipe):
        line = compare_report.ProgressLine(stream)
        line(3, 12, "gru L=2 bidir k=3")
        line.close()
    assert tty.getvalue() == f"\r[ 3/12] {'gru L=2 bidir k=3':<50}" + "\r" + " " * 70 + "\r"
    assert pipe.getvalue() == ""


def test_running_the_library_as_a_script_fails_and_names_the_command():
    run = subprocess.run([sys.executable, "-m", "models.compare"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "minigrad compare" in run.stderr and run.stdout == ""
