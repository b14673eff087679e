"""Time runs left to right: a second layout pass that puts the steps of an unroll in order.

Graphviz's ``dot`` lays the steps of an unroll side by side (they share ranks; see graph.py),
but it orders side-by-side clusters by its crossing heuristics, not by time, and no attribute
makes it keep an order across clusters reliably (flat edges and ``ordering=out`` are ignored
there by some versions). So rendering takes two passes:

1. ``dot`` lays the graph out and reports where everything went (``-Tjson0``);
2. within each run of sibling step clusters (``t=1 … t=T`` under one scope), the clusters
   are moved, each as a rigid block, into the slots the run occupies, in time order
   (same widths, same gaps, so nothing else moves);
3. ``nop2`` (Graphviz's "use these positions" engine) draws the graph at the new positions
   with straight edges.

When the steps already stand in order, the first layout is used as it is.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable

__all__ = ["time_ordered_source", "plain_labels"]

_SCOPE_ID = re.compile(r"^scope (.*)$")
_STEP_NUMBER = re.compile(r"^t\s*=\s*(-?\d+)")

# run(source, format, engine) -> output bytes, e.g. the system dot or the WebAssembly one
Runner = Callable[[str, str, str], bytes]


def _bb(s: str) -> list[float]:
    return [float(v) for v in s.split(",")]


def time_ordered_source(source: str, run: Runner) -> tuple[str, str]:
    """(source, engine) to render so that steps stand in time order: the original source with
    "dot", or a positioned copy with "nop2"."""
    layout = json.loads(run(source, "json0", "dot"))
    n_sub = layout.get("_subgraph_cnt", 0)
    objects = layout.get("objects", [])
    subgraphs = objects[:n_sub]
    by_gvid = {o["_gvid"]: o for o in objects}

    # runs of sibling step clusters: {parent scope: [(order key, cluster object)]}
    families: dict[str, list[tuple[tuple[int, int], dict]]] = {}
    for k, sg in enumerate(subgraphs):
        m = _SCOPE_ID.match(sg.get("id", ""))
        if not (sg.get("name", "").startswith("cluster") and m and "bb" in sg):
            continue
        parent, _, last = m.group(1).rpartition("/")
        t = _STEP_NUMBER.match(last)
        if t:
            families.setdefault(parent, []).append(((int(t.group(1)), k), sg))

    shift_nodes: dict[int, float] = {}  # node gvid -> dx
    shift_clusters: dict[int, float] = {}  # subgraph gvid -> dx
    for members in families.values():
        if len(members) < 2:
            continue
        in_time = [sg for _, sg in sorted(members, key=lambda m: m[0])]
        slots = sorted(in_time, key=lambda sg: _bb(sg["bb"])[0])
        if slots == in_time:
            continue
        gaps = [_bb(b["bb"])[0] - _bb(a["bb"])[2] for a, b in zip(slots, slots[1:])] + [0.0]
        x = _bb(slots[0]["bb"])[0]
        for sg, gap in zip(in_time, gaps):
            x0, _, x1, _ = _bb(sg["bb"])
            dx = x - x0
            x += (x1 - x0) + gap
            stack = [sg]  # the cluster and every cluster nested in it move together
            while stack:
                c = stack.pop()
                shift_clusters[c["_gvid"]] = dx
                stack.extend(by_gvid[g] for g in c.get("subgraphs", []))
            for g in sg.get("nodes", []):
                shift_nodes[g] = dx
    if not shift_nodes:
        return source, "dot"

    positions = []
    for o in objects[n_sub:]:
        if "pos" not in o:
            continue
        x, y = (float(v) for v in o["pos"].split(","))
        positions.append(f'\t"{o["name"]}" [pos="{x + shift_nodes.get(o["_gvid"], 0.0):.2f},{y:.2f}"]')
    cluster_bb = {}
    for sg in subgraphs:
        if "bb" in sg and sg.get("name", "").startswith("cluster"):
            x0, y0, x1, y1 = _bb(sg["bb"])
            dx = shift_clusters.get(sg["_gvid"], 0.0)
            cluster_bb[sg["name"]] = f"{x0 + dx:.2f},{y0:.2f},{x1 + dx:.2f},{y1:.2f}"

    def add_bb(m: re.Match) -> str:
        bb = cluster_bb.get(m.group(2))
        return m.group(0) + (f'\n{m.group(1)}\tbb="{bb}"' if bb else "")

    out = re.sub(r"^(\s*)subgraph (cluster_\d+) \{", add_bb, source, flags=re.M)
    out = out.replace("\tgraph [", f'\tgraph [bb="{layout["bb"]}" ', 1)
    end = out.rstrip().rfind("}")
    return out[:end] + "\n".join(positions) + "\n}\n", "nop2"


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
