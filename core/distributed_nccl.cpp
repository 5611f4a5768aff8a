// The NCCL backend (Note [communicator backends] in core/distributed.h): GPU tensors between the ranks of a run, device
// to device. Host-compiled: nvcc never sees nccl.h. Compiled against NCCL only where CMake found it
// (Note [optional backends] in CMakeLists.txt); otherwise its factories throw one line.
#include <memory>
#include <string>
#include <vector>

#include "core/distributed.h"
#include "core/distributed_backends.h"

#if SIEVE_WITH_NCCL

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>

#include "core/cuda_check.h"

namespace sieve::detail {
namespace {

// NCCL's name for the status and its last error message, flattened onto the one line of a sieve::Error.
[[noreturn]] void throw_nccl_error(ncclResult_t status, const char* call, const char* file, int line) {
  std::string last = ncclGetLastError(nullptr) ? ncclGetLastError(nullptr) : "";
  for (char& c : last)
    if (c == '\n' || c == '\r') c = ' ';
  while (!last.empty() && last.back() == ' ') last.pop_back();
  throw_error(file, line, concat("NCCL error (", ncclGetErrorString(status), last.empty() ? "" : ": ", last, ") in ",
                                 call));
}

#define SIEVE_NCCL_CHECK(call)                                                                   \
  do {                                                                                           \
    const ncclResult_t sieve_nccl_status_ = (call);                                              \
    if (sieve_nccl_status_ != ncclSuccess)                                                       \
      ::sieve::detail::throw_nccl_error(sieve_nccl_status_, #call, __FILE__, __LINE__);          \
  } while (0)

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32: return ncclFloat32;
    case DType::I32: return ncclInt32;
    case DType::I64: return ncclInt64;
    case DType::U8: break;
  }
  SIEVE_FAIL("the NCCL backend moves float32, int32 and int64 tensors, not ", to_string(t));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Avg: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
  }
  return ncclSum;
}

