// The CPU's oneDNN backend (Debian's libdnnl 2.6, Note [cpu backends] in core/ops/cpu_backend.cpp): convolutions
// and the LSTM. The only file that sees oneDNN's headers (SIEVE_WITH_ONEDNN, Note [optional backends]).
//
// Note [onednn plans]: each shape and direction gets a plan once per thread: a primitive descriptor whose tensors are
// left to oneDNN where it may choose (format_tag::any: on AVX-512, convolution channels blocked by 16, nChw16c; the
// LSTM's weights in its own gate-interleaved order), the primitive (JIT-compiled when created, which is why it is
// kept), and a reorder for each operand whose chosen layout differs from sieve's plain one (NCHW, KCRS, PyTorch's [4H,
// I] gate blocks). A call points the plan's memory objects at the caller's pointers and at a per-thread workspace
// holding the reordered copies, reorders the inputs in, runs the primitive and reorders the outputs out, so that the
// rest of sieve sees plain tensors, as PyTorch's CPU operations do; a convolution's two backward passes run as one call
// (conv2d_bwd) in which the backward-filter plan reads the blocked copy of dy the backward-data plan made: one reorder
// of dy fewer per convolution. Steady state allocates nothing: the workspace grows to the largest call and stays; the
// plans are as many as the distinct shapes (batch sizes included) a thread has met, each a few kilobytes of descriptors
// plus its JIT code. The backward passes' descriptors are built with the forward's as their hint, as oneDNN asks, so
// that all choose matching layouts.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/ops/conv2d.h"
#include "core/ops/cpu_backend.h"
#include "core/ops/lstm.h"

#if SIEVE_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif
#if defined(_OPENMP)
#include <omp.h>
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

// bytes rounded up to a whole number of 64-byte cache lines: every block in a workspace or reserve starts on one.
size_t align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

// Runs oneDNN's calls, turning its exceptions into sieve's one-line errors.
template <class F>
void guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const dnnl::error& error) {
    SIEVE_FAIL(what, " (oneDNN): ", error.what(), " (status ", static_cast<int>(error.status), ")");
  }
}

