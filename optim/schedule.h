// Learning-rate schedules, evaluated from the run's progress by step or by wall-clock time.
//
// A schedule is a pure function of Progress: before each step the training loop asks for lr(progress) and hands
// it to the optimizer (Optimizer::set_lr). Nothing is stateful, so a resumed run gets the same rates. Errors in
// options throw sieve::Error when the schedule is made; a Progress that lacks what the schedule needs (a time
// schedule without a budget) throws at lr().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sieve {

struct Progress {
  int64_t step = 0;         // optimizer steps already taken: the step about to run is number `step`, from 0
  int64_t total_steps = 0;  // planned length of the run in steps; 0 if none
  double elapsed_s = 0.0;   // wall-clock training time so far, in seconds
  double budget_s = 0.0;    // wall-clock budget of the run, in seconds; 0 if none
};

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual float lr(const Progress& p) const = 0;
  virtual std::string describe() const = 0;  // one line for logs, e.g. "time: 0.1, x0.2 at 0.5, 0.8 of the budget"
};

// lr = base.
class ConstantLr final : public LrSchedule {
 public:
  explicit ConstantLr(float base_lr);
  float lr(const Progress& p) const override;
  std::string describe() const override;

 private:
  float base_lr_;
};

// lr = base * gamma^k, k = the number of milestones m <= step (PyTorch's MultiStepLR: the decay applies from the
// milestone step on). Milestones are step counts > 0, strictly increasing; gamma in (0, 1].
class StepMilestoneLr final : public LrSchedule {
 public:
  StepMilestoneLr(float base_lr, std::vector<int64_t> milestones, float gamma);
  float lr(const Progress& p) const override;
  std::string describe() const override;

 private:
  float base_lr_;
  std::vector<int64_t> milestones_;
  float gamma_;
};

// lr = base * gamma^k, k = the number of fractions f <= elapsed_s / budget_s. Fractions of the wall-clock budget
// lie in (0, 1), strictly increasing; gamma in (0, 1]. The importance-sampling paper's reference code uses
// base 0.1, fractions {0.5, 0.8}, gamma 0.2. lr() needs Progress.budget_s > 0.
class TimeMilestoneLr final : public LrSchedule {
 public:
  TimeMilestoneLr(float base_lr, std::vector<double> fractions, float gamma);
  float lr(const Progress& p) const override;
  std::string describe() const override;

 private:
  float base_lr_;
  std::vector<double> fractions_;
  float gamma_;
};

// What a schedule's progress fraction t is measured by.
enum class Horizon { Steps, Time };

// lr = min + (base - min) (1 + cos(pi t)) / 2, t = step / total_steps (Steps) or elapsed_s / budget_s (Time),
// clamped to [0, 1]: base at the start, min at the end and after it (PyTorch's CosineAnnealingLR with
// T_max = the run). 0 <= min <= base. lr() needs Progress.total_steps > 0 (Steps) or budget_s > 0 (Time).
class CosineLr final : public LrSchedule {
 public:
  CosineLr(float base_lr, Horizon horizon, float min_lr = 0.f);
  float lr(const Progress& p) const override;
  std::string describe() const override;

 private:
  float base_lr_;
  Horizon horizon_;
  float min_lr_;
};

// lr = inner(p) * min(1, (step + 1) / warmup_steps): a linear ramp from inner / warmup_steps at step 0 to the
// inner schedule's rate at step warmup_steps - 1, then the inner schedule alone. warmup_steps > 0.
class WarmupLr final : public LrSchedule {
 public:
  WarmupLr(std::unique_ptr<LrSchedule> inner, int64_t warmup_steps);
  float lr(const Progress& p) const override;
  std::string describe() const override;

 private:
  std::unique_ptr<LrSchedule> inner_;
  int64_t warmup_steps_;
};

// What bounds the run, known when the schedule is made (the same values later arrive in each Progress).
struct RunLength {
  int64_t total_steps = 0;  // 0 if none
  double budget_s = 0.0;    // 0 if none
};

// A schedule by name, for command lines and configuration files:
//   "constant"  base_lr; milestones must be empty, gamma is ignored.
//   "step"      StepMilestoneLr: milestones are whole step counts.
//   "time"      TimeMilestoneLr: milestones are fractions of the budget; needs run.budget_s > 0.
//   "cosine"    CosineLr to 0 over the wall-clock budget when run.budget_s > 0 (the budget is what ends such a
//               run), else over run.total_steps; needs one of them; milestones must be empty, gamma is ignored.
// warmup_steps > 0 wraps the result in WarmupLr. Every bad option throws sieve::Error naming it.
std::unique_ptr<LrSchedule> make_schedule(const std::string& kind, float base_lr, const std::vector<double>& milestones,
                                          float gamma, const RunLength& run = {}, int64_t warmup_steps = 0);

}  // namespace sieve
