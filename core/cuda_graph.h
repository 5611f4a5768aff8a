// Captured CUDA graphs: a sequence of work queued once and replayed as one launch (Note [cuda graphs]).
#pragma once

#include <cstdint>
#include <functional>

#include "core/device.h"

namespace sieve {

// Note [cuda graphs]: CudaGraph::capture runs `record` with the device's compute stream in capture mode: the kernels,
// copies and library calls it queues are recorded, not run, and become one executable graph that replay() launches
// with a single call, so a step of many small kernels no longer pays the host's launch cost for each. What a graph
// does is fixed at capture: the same kernels, with the same arguments and the same addresses. Hence:
// - Memory: the capture allocates from a pool of its own (Note [capture pools] in core/allocator.h), which lives as
//   long as the graph, so every address the graph uses stays its own; tensors made during the capture and kept
//   after it (gradients, outputs) are refilled by every replay.
// - Values that change from step to step (the learning rate, random-number offsets) cannot be kernel arguments:
//   the kernels that need them read them from device memory at run time, a cell written before each replay
//   (SgdStep::lr_cell in optim/sgd.h; a Generator with a device base, Note [captured draws] in core/random.h).
// - Nothing in the captured work may wait for the device or copy from host memory: the capture runs in CUDA's
//   thread-local mode, where such a call fails, and capture() reports that failure in one line naming what was
//   being captured. The work is not run by capture(): replay it to run it.
// Capture and replay are sieve's CUDA graph API for one's own loops as for sieve-train --cuda-graphs
// (apps/trainer.cpp, Note [captured steps]).
class CudaGraph {
 public:
  explicit CudaGraph(Device device);  // a CUDA device
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Records what `record` queues on the device's stream; `what` names it in errors. Throws sieve::Error and leaves
  // the graph empty when the work cannot be captured.
  void capture(const std::function<void()>& record, const char* what);
  // Queues the captured work on the device's stream.
  void replay();
  bool captured() const { return exec_ != nullptr; }
  Device device() const { return device_; }

 private:
  void reset();
  Device device_;
  uint64_t pool_ = 0;
  void* graph_ = nullptr;  // cudaGraph_t
  void* exec_ = nullptr;   // cudaGraphExec_t
};

// Whether the calling thread is capturing a graph (inside CudaGraph::capture's `record`).
bool capturing_cuda_graph();

}  // namespace sieve
