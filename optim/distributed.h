// Data-parallel gradient averaging: the gradients of every process's backward pass are averaged across the run's
// processes, in buckets that start reducing while the backward pass is still running (as PyTorch's
// DistributedDataParallel does). docs/ARCHITECTURE.md, "Data parallelism".
//
// Note [gradient buckets]: the parameters are grouped, in reverse order (the order a backward pass completes them),
// into buckets of at most first_bucket_bytes for the first and bucket_bytes for the others (PyTorch's 1 MiB and
// 25 MiB by default), each a flat float32 buffer allocated once. prepare() zeroes the buffers and makes each
// parameter's gradient a view of its place in its bucket, so the backward pass accumulates straight into the
// buckets (Note [autograd]: a slot that holds a gradient is added into in place) and nothing is packed or
// unpacked. A hook on each parameter (Note [gradient hooks]) counts the gradients a bucket still waits for; when a
// bucket is complete it is handed to Communicator::all_reduce_async with the average, buckets always in index order
// so that every process issues the same collectives in the same order. On a GPU the reduction runs on the
// communicator's stream after an event, overlapping the rest of the backward pass; finish() launches the buckets
// the pass left incomplete (parameters it did not reach keep zero gradients, averaged like any others) and makes the
// compute stream wait for all of them, without a host synchronisation. Gradient clipping and the optimizer step
// then see the averaged gradients, identical on every process.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/distributed.h"
#include "core/tensor.h"

namespace sieve {

struct BucketOptions {
  int64_t first_bucket_bytes = int64_t{1} << 20;
  int64_t bucket_bytes = int64_t{25} << 20;
};

class GradientAverager {
 public:
  // `parameters`: float32 leaves on the communicator's device (an optimizer's list, in the model's order).
  GradientAverager(std::vector<Tensor> parameters, std::shared_ptr<Communicator> comm, BucketOptions options = {});
  ~GradientAverager();  // removes the hooks
  GradientAverager(const GradientAverager&) = delete;
  GradientAverager& operator=(const GradientAverager&) = delete;

  // Before the backward pass of a training step (after Optimizer::zero_grad): zeroed bucket views as gradients,
  // hooks armed. Backward passes outside prepare()/finish() (a selector's probes) are not averaged.
  void prepare();
  // After it: every bucket reduced (or queued to be, ahead of anything queued later on a GPU), hooks disarmed.
  void finish();

  // The number of parameters in each bucket, in the order they are reduced (for tests and sieve-bench).
  std::vector<int64_t> bucket_parameter_counts() const;
  std::vector<int64_t> bucket_elements() const;

 private:
  struct Bucket {
    Tensor flat;                  // float32 [elements]
    std::vector<size_t> members;  // indices into parameters_
    std::vector<int64_t> offsets; // each member's first element in flat
    int64_t ready = 0;            // members whose gradient is complete in this pass
    std::unique_ptr<PendingReduce> pending;
  };
  void on_ready(size_t bucket);
  void launch_ready_buckets();

  std::vector<Tensor> parameters_;
  std::shared_ptr<Communicator> comm_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  bool armed_ = false;
};

}  // namespace sieve
