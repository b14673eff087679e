"""A character-level language model on Shakespeare, trained with truncated BPTT.

The model reads the text one character at a time and predicts the next one:

    e_t = E[x_t]                                  embedding (or a one-hot vector, --input onehot)
    h_t = LSTM(e_t, h_{t−1})                      (or GRU, or a tanh RNN: --model)
    p(x_{t+1} | x_≤t) = softmax(W_hy h_t + b_y)
    L = −(1/(T·B)) Σ_t Σ_b log p(x_{t+1} | x_≤t)     nats per character

The training text is cut into B parallel streams (one per batch row). Each update reads the
next seq_len characters of every stream: truncated BPTT with k1 = k2 = seq_len. The hidden
state is carried from one chunk to the next, so the model sees an unbroken text, but it is
detached first (``state = models.detach_state(state)``): the gradient stops at the chunk
boundary, and the graph of the previous chunk can be freed. Adam, global gradient-norm
clipping, a validation split (the last 10% of the text), periodic samples, a loss-curve PNG,
and checkpoints (.npz: parameters, Adam moments, step, stream position, carried state and
history, written atomically) that resume to exactly the same losses.

For speed the model computes in float32 (``--float64`` for float64): a char-RNN does not need
the precision, and float32 matrix products are about twice as fast.

    python examples/char_rnn.py --minutes 15                 # LSTM, H=256
    python examples/char_rnn.py --model gru --hidden 256
    python examples/char_rnn.py --resume --minutes 30        # continue from the checkpoint
    python examples/char_rnn.py --quick                      # a few seconds: smoke test

Set OMP_NUM_THREADS to the number of free cores (the matrix products are most of the time).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import _common
import numpy as np

import minigrad as mg
import models

DATA = Path(__file__).resolve().parent / "data" / "tinyshakespeare.txt"


# ----------------------------------------------------------------------------- data
class Corpus:
    """The text as integer ids, a vocabulary, and a train/validation split (the last part is validation)."""

    def __init__(self, text: str, val_fraction: float = 0.1, chars: str | None = None):
        self.chars = chars if chars is not None else "".join(sorted(set(text)))
        self.index = {c: i for i, c in enumerate(self.chars)}
        unknown = set(text) - set(self.index)
        if unknown:
            raise ValueError(f"the text has characters outside the checkpoint's vocabulary: {sorted(unknown)[:10]}")
        ids = np.array([self.index[c] for c in text], dtype=np.int64)
        n_val = int(len(ids) * val_fraction)
        self.train, self.val = ids[: len(ids) - n_val], ids[len(ids) - n_val :]

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)


class Streams:
    """B parallel streams over a text: chunk k holds characters [k·T, (k+1)·T] of every stream.

    ``next()`` gives (x, y, new_epoch): inputs x (T, B) and next-character targets y (T, B).
    At the end of the streams it starts again from the beginning (new_epoch=True: reset state).
    """

    def __init__(self, ids: np.ndarray, batch: int, seq_len: int, pos: int = 0):
        length = (len(ids) - 1) // batch
        if length < seq_len + 1:
            raise ValueError(f"text of {len(ids)} characters is too short for {batch} streams of {seq_len + 1}")
        self.x = ids[: batch * length].reshape(batch, length)
        self.y = ids[1 : batch * length + 1].reshape(batch, length)
        self.seq_len, self.pos = seq_len, pos

    def next(self) -> tuple[np.ndarray, np.ndarray, bool]:
        new_epoch = self.pos + self.seq_len > self.x.shape[1]
        if new_epoch:
            self.pos = 0
        s = slice(self.pos, self.pos + self.seq_len)
        self.pos += self.seq_len
        return self.x[:, s].T, self.y[:, s].T, new_epoch


# ----------------------------------------------------------------------------- model
class CharModel(mg.nn.Module):
    """Embedding (or one-hot) → RNN/GRU/LSTM layers → per-step readout to vocabulary logits."""

    LAYERS = {"rnn": models.RNN, "gru": models.GRU, "lstm": models.LSTM}

    def __init__(self, vocab: int, kind: str, hidden: int, layers: int, embed: int, onehot: bool, dtype, rng):
        super().__init__()
        self.vocab, self.kind, self.onehot, self.dtype = vocab, kind, onehot, dtype
        if not onehot:
            self.embed = mg.nn.Embedding(vocab, embed, rng=rng, dtype=dtype)
        width = vocab if onehot else embed
        self.rnn = self.LAYERS[kind](width, hidden, num_layers=layers, rng=rng, dtype=dtype)
        self.head = models.Readout(hidden, vocab, rng=rng, dtype=dtype)

    def forward(self, ids: np.ndarray, state=None):
        """ids (T, B) → logits (T, B, V) and the new state (h_n, or (h_n, c_n) for the LSTM)."""
        x = mg.one_hot(ids, self.vocab, dtype=self.dtype) if self.onehot else self.embed(ids)
        out, state = self.rnn(x, state)
        return self.head(out), state


def _train_step(model: CharModel, opt):
    """Forward, loss and backward of one window as a function of Tensors, for ``mg.compile``:
    step(x, y, *state) -> (loss, *new state)."""

    def step(x, y, *state):
        opt.zero_grad()
        logits, new = model(x, state[0] if len(state) == 1 else (tuple(state) or None))
        loss = models.sequence_cross_entropy(logits, y)
        loss.backward()
        return (loss, *(new if isinstance(new, tuple) else (new,)))

    return step


def evaluate(model: CharModel, ids: np.ndarray, batch: int, seq_len: int, max_chars: int) -> float:
    """Mean validation loss (nats/char) over the first ``max_chars`` characters, state carried."""
    ids = ids[: max_chars + 1]
    batch = max(1, min(batch, (len(ids) - 1) // (seq_len + 1)))
    streams = Streams(ids, batch, seq_len)
    total, n, state = 0.0, 0, None
    with mg.no_grad():
        for _ in range(streams.x.shape[1] // seq_len):
            x, y, _ = streams.next()
            logits, state = model(x, state)
            total += models.sequence_cross_entropy(logits, y).item() * y.size
            n += y.size
    return total / n


def sample(model: CharModel, corpus: Corpus, n: int, temperature: float, rng, prompt: str = "\n") -> str:
    """Generate n characters after ``prompt``, drawing from softmax(logits / temperature)."""
    out, state = [], None
    with mg.no_grad():
        ids = np.array([[corpus.index[c]] for c in prompt])  # (T, 1)
        for _ in range(n):
            logits, state = model(ids, state)
            z = logits.data[-1, 0].astype(np.float64) / temperature
            p = np.exp(z - z.max())
            nxt = int(rng.choice(len(p), p=p / p.sum()))
            out.append(nxt)
            ids = np.array([[nxt]])
    return prompt + corpus.decode(out)


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, model, opt, config: dict, progress: dict, state, history: dict) -> None:
    """One .npz (atomic): model.*, optim.*, the carried state, position, history and config."""
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    arrays |= {f"optim.{k}": v for k, v in opt.state_dict().items()}
    parts = state if isinstance(state, tuple) else (state,)
    arrays |= {f"state.{i}": s.data for i, s in enumerate(parts) if s is not None}
    arrays |= {f"progress.{k}": np.asarray(v) for k, v in progress.items()}
    arrays |= {f"history.{k}": np.asarray(v, dtype=np.float64) for k, v in history.items()}
    arrays["config"] = np.asarray(json.dumps(config))
    mg.save(arrays, path)


def load_checkpoint(path: Path) -> dict:
    d = mg.load(path)
    if "config" not in d:
        raise ValueError(f"{path} is not a char_rnn checkpoint (no 'config' entry)")
    pick = {
        group: {k[len(group) + 1 :]: v for k, v in d.items() if k.startswith(group + ".")}
        for group in ("model", "optim", "state", "progress", "history")
    }
    pick["config"] = json.loads(str(d["config"]))
    return pick


# ----------------------------------------------------------------------------- training
ARCH_KEYS = ("model", "hidden", "layers", "embed", "input", "float64", "chars")


def train(args) -> dict:
    text = DATA.read_text(encoding="utf-8")
    if args.text_chars:
        text = text[: args.text_chars]
    ckpt_path = args.checkpoint or args.out / f"char_rnn_{args.model}.npz"
    ckpt = load_checkpoint(ckpt_path) if args.resume and ckpt_path.exists() else None
    if args.resume and ckpt is None:
        print(f"no checkpoint at {ckpt_path}: starting from scratch")
    if ckpt is not None:  # the checkpoint decides the architecture and vocabulary
        for k in ARCH_KEYS:
            if k != "chars" and getattr(args, k) != ckpt["config"][k]:
                print(f"  --{k} {getattr(args, k)} ignored: the checkpoint has {ckpt['config'][k]}")
            if k != "chars":
                setattr(args, k, ckpt["config"][k])
    corpus = Corpus(text, args.val_fraction, chars=ckpt["config"]["chars"] if ckpt else None)
    dtype = np.float64 if args.float64 else np.float32
    rng = np.random.default_rng(args.seed)
    model = CharModel(
        len(corpus.chars), args.model, args.hidden, args.layers, args.embed, args.input == "onehot", dtype, rng
    )
    opt = mg.optim.Adam(model.parameters(), lr=args.lr)
    config = {k: getattr(args, k) for k in ARCH_KEYS if k != "chars"} | {"chars": corpus.chars}
    n_params = sum(p.size for p in model.parameters())
    streams = Streams(corpus.train, args.batch, args.seq_len)
    history = {k: [] for k in ("step", "train_loss", "time", "val_step", "val_loss", "val_time")}
    step, elapsed, state = 0, 0.0, None

    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optim"])
        step, elapsed = int(ckpt["progress"]["step"]), float(ckpt["progress"]["elapsed"])
        streams.pos = int(ckpt["progress"]["pos"])
        history = {k: list(v) for k, v in ckpt["history"].items()}
        parts = [mg.tensor(ckpt["state"][str(i)]) for i in range(len(ckpt["state"]))]
        state = None if not parts else (tuple(parts) if args.model == "lstm" else parts[0])
        val = evaluate(model, corpus.val, args.batch, args.seq_len, args.val_chars)
        was = history["val_loss"][-1] if history["val_loss"] else float("nan")
        print(
            f"resumed {ckpt_path} at step {step} ({elapsed / 60:.1f} min trained): "
            f"validation loss {val:.4f} (it was {was:.4f} when saved)"
        )

    print(
        f"{args.model.upper()} H={args.hidden} layers={args.layers} ({n_params:,} parameters, "
        f"{np.dtype(dtype).name}), vocabulary {len(corpus.chars)}, train {len(corpus.train):,} / "
        f"val {len(corpus.val):,} chars, batch {args.batch} × seq_len {args.seq_len} "
        f"(TBPTT k1 = k2 = {args.seq_len})"
    )
    budget = args.minutes * 60
    chars_per_step = args.batch * args.seq_len
    sample_rng = np.random.default_rng(args.seed + 1)
    run_start, next_eval = time.perf_counter() - elapsed, elapsed + args.eval_every
    next_save = elapsed + args.save_every
    smooth, train_time, train_chars = None, 0.0, 0
    compiled = mg.compile(_train_step(model, opt)) if args.compile else None
    bar = _common.Progress(args.steps, "train", "step")
    bar.n = step
    while (args.steps is None or step < args.steps) and elapsed < budget:
        t0 = time.perf_counter()
        x, y, new_epoch = streams.next()
        if new_epoch:
            state = None  # the streams start over: so does the state
        state = models.detach_state(state)  # carry the state, cut the gradient (k1 = k2 = seq_len)
        if compiled is not None:  # --compile: the same step, replayed by mg.compile
            x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)  # whole arrays: the replay reads them anew
            loss, *flat = compiled(x, y, *([] if state is None else state if isinstance(state, tuple) else [state]))
            state = flat[0] if len(flat) == 1 else tuple(flat)
        else:
            logits, state = model(x, state)
            loss = models.sequence_cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
        mg.optim.clip_grad_norm_(opt.params, args.clip)
        opt.step()
        step += 1
        lv = loss.item()
        smooth = lv if smooth is None else 0.98 * smooth + 0.02 * lv
        train_time += time.perf_counter() - t0
        train_chars += chars_per_step
        elapsed = time.perf_counter() - run_start
        history["step"].append(step)
        history["train_loss"].append(lv)
        history["time"].append(elapsed)
        bar.update(1, loss=round(smooth, 3), chars_s=int(train_chars / train_time), min=round(elapsed / 60, 1))
        last = (args.steps is not None and step >= args.steps) or elapsed >= budget
        if elapsed >= next_eval or last:
            next_eval = elapsed + args.eval_every
            val = evaluate(model, corpus.val, args.batch, args.seq_len, args.val_chars)
            elapsed = time.perf_counter() - run_start  # evaluation time counts
            history["val_step"].append(step)
            history["val_loss"].append(val)
            history["val_time"].append(elapsed)
            text = sample(model, corpus, args.sample_chars, args.temperature, sample_rng)
            print(f"\n[step {step}, {elapsed / 60:.1f} min] validation loss {val:.4f} nats/char\n{text}\n")
        if elapsed >= next_save or last:
            next_save = elapsed + args.save_every
            save_checkpoint(
                ckpt_path,
                model,
                opt,
                config,
                {"step": step, "pos": streams.pos, "elapsed": elapsed},
                models.detach_state(state),
                history,
            )
    bar.close()
    cps = train_chars / train_time if train_time else float("nan")
    print(f"checkpoint: {ckpt_path}")
    summary = {"step": step, "minutes": elapsed / 60, "chars_per_s": cps, "history": history}
    if history["val_loss"]:
        vals, times = np.array(history["val_loss"]), np.array(history["val_time"]) / 60
        summary["val_loss"] = float(vals[-1])
        speed = f"; {cps:,.0f} chars/s training" if train_time else ""
        print(
            f"final validation loss {vals[-1]:.4f} nats/char ({vals[-1] / math.log(2):.3f} bits/char) "
            f"after {step} steps, {elapsed / 60:.1f} min{speed}"
        )
        near10 = int(np.argmin(np.abs(times - 10)))
        below = np.flatnonzero(vals <= 1.9)
        first = f"; first ≤ 1.9 at {times[below[0]]:.1f} min" if below.size else ""
        print(f"validation loss at {times[near10]:.1f} min: {vals[near10]:.4f}{first}")
    plot(history, args.out / f"char_rnn_{args.model}.png", args.model)
    return summary


def plot(history: dict, path: Path, kind: str) -> None:
    plt = _common.pyplot()
    if plt is None or not history["step"]:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    t = np.array(history["time"]) / 60
    loss = np.array(history["train_loss"])
    w = max(1, len(loss) // 50)
    smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
    ax.plot(t, loss, color="tab:blue", alpha=0.2, lw=0.8)
    ax.plot(t[w - 1 :], smooth, color="tab:blue", label="train (running mean)")
    ax.plot(np.array(history["val_time"]) / 60, history["val_loss"], "o-", color="tab:red", label="validation")
    ax.axhline(1.9, color="grey", lw=0.8, ls="--", label="1.9 nats/char")
    ax.set(xlabel="minutes (wall clock, evaluation included)", ylabel="loss (nats/char)")
    ax.set_title(f"char-{kind.upper()} on tinyshakespeare")
    ax.set_ylim(top=min(4.5, float(loss.max()) + 0.1))
    ax.legend()
    _common.save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__)
    p.add_argument("--model", choices=["rnn", "gru", "lstm"], default="lstm")
    p.add_argument("--input", choices=["embedding", "onehot"], default="embedding")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--embed", type=int, default=64, help="embedding size (with --input embedding)")
    p.add_argument("--batch", type=int, default=32, help="parallel streams B")
    p.add_argument("--seq-len", type=int, default=64, help="characters per chunk = TBPTT window")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=5.0, help="max global gradient norm")
    p.add_argument(
        "--minutes", type=float, default=15.0, help="wall-clock budget (training time before a resume counts)"
    )
    p.add_argument("--steps", type=int, default=None, help="stop after this many updates (in total)")
    p.add_argument("--eval-every", type=float, default=60.0, help="seconds between validation + sample")
    p.add_argument("--save-every", type=float, default=120.0, help="seconds between checkpoints")
    p.add_argument("--val-chars", type=int, default=40_000, help="validation characters per evaluation")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--text-chars", type=int, default=0, help="use only the first N characters (0: all)")
    p.add_argument("--sample-chars", type=int, default=300)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--float64", action="store_true", help="compute in float64 instead of float32")
    p.add_argument("--compile", action="store_true", help="replay the training step with mg.compile (trace once)")
    p.add_argument("--checkpoint", type=Path, default=None, help="default: OUT/char_rnn_MODEL.npz")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
    args = p.parse_args(argv)
    if args.quick:
        args.hidden, args.embed, args.batch, args.seq_len = 32, 16, 4, 16
        args.text_chars, args.val_chars, args.sample_chars = 20_000, 2_000, 40
        args.steps = args.steps or 10
    return train(args)


if __name__ == "__main__":
    main()