// 64-byte aligned scratch, grown to the largest request and kept (Note [onednn plans]).
class Workspace {
 public:
  char* get(size_t bytes) {
    if (bytes > size_) {
      char* grown = static_cast<char*>(std::aligned_alloc(64, align64(bytes)));
      SIEVE_CHECK(grown != nullptr, "oneDNN: out of memory for a ", bytes, "-byte workspace");
      data_.reset(grown);  // the old block stays until the new one exists
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
  bool input = true;
  std::optional<dnnl::reorder> reorder;  // user -> inner for inputs, inner -> user for outputs
  size_t offset = 0;                     // of the blocked copy in the workspace

  Operand(const memory::desc& plain, const memory::desc& wanted, bool is_input, size_t* workspace_end)
      : input(is_input) {
    const dnnl::engine& eng = engine().engine;
    user = memory(plain, eng, DNNL_MEMORY_NONE);
    if (plain == wanted) {
      inner = user;
      return;
    }
    inner = memory(wanted, eng, DNNL_MEMORY_NONE);
    reorder = input ? dnnl::reorder(user, inner) : dnnl::reorder(inner, user);
    offset = *workspace_end;
    *workspace_end += align64(wanted.get_size());
  }

  // Points the memories at `data` and the workspace; an input is then reordered in.
  void bind(const void* data, char* workspace) {
    user.set_data_handle(const_cast<void*>(data));
    if (!reorder) return;
    inner.set_data_handle(workspace + offset);
    if (input) reorder->execute(engine().stream, user, inner);
  }
  // Points the memories at `data` and at `blocked`, a blocked copy of it another plan has made (no reorder).
  void bind_blocked(const void* data, void* blocked) {
    user.set_data_handle(const_cast<void*>(data));
    inner.set_data_handle(blocked);
  }
  // An output's blocked copy reordered out to the caller's tensor.
  void write_back() {
    if (reorder) reorder->execute(engine().stream, inner, user);
  }
  // Zeroes what the primitive writes, for outputs it accumulates into (the LSTM's weight gradients).
  void zero() { std::memset(inner.get_data_handle(), 0, inner.get_desc().get_size()); }
};

struct Plan {
  dnnl::primitive primitive;
  // Forward: src, weights, dst. Backward data: diff_dst, weights, diff_src. Backward filter: src, diff_dst,
  // diff_weights. The last is the output.
  std::vector<Operand> operands;
  memory bias_memory;  // forward plans with a bias (part of the plan's key)
  // The primitive's arguments, built once: oneDNN's memory objects are shared handles, so pointing the plan's
  // memories at a call's tensors points these too, and a call allocates nothing.
  std::unordered_map<int, memory> args;
  size_t workspace_bytes = 0;
  std::string kernel;  // oneDNN's name of the implementation it chose, e.g. "jit_wino_4x3:avx512_core"
};

// Winograd is offered from this many input and output channels (Note [conv winograd]): below, oneDNN's Winograd
// kernels were slower than its direct ones here (3 -> 16 channels 5-8x, 16 -> 32 1.1-1.3x), though it chose them.
constexpr int64_t kWinogradMinChannels = 32;

memory::dims dims(std::initializer_list<int64_t> v) { return memory::dims(v.begin(), v.end()); }

Plan make_plan(const Conv2dShape& s, Direction direction, bool bias, bool winograd) {
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
  // Winograd (Note [conv winograd]): auto lets oneDNN pick it where it has a kernel it judges faster, offered only
  // from 32 channels in and out; the backward passes ask for the same algorithm, with the forward as their hint.
  const bool offer_winograd = winograd && s.c >= kWinogradMinChannels && s.k >= kWinogradMinChannels;
  const auto algorithm = offer_winograd ? dnnl::algorithm::convolution_auto : dnnl::algorithm::convolution_direct;
  const dnnl::convolution_forward::primitive_desc forward(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algorithm, x_any, w_any, b_plain, y_any,
                                      strides, padding, padding),
      eng);

  Plan plan;
  size_t end = 0;
  auto add = [&](const memory::desc& plain, const memory::desc& wanted, bool input, int arg) {
    plan.args.emplace(arg, plan.operands.emplace_back(plain, wanted, input, &end).inner);
  };
  switch (direction) {
    case Direction::Forward:
      plan.primitive = dnnl::convolution_forward(forward);
      plan.kernel = forward.impl_info_str();
      add(x_plain, forward.src_desc(), true, DNNL_ARG_SRC);
      add(w_plain, forward.weights_desc(), true, DNNL_ARG_WEIGHTS);
      add(y_plain, forward.dst_desc(), false, DNNL_ARG_DST);
      if (bias) {
        plan.bias_memory = memory(b_plain, eng, DNNL_MEMORY_NONE);
        plan.args.emplace(DNNL_ARG_BIAS, plan.bias_memory);
      }
      break;
    case Direction::BackwardData: {
      const dnnl::convolution_backward_data::primitive_desc pd(
          dnnl::convolution_backward_data::desc(algorithm, x_any, w_any, y_any, strides, padding, padding), eng,
          forward);
      plan.primitive = dnnl::convolution_backward_data(pd);
      plan.kernel = pd.impl_info_str();
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
      plan.kernel = pd.impl_info_str();
      add(x_plain, pd.src_desc(), true, DNNL_ARG_SRC);
      add(y_plain, pd.diff_dst_desc(), true, DNNL_ARG_DIFF_DST);
      add(w_plain, pd.diff_weights_desc(), false, DNNL_ARG_DIFF_WEIGHTS);
      break;
    }
  }
  plan.workspace_bytes = end;
  return plan;
}

// The calling thread's plan for a shape and direction under the current Winograd setting, made when first met.
Plan& plan_for(const Conv2dShape& s, Direction direction, bool bias) {
  thread_local std::map<std::tuple<Conv2dShape, Direction, bool, bool>, Plan> plans;
  const bool winograd = allow_winograd();
  const auto key = std::make_tuple(s, direction, bias, winograd);
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, make_plan(s, direction, bias, winograd)).first;
  return it->second;
}

Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

