// CPU convolution through oneDNN (Debian's libdnnl, Note [cpu convolutions] in core/ops/conv2d_cpu.cpp).
//
// Note [onednn plans]: each shape and direction gets a plan once per thread: a primitive descriptor whose tensors
// are left to oneDNN (format_tag::any: on AVX-512, channels blocked by 16, nChw16c), the primitive (JIT-compiled
// when created, which is why it is kept), and a reorder for each operand whose blocked layout differs from sieve's
// plain NCHW/KCRS. A call points the plan's memory objects at the caller's pointers and at a per-thread
// workspace holding the blocked copies, reorders the inputs in, runs the primitive and reorders the output out,
// so that the rest of sieve sees plain tensors (as PyTorch's CPU convolutions do with plain tensors). Steady
// state allocates nothing: the workspace grows to the largest call and stays; the plans are as many as the
// distinct shapes (batch sizes included) a thread has met, each a few kilobytes of descriptors plus its JIT code.
// The backward passes' descriptors are built with the forward's as their hint, as oneDNN asks, so that all three
// choose matching layouts.
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/ops/conv2d.h"

#if SIEVE_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace sieve::cpu::onednn {

#if SIEVE_WITH_ONEDNN
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

enum class Direction { Forward, BackwardData, BackwardFilter };

struct Engine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

Engine& engine() {
  thread_local Engine e;
  return e;
}

// 64-byte aligned scratch, grown to the largest request and kept (Note [onednn plans]).
class Workspace {
 public:
  char* get(size_t bytes) {
    if (bytes > size_) {
      data_.reset(static_cast<char*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)));
      SIEVE_CHECK(data_ != nullptr, "conv2d (oneDNN): out of memory for a ", bytes, "-byte workspace");
      size_ = bytes;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> data_;
  size_t size_ = 0;
};

// One argument of the primitive: the caller's plain tensor and, when oneDNN wants another layout, its blocked
// copy in the workspace at `offset`, with the reorder between them.
struct Operand {
  memory user, inner;
  std::optional<dnnl::reorder> reorder;  // user -> inner for inputs, inner -> user for outputs
  size_t offset = 0, bytes = 0;          // of the blocked copy in the workspace; bytes 0 when none

  Operand(const memory::desc& plain, const memory::desc& wanted, bool input, size_t* workspace_end) {
    const dnnl::engine& eng = engine().engine;
    user = memory(plain, eng, DNNL_MEMORY_NONE);
    if (plain == wanted) {
      inner = user;
      return;
    }
    inner = memory(wanted, eng, DNNL_MEMORY_NONE);
    reorder = input ? dnnl::reorder(user, inner) : dnnl::reorder(inner, user);
    offset = *workspace_end;
    bytes = wanted.get_size();
    *workspace_end += (bytes + 63) / 64 * 64;
  }

  // Points the memories at `data` and the workspace; an input is then reordered in.
  void bind(const void* data, char* workspace, bool input) {
    user.set_data_handle(const_cast<void*>(data));
    if (!reorder) return;
    inner.set_data_handle(workspace + offset);
    if (input) reorder->execute(engine().stream, user, inner);
  }
  void write_back() {
    if (reorder) reorder->execute(engine().stream, inner, user);
  }
};

struct Plan {
  dnnl::primitive primitive;
  // Forward: src, weights, dst. Backward data: diff_dst, weights, diff_src. Backward filter: src, diff_dst,
  // diff_weights. The last is the output.
  std::vector<Operand> operands;
  std::vector<int> args;  // the DNNL_ARG_* of each operand
  size_t workspace_bytes = 0;
  bool bias = false;
  memory bias_memory;
};

memory::dims dims(std::initializer_list<int64_t> v) { return memory::dims(v.begin(), v.end()); }

