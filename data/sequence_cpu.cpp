#include "data/sequence.h"

namespace sieve::cpu {

void gather_columns_u8(const uint8_t* src, int64_t rows, int64_t cols, const int32_t* order, uint8_t* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* in = src + r * cols;
    uint8_t* out = dst + r * cols;
    for (int64_t t = 0; t < cols; ++t) out[t] = in[order[t]];
  }
}

}  // namespace sieve::cpu