// Runs a plan whose operands are bound: the primitive, then its output's reorder out.
void execute(Plan& plan) {
  Engine& e = engine();
  plan.primitive.execute(e.stream, plan.args);
  plan.operands[2].write_back();
  e.stream.wait();
}

// Runs one direction on (a, b) -> out; for the forward, bias may be set.
void run(const Conv2dShape& s, Direction direction, const void* a, const void* b, void* out,
         const float* bias = nullptr) {
  SIEVE_CHECK(s.precision == MatmulPrecision::F32, "conv2d (oneDNN): only float32 products; bf16 runs on im2col");
  guarded("conv2d", [&] {
    Plan& plan = plan_for(s, direction, bias != nullptr);
    char* ws = workspace().get(plan.workspace_bytes);
    plan.operands[0].bind(a, ws);
    plan.operands[1].bind(b, ws);
    plan.operands[2].bind(out, ws);
    if (bias) plan.bias_memory.set_data_handle(const_cast<float*>(bias));
    execute(plan);
  });
}

}  // namespace

bool available() { return true; }

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c) {
  const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a,
                                          trans_a ? m : k, b, trans_b ? k : n, beta, c, n);
  SIEVE_CHECK(status == dnnl_success, "matmul (oneDNN sgemm): status ", static_cast<int>(status), " for ", m, "x",
              k, " times ", k, "x", n);
}

void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  run(s, Direction::Forward, x, w, y, bias);
}
void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  run(s, Direction::BackwardData, dy, w, dx);
}
void conv2d_bwd_filter(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  run(s, Direction::BackwardFilter, x, dy, dw);
}
// Both gradients from one blocked copy of dy (Note [onednn plans]): the backward-data plan reorders dy into its
// part of the workspace, and the backward-filter plan, whose part follows, reads that copy when it wants dy in the
// same layout (it does for every shape met so far) instead of reordering dy again.
void conv2d_bwd(const Conv2dShape& s, const float* x, const float* dy, const float* w, float* dx, float* dw) {
  if (dx == nullptr || dw == nullptr) {
    if (dx != nullptr) conv2d_bwd_data(s, dy, w, dx);
    if (dw != nullptr) conv2d_bwd_filter(s, x, dy, dw);
    return;
  }
  SIEVE_CHECK(s.precision == MatmulPrecision::F32, "conv2d (oneDNN): only float32 products; bf16 runs on im2col");
  guarded("conv2d", [&] {
    Plan& data = plan_for(s, Direction::BackwardData, false);
    Plan& filter = plan_for(s, Direction::BackwardFilter, false);
    char* ws = workspace().get(data.workspace_bytes + filter.workspace_bytes);
    char* filter_ws = ws + data.workspace_bytes;
    Operand &data_dy = data.operands[0], &filter_dy = filter.operands[1];
    data_dy.bind(dy, ws);
    data.operands[1].bind(w, ws);
    data.operands[2].bind(dx, ws);
    execute(data);
    filter.operands[0].bind(x, filter_ws);
    if (data_dy.reorder && filter_dy.reorder && data_dy.inner.get_desc() == filter_dy.inner.get_desc())
      filter_dy.bind_blocked(dy, data_dy.inner.get_data_handle());
    else
      filter_dy.bind(dy, filter_ws);
    filter.operands[2].bind(dw, filter_ws);
    execute(filter);
  });
}

std::string conv2d_kernel(const Conv2dShape& s) {
  std::string kernel;
  guarded("conv2d", [&] { kernel = plan_for(s, Direction::Forward, false).kernel; });
  return kernel;
}

