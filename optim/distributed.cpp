#include "optim/distributed.h"

#include "core/ops/elementwise.h"

namespace sieve {

GradientAverager::GradientAverager(std::vector<Tensor> parameters, std::shared_ptr<Communicator> comm,
                                   BucketOptions options)
    : parameters_(std::move(parameters)), comm_(std::move(comm)) {
  SIEVE_CHECK(comm_ != nullptr, "GradientAverager: no communicator");
  SIEVE_CHECK(options.first_bucket_bytes > 0 && options.bucket_bytes > 0,
              "GradientAverager: bucket sizes must be > 0 bytes, found ", options.first_bucket_bytes, " and ",
              options.bucket_bytes);
  // Reverse order, the first bucket small so that reduction starts early (Note [gradient buckets]).
  std::vector<std::vector<size_t>> groups;
  int64_t bytes = 0;
  for (size_t i = parameters_.size(); i-- > 0;) {
    const Tensor& p = parameters_[i];
    SIEVE_CHECK(p.dtype() == DType::F32 && !p.grad_fn(), "GradientAverager: parameter ", i, " is ", p.description(),
                "; expected a float32 leaf");
    SIEVE_CHECK(p.device() == parameters_.front().device(), "GradientAverager: parameters on ",
                to_string(parameters_.front().device()), " and ", to_string(p.device()));
    const int64_t cap = groups.size() <= 1 ? options.first_bucket_bytes : options.bucket_bytes;
    const int64_t size = static_cast<int64_t>(p.nbytes());
    if (groups.empty() || (bytes > 0 && bytes + size > cap)) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(i);
    bytes += size;
  }
  buckets_.resize(groups.size());
  for (size_t b = 0; b < groups.size(); ++b) {
    Bucket& bucket = buckets_[b];
    int64_t elements = 0;
    for (size_t i : groups[b]) {
      bucket.members.push_back(i);
      bucket.offsets.push_back(elements);
      elements += parameters_[i].numel();
    }
    bucket.flat = Tensor::zeros({elements}, DType::F32, parameters_[groups[b].front()].device());
    for (size_t i : groups[b]) parameters_[i].set_grad_ready_hook([this, b] { on_ready(b); });
  }
}

GradientAverager::~GradientAverager() {
  for (Tensor& p : parameters_) p.set_grad_ready_hook(nullptr);
}

void GradientAverager::prepare() {
  SIEVE_CHECK(!armed_, "GradientAverager::prepare: the previous step was not finished");
  for (Bucket& bucket : buckets_) {
    fill_(bucket.flat, 0.0);
    for (size_t k = 0; k < bucket.members.size(); ++k) {
      Tensor& p = parameters_[bucket.members[k]];
      p.set_grad(bucket.flat.rows(bucket.offsets[k], bucket.offsets[k] + p.numel()).reshape(p.shape()));
    }
    bucket.ready = 0;
    bucket.pending.reset();
  }
  next_launch_ = 0;
  armed_ = true;
}

void GradientAverager::on_ready(size_t b) {
  if (!armed_) return;  // a backward pass outside a training step (CREST's probes): not averaged
  buckets_[b].ready++;
  launch_ready_buckets();
}

void GradientAverager::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() &&
         buckets_[next_launch_].ready == static_cast<int64_t>(buckets_[next_launch_].members.size())) {
    Bucket& bucket = buckets_[next_launch_++];
    bucket.pending = comm_->all_reduce_async(bucket.flat, ReduceOp::Avg);
  }
}

void GradientAverager::finish() {
  SIEVE_CHECK(armed_, "GradientAverager::finish without prepare");
  for (Bucket& bucket : buckets_) bucket.ready = static_cast<int64_t>(bucket.members.size());
  launch_ready_buckets();
  for (Bucket& bucket : buckets_) {
    bucket.pending->wait();
    bucket.pending.reset();
  }
  armed_ = false;
  // A gradient replaced during the pass (a leaf whose first contribution arrived before prepare's view, never the
  // case in a training step) would have missed the average: every gradient must still be its bucket's view.
  for (const Bucket& bucket : buckets_)
    for (size_t k = 0; k < bucket.members.size(); ++k)
      SIEVE_CHECK(parameters_[bucket.members[k]].grad().same_storage(bucket.flat),
                  "GradientAverager: parameter ", bucket.members[k], "'s gradient left its bucket during the pass");
}

std::vector<int64_t> GradientAverager::bucket_parameter_counts() const {
  std::vector<int64_t> out;
  for (const Bucket& b : buckets_) out.push_back(static_cast<int64_t>(b.members.size()));
  return out;
}

std::vector<int64_t> GradientAverager::bucket_elements() const {
  std::vector<int64_t> out;
  for (const Bucket& b : buckets_) out.push_back(b.flat.numel());
  return out;
}

}  // namespace sieve
