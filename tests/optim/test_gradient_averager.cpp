// Gradient hooks (Note [gradient hooks] in core/autograd.h) and the bucketed gradient averaging of data-parallel
// training (Note [gradient buckets] in optim/distributed.h), in one process: a stand-in communicator plays a second
// rank whose gradients are known, and records when each bucket was handed over.
#include <gtest/gtest.h>

#include <vector>

#include "core/distributed.h"
#include "core/ops.h"
#include "layers/models.h"
#include "optim/distributed.h"
#include "tests/optim/stand_in_communicator.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

// A leaf used by two nodes gets its hook once, after both have added their parts: the gradient it sees is final.
TEST(GradientHooks, RunOnceWhenTheLeafsGradientIsComplete) {
  Tensor w = testing::random_tensor({3, 4}, 1).set_requires_grad();
  const Tensor x = testing::random_tensor({5, 4}, 2);
  std::vector<float> seen;
  int calls = 0;
  w.set_grad_ready_hook([&] {
    ++calls;
    seen = w.grad().to_vector<float>();
  });
  Tensor y = add(matmul(x, w, false, true), matmul(scale(x, 2.f), w, false, true));  // w reached twice
  testing::weighted_total(y, 3).backward();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, w.grad().to_vector<float>());
  w.set_grad_ready_hook(nullptr);
  w.zero_grad();
  testing::weighted_total(matmul(x, w, false, true), 3).backward();
  EXPECT_EQ(calls, 1) << "a removed hook ran";
  Tensor not_leaf = scale(w, 2.f);
  EXPECT_TRUE(testing::throws_error([&] { not_leaf.set_grad_ready_hook([] {}); }, "is not a leaf"));
}

// An MLP's parameters complete in reverse order: the classifier's first.
TEST(GradientHooks, RunInTheOrderTheBackwardPassCompletesTheLeaves) {
  Generator gen(4);
  auto mlp = make_mlp(6, {5, 4}, 3, gen);
  std::vector<Tensor> params = mlp->parameters();
  std::vector<size_t> order;
  for (size_t i = 0; i < params.size(); ++i) params[i].set_grad_ready_hook([&order, i] { order.push_back(i); });
  const Tensor x = testing::random_tensor({7, 6}, 5);
  mean(cross_entropy(mlp->forward(x), testing::random_labels(7, 3, 6))).backward();
  ASSERT_EQ(order.size(), params.size());
  // Each layer's weight and bias complete together, later layers first.
  for (size_t k = 0; k + 1 < order.size(); k += 2) {
    EXPECT_EQ(std::max(order[k], order[k + 1]), params.size() - 1 - k) << "position " << k;
    EXPECT_EQ(std::min(order[k], order[k + 1]), params.size() - 2 - k) << "position " << k;
  }
  for (Tensor& p : params) p.set_grad_ready_hook(nullptr);
}

// A world of two in which the other rank's gradients are all `peer`: an average gives (g + peer) / 2. Records each
// all_reduce_async call: the bucket's size and whether the backward pass was still running.
class TwoRankStandIn : public testing::StandInCommunicator {
 public:
  explicit TwoRankStandIn(float peer) : peer_(peer) {}
  int size() const override { return 2; }
  void all_reduce(Tensor&, ReduceOp) override { ADD_FAILURE() << "unexpected all_reduce"; }
  std::unique_ptr<PendingReduce> all_reduce_async(Tensor& t, ReduceOp op) override {
    EXPECT_EQ(op, ReduceOp::Avg);
    launches.push_back({t.numel(), in_backward});
    Tensor peer = Tensor::full(t.shape(), peer_, DType::F32, t.device());
    t.copy_(scale(add(t, peer), 0.5f));
    return done();
  }

  struct Launch {
    int64_t elements;
    bool during_backward;
  };
  std::vector<Launch> launches;
  bool in_backward = false;

 private:
  float peer_;
};

