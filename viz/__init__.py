"""Pictures: Graphviz drawings of the tape (unrolled recurrent graphs) and matplotlib plots.

import viz
g = viz.draw_graph(loss)                 # graphviz.Digraph, nothing executed; g.source is DOT text
viz.render_graph(loss, "rnn.svg")         # format from the suffix: svg, png, pdf, dot
viz.plot_grad_norms({"rnn": norms}, "grad_norms.png")   # needs the optional matplotlib
"""

from .graph import DEFAULT_MAX_NODES, GraphTooLargeError, draw_graph, step_grad_norms
from .plots import plot_grad_norms, plot_loss_curves
from .render import GraphvizNotFoundError, RenderError, available_renderer, render_graph
from .scopes import is_step_scope

__all__ = [
    "draw_graph",
    "render_graph",
    "step_grad_norms",
    "plot_grad_norms",
    "plot_loss_curves",
    "GraphTooLargeError",
    "GraphvizNotFoundError",
    "RenderError",
    "available_renderer",
    "is_step_scope",
    "DEFAULT_MAX_NODES",
]
