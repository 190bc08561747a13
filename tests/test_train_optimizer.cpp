// Optimizers against PyTorch's torch.optim (fixtures/torch_optimizers.json, made by
// fixtures/make_optimizer_fixtures.py), clipping, and learning-rate schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "recur/error.hpp"
#include "recur/optimizer.hpp"

namespace recur {
namespace {

TEST(TorchOptimizer, MatchesTorchOptimOverSteps) {
  std::ifstream in(std::string(RECUR_FIXTURE_DIR) + "/torch_optimizers.json");
  ASSERT_TRUE(in) << "missing fixture torch_optimizers.json";
  const nlohmann::json fixture = nlohmann::json::parse(in);
  ASSERT_GE(fixture["cases"].size(), 8u);
  for (const auto& c : fixture["cases"]) {
    const auto& s = c["settings"];
    OptimizerConfig config;
    config.kind = parse_optimizer(c["optimizer"]);
    config.momentum = s.value("momentum", 0.0f);
    config.nesterov = s.value("nesterov", false);
    config.beta1 = s.value("beta1", 0.9f);
    config.beta2 = s.value("beta2", 0.999f);
    config.epsilon = s.value("eps", 1e-8f);  // torch.optim's default for adam(w) and rmsprop
    config.alpha = s.value("alpha", 0.99f);
    config.weight_decay = s.value("weight_decay", 0.0f);
    const float lr = s["lr"];
    Tensor value({int64_t(c["initial"].size())}, c["initial"].get<std::vector<float>>());
    Tensor grad(value.shape());
    Optimizer optimizer(config);
    const std::vector<Parameter> parameters{{"p", &value, &grad}};
    for (size_t step = 0; step < c["grads"].size(); ++step) {
      grad = Tensor(value.shape(), c["grads"][step].get<std::vector<float>>());
      optimizer.step(parameters, lr);
      const std::vector<float> expected = c["after"][step];
      for (size_t i = 0; i < expected.size(); ++i)
        EXPECT_NEAR(value[int64_t(i)], expected[i], 2e-6f * (1 + std::fabs(expected[i])))
            << c["optimizer"] << " " << s.dump() << " step " << step + 1 << " element " << i;
    }
    EXPECT_EQ(optimizer.steps(), int64_t(c["grads"].size()));
  }
}

TEST(TrainOptimizer, StateTensorsAreNamedPerParameterAndSlot) {
  Tensor a({3}), da({3}), b({2, 2}), db({2, 2});
  const std::vector<Parameter> parameters{{"a", &a, &da}, {"b", &b, &db}};
  Optimizer adam({OptimizerKind::adam});
  const auto state = adam.state_tensors(parameters);
  ASSERT_EQ(state.size(), 4u);
  EXPECT_EQ(state[0].first, "optimizer.a.exp_avg");
  EXPECT_EQ(state[3].first, "optimizer.b.exp_avg_sq");
  EXPECT_EQ(state[3].second->shape(), (Shape{2, 2}));
  Optimizer sgd({OptimizerKind::sgd});
  EXPECT_TRUE(sgd.state_tensors(parameters).empty());
}

TEST(TrainOptimizer, RejectsNesterovWithoutMomentum) {
  OptimizerConfig config{OptimizerKind::sgd};
  config.nesterov = true;
  EXPECT_THROW(Optimizer{config}, Error);
  EXPECT_THROW(parse_optimizer("adagrad"), Error);
}

TEST(TrainClip, ScalesToTheMaximumNormOnlyAboveIt) {
  Tensor a({2}, {3.0f, 0.0f}), da({2}, {3.0f, 0.0f}), b({1}), db({1}, {4.0f});
  const std::vector<Parameter> parameters{{"a", &a, &da}, {"b", &b, &db}};
  EXPECT_DOUBLE_EQ(clip_gradient_norm(parameters, 10.0), 5.0);  // sqrt(3^2 + 4^2), unchanged below the limit
  EXPECT_FLOAT_EQ(db[0], 4.0f);
  EXPECT_DOUBLE_EQ(clip_gradient_norm(parameters, 1.0), 5.0);
  const double after = std::hypot(double(da[0]), double(da[1]), double(db[0]));
  EXPECT_NEAR(after, 1.0, 1e-6);
  EXPECT_NEAR(da[0] / db[0], 3.0 / 4.0, 1e-6);  // direction kept
  db[0] = NAN;
  const float before = da[0];
  EXPECT_TRUE(std::isnan(clip_gradient_norm(parameters, 1.0)));
  EXPECT_EQ(da[0], before);  // a non-finite norm scales nothing
}

TEST(TrainSchedule, WarmupThenStepDecay) {
  ScheduleConfig config;
  config.kind = ScheduleKind::step;
  config.learning_rate = 0.8f;
  config.warmup_steps = 4;
  config.step_every = 10;
  config.gamma = 0.5f;
  const LrSchedule schedule(config);
  for (int64_t step = 0; step < 4; ++step)
    EXPECT_FLOAT_EQ(schedule.learning_rate(step, 0), 0.8f * float(step + 1) / 4.0f);
  EXPECT_FLOAT_EQ(schedule.learning_rate(9, 0), 0.8f);
  EXPECT_FLOAT_EQ(schedule.learning_rate(10, 0), 0.4f);
  EXPECT_FLOAT_EQ(schedule.learning_rate(25, 0), 0.2f);
}

TEST(TrainSchedule, StepDecayCanStartLate) {  // Zaremba et al. 2014: constant 4 epochs, then halve each
  ScheduleConfig config;
  config.kind = ScheduleKind::step;
  config.learning_rate = 1.0f;
  config.step_every = 10;
  config.step_start = 40;
  const LrSchedule schedule(config);
  EXPECT_FLOAT_EQ(schedule.learning_rate(39, 0), 1.0f);
  EXPECT_FLOAT_EQ(schedule.learning_rate(40, 0), 0.5f);
  EXPECT_FLOAT_EQ(schedule.learning_rate(49, 0), 0.5f);
  EXPECT_FLOAT_EQ(schedule.learning_rate(50, 0), 0.25f);
}

TEST(TrainSchedule, CosineGoesFromTheRateToTheFloor) {
  ScheduleConfig config;
  config.kind = ScheduleKind::cosine;
  config.learning_rate = 1.0f;
  config.min_learning_rate = 0.1f;
  const LrSchedule schedule(config);
  EXPECT_FLOAT_EQ(schedule.learning_rate(0, 0.0), 1.0f);
  EXPECT_FLOAT_EQ(schedule.learning_rate(0, 0.5), 0.55f);
  EXPECT_FLOAT_EQ(schedule.learning_rate(0, 1.0), 0.1f);
}

TEST(TrainSchedule, PlateauDecaysAfterPatienceRunsOut) {
  ScheduleConfig config;
  config.kind = ScheduleKind::plateau;
  config.learning_rate = 1.0f;
  config.plateau_factor = 0.5f;
  config.plateau_patience = 2;
  LrSchedule schedule(config);
  for (double loss : {3.0, 2.0, 2.5}) schedule.on_validation(loss);
  EXPECT_FLOAT_EQ(schedule.learning_rate(0, 0), 1.0f);  // one bad validation: patience left
  schedule.on_validation(2.1);
  EXPECT_FLOAT_EQ(schedule.learning_rate(0, 0), 0.5f);
  schedule.on_validation(1.0);
  schedule.on_validation(1.5);
  schedule.on_validation(1.5);
  EXPECT_FLOAT_EQ(schedule.learning_rate(0, 0), 0.25f);
}

}  // namespace
}  // namespace recur
