"""Pictures of unrolled graphs, checked on the DOT text (no Graphviz needed).

The DOT that ``viz.draw_graph`` builds is parsed back here: clusters (with their ``id`` =
"scope <path>"), nodes with their HTML labels, and edges with their attributes.
"""

from __future__ import annotations

import html
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np
import pytest

import minigrad as mg
import models
import viz
from models.worked_example import worked_example as worked_example_graph


# ---------------------------------------------------------------------------------------------
# A small DOT reader for the text draw_graph writes
# ---------------------------------------------------------------------------------------------
@dataclass
class Dot:
    clusters: dict[str, str] = field(default_factory=dict)  # cluster name -> scope path
    node_cluster: dict[str, str | None] = field(default_factory=dict)  # node id -> scope path of its cluster
    labels: dict[str, str] = field(default_factory=dict)  # node id -> label text
    attrs: dict[str, str] = field(default_factory=dict)  # node id -> raw attribute text
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (tail, head, raw attributes), visible only
    declared: list[str] = field(default_factory=list)  # node ids in order of declaration


NODE = re.compile(r"^\s*(\w+) \[(.*)\]$")
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$")
SUB = re.compile(r"^\s*subgraph (cluster_\d+) \{$")
SCOPE_ID = re.compile(r'id="scope ([^"]*)"')


def parse(source: str) -> Dot:
    dot = Dot()
    stack: list[str | None] = [None]  # scope paths of the open subgraphs
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if m := SUB.match(line):
            scope = SCOPE_ID.search(lines[i + 1]).group(1)
            dot.clusters[m.group(1)] = scope
            stack.append(scope)
        elif line.strip() == "{":  # an anonymous subgraph (rank=same row)
            stack.append(stack[-1])
        elif line.strip() == "}":
            stack.pop()
        elif m := EDGE.match(line):
            attrs = m.group(3) or ""
            if "style=invis" not in attrs:  # dir=back: written head first, drawn (and meant) tail to head
                a, b = (m.group(2), m.group(1)) if "dir=back" in attrs else (m.group(1), m.group(2))
                dot.edges.append((a, b, attrs))
        elif m := NODE.match(line):
            node_id, attrs = m.groups()
            if node_id in ("graph", "node", "edge"):
                continue
            dot.declared.append(node_id)
            dot.node_cluster[node_id] = stack[-1]
            dot.attrs[node_id] = attrs
            lab = re.search(r"label=<(.*?)>(?: \w+=|$)", attrs)
            dot.labels[node_id] = re.sub(r"<[^>]+>", " ", lab.group(1)) if lab else ""
    return dot


def step_clusters(dot: Dot) -> list[str]:
    return [s for s in dot.clusters.values() if viz.is_step_scope(s.rpartition("/")[2])]


def node_named(dot: Dot, name: str) -> str:
    found = [n for n, lab in dot.labels.items() if lab.split()[:1] == [name]]
    assert len(found) == 1, f"{name!r} drawn {len(found)} times"
    return found[0]


def cut_edges(dot: Dot) -> list[tuple[str, str, str]]:
    return [e for e in dot.edges if "dashed" in e[2]]


def rnn_loss(
    kind: str = "RNN",
    T: int = 5,
    truncate: int | None = None,
    layers: int = 1,
    backward: bool = False,
    bidirectional: bool = False,
):
    model = getattr(models, kind)(3, 4, num_layers=layers, bidirectional=bidirectional, rng=0)
    out, *_ = model(np.random.default_rng(0).normal(size=(T, 1, 3)), truncate=truncate)
    loss = (out * out).mean()
    loss.name = "loss"
    if backward:
        with mg.record_grad_norms():
            loss.backward()
    return loss


# ---------------------------------------------------------------------------------------------
# Clusters, shared parameters, cuts
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 4, 9])
def test_an_rnn_unrolled_T_steps_has_exactly_T_step_clusters_inside_its_layer(T):
    dot = parse(viz.draw_graph(rnn_loss(T=T)).source)
    steps = step_clusters(dot)
    assert sorted(steps) == sorted(f"l0/t={t}" for t in range(1, T + 1))
    assert "l0" in dot.clusters.values()  # nested: layer ⊃ steps


