#include "data/batch.h"

#include <algorithm>
#include <limits>

#include "core/ops/dispatch.h"
#include "core/ops/gather.h"

namespace sieve {

namespace {

void check_batch_indices(const Dataset& d, const Tensor& indices, const char* what) {
  SIEVE_CHECK(d.images.defined() && d.labels.defined(), what, ": the data set '", d.name, "' is empty (not loaded)");
  check_dtype(indices, DType::I32, what);
  check_dim(indices, 1, what);
  check_same_device(d.images, indices, what);
}

}  // namespace

Tensor gather_batch(const Dataset& d, const Tensor& indices) {
  Generator unused;
  return gather_batch(d, indices, Augment{}, unused);
}

Tensor gather_batch(const Dataset& d, const Tensor& indices, const Augment& aug, Generator& gen) {
  check_batch_indices(d, indices, "gather_batch indices");
  check_dtype(d.images, DType::U8, "gather_batch images");
  check_dim(d.images, 4, "gather_batch images");
  const int64_t channels = d.channels();
  SIEVE_CHECK(channels >= 1 && channels <= kMaxBatchChannels, "gather_batch: ", d.name, " images have ", channels,
              " channels; at most ", kMaxBatchChannels, " are supported");
  SIEVE_CHECK(static_cast<int64_t>(d.mean.size()) == channels && static_cast<int64_t>(d.std.size()) == channels,
              "gather_batch: ", d.name, " images have ", channels, " channel(s) but the data set has ", d.mean.size(),
              " mean(s) and ", d.std.size(), " standard deviation(s)");
  SIEVE_CHECK(d.sample_numel() < std::numeric_limits<int32_t>::max(), "gather_batch: samples of ",
              d.images.description(), " are too large");

  const Device device = d.images.device();
  const int64_t batch = indices.size(0);
  Tensor out = Tensor::empty({batch, channels, d.height(), d.width()}, DType::F32, device);
  BatchGatherArgs args;
  args.images = d.images.data<uint8_t>();
  args.num_images = d.size();
  args.channels = static_cast<int>(channels);
  args.height = static_cast<int>(d.height());
  args.width = static_cast<int>(d.width());
  args.indices = indices.data<int32_t>();
  args.batch = batch;
  for (int64_t c = 0; c < channels; ++c) {
    SIEVE_CHECK(d.std[c] > 0.f, "gather_batch: ", d.name, " channel ", c, " has standard deviation ", d.std[c],
                " (expected > 0)");
    args.mean[c] = d.mean[c];
    args.std[c] = d.std[c];
  }
  if (aug.crop_flip) {
    SIEVE_CHECK(aug.pad >= 0 && aug.pad < d.height() && aug.pad < d.width(), "gather_batch: crop padding ",
                aug.pad, " for ", d.name, " images of ", d.height(), "x", d.width(), " (expected 0 <= pad < ",
                std::min(d.height(), d.width()), ")");
    args.crop_flip = true;
    args.pad = aug.pad;
    const PhiloxCounter next = gen.next();  // reserved below, once the gather has accepted the indices
    args.seed = next.seed;
    args.offset = next.offset;
    args.offset_base = next.base;
  }
  args.out = out.data<float>();

  SIEVE_DISPATCH(device, gather_images, args);  // a DeviceGuard around the CUDA launch
  if (aug.crop_flip) gen.advance(static_cast<uint64_t>(batch));
  return out;
}

Tensor gather_labels(const Dataset& d, const Tensor& indices) {
  check_batch_indices(d, indices, "gather_labels indices");
  return index_select(d.labels, indices);
}

}  // namespace sieve
