// Optimizers, learning-rate schedules and clipping (recur/optimizer.hpp).
#include "recur/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "recur/error.hpp"

namespace recur {

std::string optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::sgd:
      return "sgd";
    case OptimizerKind::adam:
      return "adam";
    case OptimizerKind::adamw:
      return "adamw";
    case OptimizerKind::rmsprop:
      return "rmsprop";
  }
  return "?";
}

OptimizerKind parse_optimizer(const std::string& name) {
  for (OptimizerKind k :
       {OptimizerKind::sgd, OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::rmsprop})
    if (optimizer_name(k) == name) return k;
  throw Error("unknown optimizer '" + name + "': expected sgd, adam, adamw or rmsprop");
}

void OptimizerConfig::validate() const {
  const auto in_unit = [](float v) { return v >= 0.0f && v < 1.0f; };
  if (!in_unit(momentum)) throw Error("optimizer: momentum " + std::to_string(momentum) + " outside [0, 1)");
  if (nesterov && (kind != OptimizerKind::sgd || momentum <= 0.0f))
    throw Error("optimizer: Nesterov momentum needs sgd with momentum > 0");
  if (!in_unit(beta1) || !in_unit(beta2))
    throw Error("optimizer: betas (" + std::to_string(beta1) + ", " + std::to_string(beta2) +
                ") outside [0, 1)");
  if (!in_unit(alpha)) throw Error("optimizer: rmsprop alpha " + std::to_string(alpha) + " outside [0, 1)");
  if (!(epsilon > 0.0f)) throw Error("optimizer: epsilon must be positive, got " + std::to_string(epsilon));
  if (!(weight_decay >= 0.0f))
    throw Error("optimizer: weight decay must be >= 0, got " + std::to_string(weight_decay));
}

Optimizer::Optimizer(const OptimizerConfig& config) : config_(config) { config_.validate(); }

std::vector<Tensor>& Optimizer::slots_of(const Parameter& parameter) {
  std::vector<Tensor>& slots = slots_[parameter.name];
  if (slots.empty()) {
    int count = 0;
    switch (config_.kind) {
      case OptimizerKind::sgd:
        count = config_.momentum > 0 ? 1 : 0;
        break;
      case OptimizerKind::adam:
      case OptimizerKind::adamw:
        count = 2;
        break;
      case OptimizerKind::rmsprop:
        count = config_.momentum > 0 ? 2 : 1;
        break;
    }
    for (int i = 0; i < count; ++i) slots.emplace_back(parameter.value->shape());
  }
  return slots;
}

std::vector<std::pair<std::string, Tensor*>> Optimizer::state_tensors(
    const std::vector<Parameter>& parameters) {
  static const char* const names[][2] = {
      {"momentum", ""}, {"exp_avg", "exp_avg_sq"}, {"exp_avg", "exp_avg_sq"}, {"square_avg", "momentum"}};
  std::vector<std::pair<std::string, Tensor*>> list;
  for (const Parameter& p : parameters) {
    std::vector<Tensor>& slots = slots_of(p);
    for (size_t i = 0; i < slots.size(); ++i)
      list.emplace_back("optimizer." + p.name + "." + names[int(config_.kind)][i], &slots[i]);
  }
  return list;
}

void Optimizer::step(const std::vector<Parameter>& parameters, float lr) {
  ++steps_;
  const OptimizerConfig& c = config_;
  const bool coupled_decay = c.kind != OptimizerKind::adamw && c.weight_decay > 0;
  const double t = double(steps_);
  const float bias1 = float(1.0 - std::pow(double(c.beta1), t));
  const float sqrt_bias2 = float(std::sqrt(1.0 - std::pow(double(c.beta2), t)));
  for (const Parameter& parameter : parameters) {
    std::vector<Tensor>& slots = slots_of(parameter);
    float* p = parameter.value->data();
    const float* grad = parameter.grad->data();
    const int64_t n = parameter.value->size();
    for (int64_t i = 0; i < n; ++i) {
      float g = coupled_decay ? grad[i] + c.weight_decay * p[i] : grad[i];
      switch (c.kind) {
        case OptimizerKind::sgd:
          if (c.momentum > 0) {
            float& buf = slots[0][i];
            buf = c.momentum * buf + g;
            g = c.nesterov ? g + c.momentum * buf : buf;
          }
          p[i] -= lr * g;
          break;
        case OptimizerKind::adamw:
          p[i] *= 1.0f - lr * c.weight_decay;
          [[fallthrough]];
        case OptimizerKind::adam: {
          float& m = slots[0][i];
          float& v = slots[1][i];
          m = c.beta1 * m + (1.0f - c.beta1) * g;
          v = c.beta2 * v + (1.0f - c.beta2) * g * g;
          p[i] -= (lr / bias1) * m / (std::sqrt(v) / sqrt_bias2 + c.epsilon);
          break;
        }
        case OptimizerKind::rmsprop: {
          float& s = slots[0][i];
          s = c.alpha * s + (1.0f - c.alpha) * g * g;
          const float u = g / (std::sqrt(s) + c.epsilon);
          if (c.momentum > 0) {
            float& buf = slots[1][i];
            buf = c.momentum * buf + u;
            p[i] -= lr * buf;
          } else {
            p[i] -= lr * u;
          }
          break;
        }
      }
    }
  }
}