def test_each_shared_weight_is_drawn_once_with_one_edge_into_every_step():
    T = 6
    dot = parse(viz.draw_graph(rnn_loss(T=T)).source)
    w_hh = node_named(dot, "weight_hh_l0")  # the parameter: once
    assert dot.node_cluster[w_hh] == "l0"  # beside the steps, not inside one
    # the layer transposes W_hh once; that W_hhᵀ feeds every step
    w_hh_t = node_named(dot, "weight_hh_l0ᵀ")
    assert [(a, b) for a, b, _ in dot.edges if a == w_hh] == [(w_hh, w_hh_t)]
    heads = [b for a, b, _ in dot.edges if a == w_hh_t]
    assert len(heads) == T
    assert sorted(dot.node_cluster[b] for b in heads) == sorted(f"l0/t={t}" for t in range(1, T + 1))


def test_worked_example_parameters_have_one_out_edge_per_step():
    _, loss = worked_example_graph()
    dot = parse(viz.draw_graph(loss).source)
    assert sorted(step_clusters(dot)) == ["t=1", "t=2"]
    for name in ("W_xh", "W_hh", "W_hy"):
        p = node_named(dot, name)
        heads = [b for a, b, _ in dot.edges if a == p]
        assert sorted(dot.node_cluster[b] for b in heads) == ["t=1", "t=2"], name


@pytest.mark.parametrize(
    ("kind", "T", "k", "cuts"),
    [("RNN", 7, 2, 3), ("RNN", 6, 3, 1), ("RNN", 5, 5, 0), ("GRU", 6, 2, 2), ("LSTM", 6, 3, 2), ("LSTM", 7, 2, 6)],
)
def test_truncate_k_draws_one_dashed_cut_edge_per_detached_state(kind, T, k, cuts):
    # states carried out of t = k, 2k, … < T are detached; the LSTM cuts h and c
    dot = parse(viz.draw_graph(rnn_loss(kind, T, truncate=k)).source)
    found = cut_edges(dot)
    assert len(found) == cuts
    for tail, head, attrs in found:
        assert "xlabel=cut" in attrs
        assert "detached" in dot.labels[head]
        assert dot.node_cluster[tail] != dot.node_cluster[head]  # from step t into step t+1


def test_a_cut_from_a_value_outside_the_drawn_graph_still_shows_as_a_dashed_edge():
    W = mg.nn.Parameter(np.array([[0.5]]), name="W")
    h = mg.tensor(np.ones((1, 1)))
    with mg.scope("t=1"):
        h = (h @ W).tanh()
    kept = h  # keep the original alive: the detached copy points at it weakly
    with mg.scope("t=2"):
        loss = (h.detach() @ W).tanh().sum()  # only the second window is in loss's graph
    dot = parse(viz.draw_graph(loss).source)
    ((tail, head, _),) = cut_edges(dot)
    assert "outside this graph" in dot.labels[tail]
    assert kept.op == "tanh"


def test_the_step_level_view_has_one_node_per_step_and_the_state_flowing_between_them():
    T = 8
    dot = parse(viz.draw_graph(rnn_loss("LSTM", T, truncate=4), level="step").source)
    steps = [n for n, lab in dot.labels.items() if re.match(r"\s*t=\d+ ", lab)]
    assert len(steps) == T
    assert not step_clusters(dot)  # steps are boxes, not clusters
    assert len(cut_edges(dot)) == 1  # h and c cut together after t=4: one dashed edge


def test_collapse_draws_one_representative_step_and_says_how_many():
    T = 20
    src = viz.draw_graph(rnn_loss("GRU", T), collapse=True).source
    dot, full = parse(src), parse(viz.draw_graph(rnn_loss("GRU", T)).source)
    assert step_clusters(dot) == ["l0/t=1"]
    assert len(dot.declared) < len(full.declared) / 5
    assert f"t=1 … t={T}" in src and f"(× {T})" in src  # the representative's cluster title
    recur = [e for e in dot.edges if "to next step" in e[2]]
    assert recur and all(f"× {T - 1}" in e[2] for e in recur)


# ---------------------------------------------------------------------------------------------
# Labels, ids, roots, constants
# ---------------------------------------------------------------------------------------------
def test_every_node_has_a_unique_id_and_every_edge_joins_drawn_nodes():
    dot = parse(viz.draw_graph(rnn_loss("LSTM", 5, truncate=2, layers=2), show_grads=False).source)
    assert len(dot.declared) == len(set(dot.declared))
    for a, b, _ in dot.edges:
        assert a in dot.attrs and b in dot.attrs