// Note [onednn lstm]: the LSTM runs layer by layer, each layer one oneDNN LSTM primitive over all T steps (its
// "vanilla LSTM": gates i, f, g (its c~), o, as PyTorch's and cuDNN's), with zero initial states and no final
// states requested. x and y stay batch-major ([B, T, width], oneDNN's ntc); the weights [4H, I_k] and [4H, H] are
// oneDNN's ldgoi, reordered to the layout the primitive chose; the two biases enter as their sum (ldgo), and the
// bias gradient goes to both. The CPU reserve (Note [lstm reserve]) holds, per layer, the workspace the training
// forward primitive fills and its backward reads (oneDNN's gates and states; several times the reference's saved
// state at T = 784), then the outputs of every layer but the last. oneDNN's backward primitive accumulates into
// the weight gradients, so they are zeroed first.
namespace {

enum class LstmPass { Train, Infer, Backward };

struct LstmPlan {
  dnnl::primitive primitive;
  std::vector<Operand> weights;  // weights_layer, weights_iter; for Backward also diff_weights_layer, _iter
  memory bias, diff_bias;        // plain ldgo
  memory src, dst, diff_src, diff_dst;  // plain ntc
  memory workspace;              // Train and Backward: in the reserve
  std::unordered_map<int, memory> args;  // built once, as Plan's
  size_t workspace_bytes = 0;    // the reserve's share of this layer
  size_t scratch_bytes = 0;      // the reordered weights in the thread's workspace
};

// The plan of one layer: batch B, T steps, input I, hidden H.
LstmPlan make_lstm_plan(int64_t B, int64_t T, int64_t I, int64_t H, LstmPass pass) {
  const dnnl::engine& eng = engine().engine;
  const auto f32 = memory::data_type::f32;
  const auto dir = dnnl::rnn_direction::unidirectional_left2right;
  const memory::desc src({T, B, I}, f32, tag::ntc), dst({T, B, H}, f32, tag::ntc), none;
  const memory::desc wl_plain({1, 1, I, 4, H}, f32, tag::ldgoi), wi_plain({1, 1, H, 4, H}, f32, tag::ldgoi);
  const memory::desc wl_any({1, 1, I, 4, H}, f32, tag::any), wi_any({1, 1, H, 4, H}, f32, tag::any);
  const memory::desc bias({1, 1, 4, H}, f32, tag::ldgo);
  const auto kind = pass == LstmPass::Infer ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training;
  const dnnl::lstm_forward::primitive_desc forward(
      dnnl::lstm_forward::desc(kind, dir, src, none, none, wl_any, wi_any, bias, dst, none, none), eng);
  LstmPlan plan;
  size_t end = 0;
  plan.src = memory(src, eng, DNNL_MEMORY_NONE);
  plan.dst = memory(dst, eng, DNNL_MEMORY_NONE);
  plan.bias = memory(bias, eng, DNNL_MEMORY_NONE);
  if (pass != LstmPass::Backward) {
    plan.primitive = dnnl::lstm_forward(forward);
    plan.weights.emplace_back(wl_plain, forward.weights_layer_desc(), true, &end);
    plan.weights.emplace_back(wi_plain, forward.weights_iter_desc(), true, &end);
  } else {
    const dnnl::lstm_backward::primitive_desc pd(
        dnnl::lstm_backward::desc(dnnl::prop_kind::backward, dir, src, none, none, wl_any, wi_any, bias, dst, none,
                                  none, src, none, none, wl_any, wi_any, bias, dst, none, none),
        eng, forward);
    plan.primitive = dnnl::lstm_backward(pd);
    plan.weights.emplace_back(wl_plain, pd.weights_layer_desc(), true, &end);
    plan.weights.emplace_back(wi_plain, pd.weights_iter_desc(), true, &end);
    plan.weights.emplace_back(wl_plain, pd.diff_weights_layer_desc(), false, &end);
    plan.weights.emplace_back(wi_plain, pd.diff_weights_iter_desc(), false, &end);
    plan.diff_bias = memory(bias, eng, DNNL_MEMORY_NONE);
    plan.diff_src = memory(src, eng, DNNL_MEMORY_NONE);
    plan.diff_dst = memory(dst, eng, DNNL_MEMORY_NONE);
    // The backward primitive takes the forward's workspace, whose layout the hint fixed.
  }
  if (pass != LstmPass::Infer) {
    plan.workspace = memory(forward.workspace_desc(), eng, DNNL_MEMORY_NONE);
    plan.workspace_bytes = align64(forward.workspace_desc().get_size());
    plan.args.emplace(DNNL_ARG_WORKSPACE, plan.workspace);
  }
  plan.args.insert({{DNNL_ARG_SRC_LAYER, plan.src},
                    {DNNL_ARG_WEIGHTS_LAYER, plan.weights[0].inner},
                    {DNNL_ARG_WEIGHTS_ITER, plan.weights[1].inner},
                    {DNNL_ARG_BIAS, plan.bias},
                    {DNNL_ARG_DST_LAYER, plan.dst}});
  if (pass == LstmPass::Backward)
    plan.args.insert({{DNNL_ARG_DIFF_SRC_LAYER, plan.diff_src},
                      {DNNL_ARG_DIFF_WEIGHTS_LAYER, plan.weights[2].inner},
                      {DNNL_ARG_DIFF_WEIGHTS_ITER, plan.weights[3].inner},
                      {DNNL_ARG_DIFF_BIAS, plan.diff_bias},
                      {DNNL_ARG_DIFF_DST_LAYER, plan.diff_dst}});
  plan.scratch_bytes = end;
  return plan;
}

LstmPlan& lstm_plan(int64_t B, int64_t T, int64_t I, int64_t H, LstmPass pass) {
  thread_local std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, LstmPass>, LstmPlan> plans;
  const auto key = std::make_tuple(B, T, I, H, pass);
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, make_lstm_plan(B, T, I, H, pass)).first;
  return it->second;
}

