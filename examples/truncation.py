"""Truncated BPTT: a reach shorter than the dependency cannot learn it; randomized truncation can.

Two things are called "window k" in the literature, and they differ:

* ``truncate=k`` (used here, "blocks of k"): the state is detached after steps k, 2k, …; a loss
  at step t reaches back (t − 1) mod k steps, anything from 0 to k − 1 depending on where t
  falls in its block;
* the lecture notes' sliding window of k steps: every loss reaches back exactly k − 1 steps
  (k states). That is ``models.tbptt_train(k1=1, k2=k)``: one update per step, each
  backpropagated through the last k steps (examples/truncation_bias.py measures both).

The task: a sequence of T noise symbols hides one key symbol (one of K) at a random step s; at
step s + D a query marker appears and the model must answer the key. Only the query step has a
loss, L = −log p(key | x_≤s+D), so the gradient must travel D steps back, from the query to the
key, through the recurrent state:

    ∂L/∂(what is stored at step s) = (∂h_{s+D}/∂h_{s+D−1} ⋯ ∂h_{s+1}/∂h_s)ᵀ δh_{s+D}

The GRU starts with its update gate mostly closed (bias +3), so that at initialisation the
state, and the gradient, survive 30 steps. Truncation cuts that product. The same GRU is
trained five ways (``truncate=`` of models.GRU):

* full BPTT (no cut);
* blocks of k = 5 and k = 20 (``truncate=k``: state detached after steps k, 2k, …): a loss at
  step t reaches back at most k − 1 steps, never the D = 30 it needs — these cannot learn the task;
* blocks of k = 40: the gradient reaches 30 back whenever the query falls late enough in
  its block (a quarter of the time), which is enough;
* randomized truncation, p = 0.95 (``models.RandomTruncation``): after each step keep the path
  with probability p and scale its gradient by 1/p, cut it otherwise. Its mean window is
  1/(1 − p) = 20 steps, like k = 20, but the gradient is unbiased: E[Π_j b_j/p] = 1, so on
  average it equals full BPTT; a 30-step path survives with probability 0.95³⁰ ≈ 0.21 and is
  then weighted 1/0.21 ≈ 4.6.

The forward pass is the same in all five; only the gradient differs. The script prints the test
accuracy (chance = 1/K) and the cost of each: seconds per update, the nodes the backward visits
(one VJP each) and how many of them carry a nonzero gradient.

    python examples/truncation.py            # 5-10 min on 2 cores
    python examples/truncation.py --quick
"""

from __future__ import annotations

import time

import _common
import numpy as np

import minigrad as mg
import models


def make_batch(rng: np.random.Generator, B: int, T: int, D: int, K: int, noise: int):
    """One-hot inputs (T, B, K + noise + 1), query steps q (B,) and answers (B,).

    Symbols: 0..K−1 keys, K..K+noise−1 noise, K+noise the query marker.
    """
    V = K + noise + 1
    sym = rng.integers(K, K + noise, (T, B))  # noise everywhere
    s = rng.integers(0, T - D, B)  # the key's step
    key = rng.integers(0, K, B)
    rows = np.arange(B)
    sym[s, rows] = key
    q = s + D  # the query D steps later
    sym[q, rows] = K + noise
    return np.eye(V)[sym], q, key


class Recall(mg.nn.Module):
    def __init__(self, V: int, hidden: int, K: int, rng: np.random.Generator):
        super().__init__()
        self.rnn = models.GRU(V, hidden, rng=rng)
        # update gate z (gates r, z, n) starts near σ(3) ≈ 0.95: h_t ≈ h_{t−1}, so a gradient survives 30 steps
        # at init (≈ 0.96³⁰ ≈ 0.3 instead of ≈ 0.65³⁰ ≈ 1e-6 with the default init; see vanishing_gradients.py)
        self.rnn.bias_ih_l0.data[hidden : 2 * hidden] += 3.0
        self.head = models.Readout(hidden, K, rng=rng)

    def logits(self, x: np.ndarray, q: np.ndarray, truncate=None) -> mg.Tensor:
        out, _ = self.rnn(x, truncate=truncate)  # (T, B, H)
        h_q = out[q, np.arange(len(q))]  # the state at each row's query step, (B, H)
        return self.head(h_q)


