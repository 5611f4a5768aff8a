// The CPU LSTM's reference (Note [cpu backends]; oneDNN's is in core/ops/onednn.cpp), and the choice between them:
// the input product of many steps in one pass of OpenBLAS sgemms, then per time step one sgemm for
// the recurrent product and the cell update (vectorised activations, Note [lstm activations] in
// core/ops/lstm_math.h); backpropagation through time over the saved gate activations and cell states.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/ops/lstm.h"
#include "core/ops/lstm_math.h"

namespace sieve::cpu {
namespace {

// A sequence of [B, width] matrices in either layout: element (t, b, j) at data[t * step + b * row + j].
// Batch-major [B, T, width]: step = width, row = T * width. Time-major [T, B, width]: step = B * width, row = width.
struct Seq {
  float* data = nullptr;
  int64_t step = 0, row = 0;
  float* at(int64_t t) const { return data + t * step; }
};
Seq batch_major(const float* p, const LstmShape& s, int64_t width) {
  return {const_cast<float*>(p), width, s.steps * width};
}
Seq time_major(float* p, const LstmShape& s, int64_t width) { return {p, s.batch * width, width}; }

// One example's cell update at one step: the pre-activations of the four gates in, activated gates, cell state and
// hidden state out. A function of its own so that GCC takes the pointers' __restrict (it ignores it on local
// pointers) and vectorises the loop without versioning it for aliasing (Note [lstm activations]).
void cell_update(float* __restrict zi, float* __restrict zf, float* __restrict zg, float* __restrict zo,
                 const float* __restrict c_prev, float* __restrict c, float* __restrict h, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const float i = lstm_sigmoid(zi[j]), f = lstm_sigmoid(zf[j]), g = lstm_tanh(zg[j]), o = lstm_sigmoid(zo[j]);
    const float cell = f * c_prev[j] + i * g;
    c[j] = cell;
    h[j] = o * lstm_tanh(cell);
    zi[j] = i, zf[j] = f, zg[j] = g, zo[j] = o;
  }
}

// Its gradient, for one example at one step: a the activated gates, c and c_prev the cell states, dy the gradient
// of the step's output and dh_next that reaching h_t through step t + 1 (zeros at the last step); writes d, the
// gradient of the gate pre-activations, and carries dc (the cell state's gradient) one step back. Vectorised as
// cell_update is.
void cell_backward(const float* __restrict a, const float* __restrict c, const float* __restrict c_prev,
                   const float* __restrict dy, const float* __restrict dh_next, float* __restrict d,
                   float* __restrict dc, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
    const float tc = lstm_tanh(c[j]);
    const float dht = dy[j] + dh_next[j];  // dL/dh_t: this step's output and the recurrence into step t + 1
    const float dct = dc[j] + dht * o * (1.f - tc * tc);
    d[j] = dct * g * i * (1.f - i);
    d[H + j] = dct * c_prev[j] * f * (1.f - f);
    d[2 * H + j] = dct * i * (1.f - g * g);
    d[3 * H + j] = dht * tc * o * (1.f - o);
    dc[j] = dct * f;
  }
}

// Steps whose input product one pass computes when no reserve holds all of them (scoring and evaluation passes).
constexpr int64_t kProjectionChunk = 64;

// C[m, n] = alpha op(A) op(B) + beta C, row-major with explicit leading dimensions.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), 1.f, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

// Where layer k's saved state lives in the reserve (Note [lstm reserve]): per layer the activated gates
// [T, B, 4H] and the cell states [T, B, H]; then the hidden states [T, B, H] of every layer but the last (the
// last layer's are the op's output y).
struct ReserveLayout {
  const LstmShape& s;
  int64_t tbh() const { return s.steps * s.batch * s.hidden; }
  int64_t floats() const { return s.layers * 5 * tbh() + (s.layers - 1) * tbh(); }
  float* gates(float* base, int64_t k) const { return base + k * 5 * tbh(); }
  float* cells(float* base, int64_t k) const { return gates(base, k) + 4 * tbh(); }
  float* hidden(float* base, int64_t k) const { return base + s.layers * 5 * tbh() + k * tbh(); }
};