def test_op_nodes_are_labelled_with_name_or_op_shape_and_tape_position():
    x = mg.Parameter if hasattr(mg, "Parameter") else mg.nn.Parameter
    W = x(np.ones((2, 3)), name="W")
    y = (W * 2.0).tanh()
    y.name = "activation"
    z = y.sum()
    dot = parse(viz.draw_graph(z).source)
    act = node_named(dot, "activation")
    assert "tanh" in dot.labels[act] and "2×3" in dot.labels[act]
    (s,) = [n for n, lab in dot.labels.items() if lab.split()[:1] == ["sum"]]
    assert "scalar" in dot.labels[s] and f"%{z._node.seq}" in dot.labels[s]  # fallback: op + its tape id


@pytest.mark.parametrize("name", ['say "hi"', "a<b>c", "{braces}", "x & y", "back\\slash", "<b>not html</b>"])
def test_names_with_quotes_angle_brackets_and_braces_are_escaped(name, tmp_path):
    W = mg.nn.Parameter(np.ones(2), name=name)
    y = (W * W).sum()
    y.name = name
    src = viz.draw_graph(y).source
    if any(c in name for c in '<>"&'):
        assert name not in src  # only ever as &lt; &gt; &quot; &amp;
    dot = parse(src)
    assert len(dot.declared) == 3  # W, mul, sum: the names broke nothing
    assert html.unescape(re.search(r"<b>(.*?)</b>", dot.attrs["v0"]).group(1)) == name
    if viz.available_renderer("svg"):  # and Graphviz reads it
        svg = viz.render_graph(y, tmp_path / "esc.svg").read_text()
        texts = [t.text for t in ET.fromstring(svg).iter() if t.text]
        assert name in texts


def test_several_roots_are_drawn_together_each_marked():
    out, h_n = models.RNN(3, 4, rng=0)(np.ones((3, 1, 3)))
    dot = parse(viz.draw_graph([out, h_n]).source)
    roots = [n for n, a in dot.attrs.items() if "peripheries=2" in a]
    assert len(roots) == 2
    assert len(step_clusters(dot)) == 3


def test_constants_are_hidden_unless_named_or_asked_for():
    W = mg.nn.Parameter(np.ones(2), name="W")
    x = mg.tensor(np.full(2, 3.0), name="x")
    y = (W * x + 1.0).sum()  # the 1.0 becomes an unnamed constant
    labels = lambda **kw: " ".join(parse(viz.draw_graph(y, **kw).source).labels.values())  # noqa: E731
    assert " x " in labels() and "const" not in labels()
    assert " x " not in labels(show_constants=False)
    assert "const" in labels(show_constants=True)


def test_show_data_prints_small_values():
    numbers, loss = worked_example_graph()
    text = " ".join(parse(viz.draw_graph(loss, show_data=True).source).labels.values())
    assert f"= {numbers['L']:.4g}" in text and "= 1.75" in text  # L and h_2


def test_show_data_leaves_out_values_already_freed_and_keeps_late_names():
    x = mg.tensor(np.array([0.5, -1.0]), requires_grad=True, name="x")
    a = x * 2.0  # no VJP saves a: once dropped, only its place in the graph remains
    y = a.tanh()
    a.name = "a"  # named after tanh used it
    del a
    text = " ".join(parse(viz.draw_graph(y.sum(), show_data=True).source).labels.values())
    assert " a " in f" {text} "  # the late name is drawn
    assert f"= [{np.tanh(1.0):.4g}, {np.tanh(-2.0):.4g}]" in text  # y = tanh(a) is alive ...
    assert "[1, -2]" not in text  # ... a = (1, -2) is gone: its box is drawn without values


# ---------------------------------------------------------------------------------------------
# Gradient colours and the numbers behind them
# ---------------------------------------------------------------------------------------------
def test_show_grads_before_any_backward_says_what_to_run():
    with pytest.raises(ValueError, match="record_grad_norms"):
        viz.draw_graph(rnn_loss(), show_grads=True)


def test_show_grads_colours_nodes_by_gradient_norm_and_adds_a_legend():
    loss = rnn_loss("RNN", 6, backward=True)
    dot = parse(viz.draw_graph(loss, show_grads=True).source)
    fills = {re.search(r'fillcolor="(#\w+)"', a).group(1) for n, a in dot.attrs.items() if "fillcolor" in a}
    assert len(fills & set(viz.style.GRAD_PALETTE)) >= 3  # norms spread over the log scale
    assert any("‖δ‖" in lab for lab in dot.labels.values())
    # the colour bar: one plain-text box per palette colour (plus "no gradient"), in a cluster of its own
    cells = [n for n in dot.declared if n.startswith("legend")]
    assert len(cells) == len(viz.style.GRAD_PALETTE) + 1
    assert all(dot.node_cluster[n] == "legend" for n in cells)
    assert "label=<" not in "".join(dot.attrs[n] for n in cells)  # no HTML: the WebAssembly Graphviz draws it too


