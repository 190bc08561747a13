// recur train / sample / eval from the outside: the binary at RECUR_CLI_PATH on tiny texts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "recur/safetensors.hpp"

namespace recur {
namespace {

namespace fs = std::filesystem;

#ifdef RECUR_CLI_PATH
const char* const cli = RECUR_CLI_PATH;
#else
const char* const cli = nullptr;
#endif

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct CliResult {
  int status;
  std::string out, err;
};

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cli == nullptr) GTEST_SKIP() << "the recur CLI is not built";
    dir_ = fs::temp_directory_path() / ("recur_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::string text;
    for (int i = 0; i < 40; ++i) text += "to be or not to be\n";
    write("corpus.txt", text);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }

  using Result = CliResult;
  // Runs `recur ARGS` (through bash, after `prefix`), stdout and stderr captured apart.
  Result recur(const std::string& args, const std::string& prefix = "") const {
    const std::string command = "bash -c '" + prefix + " \"" + std::string(cli) + "\" " + args + " >\"" +
                                path("stdout") + "\" 2>\"" + path("stderr") + "\"'";
    const int status = std::system(command.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(path("stdout")),
            read_file(path("stderr"))};
  }
  std::string small_run(const std::string& out) const {
    return "train --data " + path("corpus.txt") +
           " --hidden 16 --layers 2 --seq-len 10 --batch 4 --threads 1 --out " + path(out);
  }

  fs::path dir_;
};

void expect_one_line_error(const CliResult& r, const std::string& needle) {
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
}

TEST_F(TrainCli, BadInputGetsOneClearError) {
  expect_one_line_error(recur("train --data " + path("missing.txt") + " --steps 1 --out " + path("o")),
                        path("missing.txt"));
  write("empty.txt", "");
  expect_one_line_error(recur("train --data " + path("empty.txt") + " --steps 1 --out " + path("o")),
                        "empty");
  expect_one_line_error(recur(small_run("o") + " --steps 1 --cell lsmt"), "lsmt");
  write("bad.txt", "hello\xFFworld, and more text after it");
  expect_one_line_error(recur("train --data " + path("bad.txt") + " --steps 1 --out " + path("o")),
                        "invalid UTF-8 at byte offset 5");
  expect_one_line_error(recur("train --data " + path("corpus.txt") +
                              " --steps 1 --batch 64 --seq-len 100 --valid-fraction 0 --out " + path("o")),
                        "760 tokens, fewer than one batch needs: 64 streams x (seq-len 100 + 1)");
  expect_one_line_error(recur(small_run("no/such/dir") + " --steps 1"), "cannot create the directory");
  expect_one_line_error(recur("sample --model " + std::string(RECUR_FIXTURE_DIR) + "/torch_lstm.safetensors"),
                        "not a recur language-model checkpoint");
  EXPECT_FALSE(fs::exists(path("o/last.safetensors")));
}

TEST_F(TrainCli, TrainsReportsJsonSamplesAndEvaluates) {
  const Result train =
      recur(small_run("run") + " --steps 40 --valid-every 20 --report-every 10 --lr 0.02 --json");
  ASSERT_EQ(train.status, 0) << train.err;
  std::istringstream lines(train.out);
  int reports = 0, validated = 0;
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);  // throws (fails) if a line is not JSON
    for (const char* key : {"step", "tokens", "seconds"}) EXPECT_TRUE(j.contains(key)) << line;
    validated += j.contains("valid_loss");
    reports += j.contains("loss");
  }
  EXPECT_GE(reports, 4);
  EXPECT_GE(validated, 2);
  for (const char* file : {"best.safetensors", "last.safetensors", "curve.svg"})
    EXPECT_TRUE(fs::exists(path("run/") + file)) << file;
  EXPECT_NE(read_file(path("run/curve.svg")).find("<polyline"), std::string::npos);

  const std::string sample = "sample --model " + path("run") + " --prime \"to be\" --length 40 --seed 9";
  const Result a = recur(sample), b = recur(sample), c = recur(sample + "1 --top-k 3 --top-p 0.9");
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.out.rfind("to be", 0), 0u);
  EXPECT_EQ(a.out.size(), 5u + 40 + 1);  // the prime, 40 one-byte characters, a final newline
  EXPECT_EQ(c.status, 0) << c.err;

  const Result eval =
      recur("eval --model " + path("run/best.safetensors") + " --data " + path("corpus.txt") + " --json");
  ASSERT_EQ(eval.status, 0) << eval.err;
  const nlohmann::json j = nlohmann::json::parse(eval.out);
  EXPECT_NEAR(j["perplexity"].get<double>(), std::exp(j["loss"].get<double>()), 1e-9);
  EXPECT_NEAR(j["bits_per_char"].get<double>(), j["loss"].get<double>() / std::log(2.0), 1e-9);
  EXPECT_LT(j["loss"].get<double>(), std::log(9.0));  // learned something over the 9 characters
}

TEST_F(TrainCli, ResumeMatchesTheStraightRunBitForBit) {
  const std::string options = " --dropout 0.2 --valid-every 3 --schedule cosine --warmup 2";
  ASSERT_EQ(recur(small_run("straight") + options + " --steps 8").status, 0);
  ASSERT_EQ(recur(small_run("split") + options + " --steps 8 --stop-after 5").status, 0)
      << read_file(path("stderr"));
  const Result resumed = recur("train --resume " + path("split") + " --steps 8 --threads 1");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  const SafetensorsFile a = SafetensorsFile::read(path("straight/last.safetensors"));
  const SafetensorsFile b = SafetensorsFile::read(path("split/last.safetensors"));
  ASSERT_EQ(a.entries().size(), b.entries().size());
  for (const SafetensorsEntry& e : a.entries()) {
    const Tensor ta = a.tensor(e.name), tb = b.tensor(e.name);
    EXPECT_EQ(std::memcmp(ta.data(), tb.data(), size_t(ta.size()) * 4), 0) << e.name << " differs";
  }
  EXPECT_EQ(a.metadata().at("train.step"), "8");
  EXPECT_EQ(b.metadata().at("train.step"), "8");
}

TEST_F(TrainCli, DiskFullWhileSavingKeepsTheLastCheckpoint) {
  ASSERT_EQ(recur(small_run("run") + " --steps 2").status, 0);
  const std::string before = read_file(path("run/last.safetensors"));
  ASSERT_GT(before.size(), 16u * 1024);
  // Files may grow to 8 KiB only: the next checkpoint cannot be written (EFBIG, as a full disk gives ENOSPC).
  const Result full =
      recur("train --resume " + path("run") + " --steps 4 --threads 1", "trap \"\" XFSZ; ulimit -f 8;");
  expect_one_line_error(full, "cannot write");
  EXPECT_TRUE(read_file(path("run/last.safetensors")) == before) << "the last good checkpoint changed";
  for (const auto& entry : fs::directory_iterator(dir_ / "run"))
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << "left behind: " << entry.path();
}

}  // namespace
}  // namespace recur
