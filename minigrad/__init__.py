"""minigrad: a tensor autodiff engine on numpy, small enough to read in one sitting.

import minigrad as mg
x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
y = (x @ W).tanh().sum(); y.backward()      # x.grad is dL/dx

The API (PyTorch's names and semantics where PyTorch has them; gradients are numpy arrays):

Tensors      Tensor, tensor, zeros, ones, full, arange, randn, rand, zeros_like, ones_like,
             full_like, randn_like, rand_like, manual_seed; dtypes float32, float64, int64, ...
Recording    no_grad, enable_grad, is_grad_enabled, scope, current_scope, Tensor.backward,
             Tensor.detach, Tensor.retain_grad, Tensor.register_hook, grad (torch.autograd.grad)
Arithmetic   add, sub, mul, div, pow, neg, matmul, addmm, lerp, maximum, minimum, scale_grad
Elementwise  exp, log, tanh, sigmoid, relu, sqrt, abs, clip, where
Reductions   sum, mean, max, min, argmax, argmin (axis= or dim=, keepdims= or keepdim=)
Shapes       reshape, view, transpose, permute, unsqueeze, squeeze, flatten, getitem,
             concat, stack, split, unbind
Losses       softmax, log_softmax, cross_entropy, mse_loss, one_hot, embedding
Modules      nn (Module, Parameter, Linear, ...), optim (SGD, Adam, clip_grad_norm_), functional
Compiling    compile (trace a training step once, replay it as a flat numpy program)
Checking     gradcheck, detect_anomaly, record_grad_norms, tape, format_tape
Files        save, load

Tensor methods mirror the ops (x.sum(dim=1), x.unsqueeze(0), x.to(mg.float32), x.float(),
x.double(), x.argmax()), and Python's protocols behave as torch's (protocols.py): ==, bool,
len, iter, f"{loss:.3f}", in-place += under no_grad, np.asarray(x) and np.exp(x).
"""

import numpy as _np

from . import functional, nn, optim, protocols, seeding
from .checks import AnomalyError, GraphFreedError, detect_anomaly
from .compiler import compile  # noqa: A004 (mg.compile, the pinned name: trace once, replay fast)
from .creation import (
    arange,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    rand_like,
    randn,
    randn_like,
    zeros,
    zeros_like,
)  # fmt: skip
from .functional import cross_entropy, mse_loss, one_hot
from .gcpause import gc_paused
from .gradcheck import GradcheckError, gradcheck
from .gradnorms import record_grad_norms
from .hooks import grad
from .ops import (
    abs,
    add,
    addmm,
    argmax,
    argmin,
    clip,
    concat,
    div,
    embedding,
    exp,
    flatten,
    getitem,
    lerp,
    log,
    log_softmax,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    permute,
    pow,
    relu,
    reshape,
    scale_grad,
    sigmoid,
    softmax,
    split,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    tanh,
    transpose,
    unbind,
    unsqueeze,
    view,
    where,
)  # fmt: skip
from .seeding import manual_seed
from .serialization import load, save
from .tapeview import format_tape, tape
from .tensor import Node, Tensor, current_scope, enable_grad, is_grad_enabled, no_grad, scope, tensor

# dtypes under PyTorch's names (mg.float32 is np.float32)
float16, float32, float64 = _np.float16, _np.float32, _np.float64
int32, int64, bool = _np.int32, _np.int64, _np.bool_  # noqa: A001

__version__ = "0.1.0"

__all__ = [
    # tensors and making them
    "Tensor", "tensor", "Node", "zeros", "ones", "full", "arange", "randn", "rand",
    "zeros_like", "ones_like", "full_like", "randn_like", "rand_like", "manual_seed",
    "float16", "float32", "float64", "int32", "int64", "bool",
    # recording
    "no_grad", "enable_grad", "is_grad_enabled", "scope", "current_scope", "grad",
    # ops
    "add", "sub", "mul", "div", "pow", "neg", "matmul", "addmm", "lerp", "maximum", "minimum",
    "scale_grad", "exp", "log", "tanh", "sigmoid", "relu", "sqrt", "abs", "clip", "where",
    "sum", "mean", "max", "min", "argmax", "argmin",
    "reshape", "view", "transpose", "permute", "unsqueeze", "squeeze", "flatten", "getitem",
    "concat", "stack", "split", "unbind",
    "softmax", "log_softmax", "cross_entropy", "mse_loss", "one_hot", "embedding",
    # submodules
    "nn", "optim", "functional", "seeding", "protocols",
    # checking, pictures' data, files
    "gradcheck", "GradcheckError", "detect_anomaly", "AnomalyError", "GraphFreedError",
    "record_grad_norms", "gc_paused", "tape", "format_tape", "save", "load",
    # trace once, replay fast
    "compile",
]  # fmt: skip