// Where layer k's state lives in a reserve (Note [onednn lstm]).
struct LstmReserve {
  const LstmShape& s;
  size_t workspace(int64_t k) const {
    return lstm_plan(s.batch, s.steps, s.layer_input(k), s.hidden, LstmPass::Train).workspace_bytes;
  }
  size_t workspace_offset(int64_t k) const {
    size_t offset = 0;
    for (int64_t j = 0; j < k; ++j) offset += workspace(j);
    return offset;
  }
  size_t hidden_bytes() const { return align64(sizeof(float) * s.batch * s.steps * s.hidden); }  // one [B, T, H]
  size_t bias_bytes() const { return align64(sizeof(float) * 4 * s.hidden); }
  // The largest of the layers' reordered weights, for one workspace that serves every layer.
  size_t largest_scratch(LstmPass pass) const {
    size_t largest = 0;
    for (int64_t k = 0; k < s.layers; ++k)
      largest = std::max(largest, lstm_plan(s.batch, s.steps, s.layer_input(k), s.hidden, pass).scratch_bytes);
    return largest;
  }
  size_t bytes() const { return workspace_offset(s.layers) + (s.layers - 1) * hidden_bytes(); }
  float* hidden(void* base, int64_t k) const {
    return reinterpret_cast<float*>(static_cast<char*>(base) + workspace_offset(s.layers) + k * hidden_bytes());
  }
};

}  // namespace

size_t lstm_reserve_bytes(const LstmShape& s) {
  size_t bytes = 0;
  guarded("lstm", [&] { bytes = LstmReserve{s}.bytes(); });
  return bytes;
}

