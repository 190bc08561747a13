#!/usr/bin/python3
"""PyTorch side of recur's language-model comparison (issue 4): the same character LSTM, data, budget
and schedule as `recur train --json`, in PyTorch 1.13 on the CPU.

What is mirrored from recur (tools/recur/train.cpp, tools/recur/language_data.cpp, src/train/*.cpp,
src/nn/language_model.cpp):
  tokens      Unicode code points of the UTF-8 file; the vocabulary is every code point of the training
              and the validation text, in code point order.
  split       the last --valid-fraction of the file's BYTES, the cut moved forward to a character start.
  batches     the training tokens cut into B contiguous streams of S = N // B tokens (the rest dropped);
              batch k of an epoch is tokens [kT, kT + T] of every stream, time-major (the last batch of
              an epoch may be shorter); S - 1 predicted tokens per stream per epoch. The state carries
              across batches without gradient (detach) and is zero at the start of every epoch.
  model       embedding (width min(64, V) unless --embedding; N(0, 1) as recur) -> dropout -> LSTM layers
              (PyTorch's init; dropout between layers) -> dropout -> linear (weight uniform
              +-1/sqrt(H), bias 0) -> cross-entropy, mean over the T*B tokens.
  update      global-norm clipping (norm in float64; scale max/norm when norm > max), then Adam
              (torch.optim.Adam is the same formula as recur's) at the schedule's rate.
  schedule    cosine from --lr to --min-lr over the run's progress = max(step / step limit,
              elapsed / (--minutes * 60)), clamped to [0, 1], evaluated before each update; the clock
              starts when the training loop starts (after data and model set-up) and validation time
              counts, as in recur. Optional linear warm-up (--warmup) as recur's.
  validation  every --valid-every updates and at the end (unless the last update just validated): the
              whole validation text cut into min(B, n // 2) streams, read T tokens at a time with the
              state carried, no dropout; the mean of the per-batch mean losses weighted by tokens.
  reports     one JSON object per line on stdout: event (progress / validation / skipped / done), step,
              epoch, tokens, seconds, learning_rate, tokens_per_second, loss (mean of the per-update
              losses since the previous report), valid_loss on validation reports. As in recur, the
              seconds of a validation report are taken before that validation runs.
  non-finite  an update with a non-finite loss or gradient norm is skipped and reported, the carried
              state reset; --max-bad-steps in a row stop the run.
Not mirrored: random numbers (weight init and dropout masks come from torch's generator, seeded with
--seed; recur uses its own mt19937_64), checkpoints and the sampling/curve files.

Threads: PyTorch's intra-op pool is set with --threads (torch.set_num_threads). Debian's torch calls the
OpenBLAS pthread build for its matrix products, which keeps its own pool sized from OPENBLAS_NUM_THREADS
(default: all cores), and libgomp reads OMP_NUM_THREADS; both are read once when the library loads, so
set them in the environment BEFORE python starts, e.g.
  OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/torch_char_lm.py --threads 2 ...
(--threads also calls openblas_set_num_threads through ctypes when it can; stderr says what it found.)
On this machine torch defaults to 1 intra-op thread, so give --threads explicitly.

Usage (the 30-minute side-by-side run):
  OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/torch_char_lm.py --threads 2 \
      --minutes 30 > torch_2x512.jsonl
"""
import argparse
import ctypes
import json
import math
import os
import re
import sys
import time

