#pragma once
// Optimizers, learning-rate schedules and gradient clipping over a model's Parameters. The update
// rules are PyTorch's (torch.optim 1.13, defaults dampening 0, amsgrad off, centered off), so that a
// user's hyperparameters mean the same here.
//   sgd      g = grad + wd p;  buf = momentum buf + g;  g = nesterov ? g + momentum buf : buf;  p -= lr g
//   adam     g = grad + wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//            p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
//   adamw    as adam with g = grad, after p *= 1 - lr wd (decoupled weight decay, Loshchilov & Hutter)
//   rmsprop  g = grad + wd p;  s = alpha s + (1-alpha) g^2;  u = g / (sqrt(s) + eps);
//            momentum > 0: buf = momentum buf + u, p -= lr buf;  else p -= lr u
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "recur/language_model.hpp"

namespace recur {

enum class OptimizerKind { sgd, adam, adamw, rmsprop };
std::string optimizer_name(OptimizerKind kind);
// "sgd", "adam", "adamw", "rmsprop"; throws recur::Error naming them.
OptimizerKind parse_optimizer(const std::string& name);

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adam;
  float momentum = 0.0f;  // sgd, rmsprop
  bool nesterov = false;  // sgd; needs momentum > 0
  float beta1 = 0.9f, beta2 = 0.999f;
  float epsilon = 1e-8f;
  float alpha = 0.99f;  // rmsprop's smoothing of the squared gradient
  float weight_decay = 0.0f;
  void validate() const;
};

class Optimizer {
 public:
  explicit Optimizer(const OptimizerConfig& config);
  const OptimizerConfig& config() const { return config_; }
  // One update of every parameter from its gradient, with learning rate lr.
  void step(const std::vector<Parameter>& parameters, float lr);
  // Updates done so far (Adam's t).
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  // The state tensors of every parameter, named "optimizer.<parameter>.<slot>" (created as zeros if no
  // step happened yet), for checkpoints: write them, or fill them from a file.
  std::vector<std::pair<std::string, Tensor*>> state_tensors(const std::vector<Parameter>& parameters);

 private:
  std::vector<Tensor>& slots_of(const Parameter& parameter);
  OptimizerConfig config_;
  int64_t steps_ = 0;
  std::map<std::string, std::vector<Tensor>> slots_;
};

// Learning rate over training: an optional linear warm-up, then one of
//   constant  lr
//   step      lr * gamma^n, n = 0 before step_start, then 1 + floor((step - step_start) / step_every)
//             (step_start 0 means step_every: PyTorch's StepLR; Zaremba et al. 2014 start after 4 epochs)
//   plateau   lr * factor^k, k = times the validation loss failed to improve for `patience` validations
//   cosine    min_lr + (lr - min_lr) (1 + cos(pi progress)) / 2, progress in [0, 1] of the whole run
enum class ScheduleKind { constant, step, plateau, cosine };
std::string schedule_name(ScheduleKind kind);
ScheduleKind parse_schedule(const std::string& name);

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::constant;
  float learning_rate = 2e-3f;
  int64_t warmup_steps = 0;  // lr grows linearly from lr / warmup_steps to lr over these steps
  int64_t step_every = 1000;
  int64_t step_start = 0;  // the update of the first decay; 0: step_every
  float gamma = 0.5f;
  float plateau_factor = 0.5f;
  int plateau_patience = 1;
  float min_learning_rate = 0.0f;  // cosine's floor, and plateau's
  void validate() const;
};

class LrSchedule {
 public:
  explicit LrSchedule(const ScheduleConfig& config);
  const ScheduleConfig& config() const { return config_; }
  // The rate for update number `step` (0-based); progress in [0, 1] is how much of the run is done.
  float learning_rate(int64_t step, double progress) const;
  // Plateau: tell the schedule each validation loss.
  void on_validation(double loss);

  // State for checkpoints.
  double plateau_scale = 1.0;
  double plateau_best = 0.0;
  int plateau_bad = 0;
  bool plateau_seen = false;

 private:
  ScheduleConfig config_;
};

// Scales every gradient by max_norm / norm when the global L2 norm (over all gradients, summed in
// double in parameter order) exceeds max_norm > 0. Returns the norm before clipping; a non-finite norm
// is returned as is, and nothing is scaled.
double clip_gradient_norm(const std::vector<Parameter>& parameters, double max_norm);

}  // namespace recur
