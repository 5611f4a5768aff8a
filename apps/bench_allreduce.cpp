// sieve-bench's all-reduce cases: the gradient buckets of WRN-28-2 (Note [gradient buckets] in optim/distributed.h)
// averaged by the run's communicator: NCCL on a GPU (in a world of one process without a launcher, the code path a
// multi-GPU run takes), MPI under `mpirun -np P sieve-bench --device cpu`. Bus bandwidth as NCCL's tests define it:
// 2 (P - 1) / P times the bytes of the buffer per second, the traffic each link carries in a ring all-reduce.
#include <iostream>
#include <string>

#include "apps/bench.h"
#include "core/distributed.h"
#include "core/random.h"
#include "layers/models.h"
#include "optim/distributed.h"

namespace sieve::bench {

std::shared_ptr<Communicator> bench_communicator(const Options& o) {
  const DistributedEnvironment env = DistributedEnvironment::detect();
  if (env.launched) return make_communicator(env, o.device);
  if (o.device.is_cuda() && built_with_nccl()) return nccl_single_process_communicator(o.device);
  return nullptr;
}

void allreduce_cases(Table& t, const Options& o, const std::shared_ptr<Communicator>& comm) {
  if (!comm) return;
  const int p = comm->size();
  t.section("all-reduce (" + comm->backend() + ", " + std::to_string(p) + " process" + (p > 1 ? "es" : "") + ")",
            p > 1 ? "WRN-28-2's gradient buckets averaged; rate = bus bandwidth, 2 (P - 1) / P bytes per second, "
                    "against the copy bandwidth"
                  : "WRN-28-2's gradient buckets averaged in a world of one (NCCL copies in place: no bus); rate = "
                    "the buffer's bytes per second");
  if (!t.wants("allreduce", "WRN-28-2")) return;
  Generator gen(17);
  std::shared_ptr<Module> model = make_model("wrn-28-2", {3, 32, 32}, 10, gen, o.device);
  const std::vector<int64_t> elements = GradientAverager(model->parameters(), comm).bucket_elements();
  const double factor = p > 1 ? 2.0 * (p - 1) / p : 1.0;
  int64_t total = 0;
  std::vector<Tensor> buckets;
  for (size_t b = 0; b < elements.size(); ++b) {
    buckets.push_back(normal({elements[b]}, gen, o.device));
    total += elements[b];
    Tensor& buffer = buckets.back();
    const double bytes = static_cast<double>(elements[b]) * sizeof(float);
    t.add({.name = "allreduce_bucket",
           .size = "bucket " + std::to_string(b) + ": " + std::to_string(elements[b]) + " floats",
           .bytes = factor * bytes,
           .items = bytes,
           .unit = "B/s"},
          [&] { comm->all_reduce(buffer, ReduceOp::Avg); });
  }
  // Every bucket in flight at once, as the backward pass hands them over, then waited for.
  t.add({.name = "allreduce_step",
         .size = std::to_string(elements.size()) + " buckets, " + std::to_string(total) + " floats",
         .bytes = factor * static_cast<double>(total) * sizeof(float),
         .items = static_cast<double>(total) * sizeof(float),
         .unit = "B/s"},
        [&] {
          std::vector<std::unique_ptr<PendingReduce>> pending;
          for (Tensor& buffer : buckets) pending.push_back(comm->all_reduce_async(buffer, ReduceOp::Avg));
          for (auto& reduce : pending) reduce->wait();
        });
}

}  // namespace sieve::bench
