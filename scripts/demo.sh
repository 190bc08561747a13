#!/usr/bin/env bash
# Sets up and builds recur, then runs its main job on data the repository ships.
# Until training lands, the main job is interop: a 2-layer bidirectional nn.LSTM saved by PyTorch as a
# state_dict (examples/pytorch_lstm/, made by its make_example.py) runs in recur on three sequences of
# different lengths, and recur's output is checked against the output PyTorch computed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
example=examples/pytorch_lstm
mkdir -p out
echo "== recur inspect $example/model.safetensors"
build/tools/recur/recur inspect $example/model.safetensors
echo "== recur run: PyTorch's weights, a batch of 3 sequences of lengths 7, 4, 5"
build/tools/recur/recur run --model $example/model.safetensors --input $example/x.npy \
  --lengths $example/lengths.npy --h0 $example/h0.npy --c0 $example/c0.npy \
  --output out/y.npy --final-state out/final --expect $example/y_torch.npy --tolerance 1e-5 --show
