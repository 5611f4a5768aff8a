// The state archive (core/checkpoint.h): scalars, generators and tensors round-trip through one listing, and the
// selectors write the metadata keys and tensor names they wrote before each listed its state once, so that older
// checkpoints still resume.
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/ops.h"
#include "sampling/make_selector.h"
#include "sampling/selector.h"
#include "tests/sampling/linear_task.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::throws_error;
using Parts = std::vector<std::string>;

// A linear softmax classifier trained by SGD on the selector's batches, as the training loop does: select, a
// training forward pass shown to observe(), a weighted step.
struct Task : testing::LinearTask {
  ScoringContext ctx;

  explicit Task(uint64_t seed) : LinearTask(120, 6, 3, seed + 1, Device::cpu()), ctx(context()) {}

  // Step `k` of a run of 30.
  Selection step(Selector& selector, int k) {
    ctx.progress = static_cast<double>(k) / 30.0;
    const Selection s = selector.select(ctx);
    const Tensor labels = index_select(y, s.indices);
    const Tensor logits = linear(index_select(x, s.indices), w, b);
    selector.observe(s, logits.detach(), labels, cross_entropy(logits, labels).detach());
    train(s, 0.2f);
    return s;
  }
};

// Same dtype, shape and bytes (NaN included), of tensors on the CPU.
bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

struct Config {
  std::string label, name;
  SelectorOptions options;
};

// Every selector (and CREST dropping learned examples), small enough that a few steps reach its epochs, refreshes,
// re-rankings, selections and drops.
std::vector<Config> selector_configs() {
  SelectorOptions o;
  o.batch = 8;
  o.presample = 32;
  o.tau_th = 1.05f;  // importance sampling switches on within a few steps
  o.subset_ratio = 0.3;
  o.resort_every = 3;
  o.recompute_every = 1;
  o.history_refresh = 4;
  o.sb_history = 16;
  o.seed = 7;
  o.crest.subsets = 3;
  o.crest.subset_size = 24;
  o.crest.warmup_epochs = 0.f;
  std::vector<Config> out;
  for (const std::string& name : selector_names()) out.push_back({name, name, o});
  SelectorOptions drop = o;
  drop.crest.drop_learned = true;
  drop.crest.drop_window = 2;
  drop.crest.drop_alpha = 10.f;
  drop.crest.drop_interval = 3;
  drop.crest.min_active = 100;
  drop.crest.tau = 1e-9f;
  out.push_back({"crest-drop", "crest", drop});
  return out;
}

const Config& config_named(const std::string& label) {
  static const std::vector<Config> configs = selector_configs();
  for (const Config& c : configs)
    if (c.label == label) return c;
  throw std::runtime_error("no selector config " + label);
}

// One listing over every kind, as a selector writes it: the metadata strings are the setters' own (so older
// checkpoints read back), tensors are copied when saved, and a file round trip restores every value exactly.
struct Listed {
  int64_t count = 0;
  bool on = false;
  double share = 0;
  float tau = 0;
  Generator gen;
  Tensor table;  // optional, float32
  Tensor flat;   // int32, loaded one-dimensional
  std::vector<std::pair<std::string, Tensor>> part;

  void archive(StateArchive& ar) {
    ar.scalar("count", count);
    ar.scalar("on", on);
    ar.scalar("share", share);
    ar.scalar("tau", tau);
    ar.generator("gen", gen);
    if (ar.loading()) table = Tensor();
    if (ar.flag("has_table", table.defined())) ar.tensor("table", table, DType::F32);
    ar.vector("flat", flat, DType::I32);
    ar.tensors("part.", part);
  }
};

Listed example() {
  Listed a;
  a.count = -(int64_t{1} << 62) - 3;
  a.on = true;
  a.share = 0.1;
  a.tau = 0.3f;
  a.gen = Generator(11, 1234);
  a.table = testing::random_tensor({2, 3}, 5);
  a.flat = Tensor::from_vector<int32_t>({4, -1, 7, 0}, {2, 2});
  a.part = {{"m.0", testing::random_tensor({3}, 6)}, {"probes", Tensor::from_vector<int64_t>({9}, {1})}};
  return a;
}

