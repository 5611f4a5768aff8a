#include "core/allocator.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::DeviceTest;
using testing::random_tensor;

class TensorOnDevice : public DeviceTest {};

TEST_P(TensorOnDevice, RoundTripAndViews) {
  Tensor h = random_tensor({4, 3}, 1);
  Tensor d = h.to(device());
  EXPECT_EQ(d.device(), device());
  EXPECT_EQ(d.to(Device::cpu()).to_vector<float>(), h.to_vector<float>());
  Tensor r = d.rows(1, 3);
  const auto hv = h.to_vector<float>();
  EXPECT_EQ(r.to_vector<float>(), std::vector<float>(hv.begin() + 3, hv.begin() + 9));
  EXPECT_EQ(d.reshape({-1, 6}).shape(), (Shape{2, 6}));
  Tensor c = d.clone();
  fill_(c, 2.0);
  EXPECT_EQ(d.to_vector<float>(), hv);  // clone does not alias
}

TEST_P(TensorOnDevice, CachingAllocatorReusesFreedBlocks) {
  if (!device().is_cuda()) GTEST_SKIP() << "the caching allocator serves CUDA devices";
  { Tensor warm = Tensor::empty({1 << 20}, DType::F32, device()); }
  const AllocatorStats before = allocator_stats(device().index);
  for (int i = 0; i < 100; ++i) Tensor t = Tensor::empty({1 << 20}, DType::F32, device());
  const AllocatorStats after = allocator_stats(device().index);
  EXPECT_EQ(after.device_mallocs, before.device_mallocs);
  EXPECT_EQ(after.requests, before.requests + 100);
}

SIEVE_INSTANTIATE_DEVICE_TESTS(TensorOnDevice);

TEST(Tensor, ErrorsNameWhatWasExpected) {
  Tensor t = Tensor::zeros({2, 3});
  try {
    t.reshape({4, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot view float32[2, 3] on cpu as [4, 2]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(t.data<int32_t>(), Error);
  EXPECT_THROW(t.rows(1, 5), Error);
  EXPECT_THROW(parse_device("tpu"), Error);
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  if (!cuda_available()) EXPECT_THROW(parse_device("cuda"), Error);
}

TEST(Autograd, AccumulatesAcrossBackwardCallsAndNoGradRecordsNothing) {
  Tensor w = Tensor::from_vector<float>({1.f, 2.f, 3.f}, {3});
  w.set_requires_grad(true);
  sum(mul(w, w)).backward();
  sum(mul(w, w)).backward();
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{4.f, 8.f, 12.f}));  // 2 * 2w
  w.zero_grad();
  {
    NoGradGuard guard;
    Tensor y = mul(w, w);
    EXPECT_FALSE(y.requires_grad());
  }
  Tensor y = mul(w, w);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.detach().requires_grad());
  EXPECT_THROW(Tensor::zeros({3}).backward(), Error);
}

}  // namespace
}  // namespace sieve

namespace sieve {
namespace {

TEST(Tensor, PinnedCopyHoldsTheSameValues) {
  Tensor h = testing::random_tensor({1000}, 9);
  Tensor p = h.pin_memory();
  EXPECT_EQ(p.to_vector<float>(), h.to_vector<float>());
  EXPECT_FALSE(p.same_storage(h));
  // Without a driver there is nothing to pin for: the copy is ordinary memory and says so.
  EXPECT_EQ(p.is_pinned(), cuda_available());
  if (p.is_pinned()) EXPECT_TRUE(p.pin_memory().same_storage(p));
}

}  // namespace
}  // namespace sieve
