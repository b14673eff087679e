"""How the pictures look: colours and fonts, labels, the ‖δ‖ colour scale and its legend.

One place, so every picture looks alike. Labels are Graphviz HTML-like labels in which every
user string is escaped (quotes, <, >, {, } are all safe). Also here: the boxes the op and step
levels share (leaves, clusters) and the attributes of the whole graph.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .scopes import is_step_scope
from .tape_model import Leaf

# -- colours and fonts ----------------------------------------------------------------------
FONT = "Helvetica"
OP_FILL, OP_LINE = "#eaf1fb", "#5b7db1"
PARAM_FILL, PARAM_LINE = "#fff2cc", "#c9a227"
CONST_FILL, CONST_LINE = "#f4f4f4", "#a0a0a0"
CUT_COLOR = "#c0392b"
STEP_FILL, STEP_LINE = "#f7f9fc", "#9fb4cc"
RECUR_COLOR = "#2c7fb8"
MUTED = "#6b6b6b"
NO_GRAD_FILL = "#eeeeee"
# ‖δ‖ colours, small (blue) → large (red): the light middle of ColorBrewer RdYlBu for fills, so
# black text stays readable on every fill, and darker shades of the same hues for edges
GRAD_PALETTE = ["#91bfdb", "#b7d7e8", "#dcebf2", "#f5f5d0", "#fee8a0", "#fdc77e", "#fb9f67", "#f4735a"]
GRAD_EDGE_PALETTE = ["#2c7bb6", "#5a9bc9", "#84b4cf", "#a3a38a", "#d4a537", "#e08a2c", "#dd5f26", "#c9271c"]

# -- boxes and edges both levels draw -------------------------------------------------------
NODE_DEFAULTS = {"fontname": FONT, "fontsize": "10", "margin": "0.08,0.03", "height": "0.3"}
EDGE_DEFAULTS = {"fontname": FONT, "fontsize": "8", "arrowsize": "0.6", "color": "#555555"}
OP_BOX = {"shape": "box", "style": "rounded,filled", "color": OP_LINE, "fillcolor": OP_FILL}
STEP_BOX = {"shape": "box", "style": "rounded,filled", "fillcolor": STEP_FILL, "color": STEP_LINE}
ELIDED_BOX = {"shape": "box", "style": "dashed,rounded,filled", "fillcolor": "#ffffff", "color": STEP_LINE}
RECUR_EDGE = {"color": RECUR_COLOR, "penwidth": "1.4"}  # a state flowing from one step into the next
CUT_EDGE = {"style": "dashed", "color": CUT_COLOR, "fontcolor": CUT_COLOR, "arrowhead": "tee"}  # a detach


# -- labels ---------------------------------------------------------------------------------
def esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def fmt_shape(shape: tuple[int, ...]) -> str:
    return "scalar" if not shape else "×".join(str(n) for n in shape)


def fmt_norm(v: float) -> str:
    return "0" if v == 0 else f"{v:.2g}" if 1e-2 <= v < 1e3 else f"{v:.1e}"


def norm_line(what: str, v: float | None) -> str:
    """A label line such as "‖δ‖ 0.031", with a dash when no norm was recorded."""
    return f"{what} " + ("—" if v is None else fmt_norm(v))


def fmt_values(a: np.ndarray) -> str | None:
    """Values of small arrays (≤ 4 numbers), for show_data."""
    if a.size > 4:
        return None
    if a.ndim == 0:
        return f"{a.item():.4g}"
    return "[" + ", ".join(f"{v:.4g}" for v in np.asarray(a).ravel()) + "]"


def label(title: str, *lines: str, bold: bool = True) -> str:
    """<b>title</b> over smaller grey lines, as a Graphviz HTML-like label (inputs pre-escaped)."""
    head = f"<b>{title}</b>" if bold else title
    rest = "".join(f'<br/><font point-size="8" color="{MUTED}">{ln}</font>' for ln in lines if ln)
    return f"<{head}{rest}>"


def compact_label(title: str, *lines: str) -> str:
    """<b>title</b> and its small grey lines all on one line (``labels="compact"``)."""
    rest = "".join(f' <font point-size="8" color="{MUTED}">{ln}</font>' for ln in lines if ln)
    return f"<<b>{title}</b>{rest}>"


# -- gradient colours: ‖δ‖ on a log scale ---------------------------------------------------
class GradScale:
    """Maps a gradient norm to a palette colour by log10, between the smallest and largest norm drawn."""

    def __init__(self, norms: Iterable[float | None]):
        logs = [math.log10(v) for v in norms if v is not None and v > 0 and math.isfinite(v)]
        self.lo = min(logs) if logs else 0.0
        self.hi = max(logs) if logs else 0.0

    def color(self, v: float | None, palette: list[str] = GRAD_PALETTE) -> str:
        if v is None or not math.isfinite(v) or v <= 0:  # no gradient reached it (or exactly zero): grey
            return NO_GRAD_FILL if palette is GRAD_PALETTE else "#bbbbbb"
        span = self.hi - self.lo
        u = 0.5 if span < 1e-12 else (math.log10(v) - self.lo) / span
        return palette[min(len(palette) - 1, max(0, int(u * len(palette))))]

    def edge_color(self, v: float | None) -> str:
        return self.color(v, GRAD_EDGE_PALETTE)

    def bins(self) -> list[tuple[str, float]]:
        """(colour, lower edge of its bin as a norm), smallest first."""
        n, span = len(GRAD_PALETTE), self.hi - self.lo
        return [(c, 10 ** (self.lo + span * i / n)) for i, c in enumerate(GRAD_PALETTE)]


def legend_nodes(scale: GradScale) -> list[tuple[str, dict[str, str]]]:
    """The colour bar, as plain boxes (no HTML table, so the WebAssembly Graphviz draws it too):
    one filled box per colour with the range of ‖δ‖ it stands for, largest at the top, and a grey
    box for "no gradient". Node ids legend0, legend1, ...; drawn in one column, in this order."""
    bins = scale.bins()
    his = [lo for _, lo in bins[1:]] + [10**scale.hi]
    cells = [
        (f"legend{i}", {"label": f"{fmt_norm(lo)} … {fmt_norm(hi)}", "fillcolor": c})
        for i, ((c, lo), hi) in enumerate(reversed(list(zip(bins, his))))
    ]
    cells.append((f"legend{len(cells)}", {"label": "no gradient", "fillcolor": NO_GRAD_FILL}))
    box = {"shape": "box", "style": "filled", "color": "#ffffff", "fontsize": "8", "width": "1.1", "height": "0.2"}
    return [(node_id, {**box, **attrs}) for node_id, attrs in cells]


LEGEND_TITLE = "<b>‖δ‖ = ‖∂L/∂value‖</b><br/>log scale"


# -- leaves: parameters (yellow), other leaves, constants (grey), detached copies (dashed red) --
def leaf_attrs(lf: Leaf, scale: GradScale | None, show_data: bool, compact: bool = False) -> dict[str, str]:
    shape = fmt_shape(lf.shape)
    lines = []
    if lf.kind in ("param", "leaf"):
        title = esc(lf.name) if lf.name else f"{'parameter' if lf.kind == 'param' else 'leaf'}"
        lines.append(shape if lf.name else f"{shape} · {lf.id}")
        attrs = {"shape": "box", "style": "filled", "fillcolor": PARAM_FILL, "color": PARAM_LINE}
        if lf.kind == "leaf":
            attrs["style"] = "filled,rounded"
    elif lf.kind == "cut":
        title = f"detached {esc(lf.name)}" if lf.name else "detached"
        lines.append(f"{shape} · no grad")
        attrs = {"shape": "box", "style": "dashed,rounded", "color": CUT_COLOR, "fontcolor": "#7b241c"}
    else:
        title = esc(lf.name) if lf.name else "const"
        lines.append(shape)
        attrs = {"shape": "box", "style": "filled", "fillcolor": CONST_FILL, "color": CONST_LINE, "fontsize": "9"}
    if show_data:
        vals = fmt_values(lf.value)
        if vals:
            lines.append("= " + esc(vals))
    if scale is not None and lf.kind in ("param", "leaf"):
        lines.append(norm_line("‖∂L/∂θ‖", lf.grad_norm))
        attrs["fillcolor"] = scale.color(lf.grad_norm)
    attrs["label"] = compact_label(title, shape, *lines[1:]) if compact else label(title, *lines)
    if lf.is_root:
        attrs.update(peripheries="2")
    return attrs


# -- clusters and the whole graph -----------------------------------------------------------
def cluster_attrs(path: str, title: str | None = None) -> dict[str, str]:
    """A scope's box: a time step filled light blue, any other scope dashed grey.
    ``title``: the HTML label body, by default the scope's last component in bold."""
    last = path.rpartition("/")[2]
    if title is None:
        title = f"<b>{esc(last)}</b>"
    attrs = {"label": f"<{title}>", "fontname": FONT, "labeljust": "l", "id": esc(f"scope {path}")}
    if is_step_scope(last):
        attrs.update(style="rounded,filled", fillcolor=STEP_FILL, color=STEP_LINE, fontsize="11", fontcolor="#2b4a6f")
    else:
        attrs.update(style="rounded,dashed", color="#8c8c8c", fontsize="12", fontcolor="#444444")
    return attrs


def graph_attrs(level: str, title: str | None) -> dict[str, str]:
    attrs = {
        "rankdir": "LR",  # time left to right: one rank (column) per time step, see picture.py
        "newrank": "true",  # a column's rank=same group spans the clusters of every layer and direction
        # no second crossing minimisation over all clusters: it would swap the nodes of a column
        # against the order picture.py puts them in (data flowing down each step)
        "remincross": "false",
        "fontname": FONT,
        "nodesep": "0.16",
        "ranksep": "0.35",
        "bgcolor": "white",
    }
    if level == "step":
        attrs["ranksep"] = "0.3"
    if title:
        attrs.update(label=f"<<b>{esc(title)}</b>>", labelloc="t", labeljust="l", fontsize="14")
    return attrs
