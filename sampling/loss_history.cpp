#include "sampling/loss_history.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/ops/dispatch.h"

namespace sieve {

namespace {

Tensor all_indices(int64_t n, Device device) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return Tensor::from_vector(v, {n}, device);
}

const Tensor& find_state(const std::vector<std::pair<std::string, Tensor>>& state, const std::string& name) {
  for (const auto& [key, t] : state)
    if (key == name) return t;
  SIEVE_FAIL("LossHistory::load_state: expected a tensor named \"", name, "\", found none");
}

}  // namespace

LossHistory::LossHistory(int64_t dataset_size, int window, Device device)
    : dataset_size_(dataset_size), window_(window), device_(device) {
  SIEVE_CHECK(dataset_size >= 1 && dataset_size <= std::numeric_limits<int32_t>::max(),
              "LossHistory: the dataset size must be in [1, 2^31), found ", dataset_size);
  SIEVE_CHECK(window >= 1, "LossHistory: the window must be >= 1, found ", window);
  ring_ = Tensor::full({dataset_size, window}, std::numeric_limits<double>::quiet_NaN(), DType::F32, device);
  count_ = Tensor::zeros({dataset_size}, DType::I32, device);
  active_ = all_indices(dataset_size, device);
}

void LossHistory::record(const Tensor& indices, const Tensor& losses) {
  check_dtype(indices, DType::I32, "LossHistory::record indices");
  check_dim(indices, 1, "LossHistory::record indices");
  check_dtype(losses, DType::F32, "LossHistory::record losses");
  SIEVE_CHECK(losses.shape() == indices.shape(), "LossHistory::record: expected one loss per index (",
              indices.numel(), "), found losses of shape ", shape_string(losses.shape()));
  SIEVE_CHECK(indices.device() == device_ && losses.device() == device_, "LossHistory::record: expected indices and ",
              "losses on ", to_string(device_), ", found ", indices.description(), " and ", losses.description());
  const int64_t m = indices.size(0);
  if (m == 0) return;
  SIEVE_DISPATCH(device_, record_losses, ring_.data<float>(), count_.data<int32_t>(), dataset_size_, window_,
                 indices.data<int32_t>(), losses.data<float>(), m);
}

void LossHistory::record_at(const Tensor& indices, const Tensor& losses, int slot) {
  check_dtype(indices, DType::I32, "LossHistory::record_at indices");
  check_dim(indices, 1, "LossHistory::record_at indices");
  check_dtype(losses, DType::F32, "LossHistory::record_at losses");
  SIEVE_CHECK(losses.shape() == indices.shape(), "LossHistory::record_at: expected one loss per index (",
              indices.numel(), "), found losses of shape ", shape_string(losses.shape()));
  SIEVE_CHECK(indices.device() == device_ && losses.device() == device_, "LossHistory::record_at: expected indices ",
              "and losses on ", to_string(device_), ", found ", indices.description(), " and ", losses.description());
  SIEVE_CHECK(slot >= 0 && slot < window_, "LossHistory::record_at: slot ", slot, " is outside the ring [0, ", window_,
              ")");
  const int64_t m = indices.size(0);
  if (m == 0) return;
  SIEVE_DISPATCH(device_, record_losses_at, ring_.data<float>(), dataset_size_, window_, slot, indices.data<int32_t>(),
                 losses.data<float>(), m);
}