cudaEvent_t make_event() {
  cudaEvent_t e = nullptr;
  SIEVE_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

// Makes `device` current for a destructor's calls, without throwing; restores the previous device.
class QuietDeviceGuard {
 public:
  explicit QuietDeviceGuard(int device) {
    if (cudaGetDevice(&previous_) == cudaSuccess && previous_ != device) active_ = cudaSetDevice(device) == cudaSuccess;
  }
  ~QuietDeviceGuard() {
    if (active_) cudaSetDevice(previous_);
  }
  QuietDeviceGuard(const QuietDeviceGuard&) = delete;
  QuietDeviceGuard& operator=(const QuietDeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool active_ = false;
};

// An all-reduce in flight on the communicator's stream. It keeps a shallow copy of the tensor, so that the storage
// cannot go back to the caching allocator while NCCL still writes it; wait() orders the compute stream after the
// reduction (an event, no host synchronisation) and then lets the copy go: whatever reuses the block is queued after
// the reduction on the compute stream (Note [stream-ordered reuse] in core/allocator.cpp). Destroyed before wait(),
// it does the same. The caller must still leave the tensor untouched until wait(): work queued on the compute stream
// in between runs alongside the reduction.
class NcclPendingReduce final : public PendingReduce {
 public:
  NcclPendingReduce(Device device, Tensor t) : device_(device), tensor_(std::move(t)), done_(make_event()) {}
  ~NcclPendingReduce() override {
    QuietDeviceGuard guard(device_.index);
    if (armed_) {
      try {
        cudaStreamWaitEvent(cuda::stream(), done_, 0);
      } catch (...) {  // never throw from a destructor; a broken device reports itself at the next checked call
      }
    }
    tensor_ = Tensor();
    cudaEventDestroy(done_);  // released once the reduction has recorded it
  }
  NcclPendingReduce(const NcclPendingReduce&) = delete;
  NcclPendingReduce& operator=(const NcclPendingReduce&) = delete;

  cudaEvent_t done_event() const { return done_; }
  void arm() { armed_ = true; }

  void wait() override {
    if (!armed_) return;
    armed_ = false;
    DeviceGuard guard(device_);
    SIEVE_CUDA_CHECK(cudaStreamWaitEvent(cuda::stream(), done_, 0));
    tensor_ = Tensor();
  }

 private:
  Device device_;
  Tensor tensor_;
  cudaEvent_t done_ = nullptr;
  bool armed_ = false;
};

class NcclCommunicator;

// The communicators alive in this process. They are released by an exit handler, registered once the CUDA runtime
// is up (atexit handlers run in reverse order), so before the runtime is torn down: a communicator held until the
// end of the program (a global) would otherwise be destroyed after it, when NCCL's calls can no longer succeed.
struct LiveCommunicators {
  std::mutex mutex;
  std::vector<NcclCommunicator*> all;
  bool handler_registered = false;
};
LiveCommunicators& live_communicators() {
  static auto* live = new LiveCommunicators;  // never destroyed: the exit handler may run after static destructors
  return *live;
}
void release_live_communicators();

// Every NCCL call of a communicator goes to one stream of its own, so that they run in the order they were issued,
// the same order on every rank. Two NCCL kernels of one communicator on two streams could run in either order, or
// wait for each other, and NCCL does not promise that both make progress. The compute stream and this stream are
// ordered by events both ways: a collective starts after the work queued before it on the compute stream
// (`ready_`), and the compute stream waits for its end (`done_`), so to the caller a synchronous collective is queued
// on the compute stream like any other operation. all_reduce_async differs only in that the compute stream waits
// later, at PendingReduce::wait(). An event may be recorded again as soon as a wait on it has been queued: a stream
// waits for the record that was current when cudaStreamWaitEvent was called.
class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<Communicator> host, Device device) : host_(std::move(host)), device_(device) {
    rank_ = host_->rank();
    size_ = host_->size();
    SIEVE_CHECK(device_.is_cuda(), "the NCCL backend moves GPU tensors; got the device ", sieve::to_string(device_));
    const int gpus = cuda_device_count();
    SIEVE_CHECK(device_.index >= 0 && device_.index < gpus, "rank ", rank_, " was given ",
                sieve::to_string(device_), ", but this host has ", gpus,
                " GPU(s): a rank drives cuda:(its local rank), so start at most that many ranks per host");

    // Rank 0 makes the unique id and the host communicator carries it to the others. Should rank 0 fail to make
    // one, it sends an empty id, so that every rank throws instead of the others waiting for an id.
    std::string id_bytes;
    if (rank_ == 0) {
      ncclUniqueId id;
      const ncclResult_t status = ncclGetUniqueId(&id);
      if (status == ncclSuccess) id_bytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
      host_->broadcast(id_bytes, 0);
      if (status != ncclSuccess) throw_nccl_error(status, "ncclGetUniqueId(&id)", __FILE__, __LINE__);
    } else {
      host_->broadcast(id_bytes, 0);
    }
    SIEVE_CHECK(id_bytes.size() == sizeof(ncclUniqueId), "rank ", rank_, " received a NCCL unique id of ",
                id_bytes.size(), " bytes from rank 0, expected ", sizeof(ncclUniqueId),
                " (rank 0 could not make one: see its error)");
    ncclUniqueId id;
    std::memcpy(&id, id_bytes.data(), sizeof id);

    DeviceGuard guard(device_);
    try {
      SIEVE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      ready_ = make_event();
      done_ = make_event();
      SIEVE_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
    } catch (...) {
      release();
      throw;
    }
    LiveCommunicators& live = live_communicators();
    std::lock_guard<std::mutex> lock(live.mutex);
    if (!live.handler_registered) live.handler_registered = std::atexit(release_live_communicators) == 0;
    live.all.push_back(this);
  }

  // NCCL's resources go with the communicator (or earlier, at exit: LiveCommunicators).
  ~NcclCommunicator() override {
    if (std::uncaught_exceptions() > 0) process_failing().store(true);  // Note [mpi exit] in core/distributed.h
    {
      LiveCommunicators& live = live_communicators();
      std::lock_guard<std::mutex> lock(live.mutex);
      live.all.erase(std::remove(live.all.begin(), live.all.end(), this), live.all.end());
    }
    release();
  }

  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }
  Device device() const override { return device_; }

  void all_reduce(Tensor& t, ReduceOp op) override {
    check_gpu_tensor(t, "all_reduce");
    check_reduce_op(t, op, "all_reduce");
    DeviceGuard guard(device_);
    start();
    SIEVE_NCCL_CHECK(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()),
                                   nccl_op(op), comm_, stream_));
    finish(done_);
  }

  void broadcast(Tensor& t, int root) override {
    check_gpu_tensor(t, "broadcast");
    check_root(root, size_, "broadcast");
    DeviceGuard guard(device_);
    start();
    SIEVE_NCCL_CHECK(ncclBroadcast(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()),
                                   root, comm_, stream_));
    finish(done_);
  }

  Tensor all_gather(const Tensor& t) override {
    check_gpu_tensor(t, "all_gather");
    Shape shape = t.shape();
    if (shape.empty()) shape = {1};
    shape[0] *= size_;
    DeviceGuard guard(device_);
    // Allocated for the compute stream, which waits for the gather before anything it queues later uses the block.
    Tensor out = Tensor::empty(shape, t.dtype(), device_);
    start();
    SIEVE_NCCL_CHECK(ncclAllGather(t.raw_data(), out.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()),
                                   comm_, stream_));
    finish(done_);
    return out;
  }

  // The reduction starts after the work queued so far on the compute stream and runs on this communicator's stream
  // while the compute stream goes on; the tensor must stay untouched until wait() (NcclPendingReduce). Gradient
  // buckets are persistent buffers, written by backward before the call and read by the optimizer after wait().
  std::unique_ptr<PendingReduce> all_reduce_async(Tensor& t, ReduceOp op) override {
    check_gpu_tensor(t, "all_reduce_async");
    SIEVE_CHECK(t.dtype() == DType::F32, "all_reduce_async: expected a float32 tensor, got ", t.description());
    DeviceGuard guard(device_);
    auto pending = std::make_unique<NcclPendingReduce>(device_, t);
    start();
    SIEVE_NCCL_CHECK(
        ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), ncclFloat32, nccl_op(op), comm_,
                      stream_));
    SIEVE_CUDA_CHECK(cudaEventRecord(pending->done_event(), stream_));
    pending->arm();
    return pending;
  }

  // Host values travel by the host communicator: MPI, or nothing in a world of one.
  void all_reduce(std::vector<double>& values, ReduceOp op) override { host_->all_reduce(values, op); }
  void broadcast(std::vector<double>& values, int root) override { host_->broadcast(values, root); }
  void broadcast(std::string& bytes, int root) override { host_->broadcast(bytes, root); }
  std::vector<std::string> gather(const std::string& bytes, int root) override { return host_->gather(bytes, root); }
  void barrier() override { host_->barrier(); }
  [[noreturn]] void abort(int status) override {
    host_->abort(status);
    std::_Exit(status);  // not reached: the host communicator's abort ends the process
  }

 private:
  void check_gpu_tensor(const Tensor& t, const char* what) const {
    check_collective_tensor(t, what);
    SIEVE_CHECK(t.device() == device_, what, ": the tensor is ", t.description(),
                ", but this NCCL communicator moves tensors on ", sieve::to_string(device_));
  }

  // This communicator's stream waits for the work queued so far on the compute stream.
  void start() {
    SIEVE_CUDA_CHECK(cudaEventRecord(ready_, cuda::stream()));
    SIEVE_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
  }

  // The compute stream waits for what has been queued so far on this communicator's stream.
  void finish(cudaEvent_t done) {
    SIEVE_CUDA_CHECK(cudaEventRecord(done, stream_));
    SIEVE_CUDA_CHECK(cudaStreamWaitEvent(cuda::stream(), done, 0));
  }

  // Frees NCCL's and CUDA's resources, once (the exit handler and the destructor may both call it); never throws.
  // A failing process aborts the communicator: destroying it would first finish its operations, which may wait for
  // ranks that never come (Note [mpi exit] in core/distributed.h).
  void release() noexcept {
    QuietDeviceGuard guard(device_.index);
    if (comm_) {
      if (std::uncaught_exceptions() > 0 || process_failing().load())
        ncclCommAbort(comm_);
      else
        ncclCommDestroy(comm_);
      comm_ = nullptr;
    }
    if (ready_) cudaEventDestroy(ready_);
    if (done_) cudaEventDestroy(done_);
    if (stream_) cudaStreamDestroy(stream_);  // its queued work still runs; the resources go after it
    ready_ = done_ = nullptr;
    stream_ = nullptr;
  }

  std::shared_ptr<Communicator> host_;
  Device device_;
  int rank_ = 0, size_ = 1;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr, done_ = nullptr;

  friend void release_live_communicators();
};

void release_live_communicators() {
  LiveCommunicators& live = live_communicators();
  std::lock_guard<std::mutex> lock(live.mutex);
  for (NcclCommunicator* comm : live.all) comm->release();
}

}  // namespace

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> host, Device device) {
  return std::make_shared<NcclCommunicator>(std::move(host), device);
}

}  // namespace sieve::detail

namespace sieve {
bool built_with_nccl() { return true; }
}  // namespace sieve

#else  // !SIEVE_WITH_NCCL

namespace sieve::detail {
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator>, Device) {
  SIEVE_FAIL("this sieve was built without NCCL, which multi-GPU training needs: install NCCL beside the CUDA "
             "toolkit (libnccl and nccl.h) and rebuild");
}
}  // namespace sieve::detail

namespace sieve {
bool built_with_nccl() { return false; }
}  // namespace sieve

#endif
