// The trainer's data-parallel path in one process (Note [data-parallel selection] in apps/trainer.cpp): on a
// communicator other than the local one, even a world of one gathers its scores, averages its gradients in buckets
// and splits its evaluation, and must train to the very weights of the plain path. On the CPU the communicator is a
// loopback stand-in; on a GPU it is NCCL itself at world size 1 (nccl_single_process_communicator), the code a
// multi-GPU run executes, which is how the NCCL path is tested on one GPU.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "apps/trainer.h"
#include "core/distributed.h"
#include "tests/optim/stand_in_communicator.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

// A world of one with real data movement (gathers copy), counting the bucket reductions.
class Loopback : public testing::StandInCommunicator {
 public:
  std::string backend() const override { return "loopback"; }
  std::unique_ptr<PendingReduce> all_reduce_async(Tensor&, ReduceOp) override {
    ++async_reduces;
    return done();
  }
  int async_reduces = 0;
};

class DataParallelTrainer : public testing::DeviceTest {};

TEST_P(DataParallelTrainer, OneProcessOnACommunicatorTrainsToThePlainPathsWeights) {
  const Device d = device();
  DataSplits data;
  data.train = testing::random_dataset(96, 1, 6, 6, 21, d);
  data.test = testing::random_dataset(40, 1, 6, 6, 22, d);
  for (const std::string sampler : {"uniform", "upper-bound", "infobatch", "crest", "selective-backprop"}) {
    for (const std::string selection : {"global", "local"}) {
      SCOPED_TRACE(sampler + ", --selection " + selection);
      TrainOptions o;
      o.model = "mlp:16";
      o.sampler = sampler;
      o.selection.batch = 16;  // CREST's coresets need a pick for each of the 10 classes
      o.selection.presample = 32;
      o.selection.tau_th = 1.f;  // importance sampling on from the second step
      o.selection.tau_ema = 0.f;
      o.iterations = 14;
      // Global selection draws example j's crop from counter offset + j of the step, as one process does; local
      // selection reserves b counters per rank every step, however short a batch (InfoBatch's last of an epoch),
      // so its crops follow another stream than the plain path's and are left out here.
      o.augment = selection == "global";
      o.selection_mode = selection;
      o.buckets = {.first_bucket_bytes = 256, .bucket_bytes = 1024};  // several buckets for a small MLP
      std::shared_ptr<Communicator> comm;
      if (d.is_cpu()) {
        comm = std::make_shared<Loopback>();
      } else {
        if (!built_with_nccl()) GTEST_SKIP() << "this build has no NCCL (CMake did not find nccl.h and libnccl)";
        comm = nccl_single_process_communicator(d);
      }
      Trainer plain(o, data, d);
      Trainer parallel(o, data, d, comm);
      for (int step = 0; step < 14; ++step) {
        plain.step();
        parallel.step();
      }
      const std::vector<Tensor> a = plain.model().parameters(), b = parallel.model().parameters();
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i)
        EXPECT_EQ(a[i].to(Device::cpu()).to_vector<float>(), b[i].to(Device::cpu()).to_vector<float>())
            << "parameter " << i;
      const EvalRecord ra = plain.evaluate(), rb = parallel.evaluate();
      EXPECT_NEAR(ra.test_loss, rb.test_loss, 1e-9 * ra.test_loss);
      EXPECT_EQ(ra.test_accuracy, rb.test_accuracy);
      EXPECT_EQ(ra.examples, rb.examples);
      EXPECT_EQ(ra.scored, rb.scored);
      if (d.is_cpu()) EXPECT_GE(static_cast<Loopback&>(*comm).async_reduces, 14 * 2) << "no bucketed reduction";
    }
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(DataParallelTrainer);

}  // namespace
}  // namespace sieve
