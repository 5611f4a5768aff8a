#include "sampling/make_selector.h"

#include <functional>

#include "sampling/crest.h"
#include "sampling/importance.h"
#include "sampling/online_batch.h"
#include "sampling/random_subset.h"
#include "sampling/srs.h"
#include "sampling/uniform.h"

namespace sieve {

namespace {

ImportanceOptions importance_options(ScoreKind score, const SelectorOptions& o) {
  ImportanceOptions out;
  out.score = score;
  out.batch = o.batch;
  out.presample = o.presample;
  out.tau_th = o.tau_th;
  out.tau_ema = o.tau_ema;
  out.seed = o.seed;
  return out;
}

OnlineBatchOptions online_batch_options(const SelectorOptions& o) {
  OnlineBatchOptions out;
  out.batch = o.batch;
  out.selection_pressure = o.selection_pressure;
  out.resort_every = o.resort_every;
  out.recompute_every = o.recompute_every;
  out.seed = o.seed;
  return out;
}

struct Entry {
  const char* name;
  std::function<std::unique_ptr<Selector>(const SelectorOptions&)> make;
};

// A new selector is one row here.
const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = {
      {"uniform", [](const SelectorOptions& o) { return std::make_unique<UniformSelector>(o.batch, o.seed); }},
      {"loss",
       [](const SelectorOptions& o) {
         return std::make_unique<ImportanceSampler>(importance_options(ScoreKind::Loss, o));
       }},
      {"upper-bound",
       [](const SelectorOptions& o) {
         return std::make_unique<ImportanceSampler>(importance_options(ScoreKind::UpperBound, o));
       }},
      {"srs",
       [](const SelectorOptions& o) { return std::make_unique<SoftRandomSampler>(o.batch, o.subset_ratio, o.seed); }},
      {"random-subset",
       [](const SelectorOptions& o) {
         return std::make_unique<RandomSubsetSelector>(o.batch, o.subset_ratio, o.seed);
       }},
      {"online-batch",
       [](const SelectorOptions& o) { return std::make_unique<OnlineBatchSelector>(online_batch_options(o)); }},
      {"crest",
       [](const SelectorOptions& o) {
         CrestOptions c = o.crest;
         c.batch = o.batch;
         c.seed = o.seed;
         return std::make_unique<CrestSelector>(c);
       }},
  };
  return entries;
}

}  // namespace

std::vector<std::string> selector_names() {
  std::vector<std::string> names;
  for (const Entry& e : registry()) names.emplace_back(e.name);
  return names;
}

std::unique_ptr<Selector> make_selector(const std::string& name, const SelectorOptions& options) {
  for (const Entry& e : registry()) {
    if (name == e.name) return e.make(options);
  }
  std::string accepted;
  for (const std::string& n : selector_names()) accepted += (accepted.empty() ? "" : ", ") + n;
  SIEVE_FAIL("unknown selector '", name, "': expected one of ", accepted);
}

}  // namespace sieve