namespace {

// One forward pass over rows [0, s.batch) of x and y on the calling thread's plans (Note [onednn plans]).
void lstm_fwd_rows(const LstmShape& s, const float* x, const float* const* params, float* y, void* reserve) {
  guarded("lstm", [&] {
    thread_local Workspace scratch;
    const int64_t B = s.batch, T = s.steps, H = s.hidden;
    const LstmReserve r{s};
    const size_t seq_bytes = r.hidden_bytes(), bias_bytes = r.bias_bytes();
    const LstmPass pass = reserve ? LstmPass::Train : LstmPass::Infer;
    // The thread's workspace, taken once for all layers (a larger one later would move the earlier layers'
    // outputs): without a reserve two alternating [B, T, H] outputs for the layers below the last, then the
    // summed bias and the reordered weights of the layer at hand.
    const size_t outputs = reserve || s.layers == 1 ? 0 : 2 * seq_bytes;
    char* ws = scratch.get(outputs + bias_bytes + r.largest_scratch(pass));
    float* bias = reinterpret_cast<float*>(ws + outputs);
    char* weights = ws + outputs + bias_bytes;
    const float* in = x;
    for (int64_t k = 0; k < s.layers; ++k) {
      LstmPlan& plan = lstm_plan(B, T, s.layer_input(k), H, pass);
      const float* const* p = params + 4 * k;
      for (int64_t j = 0; j < 4 * H; ++j) bias[j] = p[2][j] + p[3][j];
      plan.weights[0].bind(p[0], weights);
      plan.weights[1].bind(p[1], weights);
      float* out = k == s.layers - 1 ? y
                   : reserve        ? r.hidden(reserve, k)
                                    : reinterpret_cast<float*>(ws + (k % 2) * seq_bytes);
      plan.src.set_data_handle(const_cast<float*>(in));
      plan.dst.set_data_handle(out);
      plan.bias.set_data_handle(bias);
      if (reserve) plan.workspace.set_data_handle(static_cast<char*>(reserve) + r.workspace_offset(k));
      Engine& e = engine();
      plan.primitive.execute(e.stream, plan.args);
      e.stream.wait();
      in = out;
    }
  });
}

// Note [onednn lstm batch split]: an inference pass (no reserve) on more than one thread runs each thread's share of
// the batch as an LSTM of its own, start to end: the examples of a batch never meet in an LSTM, so each thread runs
// all T steps on its rows with no barrier between them, where oneDNN's own threading splits every step's small
// products and meets its threads at every step. On 2 cores (sieve-bench, H 128) it took the forward at b 32, T 196
// from 8.1 to 5.4-5.7 ms and at b 128, T 784 from 122 to 95-108 ms. Each thread plans and reorders the weights for
// itself (its plans are its own, Note [onednn plans]); oneDNN runs single-threaded inside the team (nested
// parallelism is off). An example's output may differ in the last bits from the unsplit call's where oneDNN
// blocks the smaller batch differently; the tests hold both against the reference. Training passes stay one call:
// their workspace and the backward's weight gradients are the whole batch's.
constexpr int64_t kLstmMinRowsPerThread = 8;

int lstm_threads(const LstmShape& s, bool inference) {
#if defined(_OPENMP)
  if (!inference || omp_in_parallel()) return 1;
  const int64_t most = s.batch / kLstmMinRowsPerThread;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), most)));
#else
  (void)s, (void)inference;
  return 1;
#endif
}

}  // namespace

void lstm_fwd(const LstmShape& s, const float* x, const float* const* params, float* y, void* reserve) {
  const int threads = lstm_threads(s, reserve == nullptr);
  if (threads == 1) return lstm_fwd_rows(s, x, params, y, reserve);
#if defined(_OPENMP)
  std::vector<std::exception_ptr> failures(threads);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int64_t begin = s.batch * t / threads, end = s.batch * (t + 1) / threads;
    LstmShape rows = s;
    rows.batch = end - begin;
    try {
      lstm_fwd_rows(rows, x + begin * s.steps * s.input, params, y + begin * s.steps * s.hidden, nullptr);
    } catch (...) {
      failures[t] = std::current_exception();
    }
  }
  for (const std::exception_ptr& failure : failures)
    if (failure) std::rethrow_exception(failure);
#endif
}

