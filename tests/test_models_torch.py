"""RNN, GRU and LSTM against torch.nn with the same weights (float64, to 1e-10).

Optional: skipped when torch is not installed (CI installs the CPU wheel).
Truncated BPTT is compared with a torch loop over RNNCell/GRUCell/LSTMCell that calls
.detach() on the carried state after steps k, 2k, … (each direction counting its own steps).
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import models

torch = pytest.importorskip("torch")

TOL = 1e-10
LAYERS = {"rnn": models.RNN, "gru": models.GRU, "lstm": models.LSTM}
TORCH_LAYERS = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}
TORCH_CELLS = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}


def _make(mode, I, H, num_layers=1, bias=True, batch_first=False, bidirectional=False, nonlinearity="tanh", seed=0):
    kw = dict(num_layers=num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional, rng=seed)
    if mode == "rnn":
        kw["nonlinearity"] = nonlinearity
    return LAYERS[mode](I, H, **kw)


def _torch_twin(mode, ours, nonlinearity="tanh"):
    """A torch.nn layer of the same configuration holding our weights."""
    kw = dict(
        num_layers=ours.num_layers,
        bias=ours.bias,
        batch_first=ours.batch_first,
        bidirectional=ours.bidirectional,
        dtype=torch.float64,
    )
    if mode == "rnn":
        kw["nonlinearity"] = nonlinearity
    theirs = TORCH_LAYERS[mode](ours.input_size, ours.hidden_size, **kw)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    return theirs


def _grads_ours(layer):
    return {n: p.grad for n, p in layer.named_parameters()}


def _grads_torch(layer):
    return {n: p.grad.numpy() for n, p in layer.named_parameters()}


def _assert_close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    err = np.max(np.abs(a - b)) if a.size else 0.0
    assert err <= TOL, f"{what}: max |difference| {err:.3g} > {TOL}"


CONFIGS = [
    # mode, num_layers, bidirectional, bias, batch_first, unbatched, nonlinearity
    ("rnn", 1, False, True, False, False, "tanh"),
    ("rnn", 2, True, True, False, False, "relu"),
    ("rnn", 1, False, False, True, False, "tanh"),
    ("rnn", 2, False, True, False, True, "tanh"),
    ("gru", 1, False, True, False, False, "tanh"),
    ("gru", 2, True, True, True, False, "tanh"),
    ("gru", 1, True, False, False, True, "tanh"),
    ("lstm", 1, False, True, False, False, "tanh"),
    ("lstm", 2, True, True, False, False, "tanh"),
    ("lstm", 2, False, False, True, False, "tanh"),
    ("lstm", 1, True, True, False, True, "tanh"),
]


@pytest.mark.parametrize("mode,L,bidir,bias,batch_first,unbatched,nl", CONFIGS)
def test_outputs_and_all_gradients_match_torch_nn(mode, L, bidir, bias, batch_first, unbatched, nl):
    T, B, I, H = 5, 3, 4, 6
    ours = _make(mode, I, H, L, bias, batch_first, bidir, nl, seed=1)
    theirs = _torch_twin(mode, ours, nl)
    D = 2 if bidir else 1
    rng = np.random.default_rng(2)
    if unbatched:
        x_np, s_shape, o_shape = rng.standard_normal((T, I)), (L * D, H), (T, D * H)
    else:
        x_np = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
        s_shape, o_shape = (L * D, B, H), ((B, T, D * H) if batch_first else (T, B, D * H))
    h0_np, c0_np = rng.standard_normal(s_shape), rng.standard_normal(s_shape)
    w_out, w_h, w_c = rng.standard_normal(o_shape), rng.standard_normal(s_shape), rng.standard_normal(s_shape)

    x, h0, c0 = (mg.Tensor(a.copy(), requires_grad=True) for a in (x_np, h0_np, c0_np))
    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x_np, h0_np, c0_np))
    if mode == "lstm":
        out, (h_n, c_n) = ours(x, (h0, c0))
        out_t, (h_n_t, c_n_t) = theirs(xt, (h0t, c0t))
        loss = (out * w_out).sum() + (h_n * w_h).sum() + (c_n * w_c).sum()
        loss_t = (out_t * torch.from_numpy(w_out)).sum() + (h_n_t * torch.from_numpy(w_h)).sum()
        loss_t = loss_t + (c_n_t * torch.from_numpy(w_c)).sum()
        _assert_close(c_n.data, c_n_t.detach().numpy(), "c_n")
    else:
        out, h_n = ours(x, h0)
        out_t, h_n_t = theirs(xt, h0t)
        loss = (out * w_out).sum() + (h_n * w_h).sum()
        loss_t = (out_t * torch.from_numpy(w_out)).sum() + (h_n_t * torch.from_numpy(w_h)).sum()
    _assert_close(out.data, out_t.detach().numpy(), "out")
    _assert_close(h_n.data, h_n_t.detach().numpy(), "h_n")

    loss.backward()
    loss_t.backward()
    ours_g, theirs_g = _grads_ours(ours), _grads_torch(theirs)
    assert ours_g.keys() == theirs_g.keys()
    for name in ours_g:
        _assert_close(ours_g[name], theirs_g[name], f"d loss / d {name}")
    _assert_close(x.grad, xt.grad.numpy(), "dx")
    _assert_close(h0.grad, h0t.grad.numpy(), "dh0")
    if mode == "lstm":
        _assert_close(c0.grad, c0t.grad.numpy(), "dc0")


def _torch_truncated(mode, sd, x, h0, c0, L, D, H, k, nonlinearity="tanh"):
    """Time-major torch loop over cells, detaching the carried state after steps k, 2k, …
    Returns out, h_n and the cells by tag ("l0", "l0_reverse", …) holding the parameter grads."""
    T = x.shape[0]
    bias = "bias_ih_l0" in sd
    inp, h_n, cells = x, [], {}
    for layer in range(L):
        outs = []
        for d in range(D):
            tag = f"l{layer}_reverse" if d else f"l{layer}"
            kw = dict(bias=bias, dtype=torch.float64)
            if mode == "rnn":
                kw["nonlinearity"] = nonlinearity
            cell = cells[tag] = TORCH_CELLS[mode](inp.shape[-1], H, **kw)
            names = [n for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if f"{n}_{tag}" in sd]
            cell.load_state_dict({n: torch.from_numpy(sd[f"{n}_{tag}"]) for n in names})
            j = layer * D + d
            h, c = h0[j], (c0[j] if c0 is not None else None)
            hs = []
            order = range(T - 1, -1, -1) if d else range(T)  # the reverse direction counts its own steps
            for t, i in enumerate(order, start=1):
                if mode == "lstm":
                    h, c = cell(inp[i], (h, c))
                else:
                    h = cell(inp[i], h)
                hs.append(h)
                if t % k == 0:  # the torch way of fixed-window truncation
                    h = h.detach()
                    c = c.detach() if c is not None else None
            h_n.append(hs[-1])
            outs.append(torch.stack(hs[::-1] if d else hs))
        inp = outs[0] if D == 1 else torch.cat(outs, dim=-1)
    return inp, torch.stack(h_n), cells


@pytest.mark.parametrize(
    "mode,L,bidir,k,nl",
    [
        ("rnn", 1, False, 2, "tanh"),
        ("rnn", 2, True, 3, "relu"),
        ("gru", 1, False, 2, "tanh"),
        ("gru", 2, True, 4, "tanh"),
        ("lstm", 1, False, 3, "tanh"),
        ("lstm", 2, True, 2, "tanh"),
    ],
)
def test_truncate_k_matches_torch_loop_that_detaches_every_k_steps(mode, L, bidir, k, nl):
    T, B, I, H = 7, 2, 3, 4
    D = 2 if bidir else 1
    ours = _make(mode, I, H, L, bidirectional=bidir, nonlinearity=nl, seed=3)
    sd = ours.state_dict()
    rng = np.random.default_rng(4)
    x_np = rng.standard_normal((T, B, I))
    h0_np, c0_np = rng.standard_normal((L * D, B, H)), rng.standard_normal((L * D, B, H))
    w_out, w_h = rng.standard_normal((T, B, D * H)), rng.standard_normal((L * D, B, H))

    x, h0, c0 = (mg.Tensor(a.copy(), requires_grad=True) for a in (x_np, h0_np, c0_np))
    if mode == "lstm":
        out, (h_n, _) = ours(x, (h0, c0), truncate=k)
    else:
        out, h_n = ours(x, h0, truncate=k)
    ((out * w_out).sum() + (h_n * w_h).sum()).backward()

    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x_np, h0_np, c0_np))
    out_t, h_n_t, cells = _torch_truncated(mode, sd, xt, h0t, c0t if mode == "lstm" else None, L, D, H, k, nl)
    ((out_t * torch.from_numpy(w_out)).sum() + (h_n_t * torch.from_numpy(w_h)).sum()).backward()

    _assert_close(out.data, out_t.detach().numpy(), "out")
    _assert_close(h_n.data, h_n_t.detach().numpy(), "h_n")
    _assert_close(x.grad, xt.grad.numpy(), "dx")
    _assert_close(h0.grad, h0t.grad.numpy(), "dh0")
    if mode == "lstm":
        _assert_close(c0.grad, c0t.grad.numpy(), "dc0")
    for tag, cell in cells.items():
        for n, p in cell.named_parameters():
            _assert_close(getattr(ours, f"{n}_{tag}").grad, p.grad.numpy(), f"d loss / d {n}_{tag}")


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_state_dict_moves_to_torch_and_back_unchanged(mode):
    ours = _make(mode, 3, 5, num_layers=2, bidirectional=True, seed=7)
    theirs = _torch_twin(mode, ours)  # strict load: same names and shapes
    back = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    assert list(back) == list(ours.state_dict())
    fresh = _make(mode, 3, 5, num_layers=2, bidirectional=True, seed=8)
    fresh.load_state_dict(back)
    for k, v in ours.state_dict().items():
        assert np.array_equal(fresh.state_dict()[k], v), k


@pytest.mark.parametrize("mode", ["rnn", "gru", "lstm"])
def test_cells_match_torch_cells(mode):
    B, I, H = 3, 4, 5
    ours = {"rnn": models.RNNCell, "gru": models.GRUCell, "lstm": models.LSTMCell}[mode](I, H, rng=0)
    theirs = TORCH_CELLS[mode](I, H, dtype=torch.float64)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    rng = np.random.default_rng(1)
    x_np, h_np, c_np = rng.standard_normal((B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    x, h, c = (mg.Tensor(a.copy(), requires_grad=True) for a in (x_np, h_np, c_np))
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x_np, h_np, c_np))
    if mode == "lstm":
        h1, c1 = ours(x, (h, c))
        h1t, c1t = theirs(xt, (ht, ct))
        (h1.sum() + (c1 * c1).sum()).backward()
        (h1t.sum() + (c1t * c1t).sum()).backward()
        _assert_close(c.grad, ct.grad.numpy(), "dc")
    else:
        h1 = ours(x, h)
        h1t = theirs(xt, ht)
        (h1 * h1).sum().backward()
        (h1t * h1t).sum().backward()
    _assert_close(h1.data, h1t.detach().numpy(), "h'")
    _assert_close(x.grad, xt.grad.numpy(), "dx")
    _assert_close(h.grad, ht.grad.numpy(), "dh")
    for n, p in ours.named_parameters():
        _assert_close(p.grad, dict(theirs.named_parameters())[n].grad.numpy(), n)


def test_float32_layer_agrees_with_torch_float32():
    ours = models.LSTM(3, 4, rng=0, dtype=np.float32)
    theirs = torch.nn.LSTM(3, 4)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32)
    out, _ = ours(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, theirs(torch.from_numpy(x))[0].detach().numpy(), atol=1e-5)