import torch


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="/work/main/data/tinyshakespeare.txt", help="training text, UTF-8")
    p.add_argument("--valid-fraction", type=float, default=0.1, help="share of --data held out")
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"], help="rnn is tanh")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embedding", type=int, default=0, help="embedding width (default min(64, vocabulary))")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--min-lr", type=float, default=0.0001, help="floor of the cosine schedule")
    p.add_argument("--schedule", default="cosine", choices=["cosine", "constant"])
    p.add_argument("--warmup", type=int, default=0, help="steps of linear learning-rate warm-up")
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--clip", type=float, default=5.0, help="global gradient-norm clip (0: none)")
    p.add_argument("--minutes", type=float, default=0, help="stop after M minutes")
    p.add_argument("--epochs", type=int, default=0, help="stop after N epochs")
    p.add_argument("--steps", type=int, default=0, help="stop after N updates")
    p.add_argument("--valid-every", type=int, default=250, help="updates between validations (0: end only)")
    p.add_argument("--report-every", type=int, default=50, help="updates between progress reports")
    p.add_argument("--max-bad-steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--init-from", default="", help="start from the weights of a recur checkpoint (same sizes)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    o = p.parse_args()
    if o.minutes == 0 and o.epochs == 0 and o.steps == 0:
        o.epochs = 1  # recur's default without a limit
    if not 0 <= o.valid_fraction < 1:
        p.error(f"--valid-fraction {o.valid_fraction} outside [0, 1)")
    if o.seq_len < 1 or o.batch < 1 or o.report_every < 1 or o.layers < 1 or not 0 <= o.dropout < 1:
        p.error("--seq-len, --batch, --report-every and --layers must be positive, --dropout in [0, 1)")
    if o.schedule == "cosine" and not 0 <= o.min_lr <= o.lr:
        p.error(f"--min-lr {o.min_lr} outside [0, --lr]")
    return o


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def set_threads(threads):
    if threads > 0:
        torch.set_num_threads(threads)
        # OpenBLAS (pthread build, already loaded by torch) keeps its own pool; resize it if we find it.
        maps = open(f"/proc/{os.getpid()}/maps").read()
        libs = sorted(set(re.findall(r"/\S*libopenblas\S*\.so\S*", maps)))
        for lib in libs:
            try:
                blas = ctypes.CDLL(lib)
                blas.openblas_set_num_threads(threads)
                log(f"openblas: {lib}: openblas_set_num_threads({threads}) -> {blas.openblas_get_num_threads()}")
            except (OSError, AttributeError) as e:
                log(f"openblas: {lib}: could not set threads ({e})")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        log(f"{name}={os.environ.get(name, '(not set)')}")
    log(f"torch {torch.__version__}: torch.get_num_threads() = {torch.get_num_threads()}, "
        f"interop {torch.get_num_interop_threads()}")
    info = torch.__config__.parallel_info().splitlines()
    keep = ("get_num", "omp_get_max", "backend", "MKL", "hardware_concurrency")
    log("parallel_info: " + "; ".join(line.strip() for line in info if any(k in line for k in keep)))


def split_text(data, fraction):
    """recur's split_text for characters: bytes [0, cut) train, [cut, end) validation."""
    if fraction == 0:
        return data, b""
    cut = math.floor(len(data) * (1 - fraction))
    while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # to the start of a character
        cut += 1
    return data[:cut], data[cut:]


def decode(raw, source):
    try:
        return raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        sys.exit(f"{source}: invalid UTF-8 at byte offset {e.start}: {e.reason}")


def load_tokens(o):
    with open(o.data, "rb") as f:
        data = f.read()
    if not data:
        sys.exit(f"{o.data}: the file is empty")
    train_raw, valid_raw = split_text(data, o.valid_fraction)
    train_text = decode(train_raw, o.data)
    valid_text = decode(valid_raw, o.data + " (validation part)")
    vocabulary = sorted(set(train_text) | set(valid_text))  # every code point seen, in code point order
    index = {c: i for i, c in enumerate(vocabulary)}
    return vocabulary, [index[c] for c in train_text], [index[c] for c in valid_text]


def make_model(o, vocab_size):
    nn = torch.nn

    class CharModel(nn.Module):
        def __init__(self):
            super().__init__()
            E = o.embedding if o.embedding > 0 else min(64, vocab_size)
            kinds = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
            self.embedding = nn.Embedding(vocab_size, E)
            self.drop = nn.Dropout(o.dropout)
            self.rnn = kinds[o.cell](E, o.hidden, o.layers, dropout=o.dropout if o.layers > 1 else 0.0)
            self.decoder = nn.Linear(o.hidden, vocab_size)
            with torch.no_grad():  # recur's initialisation (the LSTM keeps PyTorch's, which recur copies)
                bound = 1.0 / math.sqrt(o.hidden)
                self.decoder.weight.uniform_(-bound, bound)
                self.decoder.bias.zero_()

        def forward(self, x, state):  # x [T, B] -> logits [T * B, V]
            y, state = self.rnn(self.drop(self.embedding(x)), state)
            return self.decoder(self.drop(y).reshape(-1, y.shape[-1])), state

    return CharModel()


def zero_state(o, batch):
    h = torch.zeros(o.layers, batch, o.hidden)
    return (h, torch.zeros_like(h)) if o.cell == "lstm" else h


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def evaluate(model, o, tokens):
    """recur's evaluate_tokens: mean loss per predicted token, streams min(B, n // 2), state carried."""
    F = torch.nn.functional
    B = min(o.batch, len(tokens) // 2)
    S = len(tokens) // B
    data = torch.tensor(tokens[: B * S], dtype=torch.long).view(B, S)
    model.eval()
    state, total, count = zero_state(o, B), 0.0, 0
    with torch.no_grad():
        for p in range(0, S - 1, o.seq_len):
            T = min(o.seq_len, S - 1 - p)
            x, y = data[:, p : p + T].t(), data[:, p + 1 : p + 1 + T].t()
            logits, state = model(x, state)
            total += F.cross_entropy(logits, y.reshape(-1)).item() * T * B
            count += T * B
    model.train()
    return total / count


def clip_gradient_norm(parameters, max_norm):
    """recur's clip_gradient_norm: L2 norm over all gradients in float64; scale when above max_norm."""
    norm = math.sqrt(sum(torch.linalg.vector_norm(p.grad, 2, dtype=torch.float64).item() ** 2 for p in parameters))
    if max_norm > 0 and math.isfinite(norm) and norm > max_norm:
        scale = max_norm / norm
        for p in parameters:
            p.grad.mul_(scale)
    return norm


def learning_rate(o, step, progress):
    lr = o.lr
    if o.schedule == "cosine":
        x = min(max(progress, 0.0), 1.0)
        lr = o.min_lr + (lr - o.min_lr) * 0.5 * (1.0 + math.cos(math.pi * x))
    if step < o.warmup:
        lr *= (step + 1) / o.warmup
    return lr


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    o = parse_args()
    set_threads(o.threads)
    torch.manual_seed(o.seed)
    F = torch.nn.functional
    vocabulary, train, valid = load_tokens(o)
    V, B, T_max = len(vocabulary), o.batch, o.seq_len
    if len(train) < B * (T_max + 1):
        sys.exit(f"training text has {len(train)} tokens, fewer than one batch needs: {B} x ({T_max} + 1)")
    if len(valid) == 1:
        sys.exit("validation text has 1 token; it needs at least 2 (or none)")
    S = len(train) // B
    streams = torch.tensor(train[: B * S], dtype=torch.long).view(B, S)
    bpe = (S - 1 + T_max - 1) // T_max
    model = make_model(o, V)
    if o.init_from:  # recur's parameter names: embedding.weight, rnn.<field>_l<k>, decoder.weight/bias
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
        import safetensors_numpy
        tensors, _ = safetensors_numpy.load(o.init_from)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.from_numpy(tensors[name.replace("rnn.", "rnn.", 1)].copy()))
    parameters = list(model.parameters())
    optimizer = torch.optim.Adam(parameters, lr=o.lr, betas=(o.beta1, o.beta2), eps=1e-8)
    log(f"training {o.data}: {o.cell} {o.layers}x{o.hidden}, embedding {model.embedding.embedding_dim}, "
        f"vocabulary {V} chars, {len(train)} training / {len(valid)} validation tokens, {bpe} batches of "
        f"{B} x {T_max} per epoch, {sum(p.numel() for p in parameters)} parameters")

    step_limit = o.steps
    if o.epochs > 0 and (step_limit == 0 or o.epochs * bpe < step_limit):
        step_limit = o.epochs * bpe
    start = time.monotonic()
    elapsed = lambda: time.monotonic() - start

    def progress():
        p = step_limit and step / step_limit
        if o.minutes > 0:
            p = max(p, elapsed() / (o.minutes * 60))
        return min(p, 1.0)

    def report(event, loss=None):
        seconds = elapsed()
        r = {"event": event, "step": step, "epoch": epoch + 1, "tokens": tokens, "seconds": seconds,
             "learning_rate": learning_rate(o, step, progress()),
             "tokens_per_second": tokens / seconds if seconds > 0 else 0}
        if loss is not None and math.isfinite(loss):
            r["loss"] = loss
        return r

    def stop():
        return ((step_limit > 0 and step >= step_limit)
                or (o.minutes > 0 and elapsed() >= o.minutes * 60))

    step = epoch = batch_in_epoch = tokens = bad_in_row = 0
    loss_sum, loss_count, last_valid, validated_now = 0.0, 0, float("nan"), False
    state = zero_state(o, B)
    while not stop():
        if batch_in_epoch == bpe:  # a new epoch: from the streams' start, state zero
            epoch += 1
            batch_in_epoch = 0
            state = zero_state(o, B)
        p = batch_in_epoch * T_max
        T = min(T_max, S - 1 - p)
        x, y = streams[:, p : p + T].t(), streams[:, p + 1 : p + 1 + T].t()
        lr = learning_rate(o, step, progress())
        optimizer.zero_grad(set_to_none=False)
        logits, next_state = model(x, state)
        loss_t = F.cross_entropy(logits, y.reshape(-1))
        loss_t.backward()
        loss = loss_t.item()
        norm = clip_gradient_norm(parameters, o.clip)
        step += 1
        batch_in_epoch += 1
        tokens += T * B
        validated_now = False
        if not (math.isfinite(loss) and math.isfinite(norm)):
            state = zero_state(o, B)
            r = report("skipped")
            r["message"] = f"step {step} skipped: loss {loss:.4g}, gradient norm {norm:.4g}"
            emit(r)
            bad_in_row += 1
            if bad_in_row >= o.max_bad_steps:
                sys.exit(f"training stopped: {bad_in_row} updates in a row had a non-finite loss or gradient")
            continue
        bad_in_row = 0
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        state = detach(next_state)
        loss_sum += loss
        loss_count += 1
        validate_now = o.valid_every > 0 and len(valid) > 0 and step % o.valid_every == 0
        if step % o.report_every == 0 or validate_now:
            r = report("progress", loss_sum / loss_count if loss_count else None)
            if validate_now:
                r["event"] = "validation"
                r["valid_loss"] = last_valid = evaluate(model, o, valid)
                validated_now = True
            emit(r)
            loss_sum, loss_count = 0.0, 0

    r = report("done", loss_sum / loss_count if loss_count else None)
    if len(valid) > 0 and not validated_now:
        last_valid = evaluate(model, o, valid)
    if len(valid) > 0:
        r["valid_loss"] = last_valid
        r["valid_bits_per_char"] = last_valid / math.log(2)
        r["valid_perplexity"] = math.exp(last_valid)
    r.update(impl="torch", torch_version=torch.__version__, threads=torch.get_num_threads(),
             wall_seconds=elapsed(), epochs_done=step / bpe)
    emit(r)
    log(f"done: {step} updates, {tokens} tokens in {elapsed():.1f} s ({tokens / max(elapsed(), 1e-9):.0f} tok/s);"
        f" validation loss {last_valid:.4f} nats/char, {last_valid / math.log(2):.4f} bits/char")


if __name__ == "__main__":
    main()
