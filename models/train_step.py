"""``train_step``: a model, a loss and an optimizer as one training step, compiled with one flag.

    step = models.train_step(rnn, loss_fn, opt)            # compile=True is the default
    for x, y in batches:
        loss = step(x, y)                                  # forward, loss, backward (replayed), opt.step()

Why a step and not ``models.RNN(..., compile=True)``: ``torch.compile(model)`` compiles a forward,
and autograd then runs the backward. Here the backward *is* the engine: what ``mg.compile``
replays is a forward with its loss and its backward, so the unit it compiles is a training step,
and a step needs the user's loss. A layer flag could compile only the part that does not pay.

What ``step(x, target)`` does, in this order:

    p.grad = None for every parameter of the model and the optimizer   (inside the compiled part)
    out = model(x, **forward_kwargs)         (the first element, if the model returns a tuple)
    loss = loss_fn(out, target);  loss.backward()                      (inside the compiled part)
    clip_grad_norm_(params, max_norm)        (if max_norm is given: outside, every call)
    optimizer.step()                         (if an optimizer is given: outside, every call)

and returns the loss, a Tensor without a graph. The compiled part is ``mg.compile``'s, with its
contract (docs/compiler.md): everything that varies comes in as ``x`` or ``target`` or lives in a
parameter's ``.data``; the model starts from its zero state each call (carry a state across
windows with ``tbptt_train(compile=True)``); ``forward_kwargs`` (``truncate=5``) are fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import minigrad as mg
from minigrad.tensor import Tensor

__all__ = ["train_step", "TrainStep"]


class TrainStep:
    """A training step: call it as ``step(x, target)``; ``compiled`` is its ``mg.compile`` object
    (``step.compiled.program`` prints the Wengert list), None when run eagerly."""

    def __init__(
        self,
        model: Any,
        loss_fn: Callable[[Tensor, Any], Tensor],
        optimizer: Any = None,
        compile: bool = True,  # noqa: A002 (the flag's name is the feature's)
        max_norm: float | None = None,
        check_every: int = 0,
        forward_kwargs: dict[str, Any] | None = None,
    ):
        if not callable(model) or not callable(loss_fn):
            raise TypeError(f"train_step: model and loss_fn must be callable, got {type(model).__name__}, "
                            f"{type(loss_fn).__name__}")  # fmt: skip
        if max_norm is not None and optimizer is None:
            raise ValueError("train_step: max_norm clips before optimizer.step(); give an optimizer too")
        self.model, self.loss_fn, self.optimizer, self.max_norm = model, loss_fn, optimizer, max_norm
        self.forward_kwargs = dict(forward_kwargs or {})
        seen: dict[int, Tensor] = {}
        for p in [*(model.parameters() if hasattr(model, "parameters") else ()),
                  *(optimizer.params if optimizer is not None else ())]:  # fmt: skip
            seen.setdefault(id(p), p)
        self.params = list(seen.values())
        self.compiled = mg.compile(self._forward_backward, check_every=check_every) if compile else None

    def _forward_backward(self, x: Tensor, target: Any) -> Tensor:
        for p in self.params:
            p.grad = None  # as optimizer.zero_grad(); inside the compiled part, honoured by the replay
        out = self.model(x, **self.forward_kwargs)
        if isinstance(out, tuple):  # a layer's (out, state)
            out = out[0]
        loss = self.loss_fn(out, target)
        loss.backward()
        return loss

    def __call__(self, x: Any, target: Any) -> Tensor:
        loss = self.compiled(x, target) if self.compiled is not None else self._forward_backward(_tensor(x), target)
        if self.max_norm is not None:
            mg.optim.clip_grad_norm_(self.params, self.max_norm)
        if self.optimizer is not None:
            self.optimizer.step()
        return loss if self.compiled is not None else loss.detach()


def _tensor(x: Any) -> Any:
    return x if isinstance(x, Tensor) else Tensor(x) if hasattr(x, "shape") else x


def train_step(
    model: Any,
    loss_fn: Callable[[Tensor, Any], Tensor],
    optimizer: Any = None,
    *,
    compile: bool = True,  # noqa: A002
    max_norm: float | None = None,
    check_every: int = 0,
    **forward_kwargs: Any,
) -> TrainStep:
    """One training step of ``model`` under ``loss_fn`` (and ``optimizer``), compiled unless
    ``compile=False``: see this module's docstring. ``forward_kwargs`` go to ``model(x, ...)``."""
    return TrainStep(model, loss_fn, optimizer, compile, max_norm, check_every, forward_kwargs)
