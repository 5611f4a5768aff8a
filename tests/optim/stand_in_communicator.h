// A communicator for tests of the code above core/distributed.h, in one process: a world of one by default whose
// gathers copy and whose reductions of one rank leave values as they are; tests override what they observe.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/distributed.h"

namespace sieve::testing {

class StandInCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "stand-in"; }
  Device device() const override { return Device::cpu(); }
  void all_reduce(Tensor&, ReduceOp) override {}
  void broadcast(Tensor&, int) override {}
  Tensor all_gather(const Tensor& t) override { return t.clone(); }
  std::unique_ptr<PendingReduce> all_reduce_async(Tensor&, ReduceOp) override { return done(); }
  void all_reduce(std::vector<double>&, ReduceOp) override {}
  void broadcast(std::vector<double>&, int) override {}
  void broadcast(std::string&, int) override {}
  std::vector<std::string> gather(const std::string& bytes, int) override { return {bytes}; }
  void barrier() override {}
  [[noreturn]] void abort(int status) override { std::exit(status); }

 protected:
  // A reduction that is complete when it is handed back.
  static std::unique_ptr<PendingReduce> done() {
    struct Done : PendingReduce {
      void wait() override {}
    };
    return std::make_unique<Done>();
  }
};

}  // namespace sieve::testing
