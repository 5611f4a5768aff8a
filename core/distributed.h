// Collectives between the processes of one data-parallel run (docs/ARCHITECTURE.md, "Data parallelism").
//
// Note [launch by mpirun]: a run of N processes is started by MPI's launcher, `mpirun -np N sieve-train ...`; each
// process is one rank and drives one device. `DistributedEnvironment::detect()` reads the rank, the world size and
// the rank among the processes of its host from the variables the launcher sets (Open MPI's OMPI_COMM_WORLD_*,
// MPICH's PMI_*, Slurm's SLURM_* under srun's PMI or PMIx; core/distributed.cpp lists them), before anything is
// initialised, so that a rank can choose its GPU, cuda:(local rank), first. A process started without a launcher is
// a world of one and never initialises MPI: it runs exactly as it would without this file.
//
// Note [communicator backends]: `make_communicator` picks the backend by the training device. On the CPU, MPI moves
// the tensors (Open MPI from Debian). On a GPU, NCCL moves them, device to device, without the host (as llm.c and
// PyTorch do): MPI only launches the processes, broadcasts NCCL's unique id once, and carries the host values (a
// clock, a flag). Tensor collectives are ordered on the device's compute stream with the work around them, as every
// other operation is: NCCL runs each on a stream of its own after an event of the compute stream, and the compute
// stream waits for its end with another. The asynchronous all-reduce of gradient buckets runs the same way, except
// that the compute stream waits for it only at PendingReduce::wait() (Note [gradient buckets] in
// optim/distributed.h). Every rank must make the same collective calls in the same order with the same shapes.
//
// Note [mpi exit]: MPI is initialised by the first communicator a launched process makes and finalised when the process
// exits normally. A rank that fails must not finalise: MPI_Finalize waits for every rank, and the others may be waiting
// in a collective for the failed one, so the whole run would hang. So a process that leaves through an exception,
// detected when its MPI communicator is destroyed while the exception unwinds the stack (or when making one fails),
// skips MPI_Finalize and aborts its NCCL communicators instead of destroying them (which would first finish their
// operations); mpirun sees a rank end without MPI_Finalize and ends the others. A program that catches an error where
// its communicator lives on (a global, or a handler that reports and carries on) calls abort(status) itself, which ends
// every rank at once with that status.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"

namespace sieve {

// Where this process stands in the run, as its launcher described it (Note [launch by mpirun]).
struct DistributedEnvironment {
  int rank = 0;
  int size = 1;
  int local_rank = 0;      // among the ranks on this host: picks the GPU
  bool launched = false;   // started by an MPI launcher (then MPI is initialised, even for one rank)
  static DistributedEnvironment detect();
};

enum class ReduceOp { Sum, Avg, Max, Min };

// An all-reduce in flight (Communicator::all_reduce_async). wait() orders what is queued after it behind the
// reduction: on a GPU the compute stream waits for it (the host does not), on the CPU the host waits.
class PendingReduce {
 public:
  virtual ~PendingReduce() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "local" (one process), "mpi" or "nccl".
  virtual std::string backend() const = 0;
  // The device whose tensors the collectives take: the CPU for "mpi", one GPU for "nccl", any for "local".
  virtual Device device() const = 0;

  // Tensor collectives (float32, int32 or int64, contiguous, on device()), in place unless they return a tensor.
  // Ordered on the device's compute stream like any other operation (Note [communicator backends]); on the CPU
  // complete when they return. Avg is for float32 only: an integer average would round.
  virtual void all_reduce(Tensor& t, ReduceOp op) = 0;
  virtual void broadcast(Tensor& t, int root) = 0;
  // [n, ...] from every rank (the same shape on all) -> [size * n, ...], rank 0's rows first; a scalar gives [size].
  // A world of one returns its input itself, not a copy.
  virtual Tensor all_gather(const Tensor& t) = 0;
  // A float32 all-reduce that the caller waits for later (gradient buckets): on a GPU it runs on the
  // communicator's own stream after the work queued so far on the compute stream. The tensor must stay untouched
  // until wait(); the PendingReduce keeps its storage alive, and waits itself when destroyed before wait().
  virtual std::unique_ptr<PendingReduce> all_reduce_async(Tensor& t, ReduceOp op) = 0;

  // Host values, complete on return.
  virtual void all_reduce(std::vector<double>& values, ReduceOp op) = 0;
  virtual void broadcast(std::vector<double>& values, int root) = 0;  // the same count on every rank
  virtual void broadcast(std::string& bytes, int root) = 0;           // any length: receivers are resized
  // Every rank's bytes at `root` (rank order); other ranks get an empty list.
  virtual std::vector<std::string> gather(const std::string& bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the run at once with this exit status (MPI_Abort); for a world of one, exits the process
  // (std::exit). Both flush the standard streams first. Note [mpi exit].
  [[noreturn]] virtual void abort(int status) = 0;

  bool is_root() const { return rank() == 0; }
};

// The communicator of this process for training on `device` (Note [communicator backends]): "local" when the
// environment is a world of one not started by a launcher, else "mpi" (CPU) or "nccl" (GPU). Initialises MPI (once per
// process) when launched; throws sieve::Error, one line, when the build lacks the backend it needs.
std::shared_ptr<Communicator> make_communicator(const DistributedEnvironment& env, Device device);
// A world of one process: every collective is a no-op (all_gather returns its input).
std::shared_ptr<Communicator> local_communicator();
// NCCL on `device` in a world of one, without MPI: the GPU tests of the NCCL code path on a single GPU.
std::shared_ptr<Communicator> nccl_single_process_communicator(Device device);

// What this build can do: "mpi" and "nccl" present or not (the README's multi-process section).
bool built_with_mpi();
bool built_with_nccl();

}  // namespace sieve
