// The MPI backend (Note [communicator backends] in core/distributed.h): CPU tensors and host values between the
// processes that mpirun started, over MPI_COMM_WORLD. Compiled against MPI only where CMake found it
// (Note [optional backends] in CMakeLists.txt); otherwise its factory throws one line.
#include <memory>
#include <string>
#include <vector>

#include "core/distributed.h"
#include "core/distributed_backends.h"

#if SIEVE_WITH_MPI

// The C interface only: the deprecated C++ bindings would need a library that is not linked.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <mutex>

namespace sieve::detail {
namespace {

[[noreturn]] void throw_mpi_error(int status, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(status, text, &length) != MPI_SUCCESS)
    length = std::snprintf(text, sizeof text, "code %d", status);
  throw_error(file, line, concat("MPI error (", std::string(text, static_cast<size_t>(length)), ") in ", call));
}

// Every MPI call is checked: MPI_COMM_WORLD returns its errors (MPI_ERRORS_RETURN) instead of ending the process.
#define SIEVE_MPI_CHECK(call)                                                                    \
  do {                                                                                           \
    const int sieve_mpi_status_ = (call);                                                        \
    if (sieve_mpi_status_ != MPI_SUCCESS)                                                        \
      ::sieve::detail::throw_mpi_error(sieve_mpi_status_, #call, __FILE__, __LINE__);            \
  } while (0)

// Note [mpi exit] in core/distributed.h: a failing process does not finalise MPI, so that mpirun ends the other
// ranks instead of every rank waiting forever.
void finalize_at_exit() {
  int finalized = 1;
  if (MPI_Finalized(&finalized) != MPI_SUCCESS || finalized) return;
  if (process_failing().load()) {
    std::fflush(nullptr);
    std::cerr << "sieve: this rank failed; not finalising MPI, so that mpirun ends the other ranks" << std::endl;
    return;
  }
  MPI_Finalize();
}

// MPI is initialised once per process, by the first communicator, and finalised when the process exits normally
// (Note [mpi exit] in core/distributed.h). Only the thread that initialised it calls MPI (MPI_THREAD_FUNNELED): the
// training loop's.
void initialise_mpi() {
  static std::mutex mutex;
  static bool done = false;
  std::lock_guard<std::mutex> lock(mutex);
  if (done) return;
  int initialized = 0, finalized = 0;
  SIEVE_MPI_CHECK(MPI_Initialized(&initialized));
  SIEVE_MPI_CHECK(MPI_Finalized(&finalized));
  SIEVE_CHECK(!finalized, "MPI was finalised already in this process: no communicator can be made after that");
  // A program that initialised MPI itself also finalises it: then there is nothing to register.
  if (!initialized) {
    int provided = MPI_THREAD_SINGLE;
    SIEVE_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
    std::atexit(finalize_at_exit);
    SIEVE_CHECK(provided >= MPI_THREAD_FUNNELED, "this MPI library offers thread level ", provided,
                ", below MPI_THREAD_FUNNELED (", MPI_THREAD_FUNNELED, ")");
  }
  SIEVE_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  done = true;
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::F32: return MPI_FLOAT;
    case DType::I32: return MPI_INT32_T;
    case DType::I64: return MPI_INT64_T;
    case DType::U8: break;
  }
  SIEVE_FAIL("the MPI backend moves float32, int32 and int64 tensors, not ", to_string(t));
}

// Avg is a Sum, then a division by the size on every rank.
MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return MPI_SUM;
    case ReduceOp::Avg: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

// MPI counts are ints; a larger collective is refused on every rank alike (every rank has the same shapes).
int mpi_count(int64_t n, const char* what) {
  SIEVE_CHECK(n <= INT_MAX, what, ": ", n, " elements are more than one MPI call moves (", INT_MAX, ")");
  return static_cast<int>(n);
}

void check_cpu_tensor(const Tensor& t, const char* what) {
  check_collective_tensor(t, what);
  SIEVE_CHECK(t.device().is_cpu(), what, ": the MPI backend moves CPU tensors; GPU training uses NCCL (got ",
              t.description(), ")");
}

void divide(float* values, int64_t n, int size) {
  const float d = static_cast<float>(size);
  for (int64_t i = 0; i < n; ++i) values[i] /= d;
}

void flush_output() {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
}

// An MPI_Iallreduce in flight. It keeps a shallow copy of the tensor, so that its storage outlives the reduction
// even where the caller drops its own; destroyed before wait(), it waits and finishes the same way (a reduction
// writing into freed memory is never an option). Open MPI progresses a non-blocking collective mostly inside
// MPI_Wait, so on the CPU the overlap is small: the call is there so that one training loop serves both devices.
class MpiPendingReduce final : public PendingReduce {
 public:
  MpiPendingReduce(MPI_Request request, Tensor t, int divide_by)
      : request_(request), tensor_(std::move(t)), divide_by_(divide_by) {}
  // While an exception unwinds the stack the other ranks may never join the reduction, and waiting could hang
  // (Note [mpi exit] in core/distributed.h): the buffer is then left to MPI for the rest of the process.
  ~MpiPendingReduce() override {
    if (done_) return;
    done_ = true;
    int finalized = 1;
    if (MPI_Finalized(&finalized) != MPI_SUCCESS || finalized) return;
    if (std::uncaught_exceptions() > 0) {
      process_failing().store(true);
      new Tensor(std::move(tensor_));  // deliberately never freed
      return;
    }
    if (MPI_Wait(&request_, MPI_STATUS_IGNORE) == MPI_SUCCESS) finish();
  }
  MpiPendingReduce(const MpiPendingReduce&) = delete;
  MpiPendingReduce& operator=(const MpiPendingReduce&) = delete;