TEST(GradientAverager, AveragesEveryGradientInBucketsLaunchedDuringTheBackwardPass) {
  Generator gen(7);
  auto mlp = make_mlp(20, {16, 12}, 5, gen);
  const Tensor x = testing::random_tensor({9, 20}, 8);
  const Tensor y = testing::random_labels(9, 5, 9);
  auto loss = [&] { return mean(cross_entropy(mlp->forward(x), y)); };
  // The gradients of one process, as a reference.
  loss().backward();
  std::vector<std::vector<float>> single;
  for (const Tensor& p : mlp->parameters()) single.push_back(p.grad().to_vector<float>());
  for (Tensor p : mlp->parameters()) p.zero_grad();

  auto comm = std::make_shared<TwoRankStandIn>(0.25f);
  // Small buckets: the first (at most 64 floats) holds the classifier's bias (5) alone, as its weight (60) would
  // overflow it; then buckets of at most 256 floats.
  GradientAverager averager(mlp->parameters(), comm, {.first_bucket_bytes = 64 * 4, .bucket_bytes = 256 * 4});
  const std::vector<int64_t> elements = averager.bucket_elements();
  ASSERT_GE(elements.size(), 3u);
  EXPECT_EQ(averager.bucket_parameter_counts().front(), 1);
  for (int step = 0; step < 2; ++step) {  // the buffers are reused
    comm->launches.clear();
    averager.prepare();
    comm->in_backward = true;
    loss().backward();
    comm->in_backward = false;
    averager.finish();
    ASSERT_EQ(comm->launches.size(), elements.size());
    for (size_t b = 0; b < elements.size(); ++b) EXPECT_EQ(comm->launches[b].elements, elements[b]) << "bucket " << b;
    EXPECT_TRUE(comm->launches.front().during_backward) << "the first bucket waited for the whole backward pass";
    const std::vector<Tensor> params = mlp->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      std::vector<float> expected = single[i];
      for (float& v : expected) v = (v + 0.25f) / 2.f;
      EXPECT_TRUE(testing::all_close(params[i].grad().to_vector<float>(), expected, 1e-7f, 1e-6f)) << "parameter " << i;
    }
  }
  // A backward pass outside prepare()/finish() (a selector's probe) is not averaged.
  for (Tensor p : mlp->parameters()) p.zero_grad();
  comm->launches.clear();
  loss().backward();
  EXPECT_TRUE(comm->launches.empty());
  EXPECT_EQ(mlp->parameters().front().grad().to_vector<float>(), single.front());
}

// A parameter the pass does not reach keeps a zero gradient, averaged like the others (the other rank's may not be).
TEST(GradientAverager, ParametersThePassDoesNotReachAreAveragedAsZero) {
  Tensor used = testing::random_tensor({4}, 10).set_requires_grad();
  Tensor unused = testing::random_tensor({3}, 11).set_requires_grad();
  auto comm = std::make_shared<TwoRankStandIn>(1.f);
  GradientAverager averager({used, unused}, comm);
  averager.prepare();
  sum(mul(used, used)).backward();
  averager.finish();
  EXPECT_EQ(unused.grad().to_vector<float>(), std::vector<float>(3, 0.5f));
  const std::vector<float> u = used.to_vector<float>(), g = used.grad().to_vector<float>();
  for (size_t i = 0; i < u.size(); ++i) EXPECT_FLOAT_EQ(g[i], (2 * u[i] + 1) / 2);
}

TEST(GradientAverager, OneProcessLeavesGradientsAsTheyAre) {
  Generator gen(12);
  auto mlp = make_mlp(6, {5}, 3, gen);
  const Tensor x = testing::random_tensor({4, 6}, 13);
  const Tensor y = testing::random_labels(4, 3, 14);
  mean(cross_entropy(mlp->forward(x), y)).backward();
  std::vector<std::vector<float>> expected;
  for (Tensor p : mlp->parameters()) {
    expected.push_back(p.grad().to_vector<float>());
    p.zero_grad();
  }
  GradientAverager averager(mlp->parameters(), local_communicator());
  averager.prepare();
  mean(cross_entropy(mlp->forward(x), y)).backward();
  averager.finish();
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(mlp->parameters()[i].grad().to_vector<float>(), expected[i]);
}

}  // namespace
}  // namespace sieve
