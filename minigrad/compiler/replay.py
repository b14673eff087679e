"""The replay: a program's statements as the body of one generated Python function.

    def replay(_in, _leaf, _c):
        x0 = _in[0].data
        p1 = _leaf[1].data
        v7 = x0 @ p1
        ...
        _grad(_leaf[1], g1, False)
        return v30

No Tensor or Node is made, no heap is walked, no closure is called: every statement is a numpy
call on local names, in the order the passes fixed. ``print(compiled.source)`` shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import hooks
from .kernels import HELPERS
from .program import Program

__all__ = ["generate", "grad_into"]


def grad_into(t: Any, g: np.ndarray, clear: bool, own: bool = False) -> None:
    """t.grad += g, as eager backward accumulates (a copy first: g may be a program buffer);
    ``clear``: the step set t.grad = None before its backward, so the sum starts afresh;
    ``own``: g is an array this replay made and no one else holds (``hand_over_grads``): kept as it is.
    The leaf's hooks (``register_hook``) run first, in order, as eager ``_accumulate`` runs them."""
    if hooks.active:
        h = hooks.apply(t, g)  # g is the leaf's whole δ of this step: its hooks once, as eagerly
        if h is None:  # mg.grad is collecting: no .grad
            return
        own, g = own and h is g, h  # a hook's own array is the user's: copied
    if clear or t._grad is None:
        t._grad = g if own and g.dtype == t.data.dtype and g.flags.c_contiguous else np.array(g, dtype=t.data.dtype)
    else:
        t._grad += g


def generate(prog: Program) -> tuple[Callable[..., Any], str]:
    """(the replay function, its source)."""
    body = []
    for ins in prog.instrs:
        body.extend("    " + line for line in ins.code.splitlines())
    source = "def replay(_in, _leaf, _c):\n" + "\n".join(body) + "\n"
    namespace = {**HELPERS, "_grad": grad_into}
    exec(compile(source, "<mg.compile replay>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["replay"], source