  void wait() override {
    if (done_) return;
    done_ = true;
    SIEVE_MPI_CHECK(MPI_Wait(&request_, MPI_STATUS_IGNORE));
    finish();
  }

 private:
  // Avg: the sum divided by the size, as all_reduce does.
  void finish() {
    if (divide_by_ > 1) divide(static_cast<float*>(tensor_.raw_data()), tensor_.numel(), divide_by_);
    tensor_ = Tensor();
  }

  MPI_Request request_;
  Tensor tensor_;
  int divide_by_;
  bool done_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(int rank, int size) : rank_(rank), size_(size) {}
  // Note [mpi exit] in core/distributed.h: a communicator destroyed while an exception unwinds the stack marks the
  // process as failing.
  ~MpiCommunicator() override {
    if (std::uncaught_exceptions() > 0) process_failing().store(true);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  Device device() const override { return Device::cpu(); }

  void all_reduce(Tensor& t, ReduceOp op) override {
    check_cpu_tensor(t, "all_reduce");
    check_reduce_op(t, op, "all_reduce");
    const int n = mpi_count(t.numel(), "all_reduce");
    SIEVE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, t.raw_data(), n, mpi_type(t.dtype()), mpi_op(op), MPI_COMM_WORLD));
    if (op == ReduceOp::Avg && size_ > 1) divide(t.data<float>(), t.numel(), size_);
  }

  void broadcast(Tensor& t, int root) override {
    check_cpu_tensor(t, "broadcast");
    check_root(root, size_, "broadcast");
    const int n = mpi_count(t.numel(), "broadcast");
    SIEVE_MPI_CHECK(MPI_Bcast(t.raw_data(), n, mpi_type(t.dtype()), root, MPI_COMM_WORLD));
  }

  Tensor all_gather(const Tensor& t) override {
    check_cpu_tensor(t, "all_gather");
    const int n = mpi_count(t.numel(), "all_gather");
    mpi_count(t.numel() * size_, "all_gather");
    Shape shape = t.shape();
    if (shape.empty()) shape = {1};
    shape[0] *= size_;
    Tensor out = Tensor::empty(shape, t.dtype(), Device::cpu());
    const MPI_Datatype type = mpi_type(t.dtype());
    SIEVE_MPI_CHECK(MPI_Allgather(t.raw_data(), n, type, out.raw_data(), n, type, MPI_COMM_WORLD));
    return out;
  }

