#include "sampling/crest.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/ops/dispatch.h"
#include "core/ops/gather.h"
#include "core/ops/reduce.h"
#include "core/ops/softmax.h"
#include "core/philox.h"
#include "sampling/crest_math.h"
#include "sampling/facility_location.h"
#include "sampling/loss_history.h"
#include "sampling/uniform.h"

namespace sieve {

Tensor logit_gradients(const Tensor& logits, const Tensor& labels) {
  check_dtype(logits, DType::F32, "logit_gradients logits");
  check_dim(logits, 2, "logit_gradients logits");
  check_dtype(labels, DType::I32, "logit_gradients labels");
  check_same_device(logits, labels, "logit_gradients");
  SIEVE_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0), "logit_gradients: labels ",
              labels.description(), " for logits ", logits.description());
  const int64_t n = logits.size(0), c = logits.size(1);
  const Tensor ones = Tensor::ones({n}, DType::F32, logits.device());
  Tensor out = Tensor::empty({n, c}, DType::F32, logits.device());
  // grad_loss_i = 1: softmax(z_i) − onehot(y_i), the backward of cross-entropy.
  SIEVE_DISPATCH(logits.device(), cross_entropy_bwd, logits.data<float>(), labels.data<int32_t>(), ones.data<float>(),
                 out.data<float>(), n, c);
  return out;
}

