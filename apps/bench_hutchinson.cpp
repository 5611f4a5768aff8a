// sieve-bench's Hutchinson cases: the kernels of CREST's Hessian-diagonal estimate (sampling/hutchinson.h) over as
// many parameters as a WRN-28-2 has, each timed through its backend alone. All three are bandwidth-bound.
#include <string>

#include "apps/bench.h"
#include "core/ops/dispatch.h"
#include "sampling/hutchinson.h"

namespace sieve::bench {

void hutchinson_cases(Table& t, const Options& o) {
  // WRN-28-2 on CIFAR-10 has 1,467,610 parameters; one flat tensor of that size stands for them.
  constexpr int64_t kParameters = 1467610;
  const std::string size = "1.47M params (WRN-28-2)";
  t.section("Hutchinson (CREST)", "one probe over every parameter; % ref = % of the copy bandwidth");
  const Device dev = o.device;
  const int64_t n = kParameters;
  Generator gen(13);
  Tensor z = rademacher({n}, gen, dev);
  Tensor hz = normal({n}, gen, dev), g = normal({n}, gen, dev);
  Tensor m = normal({n}, gen, dev, 0.f, 1e-2f), s = uniform({n}, gen, dev), sum = normal({n}, gen, dev);
  Tensor g_out = Tensor::empty({n}, DType::F32, dev), h_out = Tensor::empty({n}, DType::F32, dev);
  const double f = sizeof(float);
  uint64_t offset = 0;
  t.add({.name = "hutchinson_rademacher", .size = size, .bytes = n * f, .items = double(n), .unit = "params/s"},
        [&] { SIEVE_DISPATCH(dev, rademacher_fill, z.data<float>(), n, 13, offset++); });
  // Reads z, hz, g, m, s, sum; writes m, s, sum.
  t.add({.name = "hutchinson_accumulate", .size = size, .bytes = 9 * n * f, .items = double(n), .unit = "params/s"},
        [&] {
          SIEVE_DISPATCH(dev, hutchinson_accumulate, z.data<float>(), hz.data<float>(), g.data<float>(), n,
                         HutchinsonStep{0.9f, 0.999f}, m.data<float>(), s.data<float>(), sum.data<float>());
        });
  // Reads m, s; writes g, h.
  t.add({.name = "hutchinson_moments", .size = size, .bytes = 4 * n * f, .items = double(n), .unit = "params/s"},
        [&] {
          SIEVE_DISPATCH(dev, hutchinson_moments, m.data<float>(), s.data<float>(), n,
                         HutchinsonMoments{0.5f, 0.01f, 1e-4f}, g_out.data<float>(), h_out.data<float>());
        });
}

}  // namespace sieve::bench
