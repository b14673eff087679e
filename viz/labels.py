"""Labels for a Graphviz built without HTML-like labels (the WebAssembly one), and their styling.

The pictures' labels are HTML-like (a bold title over small grey lines, see style.py). The
WebAssembly Graphviz cannot read those (it would print node ids instead), so for it
``plain_labels`` turns every one into a plain-text label with the same lines, and after the
layout ``restyle_svg`` gives each line of the SVG back the weight, size and colour it had in
the HTML label: pip-only pictures look like the system Graphviz's.

(Time order needs no layout pass of its own: it is in the DOT text, see picture.py.)
"""

from __future__ import annotations

import html
import math
import re
import xml.etree.ElementTree as ET
from typing import NamedTuple

__all__ = ["plain_labels", "label_styles", "restyle_svg", "LineStyle"]

SVG_NS = "http://www.w3.org/2000/svg"


class LineStyle(NamedTuple):
    """How one line of an HTML-like label is drawn (None: the label's default)."""

    bold: bool
    size: str | None  # point size
    color: str | None


def _html_lines(body: str) -> list[tuple[str, LineStyle]]:
    """The lines of an HTML-like label, each with its style: line breaks kept, tags dropped,
    entities decoded; a line is bold if it starts with <b>, small and grey if it starts with such
    a <font> (plain text has one style a line: a compact label's shape is drawn bold with its title)."""
    out = []
    for part in re.split(r"<br\s*/?>|</tr>", body):
        text = html.unescape(re.sub(r"<[^>]*>", "", part)).strip()
        if not text:
            continue
        lead = part.lstrip()[: part.lstrip().find(">") + 1]  # a line takes the style it starts with
        size = re.search(r'point-size="([\d.]+)"', lead)
        color = re.search(r'color="([^"]+)"', lead)
        style = LineStyle(lead == "<b>", size and size.group(1), color and color.group(1))
        out.append((text, style))
    return out


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html_labels(source: str):
    """(start, end, body) of every ``label=<…>`` (HTML-like) in ``source``."""
    i, key = 0, "label=<"
    while (j := source.find(key, i)) >= 0:
        k = m = j + len(key)
        depth = 1
        while depth:  # user text is escaped, so every raw < or > belongs to a tag or the label's brackets
            depth += (source[m] == "<") - (source[m] == ">")
            m += 1
        yield j, m, source[k : m - 1]
        i = m


BOLD_PAD = 0.3  # no-break spaces a character of a bold line: DejaVu Sans Bold fits (measured)


def _padded(text: str, style: LineStyle) -> str:
    """A bold line with no-break spaces on both sides, BOLD_PAD a character: the WebAssembly
    Graphviz measures every line as regular Helvetica, but the line is drawn bold (and where
    Helvetica is missing, as DejaVu Sans Bold, about 27 % wider), so its box is made that much
    wider; ``restyle_svg`` takes the spaces off again (the line stays centred)."""
    if not style.bold:
        return text
    pad = "\u00a0" * math.ceil(BOLD_PAD * len(text) / 2)
    return pad + text + pad


def plain_labels(source: str) -> str:
    """Every ``label=<…>`` (HTML-like) turned into a quoted plain-text label with the same lines
    (a bold line padded to the width it is drawn at, see ``_padded``)."""
    out, i = [], 0
    for j, m, body in _html_labels(source):
        text = "\n".join(_padded(t, s) for t, s in _html_lines(body))
        out.append(source[i:j] + "label=" + _dot_string(text))
        i = m
    out.append(source[i:])
    return "".join(out)


def label_styles(source: str) -> dict[str, list[LineStyle]]:
    """The text of every HTML-like label in ``source`` (its lines joined by newlines) -> the
    style of each line, for ``restyle_svg``."""
    styles: dict[str, list[LineStyle]] = {}
    for _, _, body in _html_labels(source):
        lines = _html_lines(body)
        styles.setdefault("\n".join(t for t, _ in lines), [s for _, s in lines])
    return styles


def restyle_svg(svg: bytes, styles: dict[str, list[LineStyle]]) -> bytes:
    """The SVG of a picture drawn with ``plain_labels``, each label line restyled as its HTML
    original had it (bold title, small grey lines): the texts of a node, a cluster or the graph
    are found by their joined text in ``styles``."""
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ET.fromstring(svg)
    for g in root.iter(f"{{{SVG_NS}}}g"):
        kind = g.get("class")
        if kind not in ("node", "cluster", "graph"):
            continue
        # a node's texts may sit inside an <a> (its tooltip); the graph's own are its direct children
        texts = [t for t in (g if kind == "graph" else g.iter()) if t.tag == f"{{{SVG_NS}}}text"]
        found = styles.get("\n".join((t.text or "").strip() for t in texts))
        if not found or len(found) != len(texts):
            continue
        if kind in ("cluster", "graph"):  # titles are left-justified: start them at the left edge, so
            _start_at_left(g, texts)  # a font wider than Graphviz measured runs right, never off the left
        for t, style in zip(texts, found):
            t.text = (t.text or "").strip()  # the padding of a bold line (see _padded)
            if style.bold:
                t.set("font-weight", "bold")
            if style.size:
                t.set("font-size", style.size)
            if style.color:
                t.set("fill", style.color)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + ET.tostring(root, encoding="unicode").encode(
        "utf-8"
    )


def _start_at_left(g: ET.Element, texts: list[ET.Element]) -> None:
    """Left-justified titles (``labeljust=l``) drawn from the left edge of their box plus 8 pt
    (Graphviz's margin) instead of centred on where Graphviz, measuring a narrower font, put them."""
    outline = next((e for e in g if e.tag in (f"{{{SVG_NS}}}polygon", f"{{{SVG_NS}}}path")), None)
    if outline is None:
        return
    xs = [float(x) for x in re.findall(r"(-?[\d.]+),-?[\d.]+", outline.get("points") or outline.get("d") or "")]
    if not xs:
        return
    for t in texts:
        t.set("text-anchor", "start")
        t.set("x", f"{min(xs) + 8:.2f}")
