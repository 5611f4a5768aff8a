// The Lstm layer and LstmClassifier: PyTorch's parameter names and shapes, the initialisation (forget-gate bias),
// the lstm:H model spec, and the classifier on both devices.
#include <cmath>
#include <string>

#include "core/ops.h"
#include "layers/lstm.h"
#include "layers/models.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::all_close;
using testing::DeviceTest;
using testing::random_tensor;
using testing::throws_error;

TEST(LstmLayer, ParametersHavePyTorchNamesAndShapes) {
  Generator gen(1);
  Lstm lstm(3, 8, 2, gen);
  const auto named = lstm.named_parameters();
  ASSERT_EQ(named.size(), 8u);
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"weight_ih_l0", {32, 3}}, {"weight_hh_l0", {32, 8}}, {"bias_ih_l0", {32}}, {"bias_hh_l0", {32}},
      {"weight_ih_l1", {32, 8}}, {"weight_hh_l1", {32, 8}}, {"bias_ih_l1", {32}}, {"bias_hh_l1", {32}}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(named[i].first, expected[i].first);
    EXPECT_EQ(named[i].second.shape(), expected[i].second) << expected[i].first;
    EXPECT_TRUE(named[i].second.requires_grad()) << expected[i].first;
  }
  EXPECT_EQ(lstm.forward(random_tensor({4, 5, 3}, 2)).shape(), (Shape{4, 5, 8}));
  EXPECT_EQ(lstm.describe(), "LSTM(3 -> 8, 2 layers)");
}

TEST(LstmLayer, InitialisationIsUniformWithForgetBiasOne) {
  const int64_t H = 64;
  Generator gen(3);
  Lstm lstm(5, H, 2, gen);
  const float bound = 1.f / std::sqrt(static_cast<float>(H));
  for (int64_t k = 0; k < 2; ++k) {
    for (int j = 0; j < 2; ++j) {  // weights: U(-1/sqrt(H), 1/sqrt(H)), mean near 0, spread near the uniform's
      const auto w = lstm.params()[4 * k + j].to_vector<float>();
      double sum = 0, sq = 0;
      for (float v : w) {
        EXPECT_LE(std::abs(v), bound);
        sum += v, sq += double(v) * v;
      }
      const double n = double(w.size()), var = bound * bound / 3.0;
      EXPECT_NEAR(sum / n, 0.0, 5 * std::sqrt(var / n));
      EXPECT_NEAR(sq / n, var, 0.1 * var);
    }
    const auto b_ih = lstm.params()[4 * k + 2].to_vector<float>(), b_hh = lstm.params()[4 * k + 3].to_vector<float>();
    int64_t nonzero_other = 0;
    for (int64_t r = 0; r < 4 * H; ++r) {
      if (r >= H && r < 2 * H) {
        EXPECT_EQ(b_ih[r] + b_hh[r], 1.f) << "forget gate row " << r;
      } else {
        EXPECT_LE(std::abs(b_ih[r]), bound);
        EXPECT_LE(std::abs(b_hh[r]), bound);
        nonzero_other += b_ih[r] != 0.f && b_hh[r] != 0.f;
      }
    }
    EXPECT_EQ(nonzero_other, 3 * H);  // the other gates' biases are random, not zeros
  }
}

TEST(LstmLayer, RejectsBadSizes) {
  Generator gen(4);
  EXPECT_TRUE(throws_error([&] { Lstm(0, 8, 1, gen); }, "Lstm: sizes must be positive"));
  EXPECT_TRUE(throws_error([&] { Lstm(1, 8, 0, gen); }, "layers 0"));
}

TEST(LstmModel, SpecParsesAndCountsParameters) {
  EXPECT_EQ(parse_model_spec("lstm:128").kind, "lstm");
  EXPECT_EQ(parse_model_spec("lstm:128").args, (std::vector<int64_t>{128, 1}));
  EXPECT_EQ(parse_model_spec("lstm:64,3").args, (std::vector<int64_t>{64, 3}));
  for (const auto& [spec, H, L] : {std::tuple{"lstm:128", 128, 1}, std::tuple{"lstm:16,2", 16, 2}}) {
    Generator gen(5);
    auto model = make_model(spec, {1, 28, 28}, 10, gen);
    // 4H(I + H) + 8H per layer (I = 1 below, H above), then the classifier's H * 10 + 10.
    int64_t expected = H * 10 + 10;
    for (int64_t k = 0; k < L; ++k) expected += 4 * H * ((k == 0 ? 1 : H) + H) + 8 * H;
    EXPECT_EQ(model->parameter_count(), expected) << spec;
  }
}

TEST(LstmModel, SpecErrorsAreReadable) {
  Generator gen(6);
  EXPECT_TRUE(throws_error([] { parse_model_spec("lstm"); }, {"lstm:128", "hidden size"}));
  EXPECT_TRUE(throws_error([] { parse_model_spec("lstm:0"); }, "positive integers"));
  EXPECT_TRUE(throws_error([] { parse_model_spec("lstm:8,1,2"); }, "lstm:H or lstm:H,L"));
  EXPECT_TRUE(throws_error([&] { make_model("lstm:8", {3, 32, 32}, 10, gen); },
                           {"lstm models read one pixel per step; use a single-channel data set", "[3, 32, 32]"}));
}

class LstmClassifierTest : public DeviceTest {};

TEST_P(LstmClassifierTest, ReadsImagesPixelByPixel) {
  // The classifier on [B, 1, h, w] images equals the LSTM on [B, h * w, 1] sequences, last step, then Linear.
  Generator gen(7);
  LstmClassifier model(1, 12, 2, 10, gen, device());
  const Tensor images = random_tensor({3, 1, 4, 5}, 8, device());
  const Tensor logits = model.forward(images);
  ASSERT_EQ(logits.shape(), (Shape{3, 10}));
  const Tensor y = model.lstm().forward(images.reshape({3, 20, 1}));
  const Tensor expected = model.classifier().forward(select_step(y, 19));
  // The same calls in the same order: equal up to the last bit on the CPU; 1e-6 leaves cuDNN its choice of kernel.
  EXPECT_TRUE(all_close(logits, expected, 1e-6f, 1e-6f));
  EXPECT_TRUE(throws_error([&] { LstmClassifier(3, 4, 1, 2, gen, device()).forward(images); },
                           {"20 values", "steps of 3"}));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(LstmClassifierTest);

}  // namespace
}  // namespace sieve