  std::unique_ptr<PendingReduce> all_reduce_async(Tensor& t, ReduceOp op) override {
    check_cpu_tensor(t, "all_reduce_async");
    SIEVE_CHECK(t.dtype() == DType::F32, "all_reduce_async: expected a float32 tensor, got ", t.description());
    const int n = mpi_count(t.numel(), "all_reduce_async");
    MPI_Request request = MPI_REQUEST_NULL;
    SIEVE_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), n, MPI_FLOAT, mpi_op(op), MPI_COMM_WORLD, &request));
    return std::make_unique<MpiPendingReduce>(request, t, op == ReduceOp::Avg ? size_ : 1);
  }

  void all_reduce(std::vector<double>& values, ReduceOp op) override {
    const int n = mpi_count(static_cast<int64_t>(values.size()), "all_reduce");
    SIEVE_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values.data(), n, MPI_DOUBLE, mpi_op(op), MPI_COMM_WORLD));
    if (op == ReduceOp::Avg)
      for (double& v : values) v /= size_;
  }

  void broadcast(std::vector<double>& values, int root) override {
    check_root(root, size_, "broadcast");
    const int n = mpi_count(static_cast<int64_t>(values.size()), "broadcast");
    SIEVE_MPI_CHECK(MPI_Bcast(values.data(), n, MPI_DOUBLE, root, MPI_COMM_WORLD));
  }

  // The length first, so that the receivers can make room; every rank then refuses an oversized string alike.
  void broadcast(std::string& bytes, int root) override {
    check_root(root, size_, "broadcast");
    uint64_t length = rank_ == root ? bytes.size() : 0;
    SIEVE_MPI_CHECK(MPI_Bcast(&length, 1, MPI_UINT64_T, root, MPI_COMM_WORLD));
    const int n = mpi_count(static_cast<int64_t>(length), "broadcast");
    if (rank_ != root) bytes.resize(length);
    if (n > 0) SIEVE_MPI_CHECK(MPI_Bcast(bytes.data(), n, MPI_CHAR, root, MPI_COMM_WORLD));
  }

  // Every rank learns every length (an all-gather, not a gather), so that all of them refuse a total beyond MPI's
  // int displacements alike rather than the root alone, which would leave the others waiting in MPI_Gatherv.
  std::vector<std::string> gather(const std::string& bytes, int root) override {
    check_root(root, size_, "gather");
    uint64_t length = bytes.size();
    std::vector<uint64_t> lengths(static_cast<size_t>(size_));
    SIEVE_MPI_CHECK(MPI_Allgather(&length, 1, MPI_UINT64_T, lengths.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD));
    std::vector<int> counts(lengths.size()), offsets(lengths.size());
    int64_t total = 0;
    for (size_t r = 0; r < lengths.size(); ++r) {
      offsets[r] = static_cast<int>(total);
      counts[r] = mpi_count(static_cast<int64_t>(lengths[r]), "gather");
      total += counts[r];
      mpi_count(total, "gather");
    }
    std::string all(rank_ == root ? static_cast<size_t>(total) : 0, '\0');
    SIEVE_MPI_CHECK(MPI_Gatherv(bytes.data(), counts[static_cast<size_t>(rank_)], MPI_CHAR, all.data(), counts.data(),
                                offsets.data(), MPI_CHAR, root, MPI_COMM_WORLD));
    if (rank_ != root) return {};
    std::vector<std::string> out;
    out.reserve(lengths.size());
    for (size_t r = 0; r < lengths.size(); ++r) out.push_back(all.substr(offsets[r], counts[r]));
    return out;
  }

  void barrier() override { SIEVE_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); }

  [[noreturn]] void abort(int status) override {
    flush_output();
    MPI_Abort(MPI_COMM_WORLD, status);
    std::_Exit(status);  // MPI_Abort does not return; should it, the process still ends
  }

 private:
  int rank_, size_;
};

}  // namespace

std::shared_ptr<Communicator> make_mpi_communicator(const DistributedEnvironment& env) {
  try {
    initialise_mpi();
    int rank = 0, size = 0;
    SIEVE_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    SIEVE_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
    SIEVE_CHECK(rank == env.rank && size == env.size, "MPI says this process is rank ", rank, " of ", size,
                ", but the launcher's variables said rank ", env.rank, " of ", env.size);
    return std::make_shared<MpiCommunicator>(rank, size);
  } catch (...) {
    process_failing().store(true);  // Note [mpi exit] in core/distributed.h
    throw;
  }
}

}  // namespace sieve::detail

namespace sieve {
bool built_with_mpi() { return true; }
}  // namespace sieve

#else  // !SIEVE_WITH_MPI

namespace sieve::detail {
std::shared_ptr<Communicator> make_mpi_communicator(const DistributedEnvironment&) {
  SIEVE_FAIL("this sieve was built without MPI: install Open MPI (scripts/install-deps) and rebuild");
}
}  // namespace sieve::detail

namespace sieve {
bool built_with_mpi() { return false; }
}  // namespace sieve

#endif
