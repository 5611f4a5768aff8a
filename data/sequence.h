// Sequence views of image data sets: each image as a sequence of its pixels, one value per step, in plain
// (row-major) order or in a fixed permutation (the "pixel MNIST" and "permuted pixel MNIST" benchmarks of
// recurrent networks). A view is built once on the data's device; batches are then gathered from it as from any
// Dataset (data/batch.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace sieve {

// The command line's --sequence value.
enum class SequenceView { None, Pixels };
// "" or "none": None; "pixels": Pixels; anything else throws an error listing the accepted values.
SequenceView parse_sequence_view(const std::string& text);

// A uniformly random permutation of 0, ..., n - 1 by Fisher-Yates: for i = n - 1 down to 1, swap element i with
// element j = philox_below(seed, 0, i, i + 1) (core/philox.h). A pure function of (n, seed), the same on every
// machine. n >= 0.
std::vector<int32_t> pixel_permutation(int64_t n, uint64_t seed);

// The pixel-sequence view of single-channel images uint8 [N, 1, H, W]: uint8 [N, 1, H*W, 1], step t of example i
// holding pixel order[t] (a row-major index y * W + x) of image i, or pixel t when `order` is empty (then the
// result shares the images' storage). `order` must be a permutation of 0, ..., H*W - 1. Labels, class count,
// name and normalisation constants are unchanged (the channel is the same). The reordering is one gather kernel
// on the data's device. Throws for C != 1 and for an `order` that is not such a permutation.
Dataset pixel_sequence(const Dataset& d, const std::vector<int32_t>& order = {});

namespace cpu {
// dst[r, t] = src[r, order[t]] for r < rows, t < cols; src, dst: (rows, cols) bytes, order: (cols).
void gather_columns_u8(const uint8_t* src, int64_t rows, int64_t cols, const int32_t* order, uint8_t* dst);
}  // namespace cpu
namespace cuda {
void gather_columns_u8(const uint8_t* src, int64_t rows, int64_t cols, const int32_t* order, uint8_t* dst);
}  // namespace cuda

}  // namespace sieve
