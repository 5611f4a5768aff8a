// cuDNN convolutions (the legacy cuDNN 9 API). Host-compiled; no public header carries cuDNN types, and nothing
// else recompiles when this changes.
#include <climits>
#include <memory>
#include <vector>

#include "core/ops/conv2d.h"
#include "core/ops/cudnn_common.h"
#include "core/ops/precision.h"
#include "core/scratch.h"

namespace sieve::cuda {
namespace {

// Note [conv plans]: the descriptors of one (device, shape and precision, TF32 setting) and the algorithm of each
// direction are built once, on the first call with that shape, and cached for the life of the process. A training run
// meets a handful of shapes (each layer, the last partial batch, the pre-sample and the selected batch of a
// sampler), so the cache stays small and a step does no descriptor or algorithm work. Plans are immutable once
// built, so callers use them outside the lock.
struct Plan {
  // x, w and y in the data type of the products: float32, or bf16 (Note [bf16 products]: cuDNN's legacy API
  // takes bf16 x, w and y with float32 compute, its PSEUDO_BFLOAT16 configuration, in all three directions).
  // y_f32 describes the float32 y of the op, which the bias is added to and summed from.
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, y_f32 = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  // One convolution descriptor per direction: each carries the math type its algorithm was chosen with, which
  // cuDNN needs together with the algorithm (Note [conv algorithm choice]).
  cudnnConvolutionDescriptor_t fwd = nullptr, bwd_data = nullptr, bwd_filter = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0;
  size_t fwd_bytes = 0, bwd_data_bytes = 0, bwd_filter_bytes = 0;  // workspace of each chosen algorithm

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {  // only reached when building a plan fails: cached plans live as long as the process
    for (cudnnTensorDescriptor_t d : {x, y, y_f32, bias})
      if (d) cudnnDestroyTensorDescriptor(d);
    if (w) cudnnDestroyFilterDescriptor(w);
    for (cudnnConvolutionDescriptor_t d : {fwd, bwd_data, bwd_filter})
      if (d) cudnnDestroyConvolutionDescriptor(d);
  }
};

int to_int(int64_t v) { return static_cast<int>(v); }  // range checked once, in make_plan

cudnnTensorDescriptor_t tensor_desc(cudnnDataType_t type, int64_t n, int64_t c, int64_t h, int64_t w) {
  cudnnTensorDescriptor_t d = nullptr;
  SIEVE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
  SIEVE_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, type, to_int(n), to_int(c), to_int(h), to_int(w)));
  return d;
}

cudnnConvolutionDescriptor_t conv_desc(const Conv2dShape& s, cudnnMathType_t math) {
  cudnnConvolutionDescriptor_t d = nullptr;
  SIEVE_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
  // Cross-correlation (no kernel flip) with float32 accumulation, the op's definition in conv2d.h.
  SIEVE_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d, to_int(s.pad_h), to_int(s.pad_w), to_int(s.stride_h),
                                                    to_int(s.stride_w), 1, 1, CUDNN_CROSS_CORRELATION,
                                                    CUDNN_DATA_FLOAT));
  SIEVE_CUDNN_CHECK(cudnnSetConvolutionMathType(d, math));
  return d;
}