def test_step_grad_norms_are_the_norms_of_dL_dh_t():
    model = models.RNN(3, 5, rng=1)
    out, _, states = model(np.random.default_rng(1).normal(size=(7, 2, 3)), return_states=True)
    states.retain_grad()
    loss = (out[-1] * out[-1]).sum()
    with mg.record_grad_norms():
        loss.backward()
    norms = viz.step_grad_norms(loss)["l0"]
    expected = np.linalg.norm(states.grads()["l0"].reshape(7, -1), axis=1)
    np.testing.assert_allclose(norms, expected, rtol=1e-12)
    assert norms[0] < norms[-1]  # the loss sits at the last step


# ---------------------------------------------------------------------------------------------
# Large graphs
# ---------------------------------------------------------------------------------------------
def test_more_nodes_than_max_nodes_is_a_clear_error_suggesting_the_step_level():
    with pytest.raises(viz.GraphTooLargeError, match='level="step"'):
        viz.draw_graph(rnn_loss("LSTM", 20), max_nodes=100)
    viz.draw_graph(rnn_loss("LSTM", 20), level="step", max_nodes=100)  # the suggestion works


def test_drawing_a_long_unroll_needs_no_recursion():
    W = mg.nn.Parameter(np.array(0.9), name="W")
    h = mg.tensor(1.0)
    for t in range(1, 3001):
        with mg.scope(f"t={t}"):
            h = (W * h).tanh()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(150)  # far below the graph's depth
    try:
        g = viz.draw_graph(h, level="step", max_nodes=10_000)
    finally:
        sys.setrecursionlimit(limit)
    assert g.source.count("t=3000") >= 1


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="level"):
        viz.draw_graph(rnn_loss(), level="layer")
    with pytest.raises(TypeError, match="expected Tensors"):
        viz.draw_graph([rnn_loss(), "loss"])
    with pytest.raises(ValueError, match="collapse"):
        viz.draw_graph(rnn_loss(), level="step", collapse=True)


def test_lstm_and_gru_steps_are_drawn_with_the_names_of_their_equations():
    out, _ = models.LSTM(2, 3, rng=0)(np.ones((2, 1, 2)))
    src = viz.draw_graph(out.sum()).source
    for gate, op in [("i", "sigmoid"), ("f", "sigmoid"), ("g", "tanh"), ("o", "sigmoid"), ("c", "add"), ("h", "mul")]:
        assert src.count(f"<b>{gate}</b><br/>") == 2, gate  # one box per step, titled by the equation's symbol
        assert re.search(rf"<b>{gate}</b><br/><font[^>]*>{op} · ", src)
    out, _ = models.GRU(2, 3, rng=0)(np.ones((2, 1, 2)))
    src = viz.draw_graph(out.sum()).source
    assert src.count("<b>n</b><br/>") == 2 and src.count("<b>h</b><br/>") == 2
    assert src.count("xlabel=r]") == 2 and src.count("xlabel=z]") == 2  # r and z: the two outputs of one split
    assert "<b>r</b>" not in src  # a node with several outputs keeps its op as its title


# ---------------------------------------------------------------------------------------------
# Long unrolls, directions, hints
# ---------------------------------------------------------------------------------------------
def test_the_step_view_of_a_long_unroll_shows_its_first_and_last_steps_and_one_box_for_the_middle():
    dot = parse(viz.draw_graph(rnn_loss("RNN", 200), level="step").source)
    steps = sorted(int(re.search(r"step l0/t=(\d+)", a).group(1)) for a in dot.attrs.values() if "step l0/t=" in a)
    assert steps == [1, 2, 3, 4, 197, 198, 199, 200]
    (elided,) = [n for n, lab in dot.labels.items() if "192 steps" in lab]
    assert "t=5 … t=196" in dot.labels[elided]
    assert any(a == elided for a, _, _ in dot.edges) and any(b == elided for _, b, _ in dot.edges)
    everything = parse(viz.draw_graph(rnn_loss("RNN", 200), level="step", steps_shown=None).source)
    assert sum("step l0/t=" in a for a in everything.attrs.values()) == 200


