// cuDNN's LSTM (the v8 RNN API of cuDNN 9) and the strided step copies of sequences. Host-compiled; no public
// header carries cuDNN types.
#include <climits>
#include <memory>
#include <vector>

#include "core/allocator.h"
#include "core/ops/conv2d.h"
#include "core/ops/cudnn_common.h"
#include "core/ops/lstm.h"

namespace sieve::cuda {
namespace {

// Note [lstm weight layout]: lstm() takes PyTorch's parameters (per layer weight_ih [4H, I], weight_hh [4H, H],
// bias_ih [4H], bias_hh [4H], gate blocks in the order i, f, g, o), so that checkpoints open in Python and the CPU
// and GPU share one layout. cuDNN wants all of them in one packed "weight space" whose internal order is cuDNN's
// business and has changed between versions. So we never assume it: when a plan is built we ask
// cudnnGetRNNWeightParams where each (pseudo-layer k, linear layer id) matrix and bias lives and record the byte
// offsets; every forward pass copies the parameters in (16 contiguous device copies per layer: a gate's block of
// rows is contiguous in PyTorch's layout) and every backward pass copies the gradients out of the packed
// gradient space the same way. cuDNN's linear layer ids for CUDNN_LSTM are 0..3 for the input matrices W_i, W_f,
// W_c, W_o and 4..7 for the recurrent matrices R_i, R_f, R_c, R_o (c is PyTorch's g), each [H, I] or [H, H]
// row-major, with CUDNN_RNN_DOUBLE_BIAS giving the input biases with ids 0..3 and the recurrent ones with 4..7:
// exactly PyTorch's blocks, which the plan checks by element count and the GPU-versus-CPU test checks by value.
// The copies cost 2 * parameters * 4 bytes of device bandwidth per pass, nothing beside the recurrence itself.
//
// Note [lstm layout]: lstm() takes and returns batch-major sequences ([B, T, I] in, [B, T, H] out, PyTorch's
// batch_first), but cuDNN is handed sequence-major packed data ([T, B, *], CUDNN_RNN_PADDED_IO_DISABLED), the
// configuration PyTorch itself uses. The batch-major unpacked layout, which would need no copies, was slower with
// the standard algorithm on an H100 (b 128, T 784, H 128, one machine: forward 11.6 ms against 9.1 ms, forward +
// backward 25.2 ms against 19.7 ms). The layout changes are cudnnTransformTensor copies of x, y, dy and dx (a
// [B, T, W] tensor described with [T, B, W] strides), about 2 B T (I + H) * 4 bytes each way per pass. The
// sequence-major x and y that backward needs live in the reserve after cuDNN's own reserve space (Note [lstm
// reserve]).
//
// Note [lstm algorithm]: for hidden sizes up to 128, CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H, cuDNN's persistent
// kernel that keeps the recurrent weights on chip for the whole sequence (one launch instead of a matrix product
// and a cell kernel per step); PyTorch makes the same choice (for LSTMs: forward up to H = 192, backward up to
// 128; one algorithm serves both here, as the forward's reserve feeds the backward). On an H100 with b 128, T 784,
// H 128 the standard algorithm ran 784 steps of two kernels each, 9 to 12 ms per forward pass, where PyTorch's
// persistent kernel took 1.85 ms; with it sieve's forward takes 2.0 ms and forward + backward 5.2 ms (PyTorch 2.3
// and 5.5 in the same call). Its cell is not float32-exact: outputs within 3.2e-5 of the CPU's at H = 128. Larger
// H, or a configuration cuDNN rejects for it, uses CUDNN_RNN_ALGO_STANDARD.
constexpr int64_t kPersistentMaxHidden = 128;

// Note [lstm tf32]: the RNN descriptor's math type follows the convolutions' switch (Note [conv tf32]), as in
// PyTorch: with float32 data and float32 math precision, CUDNN_DEFAULT_MATH lets cuDNN run the matrix products on
// TF32 tensor cores on sm_80 and newer, and CUDNN_FMA_MATH restricts it to float32 FMA kernels. Half-precision
// down-conversion (CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) is never requested. Tests comparing with the CPU turn
// TF32 off.

constexpr size_t kAlign = 256;  // cuDNN's alignment for the buffers it takes
size_t align_up(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// Note [lstm plans]: descriptors, buffer sizes, weight offsets and the device copy of the sequence lengths of one
// (device, shape, TF32 setting), built on first use and cached for the life of the process, like Note [conv plans].
struct Plan {
  cudnnRNNDescriptor_t rnn = nullptr;
  cudnnDropoutDescriptor_t dropout = nullptr;
  cudnnRNNDataDescriptor_t x = nullptr, y = nullptr;  // [T, B, I] and [T, B, H]: sequence-major, packed
  cudnnTensorDescriptor_t h = nullptr;                // [layers, B, H]: the (zero) initial and final states
  // [B, T, W] for W = I and H, as stored by lstm() (batch) and in cuDNN's order (seq): Note [lstm layout].
  cudnnTensorDescriptor_t x_batch = nullptr, x_seq = nullptr, y_batch = nullptr, y_seq = nullptr;
  int32_t* seq_lengths = nullptr;                     // device [B], every entry T
  int device = 0;
  size_t weight_bytes = 0, train_work_bytes = 0, reserve_bytes = 0, infer_work_bytes = 0;
  size_t x_bytes = 0, y_bytes = 0;  // of one sequence-major x and y, aligned
  // Byte offset in the weight space of gate q's block of lstm()'s parameter i (i = 4 k + j): offsets[4 i + q].
  std::vector<size_t> offsets;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {  // only reached when building a plan fails: cached plans live as long as the process
    if (rnn) cudnnDestroyRNNDescriptor(rnn);
    if (dropout) cudnnDestroyDropoutDescriptor(dropout);
    for (cudnnRNNDataDescriptor_t d : {x, y})
      if (d) cudnnDestroyRNNDataDescriptor(d);
    for (cudnnTensorDescriptor_t d : {h, x_batch, x_seq, y_batch, y_seq})
      if (d) cudnnDestroyTensorDescriptor(d);
    if (seq_lengths) device_free(seq_lengths, device);
  }
};

// Floats in gate q's block of parameter j (0 weight_ih, 1 weight_hh, 2 bias_ih, 3 bias_hh) of layer k.
int64_t block_floats(const LstmShape& s, int64_t k, int j) {
  return j == 0 ? s.hidden * s.layer_input(k) : j == 1 ? s.hidden * s.hidden : s.hidden;
}

int64_t described_floats(cudnnTensorDescriptor_t d) {
  cudnnDataType_t type;
  int dims[8] = {0}, strides[8] = {0}, n = 0;
  SIEVE_CUDNN_CHECK(cudnnGetTensorNdDescriptor(d, 8, &type, &n, dims, strides));
  int64_t count = 1;
  for (int i = 0; i < n; ++i) count *= dims[i];
  return count;
}

// Asks cuDNN where every block of every parameter lives in the weight space (Note [lstm weight layout]).
void locate_weights(cudnnHandle_t handle, const LstmShape& s, Plan& p) {
  DeviceScratch space(p.weight_bytes);  // cudnnGetRNNWeightParams only does address arithmetic on it
  const char* base = static_cast<const char*>(space.data());
  cudnnTensorDescriptor_t m_desc = nullptr, b_desc = nullptr;
  SIEVE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&m_desc));
  SIEVE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&b_desc));
  p.offsets.assign(16 * s.layers, 0);
  try {
    for (int64_t k = 0; k < s.layers; ++k)
      for (int id = 0; id < 8; ++id) {
        void *m = nullptr, *b = nullptr;
        SIEVE_CUDNN_CHECK(cudnnGetRNNWeightParams(handle, p.rnn, static_cast<int32_t>(k), p.weight_bytes,
                                                  space.data(), id, m_desc, &m, b_desc, &b));
        const int q = id % 4, j = id < 4 ? 0 : 1;  // gate, and weight_ih (ids 0..3) or weight_hh (4..7)
        SIEVE_CHECK(m != nullptr && b != nullptr, "lstm on a GPU: cuDNN reports no matrix or bias for layer ", k,
                    " id ", id);
        SIEVE_CHECK(described_floats(m_desc) == block_floats(s, k, j) &&
                        described_floats(b_desc) == block_floats(s, k, j + 2),
                    "lstm on a GPU: cuDNN's matrix ", id, " of layer ", k, " has ", described_floats(m_desc),
                    " values and its bias ", described_floats(b_desc), "; expected ", block_floats(s, k, j), " and ",
                    s.hidden);
        p.offsets[4 * (4 * k + j) + q] = static_cast<const char*>(m) - base;
        p.offsets[4 * (4 * k + j + 2) + q] = static_cast<const char*>(b) - base;
      }
  } catch (...) {
    cudnnDestroyTensorDescriptor(m_desc);
    cudnnDestroyTensorDescriptor(b_desc);
    throw;
  }
  SIEVE_CUDNN_CHECK(cudnnDestroyTensorDescriptor(m_desc));
  SIEVE_CUDNN_CHECK(cudnnDestroyTensorDescriptor(b_desc));
}