// Note [drop order]: the candidates are the active examples whose last `window` losses are all recorded and < alpha
// (learned_loss_key in sampling/crest_math.h). Without a binding guard all of them go. Otherwise each class c may lose
// at most max(0, active_c - min_per_class) of its candidates, and all classes together at most
// max(0, n_active - min_active); within either limit the candidates go in the order of their largest recent loss
// (the most thoroughly learned first), ties to the lower example index: first per class, then over the union. The
// counts that tell whether a guard binds come from the device; only when one binds are the candidates' keys copied to
// the host to be ranked there (drop_learned runs every T_2 steps, not every step).
int64_t LossHistory::drop_learned(float alpha, const Tensor& labels, int num_classes, int64_t min_per_class,
                                  int64_t min_active) {
  check_dtype(labels, DType::I32, "LossHistory::drop_learned labels");
  check_dim(labels, 1, "LossHistory::drop_learned labels");
  SIEVE_CHECK(labels.size(0) == dataset_size_, "LossHistory::drop_learned: expected ", dataset_size_,
              " labels, found ", labels.size(0));
  SIEVE_CHECK(labels.device() == device_, "LossHistory::drop_learned: expected labels on ", to_string(device_), ", found ",
              labels.description());
  SIEVE_CHECK(num_classes >= 1, "LossHistory::drop_learned: num_classes must be >= 1, found ", num_classes);
  SIEVE_CHECK(min_per_class >= 0 && min_active >= 0, "LossHistory::drop_learned: expected guards >= 0, found ",
              "min_per_class ", min_per_class, " and min_active ", min_active);
  const int64_t n_active = active_size();
  if (n_active == 0) return 0;

  Tensor keys = Tensor::empty({n_active}, DType::F32, device_);
  Tensor keep = Tensor::empty({n_active}, DType::U8, device_);
  Tensor counts = Tensor::zeros({2 * static_cast<int64_t>(num_classes)}, DType::I32, device_);
  SIEVE_DISPATCH(device_, learned_keys, ring_.data<float>(), count_.data<int32_t>(), window_, active_.data<int32_t>(),
                 n_active, labels.data<int32_t>(), num_classes, alpha, keys.data<float>(), keep.data<uint8_t>(),
                 counts.data<int32_t>());
  const std::vector<int32_t> c = counts.to_vector<int32_t>();
  std::vector<int64_t> allowed(static_cast<size_t>(num_classes));
  int64_t learned = 0, allowed_sum = 0;
  for (int k = 0; k < num_classes; ++k) {
    allowed[k] = std::clamp<int64_t>(c[k] - min_per_class, 0, c[num_classes + k]);
    learned += c[num_classes + k];
    allowed_sum += allowed[k];
  }
  if (learned == 0) return 0;
  const int64_t allowed_total = std::max<int64_t>(0, n_active - min_active);
  int64_t dropped = learned;
  if (allowed_sum < learned || learned > allowed_total) {
    // A guard binds: rank the candidates on the host.
    const std::vector<float> key = keys.to_vector<float>();
    const std::vector<int32_t> act = active_.to_vector<int32_t>();
    const std::vector<int32_t> y = labels.to_vector<int32_t>();
    std::vector<int64_t> candidates;
    for (int64_t p = 0; p < n_active; ++p)
      if (key[p] < alpha) candidates.push_back(p);
    // active is ascending, so position order is index order: a stable sort by key breaks ties by index.
    std::stable_sort(candidates.begin(), candidates.end(), [&](int64_t a, int64_t b) { return key[a] < key[b]; });
    std::vector<int64_t> chosen;
    for (int64_t p : candidates)
      if (allowed[y[act[p]]] > 0) {
        --allowed[y[act[p]]];
        chosen.push_back(p);  // still in (key, index) order
      }
    const size_t take = std::min(chosen.size(), static_cast<size_t>(allowed_total));  // the global guard
    std::vector<uint8_t> flags(static_cast<size_t>(n_active), 1);
    for (size_t i = 0; i < take; ++i) flags[static_cast<size_t>(chosen[i])] = 0;
    dropped = static_cast<int64_t>(take);
    if (dropped == 0) return 0;
    keep = Tensor::from_vector(flags, {n_active}, device_);
  }
  Tensor compacted = Tensor::empty({n_active}, DType::I32, device_);
  Tensor n_out = Tensor::empty({}, DType::I32, device_);
  SIEVE_DISPATCH(device_, compact_active, active_.data<int32_t>(), n_active, keep.data<uint8_t>(),
                 compacted.data<int32_t>(), n_out.data<int32_t>());
  active_ = compacted.rows(0, n_active - dropped);
  return dropped;
}