// Note [conv algorithm choice]: algorithms come from cuDNN's heuristics (cudnnGet*Algorithm_v7), not from
// benchmarking (cudnnFind*AlgorithmEx), because
//   - the heuristic answer is a fixed function of (GPU, cuDNN version, shape): reruns of a seed pick the same
//     kernels and so round the same way, whereas timing-based choices vary with noise from run to run;
//   - it costs microseconds and no memory, so all three directions are chosen up front, while Find runs every
//     candidate (tens of milliseconds per direction and shape, with trial workspaces of up to gigabytes).
// The price is an occasional slower kernel than Find would pick; sieve-bench measures the convolutions, and a
// switch to Find is confined to this function. Measured on an H100 (apps/results/h100-gpu-check/NOTES.md): 8 of
// the 30 WRN-28-2 passes ran faster with TF32 off than with the TF32 choice (backward-filter 64->64 3x3: 153 us
// against 337 us), and PyTorch's benchmarked WRN-28-2 step was 19% faster than sieve's in one call (22% slower in
// another): hence the benchmarked choice as an option, set_conv_benchmark (sieve-train --cudnn-benchmark). From the
// heuristics' ranked list we take the first supported result whose
// math type the TF32 setting allows (Note [conv tf32]; bf16 plans allow tensor cores), preferring deterministic
// algorithms (no atomics: a rerun gives bit-identical gradients) over faster non-deterministic ones. If none
// qualifies, algorithm 0 of the direction, which supports every float32 NCHW convolution, runs with the
// descriptor's own math type (for a bf16 plan, cuDNN reports an unsupported configuration through the checked
// call).
template <typename Perf>
const Perf* choose(const Perf* results, int count, bool tensor_ops) {
  const Perf* first_allowed = nullptr;
  for (int i = 0; i < count; ++i) {
    const Perf& r = results[i];
    if (r.status != CUDNN_STATUS_SUCCESS) continue;
    if (r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;  // may down-convert to half precision
    if (!tensor_ops && r.mathType != CUDNN_FMA_MATH) continue;
    if (r.determinism == CUDNN_DETERMINISTIC) return &r;
    if (!first_allowed) first_allowed = &r;
  }
  return first_allowed;
}

// With set_conv_benchmark: cuDNN times every candidate (cudnnFind*Algorithm, which allocates its own trial
// memory) and ranks them by time; the fastest whose math type the TF32 setting allows is taken, deterministic or
// not, as PyTorch's benchmark mode does.
template <typename Perf>
const Perf* fastest(const Perf* results, int count, bool tensor_ops) {
  for (int i = 0; i < count; ++i) {
    const Perf& r = results[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
    if (!tensor_ops && r.mathType != CUDNN_FMA_MATH) continue;
    return &r;
  }
  return nullptr;
}

std::unique_ptr<Plan> make_plan(cudnnHandle_t h, const Conv2dShape& s, bool tf32, bool benchmark) {
  // The legacy API indexes with int: every tensor must have fewer than 2^31 elements.
  for (int64_t count : {s.n * s.c * s.h * s.w, s.k * s.c * s.r * s.s, s.n * s.k * s.p() * s.q()})
    SIEVE_CHECK(count <= INT_MAX, "conv2d on a GPU: a tensor of ", count,
                " elements exceeds cuDNN's limit of 2^31 - 1; split the batch");
  const bool bf16 = s.precision == MatmulPrecision::BF16;
  const cudnnDataType_t type = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  auto p = std::make_unique<Plan>();
  p->x = tensor_desc(type, s.n, s.c, s.h, s.w);
  p->y = tensor_desc(type, s.n, s.k, s.p(), s.q());
  p->y_f32 = tensor_desc(CUDNN_DATA_FLOAT, s.n, s.k, s.p(), s.q());
  p->bias = tensor_desc(CUDNN_DATA_FLOAT, 1, s.k, 1, 1);
  SIEVE_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  SIEVE_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, type, CUDNN_TENSOR_NCHW, to_int(s.k), to_int(s.c), to_int(s.r),
                                               to_int(s.s)));
  // CUDNN_DEFAULT_MATH permits TF32 on sm_80+; CUDNN_FMA_MATH forbids it (Note [conv tf32]). bf16 data runs on
  // tensor cores only under CUDNN_TENSOR_OP_MATH (CUDNN_DEFAULT_MATH's tensor ops are TF32's, for float data).
  const bool tensor_ops = bf16 || tf32;
  const cudnnMathType_t math = bf16 ? CUDNN_TENSOR_OP_MATH : tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  p->fwd = conv_desc(s, math);
  p->bwd_data = conv_desc(s, math);
  p->bwd_filter = conv_desc(s, math);

  int n = 0, k = 0, oh = 0, ow = 0;  // cuDNN's output shape must be the one the op allocated
  SIEVE_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->fwd, p->x, p->w, &n, &k, &oh, &ow));
  SIEVE_CHECK(n == s.n && k == s.k && oh == s.p() && ow == s.q(), "conv2d: cuDNN output ", n, "x", k, "x", oh, "x",
              ow, " differs from the expected ", s.n, "x", s.k, "x", s.p(), "x", s.q());

  int count = 0;
  cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  if (benchmark)
    SIEVE_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(h, p->x, p->w, p->fwd, p->y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, fwd));
  else
    SIEVE_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->fwd, p->y,
                                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, fwd));
  if (const auto* best = benchmark ? fastest(fwd, count, tensor_ops) : choose(fwd, count, tensor_ops)) {
    p->fwd_algo = best->algo;
    SIEVE_CUDNN_CHECK(cudnnSetConvolutionMathType(p->fwd, best->mathType));
  }
  SIEVE_CUDNN_CHECK(
      cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->fwd, p->y, p->fwd_algo, &p->fwd_bytes));

  cudnnConvolutionBwdDataAlgoPerf_t data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  if (benchmark)
    SIEVE_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(h, p->w, p->y, p->bwd_data, p->x,
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, data));
  else
    SIEVE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        h, p->w, p->y, p->bwd_data, p->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, data));
  if (const auto* best = benchmark ? fastest(data, count, tensor_ops) : choose(data, count, tensor_ops)) {
    p->bwd_data_algo = best->algo;
    SIEVE_CUDNN_CHECK(cudnnSetConvolutionMathType(p->bwd_data, best->mathType));
  }
  SIEVE_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->bwd_data, p->x, p->bwd_data_algo,
                                                                 &p->bwd_data_bytes));

  cudnnConvolutionBwdFilterAlgoPerf_t filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  if (benchmark)
    SIEVE_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(
        h, p->x, p->y, p->bwd_filter, p->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, filter));
  else
    SIEVE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        h, p->x, p->y, p->bwd_filter, p->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, filter));
  if (const auto* best = benchmark ? fastest(filter, count, tensor_ops) : choose(filter, count, tensor_ops)) {
    p->bwd_filter_algo = best->algo;
    SIEVE_CUDNN_CHECK(cudnnSetConvolutionMathType(p->bwd_filter, best->mathType));
  }
  SIEVE_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->bwd_filter, p->w,
                                                                   p->bwd_filter_algo, &p->bwd_filter_bytes));
  return p;
}