def train(name: str, truncate_factory, args) -> dict:
    rng = np.random.default_rng(args.seed)
    V = args.keys + args.noise + 1
    model = Recall(V, args.hidden, args.keys, rng)
    opt = mg.optim.Adam(model.parameters(), lr=args.lr)
    x_test, q_test, key_test = make_batch(np.random.default_rng(args.seed + 1000), args.test, args.T, args.D,
                                          args.keys, args.noise)  # fmt: skip
    accs, steps, t_update, vjps = [], [], 0.0, []
    with _common.Progress(args.steps, f"{name:14}", "step") as bar:
        for step in range(1, args.steps + 1):
            x, q, key = make_batch(rng, args.batch, args.T, args.D, args.keys, args.noise)
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = mg.cross_entropy(model.logits(x, q, truncate_factory()), key)  # L = −log p(key)
            if step % 10 == 1:  # count the backward's work on this update
                nodes = mg.tape(loss)  # every node the backward visits: one VJP each
                with mg.record_grad_norms():
                    loss.backward()
                vjps.append((len(nodes), sum(1 for n in nodes if n.grad_norm)))  # (all, nonzero gradient)
            else:
                loss.backward()
            mg.optim.clip_grad_norm_(opt.params, args.clip)
            opt.step()
            t_update += time.perf_counter() - t0
            if step % args.eval_every == 0 or step == args.steps:
                with mg.no_grad():
                    pred = model.logits(x_test, q_test).data.argmax(axis=1)
                accs.append(float((pred == key_test).mean()))
                steps.append(step)
            bar.update(1, loss=round(loss.item(), 3), test_acc=accs[-1] if accs else 0.0)
    return {"steps": steps, "accs": accs, "s_per_update": t_update / args.steps, "vjps": np.mean(vjps, axis=0)}


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--T", type=int, default=48, help="sequence length")
    p.add_argument("--D", type=int, default=30, help="steps between the key and the query")
    p.add_argument("--keys", type=int, default=4, help="K key symbols (chance accuracy 1/K)")
    p.add_argument("--noise", type=int, default=4, help="noise symbols")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--p", type=float, default=0.95, help="randomized truncation: keep probability")
    p.add_argument(
        "--windows", type=int, nargs="+", default=[5, 20, 40], help="truncate=k: detach after steps k, 2k, …"
    )
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--test", type=int, default=500)
    args = p.parse_args(argv)
    if args.quick:
        args.T, args.D, args.hidden, args.batch, args.steps, args.eval_every, args.test = 12, 6, 8, 8, 10, 5, 40
        args.windows = [2, 8]
    rng_trunc = np.random.default_rng(args.seed + 7)
    runs = {"full BPTT": lambda: None}
    for k in args.windows:
        runs[f"truncate={k}"] = lambda k=k: k
    runs[f"random p={args.p}"] = lambda: models.RandomTruncation(args.p, rng_trunc)
    longest = {"full BPTT": f"{args.T - 1}"}  # the longest gradient path back from a loss, in steps
    for k in args.windows:
        longest[f"truncate={k}"] = (
            f"0..{k - 1}"  # cuts after steps k, 2k, …: (t − 1) mod k back, never further than k − 1
        )
    longest[f"random p={args.p}"] = f"{args.T - 1} (P = p^n)"  # n steps back survive with probability p^n

    chance = 1 / args.keys
    print(f"recall a key {args.D} steps back (T = {args.T}, chance accuracy {chance:.2f}), GRU H={args.hidden}")
    results = {name: train(name, factory, args) for name, factory in runs.items()}
    print(
        f"\n{'training':16} {'test accuracy':>13} {'ms/update':>10} {'VJPs/update':>12} {'nonzero':>8} {'longest path':>14}  verdict"
    )
    for name, r in results.items():
        acc = r["accs"][-1]
        verdict = "learns it" if acc > 0.9 else "fails (near chance)" if acc < chance + 0.15 else "partly"
        print(
            f"{name:16} {acc:13.3f} {1000 * r['s_per_update']:10.1f} {r['vjps'][0]:12.0f} {r['vjps'][1]:8.0f} "
            f"{longest[name]:>14}  {verdict}"
        )
    print(
        f"The task needs a path of {args.D} steps. VJPs/update: nodes the backward visits; nonzero: those whose "
        "gradient is not all zeros. Inside one unroll the backward still visits the cut-off steps (the output "
        "stack hands them zero gradients), so truncation saves little time here; its saving is memory when "
        f"streaming: a block of k keeps k steps, the randomized one on average 1/(1 − p) = {1 / (1 - args.p):.0f}."
    )
    print(
        "truncate=k cuts after steps k, 2k, …, so a loss reaches back 0..k−1 steps (its place in the block); "
        "the notes' sliding window of k (every loss k−1 steps back) is models.tbptt_train(k1=1, k2=k)."
    )
    plot(results, chance, args)


def plot(results: dict, chance: float, args) -> None:
    plt = _common.pyplot()
    if plt is None:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [2, 1]})
    for name, r in results.items():
        ax1.plot(r["steps"], r["accs"], label=name, lw=2 if "random" in name else 1.5)
    ax1.axhline(chance, color="grey", ls="--", lw=1, label="chance")
    ax1.set(xlabel="training step", ylabel="test accuracy", ylim=(0, 1.02))
    ax1.set_title(f"recall a key {args.D} steps back: which truncation learns it")
    ax1.legend(fontsize=8)
    names = list(results)
    ax2.barh(names, [results[n]["vjps"][0] for n in names], color="lightgray", label="visited by backward")
    ax2.barh(names, [results[n]["vjps"][1] for n in names], color="tab:gray", label="with a nonzero gradient")
    ax2.set(xlabel="nodes per update (one VJP each)", title="backward work")
    ax2.legend(fontsize=8, loc="lower right")
    ax2.invert_yaxis()
    _common.save_figure(fig, args.out / "truncation.png")


if __name__ == "__main__":
    main()
