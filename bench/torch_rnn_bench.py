#!/usr/bin/python3
"""PyTorch side of recur's RNN benchmark (bench/rnn_bench.cpp spawns it; it also runs alone).

Times nn.LSTM / nn.GRU / nn.RNN (tanh) on the benchmark's shapes at whatever thread setting the
environment gives: the caller sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS before this process
starts, because both libraries read them once, when torch is imported.

  infer  forward under torch.no_grad() over the whole sequence
  train  forward + backward of y.sum() (one training step; gradients set to None between steps)
  step   one time step per call (x [1, B, I]) with the state carried, under no_grad; time per step

Prints one JSON object per line: case, cell, mode, impl ("torch"), setting, threads, ms (median
over repeats, per step in step mode), min_ms, max_ms, repeats, torch_threads. Weights are PyTorch's
own default draw (uniform in +-1/sqrt(H), the same distribution as recur's); timings do not depend
on the values.

Usage: torch_rnn_bench.py --cases NAME:MODE:I:H:L:B:T,... --cells lstm,gru,rnn
                          [--repeats 10] [--warmup 2] [--max-seconds 5] [--threads 2] [--setting best]
"""
import argparse
import json
import os
import statistics
import sys
import time


def parse_case(token):
    name, mode, i, h, layers, b, t = token.split(":")
    return dict(name=name, mode=mode, input=int(i), hidden=int(h), layers=int(layers), batch=int(b), steps=int(t))


def make_module(torch, cell, case):
    kinds = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
    if cell not in kinds:
        return None
    return kinds[cell](case["input"], case["hidden"], num_layers=case["layers"])


def make_unit(torch, module, cell, case):
    """The function one repeat times, and how many units (steps) it covers."""
    mode, batch = case["mode"], case["batch"]
    if mode == "step":
        x = torch.rand(1, batch, case["input"]) * 2 - 1
        zeros = torch.zeros(case["layers"], batch, case["hidden"])
        state = [(zeros, zeros.clone()) if cell == "lstm" else zeros]

        def run_steps():
            with torch.no_grad():
                for _ in range(case["steps"]):
                    _, state[0] = module(x, state[0])

        return run_steps, case["steps"]
    x = torch.rand(case["steps"], batch, case["input"]) * 2 - 1
    if mode == "infer":

        def infer():
            with torch.no_grad():
                module(x)

        return infer, 1
    x.requires_grad_(True)

    def train():
        for p in module.parameters():
            p.grad = None
        x.grad = None
        y, _ = module(x)
        y.sum().backward()

    return train, 1


def time_unit(unit, units, warmup, repeats, max_seconds):
    for _ in range(warmup):
        unit()
    times = []
    start = time.perf_counter()
    while len(times) < repeats:
        t0 = time.perf_counter()
        unit()
        times.append((time.perf_counter() - t0) * 1e3 / units)
        if len(times) >= 3 and time.perf_counter() - start > max_seconds:
            break
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", required=True)
    parser.add_argument("--cells", default="lstm,gru,rnn")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=0, help="label for the JSON (the caller's setting)")
    parser.add_argument("--setting", default="default", help="label: default or best")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    try:
        import torch
    except Exception as e:  # no torch: say so in one line, the caller goes on without it
        print(json.dumps({"kind": "error", "error": "cannot import torch: %s" % e}), flush=True)
        return 3
    torch.manual_seed(args.seed)
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    print(json.dumps({"kind": "info", "impl": "torch", "setting": args.setting, "threads": args.threads,
                      "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(), "env": env}),
          flush=True)
    for cell in args.cells.split(","):
        for token in args.cases.split(","):
            case = parse_case(token)
            module = make_module(torch, cell, case)
            if module is None:
                continue
            unit, units = make_unit(torch, module, cell, case)
            times = time_unit(unit, units, args.warmup, args.repeats, args.max_seconds)
            print(json.dumps({"kind": "time", "case": case["name"], "cell": cell, "mode": case["mode"],
                              "impl": "torch", "setting": args.setting, "threads": args.threads,
                              "ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
                              "repeats": len(times), "torch_threads": torch.get_num_threads()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
