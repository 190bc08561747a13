#!/usr/bin/python3
"""Makes the example the README's first command runs: a PyTorch nn.LSTM (2 layers, bidirectional,
input 8, hidden 16) saved as a safetensors state_dict, an input batch of 3 sequences of lengths 7, 4, 5
with initial states, and the output PyTorch computes (packed sequences, padded to the longest).
Run with Debian's python3-torch: /usr/bin/python3 examples/pytorch_lstm/make_example.py"""
import os
import sys

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "scripts"))
import safetensors_numpy  # noqa: E402

torch.manual_seed(2014)
T, B, I, H, L = 7, 3, 8, 16, 2
lstm = torch.nn.LSTM(I, H, num_layers=L, bidirectional=True)
x = torch.randn(T, B, I)
lengths = torch.tensor([7, 4, 5])
h0 = torch.randn(2 * L, B, H) * 0.5
c0 = torch.randn(2 * L, B, H) * 0.5
with torch.no_grad():
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    y, (h_n, c_n) = lstm(packed, (h0, c0))
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(y)

safetensors_numpy.save(os.path.join(here, "model.safetensors"),
                       {k: v.numpy() for k, v in lstm.state_dict().items()},
                       {"source": "examples/pytorch_lstm/make_example.py (PyTorch %s)" % torch.__version__})
for name, value in {"x": x, "h0": h0, "c0": c0, "y_torch": y, "h_n_torch": h_n, "c_n_torch": c_n}.items():
    np.save(os.path.join(here, name + ".npy"), value.numpy().astype(np.float32))
np.save(os.path.join(here, "lengths.npy"), lengths.numpy().astype(np.int64))
print("wrote", here)
