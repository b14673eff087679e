"""minigrad: a tensor autodiff engine on numpy, small enough to read in one sitting.

import minigrad as mg
x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
y = (x @ W).tanh().sum(); y.backward()      # x.grad is dL/dx
"""

from . import functional, nn, optim
from .checks import AnomalyError, GraphFreedError, detect_anomaly
from .compiler import compile  # noqa: A004 (mg.compile, the pinned name: trace once, replay fast)
from .functional import cross_entropy, mse_loss, one_hot
from .gcpause import gc_paused
from .gradcheck import GradcheckError, gradcheck
from .gradnorms import record_grad_norms
from .ops import (
    abs,
    add,
    addmm,
    clip,
    concat,
    div,
    embedding,
    exp,
    getitem,
    lerp,
    log,
    log_softmax,
    matmul,
    max,
    mean,
    mul,
    neg,
    pow,
    relu,
    reshape,
    scale_grad,
    sigmoid,
    softmax,
    split,
    sqrt,
    stack,
    sub,
    sum,
    tanh,
    transpose,
    unbind,
    where,
)  # fmt: skip
from .serialization import load, save
from .tapeview import format_tape, tape
from .tensor import Node, Tensor, current_scope, enable_grad, is_grad_enabled, no_grad, scope, tensor

__version__ = "0.1.0"
