"""``minigrad compare``: the comparison suite as a report a person reads.

``models.compare`` runs minigrad and the hand-written BPTT on the same weights and data and
returns the differences; it prints nothing. This module turns them into the tables, the
PASS/FAIL verdict, a progress line on a terminal and the scaling plot, and sets the exit status:

    minigrad compare                         # the full grid, a table and a verdict; exit 1 if any diff > tol
    minigrad compare --brief --sizes T=8,H=6 # one line per case, smaller sizes
    minigrad compare --scaling               # path sum O(T²) against BPTT and minigrad O(T), log-log slopes, plot
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from minigrad.serialization import atomic_write
from models.compare import (
    MODELS,
    SCALING_METHODS,
    SCALING_T,
    TOL,
    Case,
    ScalingPoint,
    Sizes,
    loglog_slopes,
    run_suite,
    scaling_check,
    worked_example_minigrad,
)
from viz.argtypes import writable_path

__all__ = ["ProgressLine", "format_table", "verdict", "format_scaling", "plot_scaling", "build_parser", "main"]


class ProgressLine:
    """``[ 12/96] gru L=2 bidir k=3`` rewritten in place on a terminal; silent otherwise.

    Pass it as ``progress=`` to ``run_suite`` or ``scaling_check``; ``close()`` wipes the line."""

    def __init__(self, stream: Any = None):
        self.stream = sys.stderr if stream is None else stream
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, i: int, total: int, what: str) -> None:
        if self.live:
            self.stream.write(f"\r[{i:>{len(str(total))}}/{total}] {what:<50}")
            self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()


# ---------------------------------------------------------------------------
# The comparison table and the verdict
# ---------------------------------------------------------------------------
def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1e3:.2f} ms"


def format_table(cases: list[Case], tol: float = TOL, brief: bool = False) -> str:
    """model × setting × quantity → max abs diff, max rel diff, time of method A and of method B.

    ``brief``: one line per case, its worst quantity. A row above ``tol`` is marked ``FAIL``.
    """
    head = (
        "model",
        "setting",
        "A vs B",
        "quantity" if not brief else "worst quantity",
        "max abs",
        "max rel",
        "time A",
        "time B",
        "",
    )
    lines = []
    for case in cases:
        rows = [case.worst()] if brief else case.rows
        for i, r in enumerate(rows):
            times = case.times if (brief or i == 0) else (None, None)
            lines.append(
                (
                    r.model, r.setting, f"{r.methods[0]} vs {r.methods[1]}", r.quantity,
                    f"{r.max_abs:.1e}", f"{r.max_rel:.1e}", _ms(times[0]), _ms(times[1]),
                    "" if r.passed(tol) else "FAIL",
                )
            )  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    right = {4, 5, 6, 7}  # numbers are right-aligned

    def fmt(cells: tuple) -> str:
        return "  ".join(
            str(c).rjust(w) if j in right else str(c).ljust(w) for j, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [fmt(head), "  ".join("-" * w for w in widths).rstrip()]
    prev = None
    for cells in lines:
        if prev is not None and cells[0] != prev:
            out.append("")  # a blank line between models
        out.append(fmt(cells))
        prev = cells[0]
    return "\n".join(out)


def verdict(cases: list[Case], tol: float = TOL) -> tuple[bool, str]:
    """(all within tol, one line saying so, naming the worst or every failing quantity)."""
    rows = [r for c in cases for r in c.rows]
    if not rows:
        return False, "FAIL: nothing was compared"
    failed = [r for r in rows if not r.passed(tol)]
    n_cases = len(cases)
    if not failed:
        w = max(rows, key=lambda r: r.max_abs)
        return True, (
            f"PASS: {len(rows)} quantities in {n_cases} comparisons agree to <= {tol:g} max abs diff "
            f"(worst {w.max_abs:.1e}: {w.model} {w.setting} {w.quantity}, {w.methods[0]} vs {w.methods[1]})"
        )
    names = "; ".join(
        f"{r.model} {r.setting} {r.quantity} ({r.methods[0]} vs {r.methods[1]}: {r.max_abs:.1e})" for r in failed[:10]
    )
    more = f"; … and {len(failed) - 10} more" if len(failed) > 10 else ""
    return False, f"FAIL: {len(failed)} of {len(rows)} quantities differ by more than {tol:g}: {names}{more}"


# ---------------------------------------------------------------------------
# The scaling check: table and plot
# ---------------------------------------------------------------------------
def format_scaling(points: list[ScalingPoint], min_T: int = 50) -> str:
    """The timing table, the fitted slopes and the agreement of the three methods."""
    head = ("T", "path-sum", "bptt", "minigrad", "path-sum vs bptt", "minigrad vs bptt")
    lines = [
        (
            str(p.T), _ms(p.seconds["path-sum"]) or "skipped", _ms(p.seconds["bptt"]), _ms(p.seconds["minigrad"]),
            "" if p.max_abs["path-sum"] is None else f"{p.max_abs['path-sum']:.1e}", f"{p.max_abs['minigrad']:.1e}",
        )
        for p in points
    ]  # fmt: skip
    widths = [max(len(x) for x in col) for col in zip(head, *lines)]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    out = [
        "Scaling: linear RNN h_t = W_ih x_t + b + W_hh h_{t-1}, L = Σ_t ½‖h_t‖², CPU time of ∂L/∂θ "
        "(time.process_time, best of repeats; max abs diffs vs bptt)",
        fmt(head),
        "  ".join("-" * w for w in widths),
    ]
    out += [fmt(c) for c in lines]
    slopes = loglog_slopes(points, min_T)
    expect = {"path-sum": "O(T²) → 2", "bptt": "O(T) → 1", "minigrad": "O(T) → 1"}
    out.append(
        f"log-log slope of CPU time against T (fitted over T ≥ {min_T}): "
        + ", ".join(f"{m} {'n/a' if s is None else f'{s:.2f}'} ({expect[m]})" for m, s in slopes.items())
    )
    return "\n".join(out)


def plot_scaling(points: list[ScalingPoint], path: str | Path) -> Path | None:
    """Log-log plot of time against T with T and T² guide lines; None (and a note) without matplotlib."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    except ImportError:
        print("(matplotlib is not installed, so no plot: pip install 'minigrad[plots]')")
        return None
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    slopes = loglog_slopes(points)
    for m, marker in zip(SCALING_METHODS, "osD"):
        pts = [(p.T, p.seconds[m]) for p in points if p.seconds[m] is not None]
        if pts:
            Ts, ts = zip(*pts)
            s = slopes[m]
            ax.loglog(Ts, ts, marker=marker, label=f"{m} (slope {s:.2f})" if s is not None else m)
    for power, anchor, style in ((1, "bptt", ":"), (2, "path-sum", "--")):
        pts = [(p.T, p.seconds[anchor]) for p in points if p.seconds[anchor] is not None]
        if pts:
            T0, t0 = pts[-1]
            Ts = np.array([p.T for p in points], dtype=float)
            ax.loglog(Ts, t0 * (Ts / T0) ** power, style, color="grey", lw=1, label=f"∝ T{'²' if power == 2 else ''}")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("CPU time of ∂L/∂θ (s, time.process_time)")
    ax.set_title("Path sum O(T²) against BPTT and minigrad O(T)\nlinear RNN, ℓ_t = ½‖h_t‖²")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    path = Path(path)
    atomic_write(path, lambda f: f.write(buf.getvalue()))
    return path


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
def _sizes_arg(text: str) -> Sizes:
    try:
        return Sizes.parse(text)
    except ValueError as e:  # argparse shows an ArgumentTypeError's own message
        raise argparse.ArgumentTypeError(str(e).removeprefix("--sizes: ")) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="minigrad compare",
        description="Compare minigrad's reverse mode with hand-written BPTT (and the path sum, RTRL, "
        "the notes' worked example): a table per model, setting and parameter, exit 1 above tolerance.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--tol", type=float, default=TOL, help="largest allowed max abs diff")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and data")
    p.add_argument(
        "--sizes",
        type=_sizes_arg,
        default=None,
        help="T,B,I,H as 'T=16,B=4,I=5,H=8' or '16,4,5,8' (default T=16,B=4,I=5,H=8; with --scaling B=1,I=5,H=8, T from --T)",
    )
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of: " + ", ".join(MODELS))
    p.add_argument("--repeat", type=int, default=3, help="time each method as the best of this many runs")
    p.add_argument(
        "--brief", action="store_true", help="one line per case (its worst quantity) instead of one per quantity"
    )
    p.add_argument("--no-extras", action="store_true", help="skip path sum / RTRL and the worked example")
    p.add_argument(
        "--no-compiled", action="store_true", help="skip the compiled rows (the same step under mg.compile vs BPTT)"
    )
    g = p.add_argument_group("scaling check (--scaling runs it instead of the comparison)")
    g.add_argument("--scaling", action="store_true", help="time path sum, BPTT and minigrad over T; fit log-log slopes")
    g.add_argument("--T", dest="scaling_T", default=",".join(map(str, SCALING_T)), help="sequence lengths to time")
    g.add_argument(
        "--budget", type=float, default=3.0, help="run the path sum only while it should take under this many seconds"
    )
    g.add_argument(
        "--plot", type=writable_path, default=Path("minigrad_scaling.png"), help="PNG plot of the scaling check"
    )  # checked before the run
    g.add_argument("--no-plot", action="store_true", help="no PNG, only the table")
    return p


