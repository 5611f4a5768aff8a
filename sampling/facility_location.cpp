#include "sampling/facility_location.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "core/ops/dispatch.h"
#include "sampling/crest_math.h"

namespace sieve {

namespace {

// Note [class quotas]: k = min(budget, n) picks are split over the P classes present (n_c > 0) as follows. Each class
// starts with q_c = max(1, floor(k n_c / n)); while sum q < k, the class with the largest remainder k n_c / n - q_c
// among those not yet full (q_c < n_c) gets one more; while sum q > k (the minimum of one per class overshot), the
// class with the smallest remainder among those with q_c > 1 gives one back; ties to the lowest class. Without the
// minimum of one this is Hamilton's largest-remainder apportionment. Needs k >= P. Remainders are compared exactly,
// as the integers k n_c - q_c n.
std::vector<int64_t> class_quotas(const std::vector<int64_t>& class_size, int64_t k, int64_t n) {
  const size_t classes = class_size.size();
  std::vector<int64_t> q(classes, 0);
  int64_t total = 0;
  for (size_t c = 0; c < classes; ++c) {
    if (class_size[c] == 0) continue;
    q[c] = std::max<int64_t>(1, k * class_size[c] / n);
    total += q[c];
  }
  auto remainder = [&](size_t c) { return k * class_size[c] - q[c] * n; };
  while (total < k) {
    size_t best = classes;
    for (size_t c = 0; c < classes; ++c)
      if (q[c] < class_size[c] && (best == classes || remainder(c) > remainder(best))) best = c;
    ++q[best];
    ++total;
  }
  while (total > k) {
    size_t best = classes;
    for (size_t c = 0; c < classes; ++c)
      if (class_size[c] > 0 && q[c] > 1 && (best == classes || remainder(c) < remainder(best))) best = c;
    --q[best];
    --total;
  }
  return q;
}

}  // namespace

Coreset facility_location_coreset(const Tensor& features, const Tensor& labels, int64_t budget, int num_classes) {
  check_dtype(features, DType::F32, "facility_location_coreset features");
  check_dim(features, 2, "facility_location_coreset features");
  check_dtype(labels, DType::I32, "facility_location_coreset labels");
  check_dim(labels, 1, "facility_location_coreset labels");
  check_same_device(features, labels, "facility_location_coreset labels");
  const int64_t n = features.size(0), dim = features.size(1);
  SIEVE_CHECK(labels.size(0) == n, "facility_location_coreset: expected one label per feature row (", n,
              "), found ", labels.size(0));
  SIEVE_CHECK(n >= 1 && dim >= 1, "facility_location_coreset: expected non-empty features, found ",
              features.description());
  SIEVE_CHECK(n <= std::numeric_limits<int32_t>::max(), "facility_location_coreset: ", n,
              " rows exceed the int32 positions");
  SIEVE_CHECK(num_classes >= 1, "facility_location_coreset: num_classes must be >= 1, found ", num_classes);
  SIEVE_CHECK(budget >= 1, "facility_location_coreset: budget must be >= 1, found ", budget);

  // The classes on the host: the partition decides the problem's shape (one synchronisation on a GPU).
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  std::vector<int64_t> class_size(static_cast<size_t>(num_classes), 0);
  for (int64_t i = 0; i < n; ++i) {
    SIEVE_CHECK(y[i] >= 0 && y[i] < num_classes, "facility_location_coreset: label ", i, " is ", y[i],
                ", expected a class in [0, ", num_classes, ")");
    ++class_size[y[i]];
  }
  const int64_t present = std::count_if(class_size.begin(), class_size.end(), [](int64_t s) { return s > 0; });
  const int64_t k = std::min(budget, n);
  SIEVE_CHECK(k >= present, "facility_location_coreset: a budget of ", budget, " cannot give one pick to each of the ",
              present, " classes present");
  const std::vector<int64_t> quota = class_quotas(class_size, k, n);

  // Blocks, one per class present, in class order. Offsets: member_offset | sim_offset | pick_offset.
  const int32_t blocks = static_cast<int32_t>(present);
  std::vector<int64_t> offsets(3 * static_cast<size_t>(blocks) + 2, 0);
  int64_t* member_offset = offsets.data();
  int64_t* sim_offset = member_offset + blocks + 1;
  int64_t* pick_offset = sim_offset + blocks;
  std::vector<int32_t> block_of_class(static_cast<size_t>(num_classes), -1);
  int64_t sim_total = 0, max_quota = 0, max_block = 0;
  for (int32_t c = 0, b = 0; c < num_classes; ++c) {
    if (class_size[c] == 0) continue;
    block_of_class[c] = b;
    member_offset[b + 1] = member_offset[b] + class_size[c];
    sim_offset[b] = sim_total;
    sim_total += class_size[c] * class_size[c];
    pick_offset[b + 1] = pick_offset[b] + quota[c];
    max_quota = std::max(max_quota, quota[c]);
    max_block = std::max(max_block, class_size[c]);
    ++b;
  }
  // members | block_of
  std::vector<int32_t> rows(2 * static_cast<size_t>(n));
  std::vector<int64_t> fill(member_offset, member_offset + blocks);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t b = block_of_class[y[i]];
    const int64_t p = fill[b]++;
    rows[p] = static_cast<int32_t>(i);
    rows[n + p] = b;
  }

