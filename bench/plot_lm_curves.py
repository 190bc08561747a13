#!/usr/bin/python3
"""Draws language-model learning curves from JSON-lines reports (`recur train --json`,
bench/torch_char_lm.py) side by side: validation loss (solid, dots) and training loss (thin, faded)
against minutes of training (or tokens, or steps) into a PNG. Lines that are not JSON objects are skipped.

Usage: plot_lm_curves.py RUN.jsonl RUN2.jsonl [...] [--labels recur,torch] [--x seconds|tokens|step]
                         [--target 1.45] [--ymax 2.5] [--out curves.png] [--title TEXT]
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_reports(path):
    reports = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and "step" in r:
                reports.append(r)
    return reports


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+", help="JSON-lines report files, one per run")
    p.add_argument("--labels", default="", help="comma-separated legend names (default: file names)")
    p.add_argument("--x", default="seconds", choices=["seconds", "tokens", "step"])
    p.add_argument("--target", type=float, default=0, help="draw a horizontal line at this loss")
    p.add_argument("--ymax", type=float, default=0, help="upper limit of the loss axis (0: automatic)")
    p.add_argument("--title", default="character language model: loss (nats per character)")
    p.add_argument("--out", default="lm_curves.png")
    o = p.parse_args()
    labels = [s for s in o.labels.split(",") if s] if o.labels else []
    if labels and len(labels) != len(o.files):
        p.error(f"{len(labels)} labels for {len(o.files)} files")
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    scale = 60.0 if o.x == "seconds" else 1.0
    for i, path in enumerate(o.files):
        label = labels[i] if labels else os.path.splitext(os.path.basename(path))[0]
        reports = read_reports(path)
        if not reports:
            raise SystemExit(f"{path}: no JSON reports with a 'step'")
        color = f"C{i}"
        train = [(r[o.x] / scale, r["loss"]) for r in reports if "loss" in r and r.get("event") != "done"]
        valid = [(r[o.x] / scale, r["valid_loss"]) for r in reports if "valid_loss" in r]
        if train:
            ax.plot(*zip(*train), color=color, alpha=0.35, linewidth=0.8, label=f"{label} train")
        if valid:
            ax.plot(*zip(*valid), color=color, marker="o", markersize=3, linewidth=1.8, label=f"{label} valid")
            x, y = valid[-1]
            ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(4, 4), color=color, fontsize=8)
    if o.target > 0:
        ax.axhline(o.target, color="gray", linestyle="--", linewidth=0.8, label=f"target {o.target}")
    if o.ymax > 0:
        ax.set_ylim(top=o.ymax)
    ax.set_xlabel({"seconds": "minutes of training", "tokens": "tokens seen", "step": "updates"}[o.x])
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(o.title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(o.out)
    print(o.out)


if __name__ == "__main__":
    main()
