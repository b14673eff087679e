"""Plain-text labels, for a Graphviz built without HTML-like labels (the WebAssembly one).

(Time order needs no layout pass of its own: it is in the DOT text, see picture.py.)
"""

from __future__ import annotations

import html
import re

__all__ = ["plain_labels"]


# ---------------------------------------------------------------------------------------------
# Plain-text labels, for a Graphviz built without HTML-like labels
# ---------------------------------------------------------------------------------------------
def _html_to_text(body: str) -> str:
    """The text of an HTML-like label: line breaks kept, tags dropped, entities decoded."""
    body = re.sub(r"<br\s*/?>|</tr>", "\n", body)
    text = html.unescape(re.sub(r"<[^>]*>", "", body))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def plain_labels(source: str) -> str:
    """Every ``label=<…>`` (HTML-like) turned into a quoted plain-text label with the same lines.

    The WebAssembly Graphviz is built without HTML-like labels (it would print node ids
    instead), so its pictures get these: same words, without bold and small print.
    """
    out, i, key = [], 0, "label=<"
    while (j := source.find(key, i)) >= 0:
        k = m = j + len(key)
        depth = 1
        while depth:  # user text is escaped, so every raw < or > belongs to a tag or the label's brackets
            depth += (source[m] == "<") - (source[m] == ">")
            m += 1
        out.append(source[i:j] + "label=" + _dot_string(_html_to_text(source[k : m - 1])))
        i = m
    out.append(source[i:])
    return "".join(out)
