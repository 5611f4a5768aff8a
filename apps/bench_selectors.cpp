// sieve-bench's selector cases: the per-epoch draws of Soft Random Sampling and of the random-subset baseline, the
// coverage marking of a step, and online batch selection's re-ranking and per-step draw, at CIFAR (N = 50000) and
// Fashion-MNIST (N = 60000) sizes; history-score importance sampling's draw and refresh and InfoBatch's epoch pruning
// at Fashion-MNIST and ImageNet (N = 1 281 167) sizes; selective backprop's keep test.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "apps/bench.h"
#include "core/ops.h"
#include "sampling/importance.h"
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
  // History scores (Note [history scores]): a step of a history sampler draws b of N from the prefix of its last refresh (log2 N reads
  // per draw); every refresh_every steps (100 by default) the table goes to the host, is summed in double and the
  // distribution and prefix come back. The per-step cost is the draw plus a hundredth of the refresh.
  for (int64_t n : {60000, 1281167}) {
    const int64_t b = 128;
    const std::string size = "N " + std::to_string(n) + ", b " + std::to_string(b);
    if (!t.wants("history draw", size) && !t.wants("history refresh + draw", size) &&
        !t.wants("infobatch epoch prune", "N " + std::to_string(n)))
      continue;
    Generator gen(13);
    ScoringContext ctx;
    ctx.dataset_size = n;
    ctx.device = dev;
    ctx.labels = randint({n}, 10, gen, dev);
    const Tensor all = random_permutation(n, gen, dev), scores = uniform({n}, gen, dev, 0.f, 3.f);
    ImportanceOptions io;
    io.score = ScoreKind::Loss;
    io.source = ScoreSource::History;
    io.batch = b;
    io.refresh_every = 1;  // every select() refreshes: the refresh's cost, plus one draw
    io.seed = 14;
    ImportanceSampler sampler(io);
    sampler.select(ctx);  // creates the table; then every example gets a score
    sampler.observe({all, Tensor::ones({n}, DType::F32, dev)}, Tensor::zeros({1, 10}, DType::F32, dev),
                    Tensor::zeros({1}, DType::I32, dev), scores);
    // Copy out, sum, copy back: 4 N bytes each way for the table, 8 N back for the distribution and its prefix.
    t.add({.name = "history refresh + draw", .size = size, .bytes = n * 12.0, .items = double(b), .unit = "draws/s"},
          [&] { sampler.select(ctx); });
    // The draw alone, from the distribution of the last refresh and its prefix.
    sampler.select(ctx);  // a refresh, whether or not the row above ran
    const Tensor distribution = sampler.history_distribution(), prefix = sampler.history_prefix();
    t.add({.name = "history draw", .size = size, .bytes = b * (4.0 * std::ceil(std::log2(double(n))) + 12.0),
           .items = double(b), .unit = "draws/s"},
          [&] { sample_with_replacement(distribution, prefix, b, gen); });
    // InfoBatch at an epoch's start: permutation, pruning kernel, compaction (one count read), and the mean.
    Tensor keep = Tensor::empty({n}, DType::U8, dev), weights = Tensor::empty({n}, DType::F32, dev);
    t.add({.name = "infobatch epoch prune", .size = "N " + std::to_string(n), .bytes = n * 37.0, .items = double(n),
           .unit = "examples/s"},
          [&] {
            const Tensor order = random_permutation(n, gen, dev);
            const float mean = sum(scores).item() / static_cast<float>(n);
            infobatch_prune(scores, order, mean, 0.5f, gen, keep, weights);
            int64_t count = 0;
            compact(order, keep, &count);
          });
  }
  {
    const int64_t b = 128, r = 1024;
    Generator gen(15);
    const Tensor history = uniform({r}, gen, dev, 0.f, 3.f), losses = uniform({b}, gen, dev, 0.f, 3.f);
    Tensor keep = Tensor::empty({b}, DType::U8, dev);
    t.add({.name = "selective_backprop keep", .size = "b 128, R 1024", .bytes = (r + b) * 4.0 + b, .items = double(b),
           .unit = "candidates/s"},
          [&] { selective_backprop_keep(losses, history, r, 1.f, gen, keep); });
  }
}

}  // namespace sieve::bench
