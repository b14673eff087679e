"""Pictures of the tape: the unrolled graph as Graphviz DOT, built without running anything.

    g = viz.draw_graph(loss)                  # a graphviz.Digraph; g.source is the DOT text
    viz.render_graph(g, "rnn.svg")            # or render_graph(loss, "rnn.svg"), see render.py

This module is the front door; the work is done, one idea per module, by

* ``tape_model.py``: reading the tape into plain records (the only module that knows the
  engine's insides);
* ``scopes.py``: scope paths as clusters, time steps and their families, runs of identical steps;
* ``op_graph.py``: ``level="op"``, one box per op (and ``collapse=True``, one step drawn "× T");
* ``step_graph.py``: ``level="step"``, one box per time step, for long unrolls;
* ``style.py``: colours, fonts, labels, the ‖δ‖ colour scale and its legend;
* ``picture.py``: nodes filed under scope paths assembled into nested clusters.

In every picture: scopes are nested boxes (a layer ``l0`` holding the steps ``t=1 … t=T``) and
time runs left to right; every parameter is drawn ONCE with an edge to every op that uses it;
a ``detach`` is a dashed red edge labelled "cut": no gradient flows back along it. With
``show_grads=True`` (after ``loss.backward()`` inside ``mg.record_grad_norms()``) fill colours
show ‖δ‖ = ‖∂L/∂output‖ on a log scale: vanishing gradients fade to blue, exploding ones glow red.
Graphs above ``max_nodes`` raise :class:`GraphTooLargeError` instead of handing ``dot``
something it would chew on for minutes.

Every walk uses an explicit stack: a 100,000-step graph does not hit the recursion limit.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

import graphviz
import numpy as np

from minigrad.gcpause import gc_paused

from .op_graph import draw_ops
from .scopes import step_families
from .step_graph import DEFAULT_STEPS_SHOWN, draw_steps
from .style import LEGEND_TITLE, GradScale, graph_attrs, legend_nodes
from .tape_model import read_tape

if TYPE_CHECKING:
    from minigrad.tensor import Tensor

__all__ = ["draw_graph", "GraphTooLargeError", "step_grad_norms", "DEFAULT_MAX_NODES"]

DEFAULT_MAX_NODES = 3000
NO_STEPS_HINT = (
    "no time steps in this graph: make each step inside mg.scope('t=1'), mg.scope('t=2'), … "
    '(models.RNN/GRU/LSTM do) and level="step" draws one box per step'
)


class GraphTooLargeError(ValueError):
    """The picture would have more nodes than ``max_nodes``."""


def draw_graph(
    roots: Tensor | Iterable[Tensor],
    level: str = "op",
    *,
    show_data: bool = False,
    show_grads: bool = False,
    show_constants: bool | str = "named",
    collapse: bool = False,
    max_nodes: int = DEFAULT_MAX_NODES,
    title: str | None = None,
    steps_shown: int | None = DEFAULT_STEPS_SHOWN,
    labels: str = "full",
) -> graphviz.Digraph:
    """The graph that produced ``roots`` as a ``graphviz.Digraph``; nothing is executed.

    roots: a tensor (the loss) or several (a list/tuple, nested allowed).
    level: "op" draws every op; "step" draws one box per scope (per time step).
    show_data: print the values of small tensors (≤ 4 numbers) in their boxes.
    show_grads: colour by ‖δ‖ on a log scale; run ``backward`` inside ``mg.record_grad_norms()`` first.
    show_constants: True draws every constant, False none, "named" only those with a ``name``.
    collapse: at level "op", draw one representative step of each run of identical steps, "× T".
    max_nodes: refuse (GraphTooLargeError) to draw more nodes than this.
    title: a caption at the top.
    steps_shown: at level "step", a family of more steps is drawn as its first and last
        ``steps_shown // 2`` steps with one box "… N steps …" between (None: draw every step).
    labels: at level "op", "full" (name, op, shape and place on the tape ``%seq``) or "compact"
        (the name or op and the shape, on one line: about half as tall).

    The DOT text is ``draw_graph(...).source``; rendering it needs Graphviz, see ``render_graph``.
    """
    if level not in ("op", "step"):
        raise ValueError(f'draw_graph: level must be "op" or "step", got {level!r}')
    if show_constants not in (True, False, "named"):
        raise ValueError(f'draw_graph: show_constants must be True, False or "named", got {show_constants!r}')
    if collapse and level != "op":
        raise ValueError('draw_graph: collapse=True applies to level="op" (level="step" is already one box a step)')
    if labels not in ("full", "compact"):
        raise ValueError(f'draw_graph: labels must be "full" or "compact", got {labels!r}')
    # no collector passes over the (long) graph while its records are made: a 20,000-step LSTM
    # step view takes 4.8 s with them, 1.6 s without (the records hold cycles, leaf <-> op, freed
    # by the first collection after the picture is drawn)
    with gc_paused():
        return _draw(
            roots, level, show_data, show_grads, show_constants, collapse, max_nodes, title, steps_shown, labels
        )


def _draw(
    roots: Tensor | Iterable[Tensor],
    level: str,
    show_data: bool,
    show_grads: bool,
    show_constants: bool | str,
    collapse: bool,
    max_nodes: int,
    title: str | None,
    steps_shown: int | None,
    labels: str,
) -> graphviz.Digraph:
    tape = read_tape(roots, values=show_data and level == "op")

    scale = None
    if show_grads:
        norms = [op.grad_norm for op in tape.ops] + [lf.grad_norm for lf in tape.leaves if lf.kind in ("param", "leaf")]
        if all(v is None for v in norms):
            raise ValueError(
                "draw_graph(show_grads=True): no gradients recorded on this graph. Run the backward "
                "inside `with mg.record_grad_norms(): loss.backward()` first."
            )
        scale = GradScale(norms)

    if level == "step":
        pic = draw_steps(tape, show_grads, steps_shown)
        scale = pic.scale
    else:
        pic = draw_ops(tape, scale, show_data, show_constants, collapse, compact=labels == "compact")
    has_steps = bool(step_families(tape.ops))
    if level == "step" and not has_steps:
        warnings.warn(f'draw_graph(level="step"): {NO_STEPS_HINT}; drawing one box per op', stacklevel=3)
    if pic.n_nodes > max_nodes:
        n_steps = len({op.scope for op in tape.ops}) + sum(lf.kind in ("param", "leaf") for lf in tape.leaves)
        hint = (
            NO_STEPS_HINT
            if not has_steps
            else f'use level="step" (one box per time step: about {n_steps} nodes here), or collapse=True '
            "(one representative step drawn × T), or pass a larger max_nodes"
            if level == "op"
            else "pass a larger max_nodes"
        )
        raise GraphTooLargeError(
            f"draw_graph: the picture would have {pic.n_nodes} nodes, more than max_nodes={max_nodes}; "
            f"dot would take long and nobody could read it: {hint}."
        )
    if scale is not None:  # the colour bar, in a column of its own after everything else
        column = max(pic.column.values(), default=0) + 1
        for node_id, attrs in legend_nodes(scale):
            pic.node("legend", node_id, column, **attrs)
        pic.titles["legend"] = LEGEND_TITLE
        cells = [node_id for node_id, _ in legend_nodes(scale)]
        for a, b in zip(cells, cells[1:]):
            pic.edge(a, b, style="invis")
    return pic.build(graph_attrs(level, title))


def step_grad_norms(roots: Tensor | Iterable[Tensor]) -> dict[str, np.ndarray]:
    """‖δ‖ of the last op of every step scope, per family of steps: {"l0": array over t, ...}.

    In the recurrent layers the last op of step t makes the state h_t, so this is
    ‖∂L/∂h_t‖ (the total derivative, through every later step), the curve that shows
    vanishing and exploding gradients. Needs ``backward`` inside ``mg.record_grad_norms()``.
    Families are keyed by the scope holding the steps ("" when the steps are top level).
    """
    families = step_families(read_tape(roots).ops)
    if not families:
        raise ValueError(
            "step_grad_norms: no step scopes (t=…) in this graph; build the unroll inside mg.scope('t=1') …"
        )
    result = {}
    for parent, steps in families.items():
        norms = [ops[-1].grad_norm for ops in steps.values()]
        if all(v is None for v in norms):
            raise ValueError(
                "step_grad_norms: no gradient norms recorded; run `with mg.record_grad_norms(): loss.backward()` first"
            )
        result[parent] = np.array([np.nan if v is None else v for v in norms])
    return result