Plan make_plan(const Conv2dShape& s, Direction direction, bool bias) {
  const dnnl::engine& eng = engine().engine;
  const auto f32 = memory::data_type::f32;
  const memory::dims x_dims = dims({s.n, s.c, s.h, s.w}), w_dims = dims({s.k, s.c, s.r, s.s}),
                     y_dims = dims({s.n, s.k, s.p(), s.q()}), b_dims = dims({s.k});
  const memory::desc x_any(x_dims, f32, tag::any), w_any(w_dims, f32, tag::any), y_any(y_dims, f32, tag::any);
  const memory::desc x_plain(x_dims, f32, tag::nchw), w_plain(w_dims, f32, tag::oihw),
      y_plain(y_dims, f32, tag::nchw);
  const memory::desc b_plain = bias ? memory::desc(b_dims, f32, tag::a) : memory::desc();
  const memory::dims strides = dims({s.stride_h, s.stride_w}), padding = dims({s.pad_h, s.pad_w});
  // Symmetric padding: oneDNN, like the formula in conv2d.h, floors (H + 2 pad - R) / stride.
  const auto algorithm = dnnl::algorithm::convolution_direct;
  const dnnl::convolution_forward::primitive_desc forward(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algorithm, x_any, w_any, b_plain, y_any,
                                      strides, padding, padding),
      eng);

  Plan plan;
  size_t end = 0;
  auto add = [&](const memory::desc& plain, const memory::desc& wanted, bool input, int arg) {
    plan.operands.emplace_back(plain, wanted, input, &end);
    plan.args.push_back(arg);
  };
  switch (direction) {
    case Direction::Forward:
      plan.primitive = dnnl::convolution_forward(forward);
      add(x_plain, forward.src_desc(), true, DNNL_ARG_SRC);
      add(w_plain, forward.weights_desc(), true, DNNL_ARG_WEIGHTS);
      add(y_plain, forward.dst_desc(), false, DNNL_ARG_DST);
      plan.bias = bias;
      if (bias) plan.bias_memory = memory(b_plain, eng, DNNL_MEMORY_NONE);
      break;
    case Direction::BackwardData: {
      const dnnl::convolution_backward_data::primitive_desc pd(
          dnnl::convolution_backward_data::desc(algorithm, x_any, w_any, y_any, strides, padding, padding), eng,
          forward);
      plan.primitive = dnnl::convolution_backward_data(pd);
      add(y_plain, pd.diff_dst_desc(), true, DNNL_ARG_DIFF_DST);
      add(w_plain, pd.weights_desc(), true, DNNL_ARG_WEIGHTS);
      add(x_plain, pd.diff_src_desc(), false, DNNL_ARG_DIFF_SRC);
      break;
    }
    case Direction::BackwardFilter: {
      const dnnl::convolution_backward_weights::primitive_desc pd(
          dnnl::convolution_backward_weights::desc(algorithm, x_any, w_any, memory::desc(), y_any, strides,
                                                   padding, padding),
          eng, forward);
      plan.primitive = dnnl::convolution_backward_weights(pd);
      add(x_plain, pd.src_desc(), true, DNNL_ARG_SRC);
      add(y_plain, pd.diff_dst_desc(), true, DNNL_ARG_DIFF_DST);
      add(w_plain, pd.diff_weights_desc(), false, DNNL_ARG_DIFF_WEIGHTS);
      break;
    }
  }
  plan.workspace_bytes = end;
  return plan;
}

// Runs one direction on (a, b) -> out; for the forward, bias may be set.
void run(const Conv2dShape& s, Direction direction, const void* a, const void* b, void* out,
         const float* bias = nullptr) {
  SIEVE_CHECK(s.precision == MatmulPrecision::F32, "conv2d (oneDNN): only float32 products; bf16 runs on im2col");
  try {
    thread_local std::map<std::tuple<Conv2dShape, Direction, bool>, Plan> plans;
    thread_local Workspace workspace;
    const auto key = std::make_tuple(s, direction, bias != nullptr);
    auto it = plans.find(key);
    if (it == plans.end()) it = plans.emplace(key, make_plan(s, direction, bias != nullptr)).first;
    Plan& plan = it->second;
    char* ws = workspace.get(plan.workspace_bytes);
    plan.operands[0].bind(a, ws, true);
    plan.operands[1].bind(b, ws, true);
    plan.operands[2].bind(out, ws, false);
    std::unordered_map<int, memory> args;
    for (size_t i = 0; i < plan.operands.size(); ++i) args.emplace(plan.args[i], plan.operands[i].inner);
    if (plan.bias) {
      plan.bias_memory.set_data_handle(const_cast<float*>(bias));
      args.emplace(DNNL_ARG_BIAS, plan.bias_memory);
    }
    Engine& e = engine();
    plan.primitive.execute(e.stream, args);
    plan.operands[2].write_back();
    e.stream.wait();
  } catch (const dnnl::error& error) {
    SIEVE_FAIL("conv2d (oneDNN): ", error.what(), " (status ", static_cast<int>(error.status), ")");
  }
}

}  // namespace

bool available() { return true; }

void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  run(s, Direction::Forward, x, w, y, bias);
}
void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  run(s, Direction::BackwardData, dy, w, dx);
}
void conv2d_bwd_filter(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  run(s, Direction::BackwardFilter, x, dy, dw);
}

#else  // built without oneDNN

namespace {
[[noreturn]] void unavailable() {
  SIEVE_FAIL("conv2d: sieve was built without oneDNN (install libdnnl-dev, scripts/install-deps, then reconfigure)");
}
}  // namespace

bool available() { return false; }
void conv2d_fwd(const Conv2dShape&, const float*, const float*, const float*, float*) { unavailable(); }
void conv2d_bwd_data(const Conv2dShape&, const float*, const float*, float*) { unavailable(); }
void conv2d_bwd_filter(const Conv2dShape&, const float*, const float*, float*) { unavailable(); }

#endif

}  // namespace sieve::cpu::onednn