// One layer forward over all steps. When `save`, gates and cells hold all T steps ([T, B, 4H], [T, B, H]) and
// keep the activated gates; otherwise gates holds kProjectionChunk steps' [B, 4H] and cells two alternating [B, H]
// buffers.
void layer_fwd(const LstmShape& s, int64_t k, Seq in, const float* const* p, float* gates, float* cells, Seq out,
               bool save) {
  const int64_t B = s.batch, H = s.hidden, T = s.steps, in_k = s.layer_input(k);
  const float *w_ih = p[0], *w_hh = p[1], *b_ih = p[2], *b_hh = p[3];
  const int64_t chunk = save ? T : std::min(T, kProjectionChunk);
  const std::vector<float> zeros(H, 0.f);  // the cell state before the first step
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t steps = std::min(chunk, T - t0);
    float* P = save ? gates + t0 * B * 4 * H : gates;  // [steps, B, 4H]
    for (int64_t r = 0; r < steps * B; ++r)
      for (int64_t j = 0; j < 4 * H; ++j) P[r * 4 * H + j] = b_ih[j] + b_hh[j];
    // x_t W_ih^T for `steps` steps at once: one sgemm per example, whose steps are rows in.step apart, written to
    // where each step's gates are (rows B 4H apart), instead of one thin product per step.
    for (int64_t b = 0; b < B; ++b)
      gemm(false, true, steps, 4 * H, in_k, in.at(t0) + b * in.row, in.step, w_ih, in_k, 1.f, P + b * 4 * H,
           B * 4 * H);
    for (int64_t t = t0; t < t0 + steps; ++t) {
      float* G = P + (t - t0) * B * 4 * H;  // [B, 4H]
      float* c = cells + (save ? t : t % 2) * B * H;
      const float* c_prev = t == 0 ? nullptr : cells + (save ? t - 1 : (t - 1) % 2) * B * H;
      if (t > 0) gemm(false, true, B, 4 * H, H, out.at(t - 1), out.row, w_hh, H, 1.f, G, 4 * H);  // += h W_hh^T
      float* h = out.at(t);
      for (int64_t b = 0; b < B; ++b) {
        float* z = G + b * 4 * H;
        cell_update(z, z + H, z + 2 * H, z + 3 * H, c_prev ? c_prev + b * H : zeros.data(), c + b * H,
                    h + b * out.row, H);
      }
    }
  }
}

// One layer backward: dout is the gradient of the layer's outputs, din receives the gradient of its inputs.
// dG [T, B, 4H] and dh, dc [B, H] are scratch.
void layer_bwd(const LstmShape& s, int64_t k, Seq in, Seq out, const float* const* p, const float* gates,
               const float* cells, Seq dout, Seq din, float* const* dp, float* dG, float* dh, float* dc) {
  const int64_t B = s.batch, H = s.hidden, T = s.steps, in_k = s.layer_input(k);
  const float *w_ih = p[0], *w_hh = p[1];
  const std::vector<float> zeros(H, 0.f);  // the cell state before the first step; no gradient after the last
  std::fill(dc, dc + B * H, 0.f);
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* A = gates + t * B * 4 * H;  // activated i, f, g, o
    const float* c = cells + t * B * H;
    const float* c_prev = t == 0 ? nullptr : cells + (t - 1) * B * H;
    float* D = dG + t * B * 4 * H;  // gradient of the pre-activations
    const float* dy = dout.at(t);
    for (int64_t b = 0; b < B; ++b)
      cell_backward(A + b * 4 * H, c + b * H, c_prev ? c_prev + b * H : zeros.data(), dy + b * dout.row,
                    t < T - 1 ? dh + b * H : zeros.data(), D + b * 4 * H, dc + b * H, H);
    if (t > 0) gemm(false, false, B, H, 4 * H, D, 4 * H, w_hh, H, 0.f, dh, H);  // dh_{t-1} = dG_t W_hh
    gemm(false, false, B, in_k, 4 * H, D, 4 * H, w_ih, in_k, 0.f, din.at(t), din.row);  // dx_t = dG_t W_ih
  }
  // Weight gradients: sums over steps of dG_t^T x_t and dG_t^T h_{t-1}; biases: column sums of dG.
  std::fill(dp[1], dp[1] + 4 * H * H, 0.f);
  for (int64_t t = 0; t < T; ++t) {
    const float* D = dG + t * B * 4 * H;
    gemm(true, false, 4 * H, in_k, B, D, 4 * H, in.at(t), in.row, t == 0 ? 0.f : 1.f, dp[0], in_k);
    if (t > 0) gemm(true, false, 4 * H, H, B, D, 4 * H, out.at(t - 1), out.row, 1.f, dp[1], H);
  }
  std::fill(dp[2], dp[2] + 4 * H, 0.f);
  for (int64_t r = 0; r < T * B; ++r)
    for (int64_t j = 0; j < 4 * H; ++j) dp[2][j] += dG[r * 4 * H + j];
  std::memcpy(dp[3], dp[2], sizeof(float) * 4 * H);  // b_ih and b_hh enter the gates as one sum
}

}  // namespace