def test_the_step_view_colours_are_fitted_to_the_boxes_drawn_so_first_and_last_step_differ():
    model = models.RNN(3, 4, rng=0)
    out, _ = model(np.random.default_rng(0).normal(size=(200, 1, 3)))
    loss = (out[-1] * out[-1]).mean()  # the loss on h_200 only: δh_t vanishes going back in time
    with mg.record_grad_norms():
        loss.backward()
    dot = parse(viz.draw_graph(loss, level="step", show_grads=True).source)

    def fill(t: int) -> str:
        (attrs,) = [a for a in dot.attrs.values() if f'"step l0/t={t}"' in a]
        return re.search(r'fillcolor="(#\w+)"', attrs).group(1)

    assert fill(1) == viz.style.GRAD_PALETTE[0] and fill(200) == viz.style.GRAD_PALETTE[-1]


def test_a_reverse_direction_is_drawn_in_time_order_its_state_arrows_pointing_back_in_time():
    dot = parse(viz.draw_graph(rnn_loss("GRU", 4, layers=1, bidirectional=True), level="step").source)
    node = {int(re.search(r"t=(\d+)", a).group(1)): n for n, a in dot.attrs.items() if "step l0_reverse/t=" in a}
    recur = {(a, b) for a, b, attrs in dot.edges if a in node.values() and b in node.values()}
    # the reverse direction's step at time t reads x_t and hands its state to time t - 1
    assert recur == {(node[t + 1], node[t]) for t in range(1, 4)}


def test_the_collapsed_view_counts_the_folded_cuts_of_each_layer_in_that_layer_only():
    loss = rnn_loss("RNN", 12, truncate=2, layers=2)
    src = viz.draw_graph(loss, collapse=True).source
    counts = [int(n) for n in re.findall(r"\+ (\d+) detach cuts in the folded steps", src)]
    full = len(cut_edges(parse(viz.draw_graph(loss).source)))
    drawn = len(cut_edges(parse(src)))
    assert len(counts) == 2 and counts[0] == counts[1]
    assert sum(counts) == full - drawn  # each folded cut counted once, in its own layer


def test_the_step_view_of_a_graph_without_step_scopes_says_how_to_get_one():
    x = mg.tensor(np.ones((1, 2)), requires_grad=True)
    with pytest.warns(UserWarning, match=r"mg\.scope\('t=1'\)"):
        viz.draw_graph((x * 2).sum(), level="step")
    big = x
    for _ in range(40):
        big = big * 1.01
    with pytest.raises(viz.GraphTooLargeError, match=r"no time steps"):
        viz.draw_graph(big.sum(), max_nodes=10)


def test_the_elision_box_says_how_many_detach_cuts_it_hides():
    # 200 steps cut every 10: cuts at the start of t=11, 21, …, 191; the drawn steps are 1-4, 197-200
    dot = parse(viz.draw_graph(rnn_loss("LSTM", 200, truncate=10), level="step").source)
    (elided,) = [lab for lab in dot.labels.values() if "192 steps" in lab]
    assert "192 steps, 19 cuts" in elided  # h and c cut together count once
    no_cuts = parse(viz.draw_graph(rnn_loss("RNN", 200), level="step").source)
    assert any("192 steps …" in lab for lab in no_cuts.labels.values())


def test_compact_labels_are_the_op_or_name_and_the_shape_on_one_line():
    src = viz.draw_graph(rnn_loss("LSTM", 2), labels="compact").source
    assert "%" not in re.sub(r'tooltip="[^"]*"', "", src)  # no tape positions in any label
    assert "<b>tanh</b> <font" in src and "<b>weight_hh_l0</b> <font" in src  # title and shape, one line
    assert "<br/>" not in src.split("subgraph")[0]  # no second line in the top-level boxes
    assert "<b>tanh</b><br/>" in viz.draw_graph(rnn_loss("LSTM", 2)).source  # the full labels: two lines
    with pytest.raises(ValueError, match="labels must be"):
        viz.draw_graph(rnn_loss("RNN", 2), labels="short")


def test_the_input_x_and_the_initial_state_h0_are_drawn_named_by_default():
    labels = parse(viz.draw_graph(rnn_loss("GRU", 3)).source).labels.values()
    assert any(lab.split() == ["x", "3×3"] for lab in labels)  # the (T·B, I) rows of x
    assert any(lab.split() == ["h0", "1×4"] for lab in labels)
    lstm = parse(viz.draw_graph(rnn_loss("LSTM", 3)).source).labels.values()
    assert any(lab.split() == ["h0,", "c0", "1×4"] for lab in lstm)
