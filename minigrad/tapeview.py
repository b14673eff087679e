"""Seeing the tape: the nodes behind some tensors, and the tape printed as a Wengert list.

print(mg.format_tape(loss))
%0 = matmul(x, W)  shape (4, 8)
%1 = tanh(%0)  shape (4, 8)  scope t=1
"""

from __future__ import annotations

from .tensor import Node, Tensor

__all__ = ["tape", "format_tape"]


def tape(*roots: Tensor) -> list[Node]:
    """The nodes that lead to ``roots``, in tape (creation) order."""
    seen: set[int] = set()
    nodes: list[Node] = []
    stack = [r._edge[0] for r in roots if r._edge is not None]
    while stack:  # explicit stack: no recursion on long graphs
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(x[0] for x in node.inputs if type(x) is tuple)
    nodes.sort(key=lambda n: n.seq)
    return nodes


def format_tape(*roots: Tensor) -> str:
    """The tape as a Wengert list, one line a node: ``%7 = tanh(%6)  shape (4, 8)  scope t=2``.

    Inputs made by ops print as ``%seq`` (``%seq[i]`` for output i of a multi-output op),
    leaves by name (or as ``leaf(shape)``), constants as ``const(shape)``.
    """
    lines = []
    for node in tape(*roots):
        args = []
        for x in node.inputs:
            if type(x) is tuple:
                producer, i = x
                args.append(f"%{producer.seq}" + (f"[{i}]" if producer.n_out > 1 else ""))
            else:
                args.append(x.name or (f"leaf{x.shape}" if x.requires_grad else f"const{x.shape}"))
        line = f"%{node.seq} = {node.op}({', '.join(args)})  shape {node.shape}"
        if node.scope:
            line += f"  scope {node.scope}"
        lines.append(line)
    return "\n".join(lines)
