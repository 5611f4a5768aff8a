#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include <utility>

#include "core/error.h"

namespace sieve {
namespace {

void check_base_lr(float base_lr, const char* who) {
  SIEVE_CHECK(std::isfinite(base_lr) && base_lr >= 0.f, who, ": the base learning rate must be finite and >= 0, found ",
              base_lr);
}

void check_gamma(float gamma, const char* who) {
  SIEVE_CHECK(std::isfinite(gamma) && gamma > 0.f && gamma <= 1.f, who,
              ": gamma multiplies the rate at each milestone and must be in (0, 1], found ", gamma);
}

// base * gamma^k in double, rounded once to float.
float decayed(float base_lr, float gamma, int k) {
  return static_cast<float>(static_cast<double>(base_lr) * std::pow(static_cast<double>(gamma), k));
}

template <typename T>
std::string join(const std::vector<T>& values) {
  std::ostringstream os;
  for (size_t i = 0; i < values.size(); ++i) os << (i ? ", " : "") << values[i];
  return os.str();
}

}  // namespace

ConstantLr::ConstantLr(float base_lr) : base_lr_(base_lr) { check_base_lr(base_lr, "constant schedule"); }

float ConstantLr::lr(const Progress&) const { return base_lr_; }

std::string ConstantLr::describe() const { return detail::concat("constant: ", base_lr_); }

StepMilestoneLr::StepMilestoneLr(float base_lr, std::vector<int64_t> milestones, float gamma)
    : base_lr_(base_lr), milestones_(std::move(milestones)), gamma_(gamma) {
  check_base_lr(base_lr, "step schedule");
  check_gamma(gamma, "step schedule");
  SIEVE_CHECK(!milestones_.empty(), "step schedule: no milestones given (use a constant schedule for a fixed rate)");
  for (size_t i = 0; i < milestones_.size(); ++i) {
    SIEVE_CHECK(milestones_[i] > 0, "step schedule: milestones are step counts > 0, found ", milestones_[i]);
    SIEVE_CHECK(i == 0 || milestones_[i] > milestones_[i - 1],
                "step schedule: milestones must be strictly increasing, found ", milestones_[i - 1], " then ",
                milestones_[i]);
  }
}

float StepMilestoneLr::lr(const Progress& p) const {
  SIEVE_CHECK(p.step >= 0, "step schedule: negative step ", p.step);
  int k = 0;
  for (int64_t m : milestones_) k += p.step >= m ? 1 : 0;
  return decayed(base_lr_, gamma_, k);
}

std::string StepMilestoneLr::describe() const {
  return detail::concat("step: ", base_lr_, ", x", gamma_, " at steps ", join(milestones_));
}

TimeMilestoneLr::TimeMilestoneLr(float base_lr, std::vector<double> fractions, float gamma)
    : base_lr_(base_lr), fractions_(std::move(fractions)), gamma_(gamma) {
  check_base_lr(base_lr, "time schedule");
  check_gamma(gamma, "time schedule");
  SIEVE_CHECK(!fractions_.empty(), "time schedule: no milestones given (fractions of the time budget, e.g. 0.5, 0.8)");
  for (size_t i = 0; i < fractions_.size(); ++i) {
    SIEVE_CHECK(fractions_[i] > 0.0 && fractions_[i] < 1.0,
                "time schedule: milestones are fractions of the time budget in (0, 1), found ", fractions_[i]);
    SIEVE_CHECK(i == 0 || fractions_[i] > fractions_[i - 1],
                "time schedule: milestones must be strictly increasing, found ", fractions_[i - 1], " then ",
                fractions_[i]);
  }
}

float TimeMilestoneLr::lr(const Progress& p) const {
  SIEVE_CHECK(p.budget_s > 0.0, "time schedule: the run has no wall-clock budget (Progress.budget_s = ", p.budget_s,
              "); give a time budget or use a step schedule");
  SIEVE_CHECK(p.elapsed_s >= 0.0, "time schedule: negative elapsed time ", p.elapsed_s, " s");
  const double fraction = p.elapsed_s / p.budget_s;
  int k = 0;
  for (double f : fractions_) k += fraction >= f ? 1 : 0;
  return decayed(base_lr_, gamma_, k);
}

std::string TimeMilestoneLr::describe() const {
  return detail::concat("time: ", base_lr_, ", x", gamma_, " at ", join(fractions_), " of the budget");
}

CosineLr::CosineLr(float base_lr, Horizon horizon, float min_lr)
    : base_lr_(base_lr), horizon_(horizon), min_lr_(min_lr) {
  check_base_lr(base_lr, "cosine schedule");
  SIEVE_CHECK(std::isfinite(min_lr) && min_lr >= 0.f && min_lr <= base_lr,
              "cosine schedule: the final rate must be in [0, base rate ", base_lr, "], found ", min_lr);
}

float CosineLr::lr(const Progress& p) const {
  double t = 0.0;
  if (horizon_ == Horizon::Steps) {
    SIEVE_CHECK(p.total_steps > 0,
                "cosine schedule over steps: the run has no length in steps (Progress.total_steps = ", p.total_steps,
                ")");
    SIEVE_CHECK(p.step >= 0, "cosine schedule: negative step ", p.step);
    t = static_cast<double>(p.step) / static_cast<double>(p.total_steps);
  } else {
    SIEVE_CHECK(p.budget_s > 0.0, "cosine schedule over time: the run has no wall-clock budget (Progress.budget_s = ",
                p.budget_s, ")");
    SIEVE_CHECK(p.elapsed_s >= 0.0, "cosine schedule: negative elapsed time ", p.elapsed_s, " s");
    t = p.elapsed_s / p.budget_s;
  }
  t = std::min(t, 1.0);
  const double lo = min_lr_, hi = base_lr_;
  return static_cast<float>(lo + (hi - lo) * 0.5 * (1.0 + std::cos(std::numbers::pi * t)));
}

std::string CosineLr::describe() const {
  return detail::concat("cosine over ", horizon_ == Horizon::Steps ? "steps" : "time", ": ", base_lr_, " to ", min_lr_);
}

WarmupLr::WarmupLr(std::unique_ptr<LrSchedule> inner, int64_t warmup_steps)
    : inner_(std::move(inner)), warmup_steps_(warmup_steps) {
  SIEVE_CHECK(inner_ != nullptr, "warm-up: no schedule to warm up");
  SIEVE_CHECK(warmup_steps > 0, "warm-up: the number of warm-up steps must be > 0, found ", warmup_steps);
}

float WarmupLr::lr(const Progress& p) const {
  const float rate = inner_->lr(p);
  if (p.step >= warmup_steps_ - 1) return rate;
  SIEVE_CHECK(p.step >= 0, "warm-up: negative step ", p.step);
  return static_cast<float>(static_cast<double>(rate) * static_cast<double>(p.step + 1) /
                            static_cast<double>(warmup_steps_));
}

std::string WarmupLr::describe() const {
  return detail::concat("linear warm-up over ", warmup_steps_, " steps, then ", inner_->describe());
}

std::unique_ptr<LrSchedule> make_schedule(const std::string& kind, float base_lr, const std::vector<double>& milestones,
                                          float gamma, const RunLength& run, int64_t warmup_steps) {
  SIEVE_CHECK(run.total_steps >= 0 && run.budget_s >= 0.0 && std::isfinite(run.budget_s),
              "schedule: the run length must be >= 0 (0 for none), found ", run.total_steps, " steps and ",
              run.budget_s, " s");
  SIEVE_CHECK(warmup_steps >= 0, "schedule: the number of warm-up steps must be >= 0 (0 for none), found ",
              warmup_steps);
  std::unique_ptr<LrSchedule> out;
  if (kind == "constant") {
    SIEVE_CHECK(milestones.empty(), "constant schedule: takes no milestones, found ", join(milestones));
    out = std::make_unique<ConstantLr>(base_lr);
  } else if (kind == "step") {
    std::vector<int64_t> steps;
    for (double m : milestones) {
      SIEVE_CHECK(std::isfinite(m) && m == std::floor(m) && std::abs(m) < 9e15,
                  "step schedule: milestones are whole step counts, found ", m);
      steps.push_back(static_cast<int64_t>(m));
    }
    out = std::make_unique<StepMilestoneLr>(base_lr, std::move(steps), gamma);
  } else if (kind == "time") {
    SIEVE_CHECK(run.budget_s > 0.0,
                "time schedule: milestones are fractions of a wall-clock budget, but the run has none; give a time "
                "budget or use a step schedule");
    out = std::make_unique<TimeMilestoneLr>(base_lr, milestones, gamma);
  } else if (kind == "cosine") {
    SIEVE_CHECK(milestones.empty(), "cosine schedule: takes no milestones, found ", join(milestones));
    SIEVE_CHECK(run.budget_s > 0.0 || run.total_steps > 0,
                "cosine schedule: needs the run's length, a number of steps or a wall-clock budget; found neither");
    out = std::make_unique<CosineLr>(base_lr, run.budget_s > 0.0 ? Horizon::Time : Horizon::Steps);
  } else {
    SIEVE_FAIL("unknown learning-rate schedule \"", kind, "\"; expected constant, step, time or cosine");
  }
  if (warmup_steps > 0) out = std::make_unique<WarmupLr>(std::move(out), warmup_steps);
  return out;
}

}  // namespace sieve
