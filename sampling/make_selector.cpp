#include "sampling/make_selector.h"

#include <functional>

#include "sampling/crest.h"
#include "sampling/importance.h"
#include "sampling/infobatch.h"
#include "sampling/online_batch.h"
#include "sampling/random_subset.h"
#include "sampling/selective_backprop.h"
#include "sampling/srs.h"
#include "sampling/uniform.h"

namespace sieve {

namespace {

ImportanceOptions importance_options(ScoreKind score, const SelectorOptions& o, bool history) {
  ImportanceOptions out;
  out.score = score;
  out.source = history ? ScoreSource::History : parse_score_source(o.score_source);
  out.smoothing = o.score_smoothing;
  out.presample_smoothing = o.presample_smoothing;
  out.refresh_every = o.history_refresh;
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

SelectiveBackpropOptions selective_backprop_options(const SelectorOptions& o, bool stale) {
  SelectiveBackpropOptions out;
  out.batch = o.batch;
  out.history = o.sb_history;
  out.beta = o.sb_beta;
  out.stale = stale || o.sb_stale;
  out.seed = o.seed;
  return out;
}

InfoBatchOptions infobatch_options(const SelectorOptions& o) {
  InfoBatchOptions out;
  out.batch = o.batch;
  out.prune_ratio = o.prune_ratio;
  out.anneal = o.anneal;
  out.seed = o.seed;
  return out;
}

std::unique_ptr<Selector> importance(ScoreKind score, const SelectorOptions& o, bool history) {
  return std::make_unique<ImportanceSampler>(importance_options(score, o, history));
}

struct Entry {
  const char* name;
  std::function<std::unique_ptr<Selector>(const SelectorOptions&)> make;
};

// A new selector is one row here.
const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = {
      {"uniform", [](const SelectorOptions& o) { return std::make_unique<UniformSelector>(o.batch, o.seed); }},
      {"loss", [](const SelectorOptions& o) { return importance(ScoreKind::Loss, o, false); }},
      {"upper-bound", [](const SelectorOptions& o) { return importance(ScoreKind::UpperBound, o, false); }},
      {"loss-history", [](const SelectorOptions& o) { return importance(ScoreKind::Loss, o, true); }},
      {"upper-bound-history", [](const SelectorOptions& o) { return importance(ScoreKind::UpperBound, o, true); }},
      {"gradient-norm", [](const SelectorOptions& o) { return importance(ScoreKind::GradientNorm, o, false); }},
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
      {"infobatch",
       [](const SelectorOptions& o) { return std::make_unique<InfoBatchSelector>(infobatch_options(o)); }},
      {"selective-backprop",
       [](const SelectorOptions& o) {
         return std::make_unique<SelectiveBackpropSelector>(selective_backprop_options(o, false));
       }},
      {"selective-backprop-stale",
       [](const SelectorOptions& o) {
         return std::make_unique<SelectiveBackpropSelector>(selective_backprop_options(o, true));
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
