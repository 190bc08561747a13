// A network made and saved by recur loads in PyTorch (load_state_dict, strict) and computes the same
// outputs there: the other direction of TorchModelFile.LoadsTorchLstmStateDict. Needs /usr/bin/python3
// with torch (Debian's python3-torch); skipped without it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "recur/model_file.hpp"
#include "recur/npy.hpp"

namespace {

namespace fs = std::filesystem;

const char* const kLoadInTorch = R"PY(
import sys
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
import safetensors_numpy
directory = sys.argv[2]
for name, make in [("rnn_relu", lambda: torch.nn.RNN(3, 5, 2, nonlinearity="relu", bidirectional=True)),
                   ("lstm", lambda: torch.nn.LSTM(3, 5, 2, bidirectional=True)),
                   ("gru", lambda: torch.nn.GRU(3, 5, 2, bidirectional=True))]:
    tensors, metadata = safetensors_numpy.load(f"{directory}/{name}.safetensors")
    module = make()
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)
    x = torch.from_numpy(np.load(f"{directory}/x.npy"))
    with torch.no_grad():
        y, _ = module(x)
    np.save(f"{directory}/{name}_y_torch.npy", y.numpy())
)PY";

TEST(TorchModelFile, RecurFileLoadsInPyTorch) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no python3 torch";
  const fs::path dir = fs::path(::testing::TempDir()) / ("recur_interop_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  recur::Tensor x({6, 2, 3});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * float(i));
  recur::write_npy((dir / "x.npy").string(), x);
  std::vector<std::pair<std::string, recur::Rnn>> networks;
  for (const char* cell : {"rnn_relu", "lstm", "gru"}) {
    recur::Rnn rnn({recur::CellSpec::parse(cell), 3, 5, 2, true}, /*seed=*/11);
    recur::save_rnn((dir / (std::string(cell) + ".safetensors")).string(), rnn);
    networks.emplace_back(cell, std::move(rnn));
  }
  std::ofstream(dir / "load.py") << kLoadInTorch;
  const std::string scripts = std::string(RECUR_FIXTURE_DIR) + "/../../scripts";
  ASSERT_EQ(
      std::system(
          ("/usr/bin/python3 " + (dir / "load.py").string() + " " + scripts + " " + dir.string()).c_str()),
      0);
  for (const auto& [cell, rnn] : networks) {
    const recur::Tensor y = rnn.forward(x).y;
    const recur::Tensor y_torch = recur::read_npy((dir / (cell + "_y_torch.npy")).string());
    ASSERT_EQ(y.shape(), y_torch.shape()) << cell;
    float worst = 0;
    for (int64_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::fabs(y[i] - y_torch[i]));
    EXPECT_LT(worst, 1e-6f) << cell << ": recur's file in PyTorch gives other outputs";
  }
  fs::remove_all(dir);
}

}  // namespace
