// Long short-term memory (Hochreiter & Schmidhuber 1997, with a forget gate): a stack of LSTM layers over
// batch-first float32 sequences. oneDNN's LSTM (or sieve's own over OpenBLAS, the reference) on the CPU, cuDNN's
// RNN API on the GPU. Parameters follow PyTorch's nn.LSTM (names, shapes and gate order), so checkpoints open in
// Python.
#pragma once

#include <compare>
#include <cstdint>
#include <vector>

#include "core/ops/cpu_backend.h"
#include "core/tensor.h"

namespace sieve {

// For each layer k (input size I_0 = input_size, I_k = H above) and time step t, with h_{-1} = c_{-1} = 0:
//   [i; f; g; o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        (four blocks of H rows, in this order)
//   c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g),  h_t = sigmoid(o) * tanh(c_t)
// and layer k's h_t is layer k+1's x_t.
// x [B, T, I]; params: 4 per layer, {weight_ih [4H, I_k], weight_hh [4H, H], bias_ih [4H], bias_hh [4H]} for
// k = 0 .. layers - 1 (PyTorch's weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k})  ->  y [B, T, H], the
// last layer's h_t for every t. Differentiable in x and every parameter.
Tensor lstm(const Tensor& x, const std::vector<Tensor>& params);

// y[:, t, :] of a [B, T, H] sequence as a [B, H] tensor (t < 0 counts from the end: -1 is the last step); its
// gradient is zero at every other step.
Tensor select_step(const Tensor& y, int64_t t);

// The plain description the backends take (Note [views, not Tensors]).
struct LstmShape {
  int64_t batch = 0, steps = 0, input = 0, hidden = 0, layers = 0;
  int64_t layer_input(int64_t k) const { return k == 0 ? input : hidden; }
  auto operator<=>(const LstmShape&) const = default;  // a key of the cuDNN plan cache
};

// Note [lstm reserve]: what the backward pass needs from the forward pass lives in one opaque byte buffer that
// the op allocates (lstm_reserve_bytes) and the backward closure keeps: on the CPU a header naming the backend,
// then oneDNN's workspace per layer (Note [onednn lstm]) or the reference's gate activations, cell states and
// hidden states; on the GPU cuDNN's packed weight space, cuDNN's reserve space, and x and y in
// cuDNN's sequence-major layout. A forward pass given no reserve (inference) saves nothing. The backward pass may
// overwrite the reserve (cuDNN's backward-data does), so one forward pass serves one backward pass.
//
// Pointers are contiguous on the backend's device: x [B, T, I], y and dy [B, T, H], dx [B, T, I] (always
// written); params and dparams hold 4 * layers pointers in the order of lstm()'s params; dparams are
// overwritten.
namespace cpu {
// cpu_backend()'s implementation (core/ops/cpu_backend.h); the reserve's first 64 bytes name the backend that
// wrote it, and the backward pass runs on that one.
size_t lstm_reserve_bytes(const LstmShape& s);
void lstm_fwd(const LstmShape& s, const float* x, const float* const* params, float* y, void* reserve /*or null*/);
void lstm_bwd(const LstmShape& s, const float* x, const float* const* params, const float* y, const float* dy,
              void* reserve, float* dx, float* const* dparams);
namespace reference {  // per-step OpenBLAS products and vectorised cells (core/ops/lstm_cpu.cpp)
size_t lstm_reserve_bytes(const LstmShape& s);
void lstm_fwd(const LstmShape& s, const float* x, const float* const* params, float* y, void* reserve);
void lstm_bwd(const LstmShape& s, const float* x, const float* const* params, const float* y, const float* dy,
              void* reserve, float* dx, float* const* dparams);
}  // namespace reference
namespace onednn {  // oneDNN's LSTM primitive, layer by layer (Note [onednn lstm]); throws where not built
size_t lstm_reserve_bytes(const LstmShape& s);
void lstm_fwd(const LstmShape& s, const float* x, const float* const* params, float* y, void* reserve);
void lstm_bwd(const LstmShape& s, const float* x, const float* const* params, const float* y, const float* dy,
              void* reserve, float* dx, float* const* dparams);
}  // namespace onednn
// out[b, :] = seq[b, t, :] and seq[b, t, :] = in[b, :] for seq [batch, steps, width], out/in [batch, width].
void get_step(const float* seq, int64_t batch, int64_t steps, int64_t width, int64_t t, float* out);
void put_step(const float* in, int64_t batch, int64_t steps, int64_t width, int64_t t, float* seq);
}  // namespace cpu

namespace cuda {
size_t lstm_reserve_bytes(const LstmShape& s);
void lstm_fwd(const LstmShape& s, const float* x, const float* const* params, float* y, void* reserve);
void lstm_bwd(const LstmShape& s, const float* x, const float* const* params, const float* y, const float* dy,
              void* reserve, float* dx, float* const* dparams);
void get_step(const float* seq, int64_t batch, int64_t steps, int64_t width, int64_t t, float* out);
void put_step(const float* in, int64_t batch, int64_t steps, int64_t width, int64_t t, float* seq);
}  // namespace cuda

}  // namespace sieve
