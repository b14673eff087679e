"""minigrad: a tensor autodiff engine on numpy, small enough to read in one sitting.

import minigrad as mg
x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
y = (x @ W).tanh().sum(); y.backward()      # x.grad is dL/dx
"""

from . import functional, nn, optim
from .functional import cross_entropy, mse_loss, one_hot
from .gradcheck import GradcheckError, gradcheck
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
from .tensor import (
    AnomalyError,
    GraphFreedError,
    Node,
    Tensor,
    current_scope,
    detect_anomaly,
    enable_grad,
    format_tape,
    gc_paused,
    is_grad_enabled,
    no_grad,
    record_grad_norms,
    scope,
    tape,
    tensor,
)  # fmt: skip

__version__ = "0.1.0"
