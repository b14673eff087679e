"""Assembling a picture: nodes filed under scope paths become nested Graphviz clusters.

The op and step levels both fill a :class:`Picture` (nodes by scope path, edges, cluster
titles, rows kept on one rank) and ``build`` turns it into a ``graphviz.Digraph``, the deepest
clusters first so that each is complete before it goes into its parent (no recursion).
"""

from __future__ import annotations

import graphviz

from .style import EDGE_DEFAULTS, NODE_DEFAULTS, cluster_attrs

__all__ = ["Picture"]


class Picture:
    """Nodes filed under scope paths, edges, and cluster titles; ``build`` makes the Digraph."""

    def __init__(self) -> None:
        self.members: dict[str, list[tuple[str, dict[str, str]]]] = {}
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.titles: dict[str, str] = {}  # path -> HTML label body overriding the default
        self.rows: list[tuple[str, list[str]]] = []  # (cluster path, nodes kept on one rank, left to right)
        self.n_nodes = 0
        self.linked: set[tuple[str, str]] = set()  # (a, b) pairs with an edge

    def node(self, path: str, node_id: str, **attrs: str) -> None:
        self.members.setdefault(path, []).append((node_id, attrs))
        self.n_nodes += 1

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
            sub.attr(**cluster_attrs(p, self.titles.get(p)))
            self._fill(sub, p, children, built)
            built[p] = sub

        g = graphviz.Digraph("minigrad", graph_attr=graph_attr, node_attr=NODE_DEFAULTS, edge_attr=EDGE_DEFAULTS)
        self._fill(g, "", children, built)
        for a, b, attrs in self.edges:
            g.edge(a, b, **attrs)
        return g

    def _fill(
        self, g: graphviz.Digraph, path: str, children: dict[str, list[str]], built: dict[str, graphviz.Digraph]
    ) -> None:
        """Into ``g``: the nodes filed under ``path``, its rows, then its (already built) child clusters."""
        for node_id, attrs in self.members.get(path, []):
            g.node(node_id, **attrs)
        self._add_rows(g, path)
        for c in children.get(path, []):
            g.subgraph(built.pop(c))

    def _add_rows(self, g: graphviz.Digraph, path: str) -> None:
        """Same rank, and flat invisible edges that keep the order (time left to right)."""
        for where, row in self.rows:
            if where != path:
                continue
            with g.subgraph() as r:
                r.attr(rank="same")
                for node_id in row:
                    r.node(node_id)
                for a, b in zip(row, row[1:]):
                    if (a, b) not in self.linked:
                        r.edge(a, b, style="invis")
