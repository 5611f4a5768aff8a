// sieve-bench's CREST cases: the facility-location coreset at the paper's sizes (a random subset of r examples,
// features p - onehot(y) of width = classes, a mini-batch coreset of b = 128), and the bookkeeping of learned
// examples (a training step's record; the periodic drop and compaction over CIFAR-10's 50 000 examples).
#include <string>
#include <vector>

#include "apps/bench.h"
#include "core/random.h"
#include "sampling/facility_location.h"
#include "sampling/loss_history.h"

namespace sieve::bench {

void crest_cases(Table& t, const Options& o) {
  const Device dev = o.device;
  t.section("crest", "coreset rows: one selection per run, its host synchronisation included; % ref of copy bandwidth");
  // r rows of `classes` classes with features of width `classes`, budget b.
  for (auto [r, classes] : {std::pair<int64_t, int>{1000, 10}, {5000, 10}, {1000, 100}}) {
    const int64_t b = 128;
    // r examples in `classes` classes, features of d = classes values, budget b.
    const std::string size = "r " + std::to_string(r) + " C " + std::to_string(classes) + " d " +
                             std::to_string(classes) + " b " + std::to_string(b);
    if (!t.wants("facility_location_coreset", size)) continue;
    Generator g(7);
    const Tensor features = uniform({r, classes}, g, dev, -1.f, 1.f);
    const Tensor labels = randint({r}, classes, g, dev);
    // The similarity blocks are written once and read about once a round: at least sum_c m_c^2 floats, twice.
    const double sim_bytes = 2.0 * 4.0 * static_cast<double>(r) * r / classes;
    t.add({.name = "facility_location_coreset", .size = size, .bytes = sim_bytes, .items = 1.0, .unit = "coresets/s"},
          [&] { facility_location_coreset(features, labels, b, classes); });
  }

  const int64_t record_n = 65536, m = 128;
  if (t.wants("loss_history_record", "N 65536, m 128")) {
    LossHistory h(record_n, 5, dev);
    Generator g(8);
    const Tensor idx = randint({m}, record_n, g, dev);
    const Tensor losses = uniform({m}, g, dev, 0.f, 2.f);
    // Per loss: index and loss read, count read and written, one ring slot written.
    t.add({.name = "loss_history_record", .size = "N 65536, m 128", .bytes = m * 16.0, .items = double(m),
           .unit = "losses/s"},
          [&] { h.record(idx, losses); });
  }

  // CIFAR-10: 50 000 examples, α = 0.1 over the last 5 losses; a third of them learned. Without a guard the drop stays
  // on the device; the reference's floor of 40 000 active examples binds and ranks the candidates on the host.
  const int64_t n = 50000;
  for (int64_t min_active : {int64_t{0}, int64_t{40000}}) {
    const std::string size = "N 50000 w 5 floor " + std::to_string(min_active);
    if (!t.wants("loss_history_drop_learned", size)) continue;
    LossHistory base(n, 5, dev);
    Generator g(9);
    const Tensor labels = randint({n}, 10, g, dev);
    std::vector<int32_t> all(n);
    for (int64_t i = 0; i < n; ++i) all[i] = static_cast<int32_t>(i);
    const Tensor every = Tensor::from_vector(all, {n}, dev);
    std::vector<float> l(n);
    for (int round = 0; round < 5; ++round) {
      for (int64_t i = 0; i < n; ++i) l[i] = i % 3 == 0 ? 0.05f : 0.5f + 0.01f * round;
      base.record(every, Tensor::from_vector(l, {n}, dev));
    }
    // Each run drops from a copy: the copy shares the ring and counts (only read) and replaces its own active set.
    t.add({.name = "loss_history_drop_learned", .size = size, .bytes = n * (5 * 4.0 + 4 + 4 + 4 + 1 + 4 + 4),
           .items = double(n), .unit = "examples/s"},
          [&] {
            LossHistory h = base;
            h.drop_learned(0.1f, labels, 10, 0, min_active);
          });
  }
}

}  // namespace sieve::bench
