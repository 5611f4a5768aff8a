// sieve_mpi_tests: the MPI backend's collectives between processes, run by `tests/mpi/run-mpi 2 sieve_mpi_tests`
// (ctest Distributed.MpiCollectives). Nothing is initialised here beyond what a program does: the communicator
// initialises MPI (Note [mpi exit] in core/distributed.h).
//
// Every rank runs every test, in the same order, so that their collectives meet. A test therefore makes all its
// collectives before checking anything (EXPECT, never an ASSERT between two collectives), or a failure on one rank
// would leave the others waiting. Rank 0 prints gtest's usual report; the other ranks print only their failures.
// Every rank exits non-zero when a test failed on any rank.
#include <gtest/gtest.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "tests/mpi/world.h"

namespace sieve::testing {
namespace {

std::shared_ptr<Communicator> g_world;

// Prints a failed check of a rank other than 0, naming the rank and the test. The test's name is kept from
// OnTestStart: gtest holds its own lock while it reports a result, so UnitTest::current_test_info() cannot be asked
// from OnTestPartResult.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestStart(const ::testing::TestInfo& test) override {
    test_ = std::string(test.test_suite_name()) + "." + test.name();
  }
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s failed at %s:%d\n%s\n", rank_, test_.c_str(),
                 result.file_name() ? result.file_name() : "?", result.line_number(), result.message());
    std::fflush(stderr);
  }

 private:
  int rank_;
  std::string test_ = "(outside a test)";
};

}  // namespace

Communicator& world() { return *g_world; }

}  // namespace sieve::testing

int main(int argc, char** argv) {
  using sieve::Communicator, sieve::Device, sieve::DistributedEnvironment, sieve::ReduceOp;
  ::testing::InitGoogleTest(&argc, argv);
  try {
    sieve::testing::g_world = sieve::make_communicator(DistributedEnvironment::detect(), Device::cpu());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sieve_mpi_tests: error: %s\n", e.what());
    return 1;
  }
  Communicator& world = *sieve::testing::g_world;
  if (world.size() < 2) {
    std::printf("sieve_mpi_tests: needs 2 or more processes, got %d (%s): run it as tests/mpi/run-mpi 2 %s\n",
                world.size(), world.backend().c_str(), argv[0]);
    return 77;
  }
  if (world.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new sieve::testing::FailurePrinter(world.rank()));
  }
  const bool failed = RUN_ALL_TESTS() != 0;

  // Every rank learns which ranks failed; rank 0 names them.
  std::vector<double> failures(static_cast<size_t>(world.size()), 0.0);
  failures[static_cast<size_t>(world.rank())] = failed ? 1.0 : 0.0;
  world.all_reduce(failures, ReduceOp::Sum);
  bool any = false;
  for (size_t r = 0; r < failures.size(); ++r) {
    if (failures[r] == 0.0) continue;
    any = true;
    if (world.rank() == 0) std::printf("sieve_mpi_tests: tests failed on rank %zu (its failures are above)\n", r);
  }
  if (world.rank() == 0 && !any) std::printf("sieve_mpi_tests: every test passed on all %d ranks\n", world.size());
  std::fflush(stdout);
  return any ? 1 : 0;
}