  const Device device = features.device();
  const Tensor offsets_t = Tensor::from_vector(offsets, {static_cast<int64_t>(offsets.size())}, device);
  const Tensor rows_t = Tensor::from_vector(rows, {2 * n}, device);
  FacilityLocationBlocks layout;
  layout.num_blocks = blocks;
  layout.rows = n;
  layout.dim = dim;
  layout.max_quota = max_quota;
  layout.max_block = max_block;
  layout.picks = k;
  layout.members = rows_t.data<int32_t>();
  layout.block_of = layout.members + n;
  layout.member_offset = offsets_t.data<int64_t>();
  layout.sim_offset = layout.member_offset + blocks + 1;
  layout.pick_offset = layout.sim_offset + blocks;

  Tensor sim = Tensor::empty({sim_total}, DType::F32, device);
  Tensor best = Tensor::empty({n}, DType::F32, device);
  Tensor chosen = Tensor::empty({n}, DType::U8, device);
  Tensor gains = Tensor::empty({n}, DType::I64, device);
  Coreset out{Tensor::empty({k}, DType::I32, device), Tensor::empty({k}, DType::I32, device),
              Tensor::empty({k}, DType::F32, device)};
  SIEVE_DISPATCH(device, facility_location_select, features.data<float>(), layout, sim.data<float>(),
                 best.data<float>(), chosen.data<uint8_t>(), gains.data<int64_t>(), out.positions.data<int32_t>(),
                 out.sizes.data<int32_t>(), out.weights.data<float>());
  return out;
}

double facility_location_value(const Tensor& features, const Tensor& positions) {
  check_dtype(features, DType::F32, "facility_location_value features");
  check_dim(features, 2, "facility_location_value features");
  check_dtype(positions, DType::I32, "facility_location_value positions");
  check_dim(positions, 1, "facility_location_value positions");
  const Tensor x = features.to(Device::cpu());
  const std::vector<int32_t> picks = positions.to_vector<int32_t>();
  const int64_t n = x.size(0), dim = x.size(1);
  for (size_t q = 0; q < picks.size(); ++q)
    SIEVE_CHECK(picks[q] >= 0 && picks[q] < n, "facility_location_value: position ", q, " is ", picks[q],
                ", expected a row in [0, ", n, ")");
  const float* data = x.data<float>();
  double value = 0.0;
  for (int64_t i = 0; i < n && !picks.empty(); ++i) {
    float best = 0.f;
    for (int32_t j : picks) best = std::max(best, facility_similarity(data + i * dim, data + j * dim, dim));
    value += best;
  }
  return value;
}

}  // namespace sieve
