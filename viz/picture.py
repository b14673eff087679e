"""Assembling a picture: nodes filed under scope paths become nested Graphviz clusters.

The op and step levels both fill a :class:`Picture` (nodes by scope path, edges, cluster
titles, and each node's *column*) and ``build`` turns it into a ``graphviz.Digraph``, the
deepest clusters first so that each is complete before it goes into its parent (no recursion).

Time order is a property of the DOT text itself, not of a second layout pass: the graph is
laid out left to right (``rankdir=LR``) and every column is one Graphviz *rank*: column 0 holds
what feeds the steps (weights, input projections), column t holds time step t of every layer
and direction, the last column what is computed from the outputs. Each column is one
``rank=same`` group (``newrank=true`` lets a group span clusters), and an invisible chain
links the columns in order. Ranks are the one placement every Graphviz guarantees, so any
``dot`` (system or WebAssembly, one plain pass) draws the steps in time order and lines up
step t of stacked layers in one column. An edge pointing back in time (a reverse direction's
state, layer 0's stacked outputs going into layer 1's input projection) does not constrain
the ranks (``constraint=false``).
"""

from __future__ import annotations

import graphviz

from .style import EDGE_DEFAULTS, NODE_DEFAULTS, GradScale, cluster_attrs

__all__ = ["Picture", "Drawing"]


class Drawing(graphviz.Digraph):
    """The ``graphviz.Digraph`` that ``draw_graph`` returns: everything a Digraph does, and in a
    Jupyter notebook it shows inline as SVG even without a system Graphviz (through the
    WebAssembly one, see render.py), where a plain Digraph would fail to find ``dot``."""

    def _repr_mimebundle_(self, include: object = None, exclude: object = None, **kwargs: object) -> dict[str, str]:
        from .render import GraphvizNotFoundError, svg_text

        try:
            return {"image/svg+xml": svg_text(self.source)}
        except GraphvizNotFoundError as e:
            return {"text/plain": str(e)}


