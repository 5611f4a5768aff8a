// Internal: the factories of the communicator's backends, for core/distributed.cpp, which picks one
// (Note [communicator backends] in core/distributed.h). Each backend's file compiles its factories in every build;
// where CMake did not find the backend's library they throw one line saying what to install (Note [optional backends]
// in CMakeLists.txt).
#pragma once

#include <atomic>
#include <memory>

#include "core/distributed.h"

namespace sieve::detail {

// A world of one whose collectives are no-ops, reporting `device` as its device().
std::shared_ptr<Communicator> make_local_communicator(Device device);

// MPI over MPI_COMM_WORLD, initialising MPI on the first call in this process; checks that MPI's rank and size are
// the ones the launcher's variables gave `env`.
std::shared_ptr<Communicator> make_mpi_communicator(const DistributedEnvironment& env);

// NCCL on `device` (a GPU), with `host` (MPI, or a local communicator for a world of one) carrying NCCL's unique id
// from rank 0 to the others and every host collective.
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> host, Device device);

// Note [mpi exit] in core/distributed.h: set when this process is leaving through an exception (a communicator
// destroyed while one unwinds the stack, or a failure to make one). MPI is then not finalised and NCCL's
// communicators are aborted rather than destroyed, so that nothing waits for ranks that may never come.
std::atomic<bool>& process_failing();

// The checks every backend makes, so that a mistake reads the same in a world of one as in a run of many; `what`
// names the call ("all_reduce"). Every rank makes them on the same arguments (the same calls in the same order
// with the same shapes, Note [communicator backends] in core/distributed.h), so every rank throws alike and none is
// left waiting.
// A defined float32, int32 or int64 tensor.
void check_collective_tensor(const Tensor& t, const char* what);
// Avg of integers would round: refused.
void check_reduce_op(const Tensor& t, ReduceOp op, const char* what);
// 0 <= root < size.
void check_root(int root, int size, const char* what);
const char* to_string(ReduceOp op);

}  // namespace sieve::detail
