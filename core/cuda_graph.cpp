#include "core/cuda_graph.h"

#include <exception>
#include <string>

#include "core/allocator.h"
#include "core/cuda_check.h"

namespace sieve {
namespace {
thread_local bool t_capturing = false;
}  // namespace

bool capturing_cuda_graph() { return t_capturing; }

CudaGraph::CudaGraph(Device device) : device_(device) {
  SIEVE_CHECK(device.is_cuda(), "CUDA graphs need a CUDA device, not ", to_string(device));
}

CudaGraph::~CudaGraph() {
  try {
    reset();
  } catch (...) {  // a destructor reports nothing; the driver frees what is left at exit
  }
}

void CudaGraph::reset() {
  if (exec_) {
    // Replays still queued finish before the graph and its pool go (errors of earlier work are not this call's).
    DeviceGuard guard(device_);
    if (cudaStreamSynchronize(cuda::stream()) != cudaSuccess) cudaGetLastError();
    cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
  }
  if (graph_) cudaGraphDestroy(static_cast<cudaGraph_t>(graph_));
  exec_ = graph_ = nullptr;
  if (pool_) {
    capture_pool_release(pool_, device_.index);
    pool_ = 0;
  }
}

void CudaGraph::capture(const std::function<void()>& record, const char* what) {
  SIEVE_CHECK(!t_capturing, "cannot capture ", what, " inside another CUDA graph capture");
  reset();
  DeviceGuard guard(device_);
  pool_ = capture_pool_create();
  cudaStream_t s = cuda::stream();
  SIEVE_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  capture_pool_begin(pool_, device_.index);
  t_capturing = true;
  std::exception_ptr failure;
  try {
    record();
  } catch (...) {
    failure = std::current_exception();
  }
  t_capturing = false;
  capture_pool_end();
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(s, &graph);
  graph_ = graph;
  auto fail = [&](const std::string& why) {
    cudaGetLastError();  // a failed capture leaves its error behind; clear it for the next call
    reset();
    SIEVE_FAIL("could not capture ", what, " as a CUDA graph: ", why,
               " (captured work may not wait for the device, copy from host memory or read device values on the "
               "host; Note [cuda graphs])");
  };
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      fail(e.what());
    } catch (...) {
      fail("an exception that is not a std::exception");
    }
  }
  if (ended != cudaSuccess || graph == nullptr) fail(cudaGetErrorString(ended));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  if (made != cudaSuccess) fail(std::string("instantiating the graph: ") + cudaGetErrorString(made));
  exec_ = exec;
}

void CudaGraph::replay() {
  SIEVE_CHECK(exec_ != nullptr, "CudaGraph::replay: nothing was captured");
  DeviceGuard guard(device_);
  SIEVE_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), cuda::stream()));
}

}  // namespace sieve