class Picture:
    """Nodes filed under scope paths, edges, and cluster titles; ``build`` makes the Digraph."""

    def __init__(self) -> None:
        self.members: dict[str, list[tuple[str, dict[str, str]]]] = {}
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.titles: dict[str, str] = {}  # path -> HTML label body overriding the default
        self.shown: dict[str, str] = {}  # scope path -> the path its cluster is labelled and identified by
        self.column: dict[str, int] = {}  # node id -> its column (rank): time runs left to right
        self.place: dict[str, tuple] = {}  # node id -> sort key: its place top to bottom within its cluster's column
        self.bands: dict[str, int] = {}  # a family's parent scope (l0, l0_reverse, …) -> its band, top to bottom
        self.n_nodes = 0
        self.linked: set[tuple[str, str]] = set()  # (a, b) pairs with an edge
        self.scale: GradScale | None = None  # the ‖δ‖ colour scale the picture was coloured with

    def node(self, path: str, node_id: str, column: int | None = None, **attrs: str) -> None:
        self.members.setdefault(path, []).append((node_id, attrs))
        self.n_nodes += 1
        if column is not None:
            self.column[node_id] = column

    def edge(self, a: str, b: str, **attrs: str) -> None:
        self.edges.append((a, b, attrs))
        self.linked.add((a, b))

    def build(self, graph_attr: dict[str, str]) -> graphviz.Digraph:
        order: dict[str, int] = {}  # cluster paths in order of first appearance
        for path in self.members:
            parts = path.split("/") if path else []
            for i in range(1, len(parts) + 1):
                order.setdefault("/".join(parts[:i]), len(order))
        children: dict[str, list[str]] = {}
        for p in order:
            children.setdefault(p.rpartition("/")[0], []).append(p)

        built: dict[str, graphviz.Digraph] = {}
        for p in sorted(order, key=lambda q: (-q.count("/"), order[q])):  # deepest first
            sub = graphviz.Digraph(name=f"cluster_{order[p]}")
            sub.attr(**cluster_attrs(self.shown.get(p, p), self.titles.get(p)))
            self._fill(sub, p, children, built)
            built[p] = sub

        g = Drawing("minigrad", graph_attr=graph_attr, node_attr=NODE_DEFAULTS, edge_attr=EDGE_DEFAULTS)
        self._fill(g, "", children, built)
        col = self.column
        clustered = {node_id for path, nodes in self.members.items() if path for node_id, _ in nodes}
        for a, b, attrs in self.edges:
            if a in col and b in col and col[a] > col[b]:  # back in time: drawn, but not a rank constraint
                attrs = {**attrs, "constraint": "false"}
            elif col.get(a, -1) == col.get(b, -2) and a in clustered and b in clustered:
                # a flat edge inside the clusters of one column: dot puts its tail below its head
                # there (outside clusters above), so turn it round: data flows down the column
                g.edge(b, a, **attrs, dir="back")
                continue
            g.edge(a, b, **attrs)
        self.anchors: dict[str, float] = {}  # the invisible band anchors -> their column
        self._add_bands(g)
        self._add_columns(g)
        self._add_orders(g, clustered)
        return g

    def _add_bands(self, g: graphviz.Digraph) -> None:
        """Bands (the clusters of a layer's directions: l0, l0_reverse, l1, …) stand top to
        bottom in that order in every column.

        dot has no constraint on the order of sibling clusters (it drops a flat edge between two
        clusters), only crossing minimisation. So in the first column one invisible anchor per
        band stands outside every cluster, the anchors chained in band order by flat edges
        (outside clusters those hold: tail above head), each with an edge to its band's top node
        in a later column: bands in another order would cross those edges. Measured over
        RNN/GRU/LSTM × truncate {None, 2, 3} × 1-3 layers × uni/bi, op and step level, both
        Graphviz builds (tests/test_viz_time_order.py checks the 1-2 layer matrix)."""
        members: dict[int, list[str]] = {}
        for path, nodes in self.members.items():
            b = self._band_of(path)
            if b is not None:
                members.setdefault(b, []).extend(n for n, _ in nodes if n in self.column)
        if len(members) < 2:
            return
        first = min(self.column.values())
        anchors = []
        for b in sorted(members):
            later = [n for n in members[b] if self.column[n] > first]
            if not later:
                continue
            anchor = f"band{b}"
            self.anchors[anchor] = first
            g.node(anchor, label="", shape="point", style="invis", width="0", height="0")
            g.edge(anchor, min(later, key=lambda n: (self.column[n], self.place.get(n, ()))), style="invis")
            anchors.append(anchor)
        for a, b in zip(anchors, anchors[1:]):
            g.edge(a, b, style="invis")

    def _band_of(self, path: str) -> int | None:
        """The band of a cluster path: that of the deepest family parent it is inside."""
        while True:
            if path in self.bands:
                return self.bands[path]
            if not path:
                return None
            path = path.rpartition("/")[0]

    def _add_orders(self, g: graphviz.Digraph, clustered: set[str]) -> None:
        """Within one cluster's part of one column, the nodes that have a ``place`` stand top to
        bottom in that order (an invisible chain of flat edges; the op level gives tape order,
        a topological order, so data flows down each step and every step reads the same way)."""
        groups: dict[tuple[str, int], list[str]] = {}
        for path, nodes in self.members.items():
            for node_id, _ in nodes:
                if node_id in self.place and node_id in self.column:
                    groups.setdefault((path, self.column[node_id]), []).append(node_id)
        for ids in groups.values():
            ids.sort(key=self.place.__getitem__)
            for a, b in zip(ids, ids[1:]):  # written like the flat edges in build (clusters: head first)
                if (a, b) in self.linked:  # a real edge holds them in order already (a second would bend both)
                    continue
                if a in clustered:
                    g.edge(b, a, style="invis")
                else:
                    g.edge(a, b, style="invis")

    def _add_columns(self, g: graphviz.Digraph) -> None:
        """One rank per column, and an invisible chain that puts the columns in order."""
        by_column: dict[int, list[str]] = {}
        for node_id, c in {**self.column, **self.anchors}.items():
            by_column.setdefault(c, []).append(node_id)
        firsts = []
        for c in sorted(by_column):
            with g.subgraph() as r:
                r.attr(rank="same")
                for node_id in by_column[c]:
                    r.node(node_id)
            firsts.append(by_column[c][0])
        for a, b in zip(firsts, firsts[1:]):
            g.edge(a, b, style="invis")

    def _fill(
        self, g: graphviz.Digraph, path: str, children: dict[str, list[str]], built: dict[str, graphviz.Digraph]
    ) -> None:
        """Into ``g``: the nodes filed under ``path``, then its (already built) child clusters."""
        for node_id, attrs in self.members.get(path, []):
            g.node(node_id, **attrs)
        for c in children.get(path, []):
            g.subgraph(built.pop(c))