namespace {

CrestOptions checked(const CrestOptions& o) {
  SIEVE_CHECK(o.batch >= 1, "--batch must be positive, found ", o.batch);
  SIEVE_CHECK(o.subsets >= 1, "--crest-subsets must be positive, found ", o.subsets);
  SIEVE_CHECK(o.subset_size >= 0, "--crest-subset-size must be >= 0 (0: the default), found ", o.subset_size);
  SIEVE_CHECK(o.check_interval >= 1, "--crest-check-interval must be positive, found ", o.check_interval);
  SIEVE_CHECK(std::isfinite(o.tau) && o.tau > 0.f, "--crest-tau must be positive, found ", o.tau);
  SIEVE_CHECK(std::isfinite(o.interval_mul) && o.interval_mul > 0.f, "--crest-interval-mul must be positive, found ",
              o.interval_mul);
  SIEVE_CHECK(std::isfinite(o.subsets_mul) && o.subsets_mul > 0.f, "--crest-subsets-mul must be positive, found ",
              o.subsets_mul);
  SIEVE_CHECK(o.beta1 >= 0.f && o.beta1 < 1.f, "--crest-beta1 must be in [0, 1), found ", o.beta1);
  SIEVE_CHECK(o.beta2 >= 0.f && o.beta2 < 1.f, "--crest-beta2 must be in [0, 1), found ", o.beta2);
  SIEVE_CHECK(std::isfinite(o.drop_alpha) && o.drop_alpha > 0.f, "--drop-alpha must be positive, found ", o.drop_alpha);
  SIEVE_CHECK(o.drop_window >= 1, "--drop-window must be positive, found ", o.drop_window);
  SIEVE_CHECK(o.drop_rule == "reference" || o.drop_rule == "window", "--drop-rule must be reference or window, found '",
              o.drop_rule, "'");
  SIEVE_CHECK(std::isfinite(o.train_frac) && o.train_frac > 0.f, "--crest-train-frac must be positive, found ",
              o.train_frac);
  SIEVE_CHECK(o.drop_interval >= 0, "--drop-interval must be >= 0 (0: 20 CREST epochs), found ", o.drop_interval);
  SIEVE_CHECK(o.min_active >= 0, "--min-active must be >= 0 (0: 80% of the data), found ", o.min_active);
  SIEVE_CHECK(std::isfinite(o.warmup_epochs) && o.warmup_epochs >= 0.f, "--crest-warmup-epochs must be >= 0, found ",
              o.warmup_epochs);
  return o;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

CrestSelector::CrestSelector(const CrestOptions& options)
    : options_(checked(options)), gen_(options.seed), t1_(options.check_interval), p_(options.subsets) {}

CrestSelector::~CrestSelector() = default;

int64_t CrestSelector::drop_interval() const {
  return options_.drop_interval > 0 ? options_.drop_interval : 20 * epoch_steps_;
}

int64_t CrestSelector::active_size() const {
  if (history_) return history_->active_size();
  return dataset_size_;
}

void CrestSelector::initialise(const ScoringContext& ctx) {
  check_dataset_size(ctx, "CREST");
  SIEVE_CHECK(static_cast<bool>(ctx.logits), "CREST: the ScoringContext has no logits function");
  SIEVE_CHECK(static_cast<bool>(ctx.loss_gradient), "CREST: the ScoringContext has no loss_gradient function");
  SIEVE_CHECK(!ctx.parameters.empty(), "CREST: the ScoringContext has no parameters");
  SIEVE_CHECK(ctx.labels.defined() && ctx.labels.numel() == ctx.dataset_size, "CREST: the ScoringContext needs ",
              ctx.dataset_size, " labels, found ", ctx.labels.defined() ? ctx.labels.description() : "none");
  dataset_size_ = ctx.dataset_size;
  labels_host_ = ctx.labels.to(Device::cpu()).to_vector<int32_t>();
  int32_t max_label = 0;
  for (int32_t y : labels_host_) {
    SIEVE_CHECK(y >= 0, "CREST: labels must be >= 0, found ", y);
    max_label = std::max(max_label, y);
  }
  num_classes_ = max_label + 1;
  subset_size_ = options_.subset_size > 0 ? options_.subset_size
                                          : std::max(ceil_div(dataset_size_, 100), 4 * options_.batch);
  subset_size_ = std::min(subset_size_, dataset_size_);
  SIEVE_CHECK(subset_size_ >= options_.batch, "CREST: the random subsets hold r = ", subset_size_,
              " examples, fewer than the batch b = ", options_.batch, "; expected r >= b (--crest-subset-size)");
  // E = ⌈⌊train_frac N⌋ / b⌉, Note [crest epoch] (the reference truncates train_frac N to an integer first).
  const auto frac_n = static_cast<int64_t>(static_cast<double>(options_.train_frac) * static_cast<double>(dataset_size_));
  epoch_steps_ = std::max<int64_t>(1, ceil_div(frac_n, options_.batch));

  estimator_ = std::make_unique<HutchinsonEstimator>(ctx.parameters,
                                                     HutchinsonOptions{options_.beta1, options_.beta2, 1e-4f});
  if (!pending_estimator_.empty()) estimator_->load_state(pending_estimator_);
  if (options_.drop_learned) {
    history_ = std::make_unique<LossHistory>(dataset_size_, options_.drop_window, ctx.device);
    if (!pending_history_.empty()) history_->load_state(pending_history_);
  }
  pending_estimator_.clear();
  pending_history_.clear();
  // Tensors restored by load_state are on the host until the device is known.
  auto to_device = [&](Tensor& t) {
    if (t.defined()) t = t.to(ctx.device);
  };
  to_device(union_indices_);
  to_device(union_weights_);
  to_device(random_sets_);
  for (auto* ts : {&model_.origin, &model_.gradient, &model_.hessian_diagonal})
    for (Tensor& t : *ts) to_device(t);
  refresh_active();
  initialised_ = true;
}

void CrestSelector::refresh_active() {
  active_by_class_.assign(static_cast<size_t>(num_classes_), {});
  if (history_) {
    for (int32_t i : history_->active().to(Device::cpu()).to_vector<int32_t>())
      active_by_class_[static_cast<size_t>(labels_host_[static_cast<size_t>(i)])].push_back(i);
  } else {
    for (int64_t i = 0; i < dataset_size_; ++i)
      active_by_class_[static_cast<size_t>(labels_host_[static_cast<size_t>(i)])].push_back(static_cast<int32_t>(i));
  }
}

// ⌈r / C⌉ examples of every class (all of a class that has fewer), uniformly without replacement among its active
// examples, by Floyd's algorithm: k counters of the generator per class, and the active lists are left as they are,
// so that a resumed run draws the same subsets.
std::vector<int32_t> CrestSelector::draw_subset() {
  const int64_t per_class = ceil_div(subset_size_, num_classes_);
  std::vector<int32_t> out;
  for (const std::vector<int32_t>& members : active_by_class_) {
    const int64_t m = static_cast<int64_t>(members.size());
    const int64_t k = std::min(m, per_class);
    if (k == 0) continue;
    const uint64_t offset = gen_.advance(static_cast<uint64_t>(k));
    std::unordered_set<int64_t> chosen;
    for (int64_t j = m - k, draw = 0; j < m; ++j, ++draw) {
      const int64_t t = philox_below(gen_.seed(), offset, static_cast<uint64_t>(draw), static_cast<uint32_t>(j + 1));
      const int64_t pick = chosen.count(t) ? j : t;
      chosen.insert(pick);
      out.push_back(members[static_cast<size_t>(pick)]);
    }
  }
  return out;
}

void CrestSelector::shuffle_union() {
  const int64_t k = union_indices_.numel();
  std::vector<int32_t> perm(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) perm[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  const uint64_t offset = gen_.advance(static_cast<uint64_t>(k));
  for (int64_t i = k - 1; i > 0; --i) {
    const int64_t j = philox_below(gen_.seed(), offset, static_cast<uint64_t>(i), static_cast<uint32_t>(i + 1));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  const Tensor order = Tensor::from_vector(perm, {k}, union_indices_.device());
  union_indices_ = index_select(union_indices_, order);
  union_weights_ = index_select(union_weights_, order);
  cursor_ = 0;
}

void CrestSelector::select_coresets(const ScoringContext& ctx) {
  // Lines 4-5: P class-balanced random subsets, scored in one no-gradient pass.
  std::vector<int32_t> all;
  std::vector<int64_t> offsets = {0};
  for (int64_t p = 0; p < p_; ++p) {
    const std::vector<int32_t> subset = draw_subset();
    all.insert(all.end(), subset.begin(), subset.end());
    offsets.push_back(static_cast<int64_t>(all.size()));
  }
  const int64_t n = static_cast<int64_t>(all.size());
  const Tensor candidates = Tensor::from_vector(all, {n}, ctx.device);
  Tensor labels, features, losses;
  {
    NoGradGuard no_grad;
    const Tensor logits = ctx.logits(candidates).detach();
    SIEVE_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == n, "CREST: ScoringContext::logits returned ",
                logits.defined() ? logits.description() : std::string("an undefined tensor"), " for ", n,
                " examples; expected [", n, ", classes]");
    labels = index_select(ctx.labels, candidates);
    features = logit_gradients(logits, labels);
    if (history_) losses = cross_entropy(logits, labels);
  }
  if (history_) {
    // The reference writes the epoch's slot and drops in the last epoch of every drop interval, right here, before
    // the coresets are chosen from these subsets; the window rule records the next loss and drops at step boundaries
    // (select()). Note [drop rules].
    if (options_.drop_rule == "reference") {
      history_->record_at(candidates, losses, static_cast<int>((steps_ / epoch_steps_) % options_.drop_window));
      const int64_t interval = drop_interval();
      if (steps_ % interval + epoch_steps_ >= interval) {
        history_->drop_learned_reference(options_.drop_alpha, ctx.labels, num_classes_,
                                         ceil_div(subset_size_, num_classes_), min_active());
        refresh_active();
      }
    } else {
      history_->record(candidates, losses);
    }
  }

  // Line 6: a mini-batch coreset of each subset, weighted by the size of the cluster each example represents
  // (floored at 1), normalised to mean 1 over the union as the reference does.
  std::vector<int32_t> union_host, sizes_host;
  std::vector<int64_t> batch_offsets = {0};
  for (int64_t p = 0; p < p_; ++p) {
    const int64_t begin = offsets[static_cast<size_t>(p)], end = offsets[static_cast<size_t>(p) + 1];
    if (end == begin) continue;
    const Coreset coreset = facility_location_coreset(features.rows(begin, end), labels.rows(begin, end),
                                                      std::min(options_.batch, end - begin), num_classes_);
    const std::vector<int32_t> positions = coreset.positions.to(Device::cpu()).to_vector<int32_t>();
    const std::vector<int32_t> sizes = coreset.sizes.to(Device::cpu()).to_vector<int32_t>();
    for (int32_t pos : positions) union_host.push_back(all[static_cast<size_t>(begin + pos)]);
    sizes_host.insert(sizes_host.end(), sizes.begin(), sizes.end());
    batch_offsets.push_back(static_cast<int64_t>(union_host.size()));
  }
  SIEVE_CHECK(!union_host.empty(), "CREST: no active examples to select from");
  const int64_t k = static_cast<int64_t>(union_host.size());
  int64_t size_total = 0;
  for (int32_t v : sizes_host) size_total += v;
  std::vector<float> weights_host(static_cast<size_t>(k));
  for (int64_t q = 0; q < k; ++q) weights_host[q] = facility_cluster_weight(sizes_host[q], k, size_total);
  std::vector<Tensor> batch_indices, batch_weights;
  for (size_t p = 0; p + 1 < batch_offsets.size(); ++p) {
    const auto begin = static_cast<size_t>(batch_offsets[p]), end = static_cast<size_t>(batch_offsets[p + 1]);
    const auto m = static_cast<int64_t>(end - begin);
    batch_indices.push_back(Tensor::from_vector(
        std::vector<int32_t>(union_host.begin() + begin, union_host.begin() + end), {m}, ctx.device));
    batch_weights.push_back(Tensor::from_vector(
        std::vector<float>(weights_host.begin() + begin, weights_host.begin() + end), {m}, ctx.device));
  }
  union_indices_ = Tensor::from_vector(union_host, {k}, ctx.device);
  union_weights_ = Tensor::from_vector(weights_host, {k}, ctx.device);
  random_sets_ = candidates;

  // Line 8: the quadratic model around the current parameters, one Hutchinson probe per mini-batch coreset.
  std::vector<LossGradientFn> batches;
  for (size_t p = 0; p < batch_indices.size(); ++p)
    batches.push_back([&ctx, idx = batch_indices[p], w = batch_weights[p]] { return ctx.loss_gradient(idx, w); });
  model_ = fit_quadratic_model(ctx.parameters, batches, *estimator_, gen_);
  gradient_evals_ += 2 * static_cast<int64_t>(batches.size());

  // Line 16: T1 and P from the curvature, relative to the first selection's.
  // With --selection local the ranks' mean, so that all adapt T1 and P alike and check at the same steps.
  const double curvature = ctx.rank_mean(model_.hessian_norm());
  if (selections_ == 0) {
    initial_curvature_ = curvature;
  } else if (curvature > 0 && std::isfinite(curvature) && initial_curvature_ > 0) {
    const double t1 = std::ceil(static_cast<double>(options_.interval_mul) * initial_curvature_ / curvature);
    t1_ = static_cast<int64_t>(std::clamp(t1, 1.0, 1e9));
    const double p = std::ceil(static_cast<double>(options_.subsets_mul) * static_cast<double>(t1_));
    p_ = std::clamp<int64_t>(static_cast<int64_t>(std::min(p, 1e9)), 1, epoch_steps_);  // Note [crest epoch]
  }
  ++selections_;
  steps_since_selection_ = 0;
  need_selection_ = false;
  shuffle_union();
}

bool CrestSelector::model_is_valid(const ScoringContext& ctx) {
  double loss = 0;
  {
    NoGradGuard no_grad;
    const Tensor logits = ctx.logits(random_sets_).detach();
    loss = mean(cross_entropy(logits, index_select(ctx.labels, random_sets_))).item();
  }
  // With --selection local every rank checks its own coresets' model; the means decide for all (ctx.rank_mean).
  loss = ctx.rank_mean(loss);
  const double predicted = ctx.rank_mean(model_.predict(ctx.parameters));
  const double diff = std::abs(loss - predicted);
  ++checks_;
  last_rel_error_ = loss > 0 ? diff / loss : (diff > 0 ? INFINITY : 0.0);
  return std::isfinite(predicted) && diff <= static_cast<double>(options_.tau) * loss;  // line 15
}

Selection CrestSelector::select(const ScoringContext& ctx) {
  if (!initialised_) initialise(ctx);
  SIEVE_CHECK(ctx.dataset_size == dataset_size_, "CREST: the data set changed from ", dataset_size_, " to ",
              ctx.dataset_size, " examples");
  // Uniform batches before the first selection, ⌈warmup_epochs E⌉ steps (Note [crest warm-up]).
  const auto warmup_steps = static_cast<int64_t>(
      std::ceil(static_cast<double>(options_.warmup_epochs) * static_cast<double>(epoch_steps_)));
  if (selections_ == 0 && steps_ < warmup_steps) {
    ++steps_;
    return draw_uniform(options_.batch, ctx, gen_);
  }
  // Lines 13-15: every T1 steps, is the quadratic model still right?
  if (!need_selection_ && steps_since_selection_ > 0 && steps_since_selection_ % t1_ == 0 && !model_is_valid(ctx))
    need_selection_ = true;
  if (need_selection_) select_coresets(ctx);
  // Line 12: drop learned examples, by the window rule (the reference's drops with its selections, Note [drop rules]).
  if (history_ && options_.drop_rule == "window" && steps_ > 0 && steps_ % drop_interval() == 0) {
    history_->drop_learned(options_.drop_alpha, ctx.labels, num_classes_, ceil_div(subset_size_, num_classes_),
                           min_active());
    refresh_active();
  }
  const int64_t k = union_indices_.numel();
  const int64_t b = std::min(options_.batch, k);
  if (cursor_ + b > k) shuffle_union();
  Selection s{union_indices_.rows(cursor_, cursor_ + b), union_weights_.rows(cursor_, cursor_ + b)};
  cursor_ += b;
  ++steps_;
  ++steps_since_selection_;
  return s;
}

std::vector<std::pair<std::string, double>> CrestSelector::stats() const {
  return {{"crest_selections", static_cast<double>(selections_)},
          {"crest_checks", static_cast<double>(checks_)},
          {"crest_T1", static_cast<double>(t1_)},
          {"crest_P", static_cast<double>(p_)},
          {"crest_active", static_cast<double>(active_size())},
          {"crest_rel_error", last_rel_error_},
          {"crest_gradient_evals", static_cast<double>(gradient_evals_)},
          {"crest_dropped", static_cast<double>(dataset_size_ - active_size())},
          {"crest_epoch", static_cast<double>(epoch_steps_)}};
}

std::vector<std::pair<std::string, Tensor>> CrestSelector::example_columns() const {
  if (!history_) return {};
  std::vector<float> dropped(static_cast<size_t>(dataset_size_), 1.f);
  for (int32_t i : history_->active().to(Device::cpu()).to_vector<int32_t>()) dropped[static_cast<size_t>(i)] = 0.f;
  return {{"dropped", Tensor::from_vector(dropped, {dataset_size_})}};
}

// From the first selection on, the quadratic model, the coresets and the estimator's and the loss history's own
// states. A load leaves them where the state holds them (the host, from a file): the next select() moves them to the
// training device and hands the estimator and the loss history their states, once it knows the parameters.
void CrestSelector::archive(StateArchive& ar) {
  ar.generator("generator", gen_);
  ar.scalar("steps", steps_);
  ar.scalar("steps_since_selection", steps_since_selection_);
  ar.scalar("T1", t1_);
  ar.scalar("P", p_);
  ar.scalar("selections", selections_);
  ar.scalar("checks", checks_);
  ar.scalar("gradient_evals", gradient_evals_);
  ar.scalar("cursor", cursor_);
  ar.scalar("need_selection", need_selection_);
  ar.scalar("initial_curvature", initial_curvature_);
  ar.scalar("last_rel_error", last_rel_error_);
  if (ar.loading()) {
    model_ = QuadraticLossModel{};
    union_indices_ = union_weights_ = random_sets_ = Tensor();
    pending_estimator_.clear();
    pending_history_.clear();
    initialised_ = false;  // the next select() moves everything to the training device
  }
  if (options_.drop_learned) {
    // The loss slots mean one thing under each rule (Note [drop rules]): a checkpoint of one rule is refused by the
    // other. Checkpoints written before the rule was recorded hold the window rule's slots.
    bool reference = options_.drop_rule == "reference";
    if (ar.saving() || ar.has("drop_rule_reference")) ar.scalar("drop_rule_reference", reference);
    else reference = false;
    SIEVE_CHECK(reference == (options_.drop_rule == "reference"), "CREST: a checkpoint of --drop-rule ",
                reference ? "reference" : "window", ", not of --drop-rule ", options_.drop_rule);
  }
  if (selections_ > 0) {
    ar.scalar("loss0", model_.loss0);
    auto count = static_cast<int64_t>(model_.origin.size());
    ar.scalar("model_tensors", count);
    ar.tensor("union_indices", union_indices_, DType::I32);
    ar.tensor("union_weights", union_weights_, DType::F32);
    ar.tensor("random_sets", random_sets_, DType::I32);
    for (int64_t k = 0; k < count; ++k) {
      if (ar.loading()) {
        model_.origin.emplace_back();
        model_.gradient.emplace_back();
        model_.hessian_diagonal.emplace_back();
      }
      const auto i = static_cast<size_t>(k);
      ar.tensor("origin." + std::to_string(k), model_.origin[i], DType::F32);
      ar.tensor("gradient." + std::to_string(k), model_.gradient[i], DType::F32);
      ar.tensor("hessian." + std::to_string(k), model_.hessian_diagonal[i], DType::F32);
    }
    // Loaded but not yet moved to the device by a select(), the state is what was loaded: saved as it is.
    std::vector<std::pair<std::string, Tensor>> live_estimator = pending_estimator_, live_history = pending_history_;
    if (ar.saving() && initialised_ && estimator_) live_estimator = estimator_->state();
    if (ar.saving() && initialised_ && history_) live_history = history_->state();
    ar.tensors("hutchinson.", ar.saving() ? live_estimator : pending_estimator_);
    ar.tensors("history.", ar.saving() ? live_history : pending_history_);
  }
  if (ar.loading())
    SIEVE_CHECK(!options_.drop_learned || selections_ == 0 || !pending_history_.empty(),
                "CREST: --drop-learned is on but the checkpoint has no loss history");
}

}  // namespace sieve