// [B, T, W] with the strides of a batch-major (seq = false) or a sequence-major (seq = true) buffer.
void describe_sequence(cudnnTensorDescriptor_t* d, int B, int T, int W, bool seq) {
  SIEVE_CUDNN_CHECK(cudnnCreateTensorDescriptor(d));
  const int dims[4] = {B, T, W, 1};
  const int batch_major[4] = {T * W, W, 1, 1}, seq_major[4] = {W, B * W, 1, 1};
  SIEVE_CUDNN_CHECK(cudnnSetTensorNdDescriptor(*d, CUDNN_DATA_FLOAT, 4, dims, seq ? seq_major : batch_major));
}

// dst = src, between the batch-major and the sequence-major layout of one [B, T, W] sequence.
void relayout(cudnnHandle_t handle, cudnnTensorDescriptor_t from_desc, const void* from,
              cudnnTensorDescriptor_t to_desc, void* to) {
  const float one = 1.f, zero = 0.f;
  SIEVE_CUDNN_CHECK(cudnnTransformTensor(handle, &one, from_desc, from, &zero, to_desc, to));
}

std::unique_ptr<Plan> make_plan(cudnnHandle_t handle, const LstmShape& s, bool tf32, int device,
                                cudnnRNNAlgo_t algo) {
  for (int64_t v : {s.batch, s.steps, s.input, s.hidden, s.layers})
    SIEVE_CHECK(v <= INT_MAX, "lstm on a GPU: size ", v, " exceeds cuDNN's limit of 2^31 - 1");
  const int B = static_cast<int>(s.batch), T = static_cast<int>(s.steps), I = static_cast<int>(s.input),
            H = static_cast<int>(s.hidden), L = static_cast<int>(s.layers);
  auto p = std::make_unique<Plan>();
  p->device = device;
  SIEVE_CUDNN_CHECK(cudnnCreateDropoutDescriptor(&p->dropout));
  // No dropout between layers: with probability 0 cuDNN needs no random state.
  SIEVE_CUDNN_CHECK(cudnnSetDropoutDescriptor(p->dropout, handle, 0.f, nullptr, 0, 0));
  SIEVE_CUDNN_CHECK(cudnnCreateRNNDescriptor(&p->rnn));
  // Every sequence has all T steps: packed, nothing padded (Note [lstm layout]). projSize = hiddenSize: no
  // recurrent projection.
  SIEVE_CUDNN_CHECK(cudnnSetRNNDescriptor_v8(p->rnn, algo, CUDNN_LSTM, CUDNN_RNN_DOUBLE_BIAS,
                                             CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, CUDNN_DATA_FLOAT,
                                             CUDNN_DATA_FLOAT, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH, I, H, H, L,
                                             p->dropout, CUDNN_RNN_PADDED_IO_DISABLED));  // Note [lstm tf32]
  std::vector<int> lengths(B, T);
  SIEVE_CUDNN_CHECK(cudnnCreateRNNDataDescriptor(&p->x));
  SIEVE_CUDNN_CHECK(cudnnSetRNNDataDescriptor(p->x, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED, T, B,
                                              I, lengths.data(), nullptr));
  SIEVE_CUDNN_CHECK(cudnnCreateRNNDataDescriptor(&p->y));
  SIEVE_CUDNN_CHECK(cudnnSetRNNDataDescriptor(p->y, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED, T, B,
                                              H, lengths.data(), nullptr));
  describe_sequence(&p->x_batch, B, T, I, false);
  describe_sequence(&p->x_seq, B, T, I, true);
  describe_sequence(&p->y_batch, B, T, H, false);
  describe_sequence(&p->y_seq, B, T, H, true);
  p->x_bytes = align_up(sizeof(float) * s.batch * s.steps * s.input);
  p->y_bytes = align_up(sizeof(float) * s.batch * s.steps * s.hidden);
  SIEVE_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->h));
  const int dims[3] = {L, B, H}, strides[3] = {B * H, H, 1};
  SIEVE_CUDNN_CHECK(cudnnSetTensorNdDescriptor(p->h, CUDNN_DATA_FLOAT, 3, dims, strides));
  // cuDNN's kernels read the lengths from device memory, possibly after the call returns: a copy per plan.
  p->seq_lengths = static_cast<int32_t*>(device_malloc(sizeof(int32_t) * B, device));
  SIEVE_CUDA_CHECK(cudaMemcpyAsync(p->seq_lengths, lengths.data(), sizeof(int32_t) * B, cudaMemcpyHostToDevice,
                                   stream()));
  SIEVE_CUDA_CHECK(cudaStreamSynchronize(stream()));  // `lengths` is a pageable local
  SIEVE_CUDNN_CHECK(cudnnGetRNNWeightSpaceSize(handle, p->rnn, &p->weight_bytes));
  SIEVE_CUDNN_CHECK(cudnnGetRNNTempSpaceSizes(handle, p->rnn, CUDNN_FWD_MODE_TRAINING, p->x, &p->train_work_bytes,
                                              &p->reserve_bytes));
  size_t unused = 0;
  SIEVE_CUDNN_CHECK(
      cudnnGetRNNTempSpaceSizes(handle, p->rnn, CUDNN_FWD_MODE_INFERENCE, p->x, &p->infer_work_bytes, &unused));
  locate_weights(handle, s, *p);
  return p;
}