int64_t LossHistory::drop_learned_reference(float alpha, const Tensor& labels, int num_classes, int64_t min_per_class,
                                            int64_t min_active) {
  check_dtype(labels, DType::I32, "LossHistory::drop_learned_reference labels");
  check_dim(labels, 1, "LossHistory::drop_learned_reference labels");
  SIEVE_CHECK(labels.size(0) == dataset_size_, "LossHistory::drop_learned_reference: expected ", dataset_size_,
              " labels, found ", labels.size(0));
  SIEVE_CHECK(labels.device() == device_, "LossHistory::drop_learned_reference: expected labels on ",
              to_string(device_), ", found ", labels.description());
  SIEVE_CHECK(num_classes >= 1, "LossHistory::drop_learned_reference: num_classes must be >= 1, found ", num_classes);
  SIEVE_CHECK(min_per_class >= 0 && min_active >= 0, "LossHistory::drop_learned_reference: expected guards >= 0, ",
              "found min_per_class ", min_per_class, " and min_active ", min_active);
  const int64_t n_active = active_size();
  Tensor keep = Tensor::empty({dataset_size_}, DType::U8, device_);
  Tensor counts = Tensor::zeros({2 * static_cast<int64_t>(num_classes)}, DType::I32, device_);
  SIEVE_DISPATCH(device_, reference_keep, ring_.data<float>(), window_, dataset_size_, labels.data<int32_t>(),
                 num_classes, alpha, active_.data<int32_t>(), n_active, keep.data<uint8_t>(), counts.data<int32_t>());
  const std::vector<int32_t> c = counts.to_vector<int32_t>();
  // The class guard, then the global one, all or nothing (the reference: `if len(class_indices_new) >
  // per_class_size`, `if len(order) > min_train_size`).
  std::vector<uint8_t> apply(static_cast<size_t>(num_classes), 0);
  int64_t after = 0;
  bool any_apply = false;
  for (int k = 0; k < num_classes; ++k) {
    apply[k] = c[k] > min_per_class ? 1 : 0;
    after += apply[k] ? c[k] : c[num_classes + k];
    any_apply = any_apply || apply[k];
  }
  if (!any_apply || after <= min_active) return 0;
  const Tensor apply_t = Tensor::from_vector(apply, {static_cast<int64_t>(num_classes)}, device_);
  Tensor mask = Tensor::zeros({dataset_size_}, DType::U8, device_);
  SIEVE_DISPATCH(device_, reference_active_mask, keep.data<uint8_t>(), labels.data<int32_t>(), dataset_size_,
                 num_classes, active_.data<int32_t>(), n_active, apply_t.data<uint8_t>(), mask.data<uint8_t>());
  const Tensor all = all_indices(dataset_size_, device_);
  Tensor compacted = Tensor::empty({dataset_size_}, DType::I32, device_);
  Tensor n_out = Tensor::empty({}, DType::I32, device_);
  SIEVE_DISPATCH(device_, compact_active, all.data<int32_t>(), dataset_size_, mask.data<uint8_t>(),
                 compacted.data<int32_t>(), n_out.data<int32_t>());
  active_ = compacted.rows(0, n_out.to_vector<int32_t>()[0]);
  return n_active - active_size();
}

std::vector<std::pair<std::string, Tensor>> LossHistory::state() const {
  return {{"ring", ring_.clone()}, {"count", count_.clone()}, {"active", active_.clone()}};
}

void LossHistory::load_state(const std::vector<std::pair<std::string, Tensor>>& state) {
  const Tensor& ring = find_state(state, "ring");
  const Tensor& count = find_state(state, "count");
  const Tensor& active = find_state(state, "active");
  check_dtype(ring, DType::F32, "LossHistory state \"ring\"");
  check_dtype(count, DType::I32, "LossHistory state \"count\"");
  check_dtype(active, DType::I32, "LossHistory state \"active\"");
  SIEVE_CHECK(ring.shape() == Shape({dataset_size_, window_}), "LossHistory::load_state: expected a ring of shape ",
              shape_string({dataset_size_, window_}), ", found ", shape_string(ring.shape()));
  SIEVE_CHECK(count.shape() == Shape({dataset_size_}), "LossHistory::load_state: expected counts of shape ",
              shape_string({dataset_size_}), ", found ", shape_string(count.shape()));
  check_dim(active, 1, "LossHistory state \"active\"");
  const std::vector<int32_t> a = active.to_vector<int32_t>();
  for (size_t p = 0; p < a.size(); ++p)
    SIEVE_CHECK(a[p] >= 0 && a[p] < dataset_size_ && (p == 0 || a[p] > a[p - 1]), "LossHistory::load_state: active ",
                "entry ", p, " is ", a[p], ", expected strictly ascending indices in [0, ", dataset_size_, ")");
  for (int32_t v : count.to_vector<int32_t>())
    SIEVE_CHECK(v >= 0, "LossHistory::load_state: expected record counts >= 0, found ", v);
  ring_.copy_(ring);
  count_.copy_(count);
  active_ = active.to(device_).clone();
}

}  // namespace sieve