def _scaling_main(args: argparse.Namespace) -> int:
    try:
        Ts = [int(t) for t in args.scaling_T.split(",") if t.strip()]
    except ValueError:
        print(f"minigrad compare: --T must be comma-separated integers, got {args.scaling_T!r}", file=sys.stderr)
        return 2
    if not Ts or min(Ts) < 1:
        print(f"minigrad compare: --T needs positive sequence lengths, got {args.scaling_T!r}", file=sys.stderr)
        return 2
    given = args.sizes or Sizes(B=1)
    sizes = Sizes(T=max(Ts), B=given.B, I=given.I, H=given.H)
    print(f"sizes: B={sizes.B}, I={sizes.I}, H={sizes.H}; seed {args.seed}; path sum while under {args.budget:g} s")
    bar = ProgressLine()
    try:
        points = scaling_check(Ts, sizes, args.seed, args.budget, args.repeat, progress=bar)
    finally:
        bar.close()
    print(format_scaling(points))
    if not args.no_plot:
        path = plot_scaling(points, args.plot)
        if path is not None:
            print(f"plot: {path}")
    worst = max((d / max(1.0, p.grad_scale), p.T) for p in points for d in p.max_abs.values() if d is not None)
    ok = worst[0] <= args.tol
    print(
        ("PASS" if ok else "FAIL")
        + f": path sum, BPTT and minigrad agree at every T to {worst[0]:.1e} (≤ {args.tol:g} needed) "
        f"max abs diff / max(1, largest gradient entry); worst at T={worst[1]}"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """``minigrad compare``: print the comparison table and a verdict; 0 if every diff ≤ --tol, else 1."""
    args = build_parser().parse_args(argv)
    if args.scaling:
        return _scaling_main(args)
    sizes = args.sizes or Sizes()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        print(f"minigrad compare: unknown model(s) {unknown}; choose from {', '.join(MODELS)}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    print(f"sizes: {sizes}; seed {args.seed}; float64; tolerance {args.tol:g} (max abs diff)")
    bar = ProgressLine()
    try:
        cases = run_suite(
            sizes,
            args.seed,
            models,
            args.repeat,
            extras=not args.no_extras,
            progress=bar,
            compiled=not args.no_compiled,
        )
    finally:
        bar.close()
    print(format_table(cases, args.tol, brief=args.brief))
    ok, line = verdict(cases, args.tol)
    if not args.no_extras:
        we = worked_example_minigrad()
        print("worked example through minigrad: " + ", ".join(f"{k} = {v:g}" for k, v in we.items()))
    print(f"({time.perf_counter() - t0:.1f} s)")
    print(line)
    return 0 if ok else 1
