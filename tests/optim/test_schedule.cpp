// Learning-rate schedules: exact values at and around milestones, cosine endpoints, warm-up, and the factory's
// checks of impossible options.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "core/error.h"
#include "optim/schedule.h"

namespace sieve {
namespace {

using testing::throws_error;

Progress at_step(int64_t step, int64_t total_steps = 0) { return {step, total_steps, 0.0, 0.0}; }
Progress at_time(double fraction, double budget_s = 3600.0) { return {0, 0, fraction * budget_s, budget_s}; }

// base * gamma^k computed in double and rounded once, as the schedules do; compared to within 4 float ulps.
float decayed(double base, double gamma, int k) { return static_cast<float>(base * std::pow(gamma, k)); }

TEST(LrSchedule, ConstantIsTheBaseRateEverywhere) {
  const ConstantLr s(0.05f);
  EXPECT_EQ(s.lr(at_step(0)), 0.05f);
  EXPECT_EQ(s.lr(at_step(123456)), 0.05f);
  EXPECT_EQ(s.lr(at_time(0.99)), 0.05f);
}

TEST(LrSchedule, StepMilestonesDecayFromTheMilestoneStepOn) {
  const StepMilestoneLr s(0.1f, {100, 250}, 0.1f);
  const double base = 0.1f, gamma = 0.1f;
  EXPECT_FLOAT_EQ(s.lr(at_step(0)), decayed(base, gamma, 0));
  EXPECT_FLOAT_EQ(s.lr(at_step(99)), decayed(base, gamma, 0));
  EXPECT_FLOAT_EQ(s.lr(at_step(100)), decayed(base, gamma, 1));
  EXPECT_FLOAT_EQ(s.lr(at_step(101)), decayed(base, gamma, 1));
  EXPECT_FLOAT_EQ(s.lr(at_step(249)), decayed(base, gamma, 1));
  EXPECT_FLOAT_EQ(s.lr(at_step(250)), decayed(base, gamma, 2));
  EXPECT_FLOAT_EQ(s.lr(at_step(100000)), decayed(base, gamma, 2));
  EXPECT_FLOAT_EQ(s.lr(at_step(100)), 0.01f);
  EXPECT_FLOAT_EQ(s.lr(at_step(250)), 0.001f);
}

TEST(LrSchedule, TimeMilestonesFollowTheImportanceSamplingReference) {
  // Learning rate 0.1, then x0.2 at 50% and 80% of the budget.
  const TimeMilestoneLr s(0.1f, {0.5, 0.8}, 0.2f);
  EXPECT_FLOAT_EQ(s.lr(at_time(0.0)), 0.1f);
  EXPECT_FLOAT_EQ(s.lr(at_time(0.49)), 0.1f);
  EXPECT_FLOAT_EQ(s.lr(at_time(0.5)), 0.02f);
  EXPECT_FLOAT_EQ(s.lr(at_time(0.51)), 0.02f);
  EXPECT_FLOAT_EQ(s.lr(at_time(0.79)), 0.02f);
  EXPECT_FLOAT_EQ(s.lr(at_time(0.81)), 0.004f);
  EXPECT_FLOAT_EQ(s.lr(at_time(1.5)), 0.004f);  // past the budget: the last rate
  // The fraction, not the absolute time, decides.
  EXPECT_FLOAT_EQ(s.lr(at_time(0.51, 60.0)), 0.02f);
  EXPECT_FLOAT_EQ(s.lr(at_time(0.49, 86400.0)), 0.1f);
}

TEST(LrSchedule, TimeScheduleWithoutBudgetThrowsAtEvaluation) {
  const TimeMilestoneLr s(0.1f, {0.5, 0.8}, 0.2f);
  EXPECT_THROW(s.lr(at_step(10)), Error);
}

TEST(LrSchedule, CosineOverStepsRunsFromBaseToMinimum) {
  const CosineLr s(0.1f, Horizon::Steps, 0.001f);
  EXPECT_FLOAT_EQ(s.lr(at_step(0, 1000)), 0.1f);
  EXPECT_FLOAT_EQ(s.lr(at_step(500, 1000)), static_cast<float>((double{0.1f} + double{0.001f}) / 2));
  EXPECT_FLOAT_EQ(s.lr(at_step(1000, 1000)), 0.001f);
  EXPECT_FLOAT_EQ(s.lr(at_step(5000, 1000)), 0.001f);
  // A quarter of the way: min + (base - min) (1 + cos(pi / 4)) / 2.
  EXPECT_FLOAT_EQ(s.lr(at_step(250, 1000)),
                  static_cast<float>(double{0.001f} + (double{0.1f} - double{0.001f}) * (1 + std::sqrt(0.5)) / 2));
  // Strictly decreasing over the run.
  for (int64_t step = 1; step <= 1000; ++step) EXPECT_LT(s.lr(at_step(step, 1000)), s.lr(at_step(step - 1, 1000)));
  EXPECT_THROW(s.lr(at_step(10)), Error);  // no length in steps
}

TEST(LrSchedule, CosineOverTimeRunsFromBaseToZero) {
  const CosineLr s(0.2f, Horizon::Time);
  EXPECT_FLOAT_EQ(s.lr(at_time(0.0)), 0.2f);
  EXPECT_FLOAT_EQ(s.lr(at_time(0.5)), 0.1f);
  EXPECT_EQ(s.lr(at_time(1.0)), 0.f);
  EXPECT_EQ(s.lr(at_time(1.2)), 0.f);
  EXPECT_THROW(s.lr(at_step(10, 100)), Error);  // no budget
}

TEST(LrSchedule, WarmupRampsLinearlyIntoTheInnerSchedule) {
  const WarmupLr s(std::make_unique<StepMilestoneLr>(0.1f, std::vector<int64_t>{10}, 0.5f), 4);
  EXPECT_FLOAT_EQ(s.lr(at_step(0)), 0.025f);
  EXPECT_FLOAT_EQ(s.lr(at_step(1)), 0.05f);
  EXPECT_FLOAT_EQ(s.lr(at_step(2)), 0.075f);
  EXPECT_FLOAT_EQ(s.lr(at_step(3)), 0.1f);
  EXPECT_FLOAT_EQ(s.lr(at_step(9)), 0.1f);
  EXPECT_FLOAT_EQ(s.lr(at_step(10)), 0.05f);
  EXPECT_THROW(WarmupLr(std::make_unique<ConstantLr>(0.1f), 0), Error);
}

TEST(LrSchedule, ConstructorsRejectImpossibleOptions) {
  EXPECT_THROW(ConstantLr(-0.1f), Error);
  EXPECT_THROW(ConstantLr(NAN), Error);
  EXPECT_THROW(StepMilestoneLr(0.1f, {}, 0.1f), Error);
  EXPECT_THROW(StepMilestoneLr(0.1f, {0, 10}, 0.1f), Error);
  EXPECT_THROW(StepMilestoneLr(0.1f, {10, 10}, 0.1f), Error);
  EXPECT_THROW(StepMilestoneLr(0.1f, {10, 5}, 0.1f), Error);
  EXPECT_THROW(StepMilestoneLr(0.1f, {10}, 0.f), Error);
  EXPECT_THROW(StepMilestoneLr(0.1f, {10}, 1.5f), Error);
  EXPECT_THROW(TimeMilestoneLr(0.1f, {0.0, 0.5}, 0.2f), Error);
  EXPECT_THROW(TimeMilestoneLr(0.1f, {0.5, 1.0}, 0.2f), Error);
  EXPECT_THROW(TimeMilestoneLr(0.1f, {0.8, 0.5}, 0.2f), Error);
  EXPECT_THROW(CosineLr(0.1f, Horizon::Steps, 0.2f), Error);
  EXPECT_THROW(CosineLr(0.1f, Horizon::Steps, -0.01f), Error);
}


TEST(ScheduleFactory, BuildsEachKind) {
  const RunLength steps{1000, 0.0}, time{0, 3600.0};
  EXPECT_FLOAT_EQ(make_schedule("constant", 0.05f, {}, 0.1f)->lr(at_step(500)), 0.05f);
  const auto step = make_schedule("step", 0.1f, {100, 200}, 0.1f, steps);
  EXPECT_FLOAT_EQ(step->lr(at_step(99)), 0.1f);
  EXPECT_FLOAT_EQ(step->lr(at_step(200)), 0.001f);
  const auto by_time = make_schedule("time", 0.1f, {0.5, 0.8}, 0.2f, time);
  EXPECT_FLOAT_EQ(by_time->lr(at_time(0.51)), 0.02f);
  EXPECT_FLOAT_EQ(by_time->lr(at_time(0.81)), 0.004f);
  // Cosine follows the budget when there is one, else the steps.
  EXPECT_FLOAT_EQ(make_schedule("cosine", 0.1f, {}, 1.f, time)->lr(at_time(0.5)), 0.05f);
  EXPECT_FLOAT_EQ(make_schedule("cosine", 0.1f, {}, 1.f, steps)->lr(at_step(500, 1000)), 0.05f);
  EXPECT_FLOAT_EQ(make_schedule("cosine", 0.1f, {}, 1.f, {1000, 3600.0})->lr({500, 1000, 0.0, 3600.0}), 0.1f);
  const auto warm = make_schedule("step", 0.1f, {100}, 0.1f, steps, 10);
  EXPECT_FLOAT_EQ(warm->lr(at_step(0)), 0.01f);
  EXPECT_FLOAT_EQ(warm->lr(at_step(9)), 0.1f);
  EXPECT_FLOAT_EQ(warm->lr(at_step(100)), 0.01f);
  EXPECT_NE(warm->describe().find("warm-up"), std::string::npos);
}

TEST(ScheduleFactory, RejectsImpossibleOptionsWithClearErrors) {
  const RunLength steps{1000, 0.0}, time{0, 3600.0};
  EXPECT_TRUE(throws_error([&] { make_schedule("exponential", 0.1f, {}, 0.1f, steps); }, "unknown"));
  EXPECT_TRUE(throws_error([&] { make_schedule("time", 0.1f, {0.5, 0.8}, 0.2f, steps); }, "budget"));
  EXPECT_TRUE(throws_error([&] { make_schedule("time", 0.1f, {0.8, 0.5}, 0.2f, time); }, "increasing"));
  EXPECT_TRUE(throws_error([&] { make_schedule("time", 0.1f, {0.5, 1.2}, 0.2f, time); }, "(0, 1)"));
  EXPECT_TRUE(throws_error([&] { make_schedule("time", 0.1f, {-0.1}, 0.2f, time); }, "(0, 1)"));
  EXPECT_TRUE(throws_error([&] { make_schedule("time", 0.1f, {}, 0.2f, time); }, "no milestones"));
  EXPECT_TRUE(throws_error([&] { make_schedule("step", 0.1f, {200, 100}, 0.1f, steps); }, "increasing"));
  EXPECT_TRUE(throws_error([&] { make_schedule("step", 0.1f, {150.5}, 0.1f, steps); }, "whole step counts"));
  EXPECT_TRUE(throws_error([&] { make_schedule("step", 0.1f, {100}, 0.f, steps); }, "gamma"));
  EXPECT_TRUE(throws_error([&] { make_schedule("step", -0.1f, {100}, 0.1f, steps); }, "learning rate"));
  EXPECT_TRUE(throws_error([&] { make_schedule("constant", 0.1f, {100}, 0.1f, steps); }, "no milestones"));
  EXPECT_TRUE(throws_error([&] { make_schedule("cosine", 0.1f, {}, 0.1f); }, "length"));
  EXPECT_TRUE(throws_error([&] { make_schedule("cosine", 0.1f, {0.5}, 0.1f, steps); }, "no milestones"));
  EXPECT_TRUE(throws_error([&] { make_schedule("constant", 0.1f, {}, 0.1f, steps, -5); }, "warm-up"));
  EXPECT_TRUE(throws_error([&] { make_schedule("constant", 0.1f, {}, 0.1f, {-1, 0.0}); }, "run length"));
}

}  // namespace
}  // namespace sieve
