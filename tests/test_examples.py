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
    import viz

    if viz.available_renderer("png") is not None:  # system dot, or the WebAssembly Graphviz + cairosvg
        assert (tmp_path / "worked_example.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
    for name in ("full BPTT", "truncate=2", "truncate=8", "random p=0.95"):
        assert name in out
    assert "0..1" in out and "0..7" in out  # truncate=k: a loss reaches back 0 to k − 1 steps
    assert "tbptt_train(k1=1, k2=k)" in out  # the notes' sliding window, named
    assert_figure(tmp_path / "truncation.png")


def test_complexity_methods_give_the_same_gradient_and_the_n_and_d_exponents_are_fitted(tmp_path, capsys):
    found = run("complexity", tmp_path)
    out = capsys.readouterr().out
    table = out.split("fitted exponent (time")[0]
    diffs = [float(line.split()[-1]) for line in table.splitlines() if line.strip()[:1].isdigit()]
    assert diffs and max(diffs) < 1e-10
    assert found["n_diff"] < 1e-10 and found["d_diff"] < 1e-10  # the sweeps time correct gradients
    for kind in ("n", "d"):
        for name in ("BPTT, hand-written numpy", "BPTT, minigrad reverse mode"):
            assert np.isfinite(found[f"{kind}: {name}"])
        assert re.search(
            rf"fitted exponent in {kind} .*: -?\d\.\d\d \(O\(T\(n² \+ n·d\)\): {2 if kind == 'n' else 1}\)", out
        )
    assert_figure(tmp_path / "complexity.png")


def test_window_one_keeps_only_the_diagonal_for_the_rnn_and_everything_for_attention(tmp_path, capsys):
    found = run("window_one", tmp_path)
    out = capsys.readouterr().out
    assert "tanh RNN        window 1                          6 of 21" in out  # T = 6: only the 6 pairs (t, t)
    assert "attention RNN   window 1                         21 of 21" in out
    assert "input attention window 1                         21 of 21" in out  # the live cache reaches the past
    assert "input attention window 1, cache detached          6 of 21" in out  # a detached cache: window 1
    split = found["split"]
    assert split["sum_err"] < 1e-12  # recurrent part + shortcut part = the full gradient
    assert split["ratio_far"] < split["ratio_near"]  # the recurrent part decays with τ, the shortcut does not
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


def test_jacobian_products_the_bound_holds_and_the_notes_powers_come_out_of_backward(tmp_path, capsys):
    found = run("jacobian_products", tmp_path)
    out = capsys.readouterr().out
    for s in ("s=0.8", "s=2.0"):
        assert found[s]["holds"]  # ‖Π J‖ ≤ Π ‖J‖ ≤ (c·s)^(T−k) at every k
        assert found[s]["prod_far"] > 100 * found[s]["true_far"]  # and loose over many steps
    assert found["s=2.0"]["true_far"] < 1  # the expanding bound grows, the tanh product still shrinks
    assert abs(found["lam=1.1"] - 1.1**100) < 1e-9 * 1.1**100  # 13780.6
    assert abs(found["lam=0.9"] - 0.9**100) < 1e-9 * 0.9**100  # 2.66e-5
    assert "13780.6" in out and "2.65614e-05" in out
    assert found["isometry_dev"] < 1e-12 and found["tanh_ratio"] < 0.5
    assert_figure(tmp_path / "jacobian_products.png")


def _closed_form_grad(a: float, x: np.ndarray, reach) -> float:
    """∂L/∂a for h_t = a h_{t−1} + x_t, L = Σ ½ h_t², keeping the terms that reach back n < reach(t) steps."""
    T = x.shape[0]
    h = np.zeros((T + 1,) + x.shape[1:])
    for t in range(1, T + 1):
        h[t] = a * h[t - 1] + x[t - 1]
    total = 0.0
    for t in range(1, T + 1):
        for n in range(min(t, reach(t))):
            total += float((h[t] * a**n * h[t - n - 1]).sum())
    return total


def test_truncation_bias_matches_the_closed_form_and_grows_with_a_and_shrinks_with_k(tmp_path, capsys):
    tb = load("truncation_bias")
    x = np.random.default_rng(0).standard_normal((30, 3, 1))
    for a, k in ((0.9, 3), (-0.6, 5)):
        full = _closed_form_grad(a, x, lambda t: t)
        assert abs(tb.grad_a(a, x) - full) < 1e-9 * abs(full)
        sliding = _closed_form_grad(a, x, lambda t, k=k: k)  # every loss reaches back exactly k − 1 steps
        assert abs(tb.grad_a_sliding(a, x, k) - sliding) < 1e-9 * abs(full)
        block = _closed_form_grad(a, x, lambda t, k=k: (t - 1) % k + 1)  # back to the last cut after k, 2k, …
        assert abs(tb.grad_a(a, x, k) - block) < 1e-9 * abs(full)

    found = tb.main(["--quick", "--out", str(tmp_path), "--variance-a", "0.5", "--draws", "40"])
    capsys.readouterr()
    sliding, block = found["sliding"], found["block"]
    for kind in (sliding, block):
        assert abs(kind[0.9, 1]) > abs(kind[0.5, 1]) and abs(kind[-0.9, 2]) > abs(kind[0.5, 2])  # grows with |a|
        assert abs(kind[0.9, 1]) > abs(kind[0.9, 2]) > abs(kind[0.9, 4])  # shrinks as k grows
        assert all(b < 0 for b in kind.values() if abs(b) > 1e-9)  # truncation drops positive terms
    assert abs(block[0.9, 4]) > abs(sliding[0.9, 4])  # truncate=k reaches less far than a sliding k
    assert abs(sliding[0.9, 2] - tb.predicted_bias(0.9, 2, "sliding")) < 0.05
    for (_, _k), v in found["random"].items():
        assert abs(v["mean"]) < 4 * v["se"]  # unbiased
        assert v["std"] > 0 and abs(v["fixed"]) > v["rms"]  # spread, but less error than the fixed cut's bias
    assert_figure(tmp_path / "truncation_bias.png")


def test_skip_connections_the_shortcut_alone_shrinks_by_about_the_square_root(tmp_path, capsys):
    found = run("skip_connections", tmp_path)
    out = capsys.readouterr().out
    plain, both = found["tanh RNN (no skip)"], found["skip RNN, both paths"]
    shortcut = found["skip RNN, shortcut only"]
    assert shortcut["reached"] * 2 == 24  # only t = T, T−2, …: 12 of the 24 steps
    assert abs(shortcut["gamma"] - plain["gamma"] ** 0.5) < 0.1  # half as many hops: γ → ≈ √γ
    assert both["gamma"] > shortcut["gamma"] > plain["gamma"]
    assert both["first"] > 1e3 * plain["first"]
    assert "γ per step" in out
    assert_figure(tmp_path / "skip_connections.png")
    if HAVE_MPL:
        assert (tmp_path / "skip_connections_graph.png").exists() or "no picture of the graph" in out


def test_policy_gradient_both_estimators_agree_in_mean_and_bptt_has_far_less_variance(tmp_path, capsys):
    pg = load("policy_gradient")
    rng = np.random.default_rng(0)
    x0, v0 = pg.start_states(rng, 3)
    eps = rng.standard_normal((6, 3))
    theta = __import__("minigrad").nn.Parameter(np.array([0.7, -0.3]))
    assert __import__("minigrad").gradcheck(lambda th: pg.rollout(th, x0, v0, eps)[0], [theta])  # BPTT = finite diff.

    found = pg.main(["--quick", "--out", str(tmp_path)])
    capsys.readouterr()
    assert found["mean_gap_in_se"] < 3  # the same gradient, within the standard error
    assert found["variance_ratio"] > 10  # REINFORCE's spread is an order of magnitude larger
    bptt, rf = found["BPTT through the environment"]["costs"], found["REINFORCE (score function)"]["costs"]
    assert bptt[0] == rf[0] and bptt[-1] < rf[-1] < bptt[0]  # both learn, BPTT further
    assert found["bptt_updates_to_reinforce_final"] < len(rf) // 2
    assert_figure(tmp_path / "policy_gradient.png")


def test_relu_clipping_the_unclipped_run_diverges_and_kills_units_the_clipped_one_learns(tmp_path, capsys):
    found = run("relu_clipping", tmp_path)
    capsys.readouterr()
    free, clipped = found["not clipped"], found["clip_grad_norm_(1.0)"]
    assert free["first_norm"] == clipped["first_norm"] > 100  # the same run: the same exploding first gradient
    assert not np.isfinite(free["last"]) and free["updates"] < 10  # without clipping it is NaN within a few updates
    assert free["dead"][1] > clipped["dead"][1]  # its first huge step kills units
    assert np.isfinite(clipped["last"]) and clipped["last"] < 1.5  # with clipping the loss falls from 44
    assert found["relu_values"] == [0.0, 1.0]  # ReLU' is 0 or 1
    assert found["dead_rows"] == 0.0  # a dead unit gets exactly no gradient
    assert_figure(tmp_path / "relu_clipping.png")


def test_worked_example_follows_the_notes_line_by_line_and_sums_the_ten_step_paths(capsys):
    we = load("worked_example")
    found = we.line_by_line()
    assert found["y"] == [0.5, 1.75] and found["loss"] == [2.25, 10.5625]
    assert found["dLoss1/dh1"] == -3.0
    assert found["W_hy"] == [-1.5, -11.375] and found["W_hh"] == [0.0, -3.25]  # per-step shares of the shared weights
    ten = we.ten_steps()
    np.testing.assert_allclose(ten["C"], ten["formula"], rtol=1e-14)  # C_k = h_k W_h^(k−1)
    assert abs(sum(ten["C"]) - ten["dh1"]) < 1e-12 and ten["paths"] == 55
    out = capsys.readouterr().out
    assert "Loss_2 = 10.5625" in out and "∂L/∂W_hh = 0 + (-3.25) = -3.25" in out


def test_truncation_cost_truncate_k_costs_full_bptt_memory_chunked_tbptt_does_not(tmp_path, capsys):
    found = run("truncation_cost", tmp_path)
    out = capsys.readouterr().out
    full, inside = found["full BPTT"], found["truncate=6"]
    chunked, sliding = found["tbptt_train(k1=k, k2=k)"], found["tbptt_train(k1=1, k2=k)"]
    assert found["same_grad"] < 1e-10  # truncate=k and chunked TBPTT: the same gradient
    assert inside["vjps"] == full["vjps"]  # inside one unroll the backward still visits every node
    assert inside["peak_mb"] > 0.9 * full["peak_mb"]  # and the whole graph is alive
    assert chunked["peak_mb"] < 0.5 * full["peak_mb"]  # one chunk at a time (T = 120, k = 6)
    assert sliding["vjps"] > 5 * chunked["vjps"]  # the notes' window runs every step k times
    assert "give the same gradient" in out and "VJPs" in out
    assert_figure(tmp_path / "truncation_cost.png")
