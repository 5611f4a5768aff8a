// sieve-bench's LSTM cases: the pixel-by-pixel MNIST shape (batch 128, 784 steps of one value, 128 hidden units)
// on a GPU, a smaller one on the CPU, forward alone and forward with backward, through the op and autograd.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "apps/bench.h"
#include "core/autograd.h"
#include "core/ops/conv2d.h"
#include "core/ops/lstm.h"
#include "core/random.h"

namespace sieve::bench {
namespace {

struct LstmCase {
  int64_t batch, steps, input, hidden;
};
// On the CPU also a quarter of the batch and of the sequence (14x14 images), whose row takes a fraction of a second.
constexpr LstmCase kPixelLstm{128, 784, 1, 128}, kSmallLstm{32, 196, 1, 128};
constexpr int kCpuLstmRepeats = 5;

void lstm_case(Table& t, const Options& o, const LstmCase& c) {
  const Device dev = o.device;
  const std::string size = "b" + std::to_string(c.batch) + " T" + std::to_string(c.steps) + " I" +
                           std::to_string(c.input) + " H" + std::to_string(c.hidden);
  if (!t.wants("lstm forward", size) && !t.wants("lstm forward+backward", size)) return;
  t.section("lstm", std::string("one layer; forward without gradient, then training forward + backward to the input "
                                "and every weight; 8BTH(I+H) FLOP forward, twice that backward") +
                        (dev.is_cuda() ? std::string(", TF32 ") + (allow_tf32() ? "on" : "off") : ""));
  Generator gen(5);
  const int64_t H = c.hidden;
  const float a = 1.f / std::sqrt(static_cast<float>(H));
  Tensor x = uniform({c.batch, c.steps, c.input}, gen, dev, -1.f, 1.f);
  std::vector<Tensor> params{uniform({4 * H, c.input}, gen, dev, -a, a), uniform({4 * H, H}, gen, dev, -a, a),
                             uniform({4 * H}, gen, dev, -a, a), uniform({4 * H}, gen, dev, -a, a)};
  const Tensor dy = normal({c.batch, c.steps, H}, gen, dev, 0.f, 1e-3f);
  const double fwd_flops = 8.0 * c.batch * c.steps * H * (c.input + H);
  const int repeats = dev.is_cuda() ? 0 : std::min(o.repeats, kCpuLstmRepeats);
  const int warmup = dev.is_cuda() ? -1 : std::min(o.warmup, 1);
  t.add({.name = "lstm forward", .size = size, .flops = fwd_flops, .items = double(c.batch), .unit = "sequences/s",
         .repeats = repeats, .warmup = warmup},
        [&] {
          NoGradGuard no_grad;
          lstm(x, params);
        });
  for (Tensor& p : params) p.set_requires_grad(true);
  t.add({.name = "lstm forward+backward", .size = size, .flops = 3 * fwd_flops, .items = double(c.batch),
         .unit = "sequences/s", .repeats = repeats, .warmup = warmup},
        [&] {
          for (Tensor& p : params) p.zero_grad();
          lstm(x, params).backward(dy);
        });
}

}  // namespace

void lstm_cases(Table& t, const Options& o) {
  if (o.device.is_cpu()) lstm_case(t, o, kSmallLstm);
  lstm_case(t, o, kPixelLstm);
}

}  // namespace sieve::bench