const Plan& plan_for(cudnnHandle_t handle, const LstmShape& s) {
  return cached_plan<Plan>(s, allow_tf32(), [&](const PlanKey<LstmShape>& key) -> std::unique_ptr<Plan> {
    if (s.hidden <= kPersistentMaxHidden) {
      try {
        return make_plan(handle, s, key.tf32, key.device, CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H);
      } catch (const Error&) {  // not supported for this shape or GPU: the standard algorithm below
      }
    }
    return make_plan(handle, s, key.tf32, key.device, CUDNN_RNN_ALGO_STANDARD);
  });
}

// Parameters into the weight space (to_space) or gradients out of the gradient space (Note [lstm weight layout]).
void copy_blocks(const Plan& p, const LstmShape& s, const float* const* params, float* const* grads, char* space,
                 bool to_space) {
  for (int64_t k = 0; k < s.layers; ++k)
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * k + j, n = block_floats(s, k, j);
      for (int q = 0; q < 4; ++q) {
        char* packed = space + p.offsets[4 * i + q];
        if (to_space)
          SIEVE_CUDA_CHECK(cudaMemcpyAsync(packed, params[i] + q * n, sizeof(float) * n, cudaMemcpyDeviceToDevice,
                                           stream()));
        else
          SIEVE_CUDA_CHECK(cudaMemcpyAsync(grads[i] + q * n, packed, sizeof(float) * n, cudaMemcpyDeviceToDevice,
                                           stream()));
      }
    }
}

}  // namespace