namespace reference {

size_t lstm_reserve_bytes(const LstmShape& s) { return sizeof(float) * ReserveLayout{s}.floats(); }

void lstm_fwd(const LstmShape& s, const float* x, const float* const* params, float* y, void* reserve) {
  const int64_t B = s.batch, H = s.hidden, T = s.steps;
  const bool save = reserve != nullptr;
  const ReserveLayout r{s};
  float* base = static_cast<float*>(reserve);
  // Without a reserve: kProjectionChunk steps of gates, two cell buffers and two alternating hidden sequences.
  const int64_t G = std::min(T, kProjectionChunk) * B * 4 * H;  // the projected steps' gates
  std::vector<float> scratch(save ? 0 : G + 2 * B * H + (s.layers > 1 ? 2 * T * B * H : 0));
  Seq in = batch_major(x, s, s.input);
  for (int64_t k = 0; k < s.layers; ++k) {
    float* gates = save ? r.gates(base, k) : scratch.data();
    float* cells = save ? r.cells(base, k) : scratch.data() + G;
    const bool last = k == s.layers - 1;
    float* hidden = last   ? nullptr
                    : save ? r.hidden(base, k)
                           : scratch.data() + G + 2 * B * H + (k % 2) * T * B * H;
    const Seq out = last ? batch_major(y, s, H) : time_major(hidden, s, H);
    layer_fwd(s, k, in, params + 4 * k, gates, cells, out, save);
    in = out;
  }
}

void lstm_bwd(const LstmShape& s, const float* x, const float* const* params, const float* y, const float* dy,
              void* reserve, float* dx, float* const* dparams) {
  const int64_t B = s.batch, H = s.hidden, T = s.steps;
  const ReserveLayout r{s};
  float* base = static_cast<float*>(reserve);
  std::vector<float> dG(T * B * 4 * H), dh(B * H), dc(B * H);
  std::vector<float> dhidden(s.layers > 1 ? 2 * T * B * H : 0);  // gradients of the lower layers' outputs
  Seq dout = batch_major(dy, s, H);
  for (int64_t k = s.layers - 1; k >= 0; --k) {
    const Seq in = k == 0 ? batch_major(x, s, s.input) : time_major(r.hidden(base, k - 1), s, H);
    const Seq out = k == s.layers - 1 ? batch_major(y, s, H) : time_major(r.hidden(base, k), s, H);
    const Seq din = k == 0 ? batch_major(dx, s, s.input) : time_major(dhidden.data() + (k % 2) * T * B * H, s, H);
    layer_bwd(s, k, in, out, params + 4 * k, r.gates(base, k), r.cells(base, k), dout, din, dparams + 4 * k,
              dG.data(), dh.data(), dc.data());
    dout = din;
  }
}

}  // namespace reference

namespace {
// The CPU reserve's header: which backend's state follows it (Note [cpu backends]).
constexpr size_t kReserveHeader = 64;

// Note [onednn lstm batch 1]: oneDNN 2.6.3's LSTM backward pass returns a weight_hh gradient with nonzero
// entries for one example of one step, where h_{-1} = 0 makes it exactly zero (found by
// LstmOneDnn.MatchesTheReferenceOnRandomShapes; batches of two or more, and one example over several steps, agree
// with the reference).
// Training passes of a single example therefore run on the reference; inference stays on oneDNN.
CpuBackend backend_for(const LstmShape& s, bool training) {
  const CpuBackend chosen = cpu_backend();
  return chosen == CpuBackend::OneDnn && training && s.batch == 1 ? CpuBackend::Reference : chosen;
}
}  // namespace

size_t lstm_reserve_bytes(const LstmShape& s) {
  return kReserveHeader + (backend_for(s, true) == CpuBackend::OneDnn ? onednn::lstm_reserve_bytes(s)
                                                                       : reference::lstm_reserve_bytes(s));
}

void lstm_fwd(const LstmShape& s, const float* x, const float* const* params, float* y, void* reserve) {
  const CpuBackend backend = backend_for(s, reserve != nullptr);
  char* state = nullptr;
  if (reserve) {
    std::memcpy(reserve, &backend, sizeof backend);
    state = static_cast<char*>(reserve) + kReserveHeader;
  }
  if (backend == CpuBackend::OneDnn)
    onednn::lstm_fwd(s, x, params, y, state);
  else
    reference::lstm_fwd(s, x, params, y, state);
}

void lstm_bwd(const LstmShape& s, const float* x, const float* const* params, const float* y, const float* dy,
              void* reserve, float* dx, float* const* dparams) {
  CpuBackend backend;
  std::memcpy(&backend, reserve, sizeof backend);
  char* state = static_cast<char*>(reserve) + kReserveHeader;
  if (backend == CpuBackend::OneDnn)
    onednn::lstm_bwd(s, x, params, y, dy, state, dx, dparams);
  else
    reference::lstm_bwd(s, x, params, y, dy, state, dx, dparams);
}

void get_step(const float* seq, int64_t batch, int64_t steps, int64_t width, int64_t t, float* out) {
  for (int64_t b = 0; b < batch; ++b)
    std::memcpy(out + b * width, seq + (b * steps + t) * width, sizeof(float) * width);
}

void put_step(const float* in, int64_t batch, int64_t steps, int64_t width, int64_t t, float* seq) {
  for (int64_t b = 0; b < batch; ++b)
    std::memcpy(seq + (b * steps + t) * width, in + b * width, sizeof(float) * width);
}

}  // namespace sieve::cpu
