// The training loop: it learns, it resumes bit for bit, it refuses bad input and survives bad steps.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "recur/error.hpp"
#include "recur/model_file.hpp"
#include "recur/safetensors.hpp"
#include "recur/training.hpp"

namespace recur {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system's temporary directory, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("recur_train_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct Corpus {
  Vocabulary vocabulary;
  std::vector<int32_t> train, valid;
};

Corpus repeating_corpus(int copies) {
  std::string text;
  for (int i = 0; i < copies; ++i) text += "abcdefgh\n";
  Corpus c;
  c.vocabulary = Vocabulary::build(TokenMode::characters, {text});
  c.train = c.vocabulary.encode(text, "train");
  c.valid = c.vocabulary.encode(text.substr(0, 90), "valid");
  return c;
}

LanguageModelConfig small_model(int64_t vocab, float dropout = 0.0f,
                                const StackSpec& stack = CellSpec::lstm()) {
  // The variants run every layer at one size.
  return {stack, vocab, 6, {12, stack.kind == StackKind::core ? 10 : 12}, dropout, false};
}

TrainOptions small_options() {
  TrainOptions o;
  o.seq_len = 8;
  o.batch = 4;
  o.schedule.learning_rate = 1e-2f;
  o.valid_every = 0;
  o.report_every = 1000;
  return o;
}

TEST(TrainLoop, LearnsARepeatingText) {
  const Corpus c = repeating_corpus(60);
  TrainOptions o = small_options();
  o.max_steps = 150;
  o.schedule.learning_rate = 2e-2f;
  Trainer trainer(small_model(c.vocabulary.size()), c.vocabulary, c.train, c.valid, o);
  const double before = evaluate_tokens(trainer.model(), c.valid, 4, 8);
  const double after = trainer.run({});
  // Without learning the loss stays near log(9) = 2.2 (uniform); the text is deterministic after one
  // character, so a model that learned it drives the loss towards 0.
  EXPECT_GT(before, 0.8 * std::log(9.0));
  EXPECT_LT(after, 0.15 * std::log(9.0)) << "loss before " << before;
}

void expect_same_tensors(const std::string& a, const std::string& b) {
  const SafetensorsFile fa = SafetensorsFile::read(a), fb = SafetensorsFile::read(b);
  ASSERT_EQ(fa.entries().size(), fb.entries().size());
  for (const SafetensorsEntry& e : fa.entries()) {
    const Tensor ta = fa.tensor(e.name), tb = fb.tensor(e.name);
    ASSERT_EQ(ta.shape(), tb.shape()) << e.name;
    EXPECT_EQ(std::memcmp(ta.data(), tb.data(), size_t(ta.size()) * sizeof(float)), 0)
        << e.name << " differs";
  }
}

void expect_resume_is_bit_identical(const StackSpec& stack) {
  const Corpus c = repeating_corpus(20);  // 180 tokens: 45 per stream, 6 batches per epoch
  TrainOptions o = small_options();
  o.optimizer.kind = OptimizerKind::adamw;
  o.optimizer.weight_decay = 0.01f;
  o.schedule.kind = ScheduleKind::plateau;
  o.valid_every = 2;  // validations feed the schedule
  const LanguageModelConfig model =
      small_model(c.vocabulary.size(), 0.3f, stack);  // dropout draws from the RNG
  TempDir straight, split;
  o.max_steps = 9;  // crosses an epoch boundary (6 batches)
  o.out_dir = straight.path.string();
  Trainer(model, c.vocabulary, c.train, c.valid, o).run({});

  o.max_steps = 5;
  o.out_dir = split.path.string();
  Trainer(model, c.vocabulary, c.train, c.valid, o).run({});
  TrainOptions limits;
  limits.max_steps = 9;
  limits.out_dir = split.path.string();
  Trainer resumed = Trainer::resume(split.file("last.safetensors"), c.train, c.valid, limits);
  EXPECT_EQ(resumed.step(), 5);
  resumed.run({});
  EXPECT_EQ(resumed.step(), 9);
  expect_same_tensors(straight.file("last.safetensors"), split.file("last.safetensors"));
}

TEST(TrainLoop, ResumingGivesBitIdenticalWeights) { expect_resume_is_bit_identical(CellSpec::lstm()); }