// The parts of the reserve (Note [lstm reserve]): the packed weight space, cuDNN's reserve space, then the
// sequence-major x and y (Note [lstm layout]), each at an aligned offset.
struct ReserveParts {
  char *weights, *cudnn, *x_seq, *y_seq;
};
ReserveParts reserve_parts(const Plan& p, void* reserve) {
  char* base = static_cast<char*>(reserve);
  char* cudnn = base + align_up(p.weight_bytes);
  char* x_seq = cudnn + align_up(p.reserve_bytes);
  return {base, cudnn, x_seq, x_seq + p.x_bytes};
}

size_t lstm_reserve_bytes(const LstmShape& s) {
  const Plan& p = plan_for(cudnn_handle(), s);
  return align_up(p.weight_bytes) + align_up(p.reserve_bytes) + p.x_bytes + p.y_bytes;
}

void lstm_fwd(const LstmShape& s, const float* x, const float* const* params, float* y, void* reserve) {
  cudnnHandle_t handle = cudnn_handle();
  const Plan& p = plan_for(handle, s);
  const bool training = reserve != nullptr;
  // Inference keeps nothing: the weights and the sequence-major x and y go to scratch laid out like a reserve.
  DeviceScratch inference(training ? 0 : align_up(p.weight_bytes) + p.x_bytes + p.y_bytes);
  const ReserveParts r = training ? reserve_parts(p, reserve)
                                  : ReserveParts{static_cast<char*>(inference.data()), nullptr,
                                                 static_cast<char*>(inference.data()) + align_up(p.weight_bytes),
                                                 static_cast<char*>(inference.data()) + align_up(p.weight_bytes) +
                                                     p.x_bytes};
  copy_blocks(p, s, params, nullptr, r.weights, true);
  relayout(handle, p.x_batch, x, p.x_seq, r.x_seq);
  DeviceScratch work(training ? p.train_work_bytes : p.infer_work_bytes);
  // hx = cx = null: zero initial states; hy = cy = null: final states not written (y holds every h_t).
  SIEVE_CUDNN_CHECK(cudnnRNNForward(handle, p.rnn, training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                                    p.seq_lengths, p.x, r.x_seq, p.y, r.y_seq, p.h, nullptr, nullptr, p.h, nullptr,
                                    nullptr, p.weight_bytes, r.weights, work.bytes(), work.data(),
                                    training ? p.reserve_bytes : 0, r.cudnn));
  relayout(handle, p.y_seq, r.y_seq, p.y_batch, y);
}

