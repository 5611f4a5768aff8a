// sieve-bench's selector cases: the per-epoch draws of Soft Random Sampling and of the random-subset baseline, the
// coverage marking of a step, and online batch selection's re-ranking and per-step draw, at CIFAR (N = 50000) and
// Fashion-MNIST (N = 60000) sizes.
#include <cmath>
#include <limits>
#include <string>

#include "apps/bench.h"
#include "core/ops.h"
#include "sampling/online_batch.h"
#include "sampling/sample.h"
#include "sampling/selectors.h"

namespace sieve::bench {

void selector_cases(Table& t, const Options& o) {
  const Device dev = o.device;
  t.section("selectors", "% ref = % of the copy bandwidth");
  for (int64_t n : {50000, 60000}) {
    const std::string size = "N " + std::to_string(n);
    Generator gen(11);
    // SRS draws m = r N indices with replacement per epoch: r = 1 here, one int32 written per draw.
    t.add({.name = "srs_draw (randint)", .size = size + ", r 1", .bytes = n * 4.0, .items = double(n),
           .unit = "draws/s"},
          [&] { randint({n}, n, gen, dev); });
    // Keys and values written, then sorted (at least a read and a write of both).
    t.add({.name = "random_permutation", .size = size, .bytes = n * 24.0, .items = double(n), .unit = "items/s"},
          [&] { random_permutation(n, gen, dev); });
    Tensor seen = Tensor::zeros({n}, DType::I32, dev), distinct = Tensor::zeros({}, DType::I32, dev);
    Tensor batch = randint({128}, n, gen, dev);
    t.add({.name = "mark_seen", .size = size + ", b 128", .bytes = 128 * 8.0, .items = 128.0, .unit = "indices/s"},
          [&] { mark_seen(batch, seen, distinct); });
  }
  {
    const int64_t n = 60000, b = 128;
    const std::string size = "N " + std::to_string(n);
    Generator gen(12);
    // Losses with many ties (a tenth are still +inf, Note [unseen first]) and a ranking to re-sort.
    Tensor losses = uniform({n}, gen, dev, 0.f, 3.f);
    Tensor unseen = randint({n / 10}, n, gen, dev);
    scatter_losses(unseen, Tensor::full({n / 10}, std::numeric_limits<double>::infinity(), DType::F32, dev), losses);
    Tensor order = random_permutation(n, gen, dev);
    t.add({.name = "online_batch resort", .size = size, .bytes = n * 24.0, .items = double(n),
           .unit = "items/s"},
          [&] { rank_by_loss(losses, order); });
    // The draw searches the rank prefix (built once): log2 N reads per draw, then the positions and the gather.
    Tensor probabilities = rank_probabilities(n, 100.0).to(dev), prefix = rank_prefix(n, 100.0).to(dev);
    t.add({.name = "online_batch draw", .size = size + ", b " + std::to_string(b),
           .bytes = b * (4.0 * std::ceil(std::log2(double(n))) + 16.0), .items = double(b), .unit = "draws/s"},
          [&] { index_select(order, sample_with_replacement(probabilities, prefix, b, gen).positions); });
    Tensor batch_losses = uniform({b}, gen, dev, 0.f, 3.f), batch = randint({b}, n, gen, dev);
    t.add({.name = "scatter_losses", .size = size + ", b " + std::to_string(b), .bytes = b * 12.0, .items = double(b),
           .unit = "losses/s"},
          [&] { scatter_losses(batch, batch_losses, losses); });
  }
}

}  // namespace sieve::bench