std::string schedule_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::constant:
      return "constant";
    case ScheduleKind::step:
      return "step";
    case ScheduleKind::plateau:
      return "plateau";
    case ScheduleKind::cosine:
      return "cosine";
  }
  return "?";
}

ScheduleKind parse_schedule(const std::string& name) {
  for (ScheduleKind k :
       {ScheduleKind::constant, ScheduleKind::step, ScheduleKind::plateau, ScheduleKind::cosine})
    if (schedule_name(k) == name) return k;
  throw Error("unknown learning-rate schedule '" + name + "': expected constant, step, plateau or cosine");
}

void ScheduleConfig::validate() const {
  if (!(learning_rate > 0.0f) || !std::isfinite(learning_rate))
    throw Error("learning rate must be positive, got " + std::to_string(learning_rate));
  if (warmup_steps < 0) throw Error("warm-up steps must be >= 0, got " + std::to_string(warmup_steps));
  if (kind == ScheduleKind::step && step_every < 1)
    throw Error("step decay: interval must be positive, got " + std::to_string(step_every));
  if (step_start < 0) throw Error("step decay: start must be >= 0, got " + std::to_string(step_start));
  if (!(gamma > 0.0f && gamma <= 1.0f))
    throw Error("step decay: gamma " + std::to_string(gamma) + " outside (0, 1]");
  if (!(plateau_factor > 0.0f && plateau_factor < 1.0f))
    throw Error("plateau: factor " + std::to_string(plateau_factor) + " outside (0, 1)");
  if (plateau_patience < 1)
    throw Error("plateau: patience must be >= 1, got " + std::to_string(plateau_patience));
  if (!(min_learning_rate >= 0.0f && min_learning_rate <= learning_rate))
    throw Error("minimum learning rate " + std::to_string(min_learning_rate) + " outside [0, lr]");
}

LrSchedule::LrSchedule(const ScheduleConfig& config) : config_(config) { config_.validate(); }

float LrSchedule::learning_rate(int64_t step, double progress) const {
  const ScheduleConfig& c = config_;
  double lr = c.learning_rate;
  switch (c.kind) {
    case ScheduleKind::constant:
      break;
    case ScheduleKind::step: {
      const int64_t start = c.step_start > 0 ? c.step_start : c.step_every;
      const int64_t decays = step < start ? 0 : 1 + (step - start) / c.step_every;
      lr *= std::pow(double(c.gamma), double(decays));
    } break;
    case ScheduleKind::plateau:
      lr = std::max(lr * plateau_scale, double(c.min_learning_rate));
      break;
    case ScheduleKind::cosine: {
      const double x = std::clamp(progress, 0.0, 1.0);
      lr = c.min_learning_rate + (lr - c.min_learning_rate) * 0.5 * (1.0 + std::cos(std::numbers::pi * x));
      break;
    }
  }
  if (step < c.warmup_steps) lr *= double(step + 1) / double(c.warmup_steps);
  return float(lr);
}

void LrSchedule::on_validation(double loss) {
  if (!plateau_seen || loss < plateau_best) {
    plateau_seen = true;
    plateau_best = loss;
    plateau_bad = 0;
    return;
  }
  if (++plateau_bad >= config_.plateau_patience) {
    plateau_scale *= config_.plateau_factor;
    plateau_bad = 0;
  }
}

double clip_gradient_norm(const std::vector<Parameter>& parameters, double max_norm) {
  double sum = 0;
  for (const Parameter& p : parameters)
    for (float g : p.grad->values()) sum += double(g) * double(g);
  const double norm = std::sqrt(sum);
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const float scale = float(max_norm / norm);
    for (const Parameter& p : parameters)
      for (float& g : p.grad->values()) g *= scale;
  }
  return norm;
}

}  // namespace recur
