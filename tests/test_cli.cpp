// The recur CLI end to end: `recur run` on the shipped PyTorch example (examples/pytorch_lstm, made by
// its make_example.py with PyTorch) and `recur inspect`; bad input gives one line on stderr and exit 1.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "recur/npy.hpp"

#ifdef RECUR_CLI_PATH
namespace {

namespace fs = std::filesystem;

const std::string kExample = std::string(RECUR_FIXTURE_DIR) + "/../../examples/pytorch_lstm";

struct Result {
  int exit_code;
  std::string out, err;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Result run_cli(const std::string& arguments) {
  const fs::path dir = fs::temp_directory_path() / ("recur_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string command = std::string(RECUR_CLI_PATH) + " " + arguments + " >" + (dir / "out").string() +
                              " 2>" + (dir / "err").string();
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir / "out"), slurp(dir / "err")};
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = fs::temp_directory_path() / ("recur_cli_out_" + std::to_string(::getpid()));
    fs::create_directories(out_);
  }
  void TearDown() override { fs::remove_all(out_); }
  std::string run_example(const std::string& extra) const {
    return "run --model " + kExample + "/model.safetensors --input " + kExample + "/x.npy --lengths " +
           kExample + "/lengths.npy --h0 " + kExample + "/h0.npy --c0 " + kExample + "/c0.npy " + extra;
  }
  fs::path out_;
};

float max_abs_difference(const recur::Tensor& a, const recur::Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  float worst = 0;
  for (int64_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

TEST_F(CliTest, RunMatchesPyTorchOnTheShippedExample) {
  const Result r = run_cli(
      run_example("--output " + (out_ / "y.npy").string() + " --final-state " + (out_ / "final").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const float y_error = max_abs_difference(recur::read_npy((out_ / "y.npy").string()),
                                           recur::read_npy(kExample + "/y_torch.npy"));
  const float h_error = max_abs_difference(recur::read_npy((out_ / "final_h.npy").string()),
                                           recur::read_npy(kExample + "/h_n_torch.npy"));
  const float c_error = max_abs_difference(recur::read_npy((out_ / "final_c.npy").string()),
                                           recur::read_npy(kExample + "/c_n_torch.npy"));
  EXPECT_LT(y_error, 1e-5f);
  EXPECT_LT(h_error, 1e-5f);
  EXPECT_LT(c_error, 1e-5f);
}

TEST_F(CliTest, RunExpectFailsBeyondTolerance) {
  // The initial states matter: without them the output differs from PyTorch's and --expect says so.
  const Result r = run_cli("run --model " + kExample + "/model.safetensors --input " + kExample +
                           "/x.npy --lengths " + kExample + "/lengths.npy --output " +
                           (out_ / "y.npy").string() + " --expect " + kExample + "/y_torch.npy");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("exceeds the tolerance"), std::string::npos) << r.err;
}

TEST_F(CliTest, InspectDescribesTheNetwork) {
  const Result r = run_cli("inspect " + kExample + "/model.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("lstm, input 8, hidden 16, 2 layers, bidirectional"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("weight_hh_l1_reverse"), std::string::npos) << r.out;
}

TEST_F(CliTest, MissingModelIsOneClearLine) {
  const Result r = run_cli("run --model /nonexistent/m.safetensors --input " + kExample + "/x.npy --output " +
                           (out_ / "y.npy").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/m.safetensors"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(CliTest, WrongInputWidthNamesTheSizes) {
  // h0 [4, 3, 16] given as the input: its last dimension is not the model's input size 8.
  const Result r = run_cli("run --model " + kExample + "/model.safetensors --input " + kExample +
                           "/h0.npy --output " + (out_ / "y.npy").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("input_size 8"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("16"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out_ / "y.npy"));
}

TEST_F(CliTest, WrongCellForTheFileIsRefused) {
  const Result r = run_cli("run --model " + kExample + "/model.safetensors --input " + kExample +
                           "/x.npy --output " + (out_ / "y.npy").string() + " --cell gru");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(r.err.empty());
}

TEST_F(CliTest, UnknownCellNameListsTheKnownOnes) {
  const Result r = run_cli("inspect " + kExample + "/model.safetensors --cell lstmm");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown cell 'lstmm'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("gru_reset_before"), std::string::npos) << r.err;
}

}  // namespace
#endif
