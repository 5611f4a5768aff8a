// The launcher's description of a run, the communicator of a world of one, and the choice of a backend
// (Note [launch by mpirun] and Note [communicator backends] in core/distributed.h). The backends live in
// distributed_mpi.cpp and distributed_nccl.cpp.
#include "core/distributed.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>

#include "core/distributed_backends.h"

namespace sieve {
namespace {

const char* variable(const char* name) { return std::getenv(name); }

// A launcher's variable as a non-negative int; a malformed value is refused rather than read as 0.
int parse_variable(const char* name, const char* text) {
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  SIEVE_CHECK(end != text && *end == '\0' && errno == 0 && value >= 0 && value <= std::numeric_limits<int>::max(),
              "the launcher's variable ", name, " is '", text, "', expected a non-negative integer");
  return static_cast<int>(value);
}

int required_variable(const char* name, const char* because) {
  const char* text = variable(name);
  SIEVE_CHECK(text != nullptr, "the launcher's variable ", name, " is not set, though ", because,
              " is: cannot tell this process's place in the run");
  return parse_variable(name, text);
}

int optional_variable(const char* name, int fallback) {
  const char* text = variable(name);
  return text == nullptr ? fallback : parse_variable(name, text);
}

}  // namespace

// Note [launch by mpirun] in core/distributed.h. The launchers, in the order they are looked for:
// - Open MPI's mpirun: OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK.
// - MPICH's Hydra (mpiexec), and Slurm's srun --mpi=pmi2: PMI_RANK and PMI_SIZE; the local rank from
//   MPI_LOCALRANKID (Hydra), else SLURM_LOCALID (srun), else 0.
// - Slurm's srun --mpi=pmix: SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID, taken only when PMIX_RANK says that
//   srun started an MPI program. A batch script that runs sieve-train directly also has SLURM_PROCID and
//   SLURM_NTASKS (the allocation's, not this program's), so Slurm's variables alone do not make a launch.
// Open MPI's mpirun sets PMIX_RANK too; its own variables come first.
DistributedEnvironment DistributedEnvironment::detect() {
  DistributedEnvironment env;
  const char* rank_name = nullptr;
  const char* size_name = nullptr;
  if (variable("OMPI_COMM_WORLD_RANK") || variable("OMPI_COMM_WORLD_SIZE")) {
    rank_name = "OMPI_COMM_WORLD_RANK";
    size_name = "OMPI_COMM_WORLD_SIZE";
    env.local_rank = optional_variable("OMPI_COMM_WORLD_LOCAL_RANK", 0);
  } else if (variable("PMI_RANK") || variable("PMI_SIZE")) {
    rank_name = "PMI_RANK";
    size_name = "PMI_SIZE";
    env.local_rank = optional_variable("MPI_LOCALRANKID", optional_variable("SLURM_LOCALID", 0));
  } else if (variable("SLURM_PROCID") && variable("PMIX_RANK")) {
    rank_name = "SLURM_PROCID";
    size_name = "SLURM_NTASKS";
    env.local_rank = optional_variable("SLURM_LOCALID", 0);
  } else {
    return env;  // no launcher: a world of one
  }
  const char* either = variable(rank_name) ? rank_name : size_name;
  env.rank = required_variable(rank_name, either);
  env.size = required_variable(size_name, either);
  env.launched = true;
  SIEVE_CHECK(env.size >= 1 && env.rank < env.size, "the launcher's variables say rank ", env.rank, " of ", env.size,
              " (", rank_name, ", ", size_name, "), expected a rank below the size");
  SIEVE_CHECK(env.local_rank < env.size, "the launcher's variables say local rank ", env.local_rank, " in a run of ",
              env.size, ", expected a local rank below the size");
  return env;
}

namespace detail {

std::atomic<bool>& process_failing() {
  static std::atomic<bool> failing{false};
  return failing;
}

const char* to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "Sum";
    case ReduceOp::Avg: return "Avg";
    case ReduceOp::Max: return "Max";
    case ReduceOp::Min: return "Min";
  }
  return "?";
}

void check_collective_tensor(const Tensor& t, const char* what) {
  SIEVE_CHECK(t.defined(), what, ": the tensor is undefined");
  SIEVE_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::I32 || t.dtype() == DType::I64, what,
              ": expected a float32, int32 or int64 tensor, got ", t.description());
}

void check_reduce_op(const Tensor& t, ReduceOp op, const char* what) {
  SIEVE_CHECK(op != ReduceOp::Avg || t.dtype() == DType::F32, what, ": ReduceOp::Avg needs a float32 tensor, got ",
              t.description(), " (an integer average would round; reduce with Sum and divide)");
}

void check_root(int root, int size, const char* what) {
  SIEVE_CHECK(root >= 0 && root < size, what, ": root ", root, " is not a rank of this run of ", size);
}

namespace {

// A world of one (Note [launch by mpirun] in core/distributed.h): the collectives check their arguments, as the
// other backends do, and change nothing.
class LocalCommunicator final : public Communicator {
 public:
  explicit LocalCommunicator(Device device) : device_(device) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  Device device() const override { return device_; }

  void all_reduce(Tensor& t, ReduceOp op) override {
    check_collective_tensor(t, "all_reduce");
    check_reduce_op(t, op, "all_reduce");
  }
  void broadcast(Tensor& t, int root) override {
    check_collective_tensor(t, "broadcast");
    check_root(root, 1, "broadcast");
  }
  // The input itself, not a copy: the one rank's rows are all there is.
  Tensor all_gather(const Tensor& t) override {
    check_collective_tensor(t, "all_gather");
    return t;
  }
  std::unique_ptr<PendingReduce> all_reduce_async(Tensor& t, ReduceOp op) override {
    check_collective_tensor(t, "all_reduce_async");
    SIEVE_CHECK(t.dtype() == DType::F32, "all_reduce_async: expected a float32 tensor, got ", t.description());
    struct Done final : PendingReduce {
      void wait() override {}
    };
    return std::make_unique<Done>();
  }

  void all_reduce(std::vector<double>&, ReduceOp) override {}
  void broadcast(std::vector<double>&, int root) override { check_root(root, 1, "broadcast"); }
  void broadcast(std::string&, int root) override { check_root(root, 1, "broadcast"); }
  std::vector<std::string> gather(const std::string& bytes, int root) override {
    check_root(root, 1, "gather");
    return {bytes};
  }
  void barrier() override {}
  [[noreturn]] void abort(int status) override {
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    std::exit(status);
  }

 private:
  Device device_;
};

}  // namespace

std::shared_ptr<Communicator> make_local_communicator(Device device) {
  return std::make_shared<LocalCommunicator>(device);
}

}  // namespace detail

std::shared_ptr<Communicator> local_communicator() { return detail::make_local_communicator(Device::cpu()); }

std::shared_ptr<Communicator> make_communicator(const DistributedEnvironment& env, Device device) {
  if (!env.launched) {
    SIEVE_CHECK(env.size == 1 && env.rank == 0, "a run of ", env.size,
                " processes needs a launcher: start it with mpirun -np ", env.size);
    return detail::make_local_communicator(device);
  }
  auto mpi = detail::make_mpi_communicator(env);
  if (device.is_cpu()) return mpi;
  return detail::make_nccl_communicator(std::move(mpi), device);
}

std::shared_ptr<Communicator> nccl_single_process_communicator(Device device) {
  return detail::make_nccl_communicator(detail::make_local_communicator(device), device);
}

}  // namespace sieve