// The variants carry their own state through the checkpoint (a clockwork's step count among it).
TEST(TrainLoop, ResumingAVariantGivesBitIdenticalWeights) {
  for (StackKind kind : {StackKind::dglstm, StackKind::clockwork, StackKind::gridlstm}) {
    StackSpec stack(kind);
    if (kind == StackKind::clockwork) stack.periods = {1, 2, 3};  // 5 steps in: modules mid-period
    SCOPED_TRACE(stack.name());
    expect_resume_is_bit_identical(stack);
  }
}

TEST(TrainLoop, NonFiniteStepsAreSkippedThenStopWithTheCheckpointIntact) {
  const Corpus c = repeating_corpus(20);
  TrainOptions o = small_options();
  TempDir dir;
  o.out_dir = dir.path.string();
  o.max_steps = 2;
  Trainer trainer(small_model(c.vocabulary.size()), c.vocabulary, c.train, c.valid, o);
  trainer.run({});
  const std::string checkpoint = read_bytes(dir.file("last.safetensors"));
  ASSERT_FALSE(checkpoint.empty());

  // Continue the run with a poisoned embedding: every loss is NaN.
  TrainOptions limits = o;
  limits.max_steps = 20;
  Trainer resumed = Trainer::resume(dir.file("last.safetensors"), c.train, c.valid, limits);
  for (float& v : resumed.model().parameters()[0].value->values()) v = NAN;
  int skipped = 0;
  std::string message;
  try {
    resumed.run([&](const TrainReport& r) { skipped += r.kind == TrainReport::Kind::skipped; });
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("5 updates in a row had a non-finite loss"), std::string::npos) << message;
  EXPECT_NE(message.find("intact"), std::string::npos) << message;
  EXPECT_EQ(skipped, 5);
  EXPECT_TRUE(read_bytes(dir.file("last.safetensors")) == checkpoint) << "the checkpoint changed";
}

TEST(TrainLoop, SkippedStepsLeaveTheWeightsAlone) {
  const Corpus c = repeating_corpus(20);
  TrainOptions o = small_options();
  o.max_steps = 1;
  o.max_bad_steps = 2;
  Trainer trainer(small_model(c.vocabulary.size()), c.vocabulary, c.train, c.valid, o);
  std::vector<Parameter> parameters = trainer.model().parameters();
  for (float& v : parameters[0].value->values()) v = NAN;  // the embedding: every loss is NaN
  std::vector<Tensor> before;
  for (const Parameter& p : parameters) before.push_back(*p.value);
  EXPECT_NO_THROW(trainer.run({}));  // one bad step of the two allowed
  for (size_t i = 1; i < parameters.size(); ++i)
    EXPECT_EQ(std::memcmp(parameters[i].value->data(), before[i].data(), before[i].size() * sizeof(float)), 0)
        << parameters[i].name;
}

TEST(TrainLoop, CorpusShorterThanOneBatchIsAnError) {
  const Corpus c = repeating_corpus(3);  // 27 tokens; 4 x (8 + 1) = 36 needed
  TrainOptions o = small_options();
  o.max_steps = 1;
  try {
    Trainer(small_model(c.vocabulary.size()), c.vocabulary, c.train, c.valid, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("27 tokens, fewer than one batch needs"), std::string::npos)
        << e.what();
  }
}

TEST(TrainLoop, CheckpointsOfOtherModelsOrOtherDataAreRefused) {
  TempDir dir;
  save_rnn(dir.file("rnn.safetensors"), Rnn({CellSpec::lstm(), 3, 4}, 1));
  Vocabulary vocabulary;
  try {
    load_language_model(dir.file("rnn.safetensors"), &vocabulary);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a recur language-model checkpoint"), std::string::npos)
        << e.what();
  }
  const Corpus c = repeating_corpus(20);
  TrainOptions o = small_options();
  o.max_steps = 1;
  o.out_dir = dir.path.string();
  Trainer(small_model(c.vocabulary.size()), c.vocabulary, c.train, c.valid, o).run({});
  LanguageModel loaded = load_language_model(dir.file("last.safetensors"), &vocabulary);
  EXPECT_EQ(loaded.config(), small_model(c.vocabulary.size()));
  EXPECT_EQ(vocabulary.tokens(), c.vocabulary.tokens());
  std::vector<int32_t> other = c.train;
  std::swap(other[0], other[1]);
  EXPECT_THROW(Trainer::resume(dir.file("last.safetensors"), other, c.valid, o), Error);
  EXPECT_TRUE(fs::exists(dir.file("curve.svg")));
}

}  // namespace
}  // namespace recur
