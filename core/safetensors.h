// The safetensors file format (the `safetensors` Python package's), read and written without Python.
//
// Note [safetensors layout]: a file is
//   [8 bytes: N, unsigned little-endian] [N bytes: JSON header, space-padded to a multiple of 8] [data]
// The header maps each tensor name to {"dtype": "F32"|"I32"|"I64"|"U8", "shape": [...], "data_offsets": [b, e]},
// offsets relative to the start of the data, plus an optional "__metadata__" object of strings. Tensors tile the
// data exactly: sorted by offset, each begins where the previous ends, the first at 0, the last at the end of the
// file. The writer orders tensors as the package does (by dtype, widest first, then by name), which keeps every
// tensor aligned to its element size and gives the package's bytes for the same input (up to the order of metadata
// keys, which sieve sorts and the package leaves in its hash map's order).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace sieve {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // CPU tensors, in the order of their data in the file
  std::map<std::string, std::string> metadata;          // "__metadata__"; empty when the file has none
};

// Writes `tensors` (any devices: copied to the host) and `metadata` to `path`, atomically (Note [atomic save]):
// a reader sees either the old file or the complete new one, never a partial file. Names must be distinct,
// non-empty, valid UTF-8 and not "__metadata__"; tensors must be defined. Throws sieve::Error.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads and validates a whole file; a malformed one throws a one-line sieve::Error naming the file and the problem.
// Dtypes sieve has no tensor type for (F16, BF16, ...) are refused by name.
SafetensorsFile load_safetensors(const std::string& path);

// "F32", "I32", "I64", "U8": the header's names of sieve's dtypes.
std::string safetensors_dtype_name(DType dtype);

}  // namespace sieve
