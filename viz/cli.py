"""The ``minigrad`` command: ``demo``, ``render``, ``compare``, ``bench``.

    minigrad demo                              # the worked example: numbers by minigrad and by hand, pictures
    minigrad render --model lstm --steps 6 --truncate 3 -o lstm.svg
    minigrad compare ...                       # minigrad vs hand-written BPTT (viz.compare_report)
    minigrad bench ...                         # speed next to hand-written numpy (benchmarks/bench_rnn.py)
    minigrad bench --ops ...                   # the engine's per-op overhead (benchmarks/bench_ops.py)

The command sits at the top of the stack (minigrad <- models <- viz <- this), so it may use
all three packages; optional extras (matplotlib, a Graphviz renderer) are used only by the
command that needs them. The benchmarks are scripts of a source checkout, not part of the
installed packages: ``minigrad bench`` runs them from the ``benchmarks/`` folder beside ``viz/``.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import minigrad as mg
import models
import viz
from viz.argtypes import non_negative_int, positive_int

__all__ = ["main"]

MODEL_CHOICES = ("rnn", "gru", "lstm", "residual", "attention")


# ---------------------------------------------------------------------------------------------
# Unrolled models for `render`
# ---------------------------------------------------------------------------------------------
def build_model(kind: str, input_size: int, hidden: int, layers: int, seed: int, bidirectional: bool = False) -> Any:
    if kind == "attention":
        if layers != 1 or bidirectional:
            raise ValueError("--model attention has one layer and one direction (drop --layers, --bidirectional)")
        return models.AttentionRNN(input_size, hidden, rng=seed)
    if bidirectional:
        if kind == "residual":
            raise ValueError("--model residual has one direction (drop --bidirectional)")
        cls = {"rnn": models.RNN, "gru": models.GRU, "lstm": models.LSTM}[kind]
        return cls(input_size, hidden, num_layers=layers, bidirectional=True, rng=seed)
    cls = {"rnn": models.RNN, "gru": models.GRU, "lstm": models.LSTM, "residual": models.ResidualRNN}[kind]
    return cls(input_size, hidden, num_layers=layers, rng=seed)


def unrolled_loss(
    kind: str,
    steps: int,
    *,
    truncate: int | models.RandomTruncation | None = None,
    hidden: int = 4,
    layers: int = 1,
    input_size: int = 3,
    batch: int = 1,
    seed: int = 0,
    backward: bool = False,
    last_only: bool = False,
    bidirectional: bool = False,
) -> Any:
    """A model unrolled over ``steps`` random inputs and L = mean of out² (``last_only``: of the
    last step's output only); with ``backward``, run inside ``mg.record_grad_norms()`` so the
    picture can colour by ‖δ‖."""
    model = build_model(kind, input_size, hidden, layers, seed, bidirectional)
    x = np.random.default_rng(seed).normal(size=(steps, batch, input_size))
    out = model(x, truncate=truncate)[0]
    if last_only:
        out = out[-1]
    loss = (out * out).mean()  # L = mean ‖h_t‖² / H
    loss.name = "loss"
    if backward:
        with mg.record_grad_norms():
            loss.backward(retain_graph=True)
    return loss


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------
_positive = positive_int  # argparse type: an integer ≥ 1

# pictures need small layers; a size this big would only allocate for minutes, then fail
MAX_WEIGHT_BYTES = 1 << 30


def _check_sizes(args: argparse.Namespace) -> None:
    """Refuse layer sizes whose weights alone would pass MAX_WEIGHT_BYTES, naming the flag."""
    H, I, L = args.hidden, args.input_size, args.layers
    weight_bytes = 8 * 4 * H * (H + max(I, 2 * H) + 2) * L * 2  # ≤ 4 gates, both directions
    if weight_bytes > MAX_WEIGHT_BYTES:
        raise ValueError(
            f"--hidden {H} (with --input-size {I}, --layers {L}) needs ~{weight_bytes / 2**30:.0f} GiB of "
            f"weights, over the {MAX_WEIGHT_BYTES >> 30} GiB limit: a picture reads best with --hidden 2..64"
        )


def _probability(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a keep probability in (0, 1], got {text!r}") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"expected a keep probability in (0, 1], got {v}")
    return v


def cmd_render(args: argparse.Namespace) -> int:
    _check_sizes(args)
    t0 = time.perf_counter()
    truncate: Any = args.truncate
    if args.random_truncate is not None:
        if args.truncate:
            print("minigrad render: give --truncate K or --random-truncate P, not both", file=sys.stderr)
            return 2
        truncate = models.RandomTruncation(args.random_truncate, rng=args.seed)  # cut after a step w.p. 1 − P
    loss = unrolled_loss(
        args.model,
        args.steps,
        truncate=truncate,
        hidden=args.hidden,
        layers=args.layers,
        input_size=args.input_size,
        batch=args.batch,
        seed=args.seed,
        backward=args.grads,
        last_only=args.loss == "last",
        bidirectional=args.bidirectional,
    )
    what = f"{args.model.upper()}, {args.layers} layer{'s' if args.layers > 1 else ''}, {args.steps} steps"
    if args.bidirectional:
        what += ", bidirectional"
    if args.truncate:
        what += f", truncate={args.truncate}"
    if args.random_truncate is not None:
        what += f", random truncation p={args.random_truncate:g} ({truncate.cuts} cuts)"
    what += ", loss on the last step" if args.loss == "last" else ", loss on every step"
    graph = viz.draw_graph(
        loss,
        level=args.level,
        show_grads=args.grads,
        collapse=args.collapse,
        max_nodes=args.max_nodes,
        title=args.title or what,
        steps_shown=args.steps_shown or None,
        labels="compact" if args.compact else "full",
    )
    out = viz.render_graph(graph, args.output, timeout=args.timeout)
    print(f"wrote {out}  ({what}, level={args.level}; {time.perf_counter() - t0:.1f} s)")
    return 0


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def cmd_demo(args: argparse.Namespace) -> int:
    from models import worked_example as we

    outdir = Path(args.output)
    ours, loss = we.worked_example()
    print("The lecture notes' worked example: a 2-step linear RNN")
    print("  h_t = W_xh x_t + W_hh h_{t-1},  y_t = W_hy h_t,  L = sum_t (y_t - target_t)^2")
    print(f"  x = {list(we.X)}, target = {list(we.TARGET)}, W_xh = {we.W_XH}, W_hh = {we.W_HH}, W_hy = {we.W_HY}")
    print()
    try:
        from models.reference import worked_example as by_hand
    except ImportError as e:
        print(f"  (hand-written BPTT unavailable: {e}; showing minigrad's numbers only)")
        ref = None
    else:
        ref = by_hand()
    agree = True
    header = f"  {'quantity':<10} {'minigrad':>12} {'by hand':>12} {'path sum':>12}  agree"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for key, value in ours.items():
        if ref is None:
            print(f"  {key:<10} {_fmt(value):>12}")
            continue
        hand = ref.get(key)
        paths = ref.get("path_sum", {}).get(key)
        others = [v for v in (hand, paths) if v is not None]
        ok = all(abs(value - v) <= 1e-12 * max(1.0, abs(v)) for v in others)
        agree &= ok
        cells = [_fmt(v) if v is not None else "-" for v in (hand, paths)]
        print(f"  {key:<10} {_fmt(value):>12} {cells[0]:>12} {cells[1]:>12}  {'yes' if ok else 'NO'}")
    if ref is not None:
        print(
            "  minigrad's generic reverse mode " + ("agrees with" if agree else "DISAGREES with") + " hand-written BPTT"
        )
    print()

    pictures = [
        (
            "worked_example.svg",
            lambda: viz.draw_graph(
                loss,
                show_data=True,
                show_grads=True,
                title="The worked example: L = Σ_t (y_t − target_t)², coloured by ‖δ‖",
            ),
        ),
        (
            "lstm_truncated.svg",
            lambda: viz.draw_graph(
                unrolled_loss("lstm", 6, truncate=3, hidden=4),
                title="LSTM, 6 steps, truncate=3: h and c are detached after t=3 (dashed red cuts)",
            ),
        ),
        (
            "lstm_steps.svg",
            lambda: viz.draw_graph(
                unrolled_loss("lstm", 30, truncate=10, hidden=4, backward=True, last_only=True),
                level="step",
                show_grads=True,
                title="LSTM, 30 steps, truncate=10, loss on the last step: no gradient crosses a cut (grey)",
            ),
        ),
    ]
    written, missing = [], None
    for name, draw in pictures:
        try:
            written.append(viz.render_graph(draw(), outdir / name))
        except viz.GraphvizNotFoundError as e:
            missing = e
            continue
    plot = _demo_plot(outdir)
    if written:
        print(f"Pictures in {outdir.resolve()}:")
        for p in written:
            print(f"  {p.resolve()}")
    if plot:
        print(f"  {plot.resolve()}")
    if missing is not None:
        print(f"Could not render every picture: {missing}")
    return 0 if agree and missing is None else 1


def _demo_plot(outdir: Path) -> Path | None:
    """‖∂L/∂h_t‖ against t for a tanh RNN and an LSTM with a loss on h_T only, if matplotlib is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print('(matplotlib not installed: skipping grad_norms.png; pip install "minigrad[plots]")')
        return None
    curves = {}
    for kind, label in (("rnn", "tanh RNN"), ("lstm", "LSTM")):
        loss = unrolled_loss(kind, 40, hidden=16, seed=1, backward=True, last_only=True)
        curves[label] = next(iter(viz.step_grad_norms(loss).values()))
    title = "Loss on the last step only: how far back its gradient reaches"
    return viz.plot_grad_norms(curves, outdir / "grad_norms.png", title=title)


def _delegate(module: str, argv: list[str], what: str) -> int:
    """Hand the remaining arguments to ``module.main(argv)``, imported only now."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):  # the module itself is missing, not one of its imports
            print(f"minigrad {what}: not available yet ({module} is not installed in this checkout)", file=sys.stderr)
            return 2
        raise
    return int(mod.main(argv) or 0)


# A checkout (or an editable install) has benchmarks/ next to viz/; a wheel install does not.
BENCHMARKS_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def run_benchmark(script: str, argv: list[str]) -> int:
    """Run ``benchmarks/<script>`` with ``argv`` in a fresh Python, as ``python benchmarks/<script>`` would.

    A fresh process lets the script limit numpy to one BLAS thread before numpy is imported
    (this process has imported it already); its output and exit status are the command's."""
    path = BENCHMARKS_DIR / script
    if not path.is_file():
        print(
            f"minigrad bench: {path} not found. The benchmarks are not installed with the package: "
            "run them from a source checkout (pip install -e . there, then `minigrad bench` "
            f"or `python benchmarks/{script}`).",
            file=sys.stderr,
        )
        return 2
    return subprocess.run([sys.executable, str(path), *argv]).returncode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minigrad",
        description="minigrad: a teaching-grade autodiff engine on numpy, with BPTT and pictures of unrolled graphs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")

    demo = sub.add_parser(
        "demo",
        help="the lecture notes' worked example: minigrad vs hand-written BPTT, and pictures (start here)",
        description="Run the worked example through minigrad and through hand-written BPTT, print both, "
        "and render its unrolled graph and a truncated LSTM to SVG.",
    )
    demo.add_argument("-o", "--output", default="minigrad-demo", help="output directory (default ./minigrad-demo)")
    demo.set_defaults(func=cmd_demo)

    render = sub.add_parser(
        "render",
        help="draw an unrolled recurrent model's graph (svg, png, pdf or dot)",
        description="Unroll a model over random inputs (L = mean of out²) and render its graph. "
        "The format comes from the output's suffix.",
    )
    render.add_argument("--model", choices=MODEL_CHOICES, default="rnn")
    render.add_argument("--steps", type=_positive, default=5, help="time steps T (default 5)")
    render.add_argument("--truncate", type=_positive, default=None, help="detach the state every k steps")
    render.add_argument(
        "--random-truncate",
        type=_probability,
        default=None,
        metavar="P",
        help="randomized truncation: after each step keep the path with probability P (gradient scaled "
        "by 1/P), else cut it; the draws come from --seed",
    )
    render.add_argument("--hidden", type=_positive, default=4, help="hidden size H (default 4)")
    render.add_argument("--layers", type=_positive, default=1, help="stacked layers (default 1)")
    render.add_argument("--input-size", type=_positive, default=3, help="input size I (default 3)")
    render.add_argument("--batch", type=_positive, default=1, help="batch size B (default 1)")
    render.add_argument("--bidirectional", action="store_true", help="a forward and a reverse direction per layer")
    render.add_argument(
        "--loss",
        choices=("all", "last"),
        default="all",
        help="L = mean of out² over every step (all, default) or of the last step only (last: "
        "with --grads the colours show how far back its gradient reaches)",
    )
    render.add_argument(
        "--steps-shown",
        type=int,
        default=8,
        help="level step: draw the first and last half of this many steps, the middle as one box (0: all)",
    )
    render.add_argument("--level", choices=("op", "step"), default="op", help="every op, or one box per step")
    render.add_argument("--collapse", action="store_true", help='draw one representative step "× T" (level op)')
    render.add_argument("--compact", action="store_true", help="level op: each box its op (or name) and shape only")
    render.add_argument(
        "--timeout", type=float, default=120.0, help="stop Graphviz after this many seconds (default 120)"
    )
    render.add_argument("--grads", action="store_true", help="run backward and colour by ‖δ‖ (log scale)")
    render.add_argument("--max-nodes", type=_positive, default=3000, help="refuse bigger pictures (default 3000)")
    render.add_argument("--seed", type=non_negative_int, default=0)
    render.add_argument("--title", default=None)
    render.add_argument("-o", "--output", default="graph.svg", help="output file: .svg, .png, .pdf or .dot")
    render.set_defaults(func=cmd_render)

    sub.add_parser(
        "compare",
        add_help=False,
        help="minigrad's reverse mode vs hand-written BPTT, per parameter (minigrad compare --help)",
    )
    sub.add_parser(
        "bench",
        add_help=False,
        help="speed next to hand-written numpy BPTT (minigrad bench --help; --ops: per-op overhead)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        return _delegate("viz.compare_report", argv[1:], "compare")
    if argv and argv[0] == "bench":
        rest = argv[1:]
        if "--ops" in rest:
            rest.remove("--ops")
            return run_benchmark("bench_ops.py", rest)
        return run_benchmark("bench_rnn.py", rest)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, OSError, RuntimeError) as e:  # bad arguments, unwritable paths, no Graphviz: one clear line
        print(f"minigrad {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