TEST(StateArchive, OneListingSavesAndLoadsEveryKind) {
  Listed a = example();
  CheckpointState state;
  StateArchive writer = StateArchive::writer(state, "sel.");
  EXPECT_TRUE(writer.saving());
  a.archive(writer);

  CheckpointState setters;  // what the per-kind setters write for the same values
  setters.set_int("sel.count", a.count);
  setters.set_int("sel.on", 1);
  setters.set_double("sel.share", 0.1);
  setters.set_double("sel.tau", static_cast<double>(0.3f));
  setters.set_generator("sel.gen", a.gen);
  setters.set_int("sel.has_table", 1);
  EXPECT_EQ(state.metadata, setters.metadata);
  std::vector<std::string> names;
  for (const auto& [name, t] : state.tensors) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"sel.table", "sel.flat", "sel.part.m.0", "sel.part.probes"}));

  const std::vector<float> table = a.table.to_vector<float>();
  fill_(a.table, 0.0);  // saving copied
  EXPECT_EQ(state.find("sel.table").to_vector<float>(), table);

  testing::TempDir dir;
  save_checkpoint(dir.file("a.ckpt"), state);
  Listed b;
  b.table = Tensor::zeros({1});
  const CheckpointState loaded = load_checkpoint(dir.file("a.ckpt"));
  StateArchive reader = StateArchive::reader(loaded, "sel.");
  EXPECT_TRUE(reader.loading());
  b.archive(reader);
  EXPECT_EQ(b.count, a.count);
  EXPECT_TRUE(b.on);
  EXPECT_EQ(b.share, 0.1);
  EXPECT_EQ(b.tau, 0.3f);
  EXPECT_EQ(b.gen.seed(), 11u);
  EXPECT_EQ(b.gen.offset(), 1234u);
  EXPECT_EQ(b.table.shape(), Shape({2, 3}));
  EXPECT_EQ(b.table.to_vector<float>(), table);
  EXPECT_EQ(b.flat.shape(), Shape({4}));
  EXPECT_EQ(b.flat.to_vector<int32_t>(), (std::vector<int32_t>{4, -1, 7, 0}));
  ASSERT_EQ(b.part.size(), 2u);  // in the file's order (Note [safetensors layout] in core/safetensors.h)
  std::map<std::string, Tensor> part(b.part.begin(), b.part.end());
  ASSERT_TRUE(part.count("m.0") && part.count("probes"));
  EXPECT_EQ(part["m.0"].to_vector<float>(), a.part[0].second.to_vector<float>());
  EXPECT_EQ(part["probes"].to_vector<int64_t>(), (std::vector<int64_t>{9}));

  // An absent optional part: nothing written, and loading clears what the object held.
  a.table = Tensor();
  CheckpointState without;
  StateArchive w2 = StateArchive::writer(without, "sel.");
  a.archive(w2);
  EXPECT_EQ(without.get_int("sel.has_table"), 0);
  EXPECT_FALSE(without.find("sel.table").defined());
  StateArchive r2 = StateArchive::reader(without, "sel.");
  b.archive(r2);
  EXPECT_FALSE(b.table.defined());
}

TEST(StateArchive, LoadingNamesWhatIsMissingOrMistyped) {
  CheckpointState state;
  state.set_int("p.flag", 2);
  state.set_string("p.word", "x");
  state.add_tensors({{"p.t", Tensor::zeros({3})}});
  StateArchive reader = StateArchive::reader(state, "p.");
  bool flag = false;
  reader.scalar("flag", flag);
  EXPECT_TRUE(flag);  // any non-zero integer
  EXPECT_TRUE(reader.has("flag"));
  EXPECT_TRUE(reader.has("t"));
  EXPECT_FALSE(reader.has("absent"));
  int64_t count = 5;
  EXPECT_TRUE(throws_error([&] { reader.scalar("absent", count); }, "metadata has no \"p.absent\""));
  EXPECT_TRUE(throws_error([&] { reader.scalar("word", count); }, Parts{"\"p.word\"", "expected an integer"}));
  Tensor t;
  EXPECT_TRUE(throws_error([&] { reader.tensor("u", t, DType::F32); }, "the tensor 'p.u' is missing"));
  EXPECT_TRUE(throws_error([&] { reader.tensor("t", t, DType::I32); }, Parts{"'p.t'", "expected int32"}));
  EXPECT_TRUE(throws_error([&] { reader.vector("t", t, DType::I32); }, Parts{"'p.t'", "expected int32"}));

  CheckpointState out;
  StateArchive writer = StateArchive::writer(out, "p.");
  EXPECT_TRUE(writer.has("anything"));  // saving writes everything
  Tensor f = Tensor::zeros({2});
  EXPECT_TRUE(throws_error([&] { writer.tensor("f", f, DType::I32); }, Parts{"cannot save 'p.f'", "as int32"}));
}

