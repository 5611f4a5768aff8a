// --cuda-graphs (Note [captured steps] in apps/trainer.cpp) and the graph machinery under it: CudaGraph, capture
// pools and draws from a device base (Note [cuda graphs], Note [capture pools], Note [captured draws]). The option's
// checks and the counter arithmetic run everywhere; captures need a GPU.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "apps/trainer.h"
#include "core/allocator.h"
#include "core/cuda_graph.h"
#include "core/ops.h"
#include "core/philox.h"
#include "core/random.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

std::vector<float> host_values(const Tensor& t) { return t.to(Device::cpu()).to_vector<float>(); }

// The one-line error of a Trainer with --cuda-graphs on `device` with `optimizer`, or "" when it was accepted.
std::string cuda_graphs_refusal(Device device, const std::string& optimizer) {
  DataSplits data;
  data.train = testing::random_dataset(32, 1, 6, 6, 1, device);
  data.test = testing::random_dataset(8, 1, 6, 6, 2, device);
  TrainOptions o;
  o.model = "mlp:8";
  o.sampler = "uniform";
  o.selection.batch = 8;
  o.iterations = 2;
  o.optimizer = optimizer;
  o.cuda_graphs = true;
  try {
    Trainer trainer(o, data, device);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CudaGraphs, TheOptionNamesWhatItNeeds) {
  const std::string refusal = cuda_graphs_refusal(Device::cpu(), "sgd");
  EXPECT_NE(refusal.find("--cuda-graphs captures GPU work; this run is on cpu"), std::string::npos) << refusal;
  EXPECT_THROW(CudaGraph graph(Device::cpu()), Error);
}

// A generator with a device base hands out offsets relative to it, and the kernels' counter is base + offset: the
// same counters as the generator without a base that starts where the base's value says.
TEST(CudaGraphs, DrawsFromADeviceBaseCountFromItsValue) {
  Generator plain(77, 1000), based(77, 0);
  const uint64_t cell = 1000;  // on the host here: philox_counter_offset is the same code on both sides
  based.set_device_base(&cell);
  for (const uint64_t n : {5u, 128u, 3u}) {
    const PhiloxCounter a = plain.draw(n), b = based.draw(n);
    EXPECT_EQ(a.base, nullptr);
    EXPECT_EQ(b.base, &cell);
    EXPECT_EQ(a.seed, b.seed);
    EXPECT_EQ(philox_counter_offset(a.offset, a.base), philox_counter_offset(b.offset, b.base));
    EXPECT_EQ(philox_uniform(a.seed, philox_counter_offset(a.offset, a.base), 2),
              philox_uniform(b.seed, philox_counter_offset(b.offset, b.base), 2));
  }
  EXPECT_EQ(plain.offset() - 1000, based.offset());
}

class CudaGraphsGpu : public testing::GpuTest {};

// A captured computation replays on new inputs written into its input tensor, runs nothing at capture, and keeps its
// memory apart from the device's cache until the graph is gone.
TEST_F(CudaGraphsGpu, ReplaysOnNewInputsAndKeepsItsMemory) {
  const Device d = Device::cuda(0);
  Tensor x = testing::random_tensor({1000}, 1, d);
  Tensor y;
  {
    CudaGraph graph(d);
    graph.capture([&] { y = add(mul(x, x), scale(x, 3.f)); }, "a test computation");
    ASSERT_TRUE(graph.captured());
    for (uint64_t seed : {2u, 3u}) {
      const Tensor fresh = testing::random_tensor({1000}, seed, d);
      x.copy_(fresh);
      graph.replay();
      EXPECT_EQ(host_values(y), host_values(add(mul(fresh, fresh), scale(fresh, 3.f))));
      // Eager work after a replay takes none of the graph's blocks: y keeps its values.
      const Tensor other = testing::random_tensor({1000}, seed + 10, d);
      (void)add(other, other);
      EXPECT_EQ(host_values(y), host_values(add(mul(fresh, fresh), scale(fresh, 3.f))));
    }
  }
  EXPECT_EQ(host_values(y).size(), 1000u);  // the graph is gone; its output stays a valid tensor
}

// Work that waits for the device or draws from a generator without a device base cannot be captured: one readable
// error, and the device and the allocator work on as before.
TEST_F(CudaGraphsGpu, UncapturableWorkFailsInOneLine) {
  const Device d = Device::cuda(0);
  const Tensor x = testing::random_tensor({64}, 4, d);
  CudaGraph graph(d);
  try {
    graph.capture([&] { (void)add(x, x).to(Device::cpu()); }, "a copy to the host");
    FAIL() << "a copy to the host was captured";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("could not capture a copy to the host as a CUDA graph"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(graph.captured());
  Generator gen(5);
  try {
    graph.capture([&] { (void)dropout(x, 0.5f, gen, true); }, "dropout");
    FAIL() << "an unbased draw was captured";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Note [captured draws]"), std::string::npos) << e.what();
  }
  EXPECT_EQ(host_values(add(x, x)), host_values(scale(x, 2.f)));
}

// The point of it all: a run with --cuda-graphs trains to the very weights of the same run without, bit for bit,
// for samplers that choose in different ways (uniform; importance sampling, its pre-sample scored by a captured
// scoring pass of its own and its switch read on the host; InfoBatch, whose last batch of an epoch is shorter, so
// that some sizes are captured and others run uncaptured), with augmentation (the offset cell), a learning rate
// that changes every step (the rate cell), momentum, gradient clipping, and batch norm's running statistics (the
// CNN).
TEST_F(CudaGraphsGpu, CapturedStepsTrainToTheUncapturedWeights) {
  const Device d = Device::cuda(0);
  struct Case {
    std::string model;
    int c, h, w;
  };
  for (const Case& c : {Case{"mlp:16", 1, 6, 6}, Case{"cnn", 1, 28, 28}}) {
    DataSplits data;
    data.train = testing::random_dataset(100, c.c, c.h, c.w, 31, d);
    data.test = testing::random_dataset(40, c.c, c.h, c.w, 32, d);
    for (const std::string sampler : {"uniform", "upper-bound", "infobatch"}) {
      SCOPED_TRACE(c.model + ", " + sampler);
      TrainOptions o;
      o.model = c.model;
      o.sampler = sampler;
      o.selection.batch = 16;
      o.selection.presample = 32;
      o.selection.tau_th = 1.f;  // importance sampling on from the second step
      o.selection.tau_ema = 0.f;
      o.schedule = "cosine";
      o.iterations = 15;
      o.augment = c.h == 28;  // crops of the 28x28 images
      o.clip_grad_norm = 0.5f;
      Trainer plain(o, data, d);
      o.cuda_graphs = true;
      Trainer graphed(o, data, d);
      for (int step = 0; step < 15; ++step) {
        plain.step();
        graphed.step();
      }
      EXPECT_GE(graphed.captured_graphs(), sampler == "upper-bound" ? 2u : 1u);  // its scoring pass too
      const auto a = plain.model().named_parameters(), b = graphed.model().named_parameters();
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(host_values(a[i].second), host_values(b[i].second)) << a[i].first;
      const auto ba = plain.model().named_buffers(), bb = graphed.model().named_buffers();
      ASSERT_EQ(ba.size(), bb.size());
      for (size_t i = 0; i < ba.size(); ++i)
        if (ba[i].second.dtype() == DType::F32)
          EXPECT_EQ(host_values(ba[i].second), host_values(bb[i].second)) << ba[i].first;
      const EvalRecord ra = plain.evaluate(), rb = graphed.evaluate();
      EXPECT_EQ(ra.test_loss, rb.test_loss);
      EXPECT_EQ(ra.examples, rb.examples);
      EXPECT_EQ(ra.scored, rb.scored);
      EXPECT_EQ(ra.importance_on, rb.importance_on);
    }
  }
}

// Adam's step counts live on the host: the trainer refuses --cuda-graphs with it (and Adam::step under a capture).
TEST_F(CudaGraphsGpu, AdamIsRefused) {
  const std::string refusal = cuda_graphs_refusal(Device::cuda(0), "adam");
  EXPECT_NE(refusal.find("--cuda-graphs needs --optimizer sgd"), std::string::npos) << refusal;
}

}  // namespace
}  // namespace sieve