// The plan of `s` (its shape and precision) on the current device under the current TF32 setting (Note [conv
// plans]).
const Plan& plan_for(cudnnHandle_t h, const Conv2dShape& s) {
  return cached_plan<Plan>(
      s, allow_tf32(), [&](const PlanKey<Conv2dShape>& key) { return make_plan(h, s, key.tf32, key.benchmark); },
      conv_benchmark());
}

const float kOne = 1.f, kZero = 0.f;  // cuDNN's alpha and beta for float data and float compute (bf16 too)

// The bf16 copy of n floats of x in `scratch` (Note [bf16 products]); x itself for a float32 plan.
const void* product_input(const Conv2dShape& s, const float* x, int64_t n, DeviceScratch& scratch) {
  if (s.precision != MatmulPrecision::BF16) return x;
  float_to_bf16(x, scratch.as<uint16_t>(), n);
  return scratch.data();
}

// The bytes of a product's bf16 copy of n elements; none for float32.
size_t bf16_bytes(const Conv2dShape& s, int64_t n) {
  return s.precision == MatmulPrecision::BF16 ? static_cast<size_t>(n) * sizeof(uint16_t) : 0;
}

}  // namespace

void conv2d_fwd(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y) {
  cudnnHandle_t h = cudnn_handle();
  const Plan& p = plan_for(h, s);
  const int64_t nx = s.n * s.c * s.h * s.w, nw = s.k * s.c * s.r * s.s, ny = s.n * s.k * s.p() * s.q();
  DeviceScratch ws(p.fwd_bytes), x16(bf16_bytes(s, nx)), w16(bf16_bytes(s, nw)), y16(bf16_bytes(s, ny));
  const bool bf16 = s.precision == MatmulPrecision::BF16;
  SIEVE_CUDNN_CHECK(cudnnConvolutionForward(h, &kOne, p.x, product_input(s, x, nx, x16), p.w,
                                            product_input(s, w, nw, w16), p.fwd, p.fwd_algo, ws.data(), ws.bytes(),
                                            &kZero, p.y, bf16 ? y16.data() : y));
  if (bf16) bf16_to_float(y16.as<uint16_t>(), y, ny);
  if (bias) SIEVE_CUDNN_CHECK(cudnnAddTensor(h, &kOne, p.bias, bias, &kOne, p.y_f32, y));  // y += bias[k], broadcast
}

void conv2d_bwd_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  cudnnHandle_t h = cudnn_handle();
  const Plan& p = plan_for(h, s);
  const int64_t nx = s.n * s.c * s.h * s.w, nw = s.k * s.c * s.r * s.s, ny = s.n * s.k * s.p() * s.q();
  DeviceScratch ws(p.bwd_data_bytes), w16(bf16_bytes(s, nw)), dy16(bf16_bytes(s, ny)), dx16(bf16_bytes(s, nx));
  const bool bf16 = s.precision == MatmulPrecision::BF16;
  SIEVE_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &kOne, p.w, product_input(s, w, nw, w16), p.y,
                                                 product_input(s, dy, ny, dy16), p.bwd_data, p.bwd_data_algo,
                                                 ws.data(), ws.bytes(), &kZero, p.x, bf16 ? dx16.data() : dx));
  if (bf16) bf16_to_float(dx16.as<uint16_t>(), dx, nx);
}

void conv2d_bwd_filter(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  cudnnHandle_t h = cudnn_handle();
  const Plan& p = plan_for(h, s);
  const int64_t nx = s.n * s.c * s.h * s.w, nw = s.k * s.c * s.r * s.s, ny = s.n * s.k * s.p() * s.q();
  DeviceScratch ws(p.bwd_filter_bytes), x16(bf16_bytes(s, nx)), dy16(bf16_bytes(s, ny)), dw16(bf16_bytes(s, nw));
  const bool bf16 = s.precision == MatmulPrecision::BF16;
  SIEVE_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &kOne, p.x, product_input(s, x, nx, x16), p.y,
                                                   product_input(s, dy, ny, dy16), p.bwd_filter, p.bwd_filter_algo,
                                                   ws.data(), ws.bytes(), &kZero, p.w, bf16 ? dw16.data() : dw));
  if (bf16) bf16_to_float(dw16.as<uint16_t>(), dw, nw);
}

// cuDNN reads dy as it is: both directions in turn.
void conv2d_bwd(const Conv2dShape& s, const float* x, const float* dy, const float* w, float* dx, float* dw) {
  if (dx != nullptr) conv2d_bwd_data(s, dy, w, dx);
  if (dw != nullptr) conv2d_bwd_filter(s, x, dy, dw);
}

void conv2d_bwd_bias(const Conv2dShape& s, const float* dy, float* dbias) {
  cudnnHandle_t h = cudnn_handle();
  const Plan& p = plan_for(h, s);
  SIEVE_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &kOne, p.y_f32, dy, &kZero, p.bias, dbias));
}

}  // namespace sieve::cuda