// The metadata keys and tensor names each selector wrote before it listed its state once (recorded from that code):
// a checkpoint written before still has every key the new listing reads, and one written now is read by it alike.
TEST(StateArchive, SelectorsWriteTheKeysTheyWroteBefore) {
  struct Expected {
    const char* config;
    int steps;
    const char* metadata;  // sorted, space-separated, each after "selector."
    const char* tensors;
  };
  const Expected expected[] = {
      {"uniform", 7, "generator", ""},
      {"upper-bound", 2,
       "awaiting_observe generator importance_on importance_steps steps tau tau_new tau_pending", ""},
      {"upper-bound-history", 0,
       "awaiting_observe generator has_distribution has_table importance_on importance_steps refreshes steps tau "
       "tau_pending",
       ""},
      {"upper-bound-history", 7,
       "awaiting_observe generator has_distribution has_table importance_on importance_steps refreshes steps tau "
       "tau_pending",
       "distribution prefix scores"},
      {"srs", 0, "coverage_kept epochs generator has_subset position", ""},
      {"random-subset", 7, "coverage_kept epochs generator has_subset position", "distinct seen subset"},
      {"online-batch", 0, "coverage_kept generator initialised resorts served steps", ""},
      {"online-batch", 7, "coverage_kept generator initialised resorts served steps", "distinct losses ranking seen"},
      {"infobatch", 0, "annealed epochs generator in_epoch initialised position pruned_share pruned_sum", ""},
      {"infobatch", 7, "annealed epochs generator in_epoch initialised position pruned_share pruned_sum",
       "epoch_examples epoch_weights scores"},
      {"selective-backprop", 0,
       "candidates epochs generator has_order initialised kept pending_count position recorded", ""},
      {"selective-backprop-stale", 7,
       "candidates epochs generator has_order initialised kept pending_count position recorded",
       "history losses order pending"},
      {"crest", 0,
       "P T1 checks cursor generator gradient_evals initial_curvature last_rel_error need_selection selections steps "
       "steps_since_selection",
       ""},
      // drop_rule_reference: added after the archive, to refuse a checkpoint of the other drop rule.
      {"crest-drop", 7,
       "P T1 checks cursor drop_rule_reference generator gradient_evals initial_curvature last_rel_error loss0 "
       "model_tensors need_selection selections steps steps_since_selection",
       "gradient.0 gradient.1 hessian.0 hessian.1 history.active history.count history.ring hutchinson.m.0 "
       "hutchinson.m.1 hutchinson.probes hutchinson.s.0 hutchinson.s.1 hutchinson.sum.0 hutchinson.sum.1 "
       "hutchinson.summed origin.0 origin.1 random_sets union_indices union_weights"},
  };
  auto prefixed = [](const std::string& words) {
    std::vector<std::string> out;
    std::istringstream in(words);
    for (std::string w; in >> w;) out.push_back("selector." + w);
    std::sort(out.begin(), out.end());
    return out;
  };
  for (const Expected& e : expected) {
    const Config& config = config_named(e.config);
    Task task(0);
    std::unique_ptr<Selector> selector = make_selector(config.name, config.options);
    for (int k = 0; k < e.steps; ++k) task.step(*selector, k);
    CheckpointState state;
    selector->save_state(state, "selector.");
    std::vector<std::string> keys, names;
    for (const auto& [key, value] : state.metadata) keys.push_back(key);
    for (const auto& [name, t] : state.tensors) names.push_back(name);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(keys, prefixed(e.metadata)) << e.config << " after " << e.steps << " steps";
    EXPECT_EQ(names, prefixed(e.tensors)) << e.config << " after " << e.steps << " steps";

    // Loaded into a fresh selector and saved again, the same state (CREST included: what it loaded waits for its
    // next select() to reach the device, and is saved as it is until then).
    std::unique_ptr<Selector> loaded = make_selector(config.name, config.options);
    loaded->load_state(state, "selector.");
    CheckpointState again;
    loaded->save_state(again, "selector.");
    EXPECT_EQ(again.metadata, state.metadata) << e.config;
    ASSERT_EQ(again.tensors.size(), state.tensors.size()) << e.config;
    for (size_t i = 0; i < state.tensors.size(); ++i) {
      EXPECT_EQ(again.tensors[i].first, state.tensors[i].first) << e.config;
      EXPECT_TRUE(bit_equal(again.tensors[i].second, state.tensors[i].second)) << e.config;
    }
  }
}

}  // namespace
}  // namespace sieve
