#!/usr/bin/env bash
# Sets up and builds recur, then runs its main job on the text the repository ships: a character-level
# LSTM language model trained on tiny-shakespeare (data/), then a sample of its text and its validation
# bits per character. RECUR_DEMO_MINUTES sets the training time (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
minutes=${RECUR_DEMO_MINUTES:-10}
recur=build/tools/recur/recur
echo "== recur train: a 2-layer LSTM on tiny-shakespeare, $minutes minutes (out: runs/shakespeare)"
mkdir -p runs
$recur train --data data/tinyshakespeare.txt --minutes "$minutes" --out runs/shakespeare | tee runs/shakespeare.log
echo "== recur sample --prime \"ROMEO:\""
$recur sample --model runs/shakespeare --prime "ROMEO:" --length 500 --temperature 0.8
echo
echo "== held-out last 10% of the text:"
grep "^validation:" runs/shakespeare.log | tail -1
echo "training curve: runs/shakespeare/curve.svg"