void lstm_bwd(const LstmShape& s, const float* x, const float* const* params, const float* y, const float* dy,
              void* reserve, float* dx, float* const* dparams) {
  (void)params;  // the forward pass left them packed in the reserve
  (void)x, (void)y;  // and x and y in cuDNN's layout (Note [lstm layout])
  cudnnHandle_t handle = cudnn_handle();
  const Plan& p = plan_for(handle, s);
  const ReserveParts r = reserve_parts(p, reserve);
  DeviceScratch work(p.train_work_bytes), dy_seq(p.y_bytes), dx_seq(p.x_bytes);
  relayout(handle, p.y_batch, dy, p.y_seq, dy_seq.data());
  // Backward-data first: it reads and updates the reserve that backward-weights then reads. dhy = dcy = null:
  // nothing flows into the final states; dhx = dcx = null: the initial states are constants.
  SIEVE_CUDNN_CHECK(cudnnRNNBackwardData_v8(handle, p.rnn, p.seq_lengths, p.y, r.y_seq, dy_seq.data(), p.x,
                                            dx_seq.data(), p.h, nullptr, nullptr, nullptr, p.h, nullptr, nullptr,
                                            nullptr, p.weight_bytes, r.weights, work.bytes(), work.data(),
                                            p.reserve_bytes, r.cudnn));
  relayout(handle, p.x_seq, dx_seq.data(), p.x_batch, dx);
  // ADD mode accumulates into the gradient space, so it starts at zero.
  DeviceScratch grads(p.weight_bytes);
  SIEVE_CUDA_CHECK(cudaMemsetAsync(grads.data(), 0, p.weight_bytes, stream()));
  SIEVE_CUDNN_CHECK(cudnnRNNBackwardWeights_v8(handle, p.rnn, CUDNN_WGRAD_MODE_ADD, p.seq_lengths, p.x, r.x_seq, p.h,
                                               nullptr, p.y, r.y_seq, p.weight_bytes, grads.data(), work.bytes(),
                                               work.data(), p.reserve_bytes, r.cudnn));
  copy_blocks(p, s, nullptr, dparams, static_cast<char*>(grads.data()), false);
}

void get_step(const float* seq, int64_t batch, int64_t steps, int64_t width, int64_t t, float* out) {
  const size_t row = sizeof(float) * width;
  SIEVE_CUDA_CHECK(cudaMemcpy2DAsync(out, row, seq + t * width, row * steps, row, batch, cudaMemcpyDeviceToDevice,
                                     stream()));
}

void put_step(const float* in, int64_t batch, int64_t steps, int64_t width, int64_t t, float* seq) {
  const size_t row = sizeof(float) * width;
  SIEVE_CUDA_CHECK(cudaMemcpy2DAsync(seq + t * width, row * steps, in, row, row, batch, cudaMemcpyDeviceToDevice,
                                     stream()));
}

}  // namespace sieve::cuda