void lstm_bwd(const LstmShape& s, const float* x, const float* const* params, const float* y, const float* dy,
              void* reserve, float* dx, float* const* dparams) {
  guarded("lstm", [&] {
    thread_local Workspace scratch;
    const int64_t B = s.batch, T = s.steps, H = s.hidden;
    const LstmReserve r{s};
    const size_t seq_bytes = r.hidden_bytes(), bias_bytes = r.bias_bytes();
    // The thread's workspace, taken once for all layers as in lstm_fwd: two alternating [B, T, H] gradients of
    // the lower layers' outputs, the summed bias and its gradient, the reordered weights and their gradients.
    const size_t outputs = s.layers == 1 ? 0 : 2 * seq_bytes;
    char* ws = scratch.get(outputs + 2 * bias_bytes + r.largest_scratch(LstmPass::Backward));
    float* bias = reinterpret_cast<float*>(ws + outputs);
    float* dbias = reinterpret_cast<float*>(ws + outputs + bias_bytes);
    char* weights = ws + outputs + 2 * bias_bytes;
    const float* dout = dy;  // the gradient of layer k's output
    for (int64_t k = s.layers - 1; k >= 0; --k) {
      LstmPlan& plan = lstm_plan(B, T, s.layer_input(k), H, LstmPass::Backward);
      const float* const* p = params + 4 * k;
      float* const* dp = dparams + 4 * k;
      for (int64_t j = 0; j < 4 * H; ++j) bias[j] = p[2][j] + p[3][j];
      std::fill(dbias, dbias + 4 * H, 0.f);
      plan.weights[0].bind(p[0], weights);
      plan.weights[1].bind(p[1], weights);
      plan.weights[2].bind(dp[0], weights);
      plan.weights[3].bind(dp[1], weights);
      plan.weights[2].zero();
      plan.weights[3].zero();
      const float* in = k == 0 ? x : r.hidden(reserve, k - 1);
      const float* out = k == s.layers - 1 ? y : r.hidden(reserve, k);
      float* din = k == 0 ? dx : reinterpret_cast<float*>(ws + (k % 2) * seq_bytes);
      plan.src.set_data_handle(const_cast<float*>(in));
      plan.dst.set_data_handle(const_cast<float*>(out));
      plan.diff_dst.set_data_handle(const_cast<float*>(dout));
      plan.diff_src.set_data_handle(din);
      plan.bias.set_data_handle(bias);
      plan.diff_bias.set_data_handle(dbias);
      plan.workspace.set_data_handle(static_cast<char*>(reserve) + r.workspace_offset(k));
      Engine& e = engine();
      plan.primitive.execute(e.stream, plan.args);
      plan.weights[2].write_back();
      plan.weights[3].write_back();
      e.stream.wait();
      std::memcpy(dp[2], dbias, sizeof(float) * 4 * H);
      std::memcpy(dp[3], dbias, sizeof(float) * 4 * H);
      dout = din;
    }
  });
}

#else  // built without oneDNN

namespace {
[[noreturn]] void unavailable() {
  SIEVE_FAIL("sieve was built without oneDNN (install libdnnl-dev, scripts/install-deps, then reconfigure)");
}
}  // namespace

bool available() { return false; }
void gemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, const float*, float, float*) { unavailable(); }
void conv2d_fwd(const Conv2dShape&, const float*, const float*, const float*, float*) { unavailable(); }
void conv2d_bwd_data(const Conv2dShape&, const float*, const float*, float*) { unavailable(); }
void conv2d_bwd_filter(const Conv2dShape&, const float*, const float*, float*) { unavailable(); }
void conv2d_bwd(const Conv2dShape&, const float*, const float*, const float*, float*, float*) { unavailable(); }
std::string conv2d_kernel(const Conv2dShape&) { unavailable(); }
size_t lstm_reserve_bytes(const LstmShape&) { unavailable(); }
void lstm_fwd(const LstmShape&, const float*, const float* const*, float*, void*) { unavailable(); }
void lstm_bwd(const LstmShape&, const float*, const float* const*, const float*, const float*, void*, float*,
              float* const*) {
  unavailable();
}

#endif

}  // namespace sieve::cpu::onednn
