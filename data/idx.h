// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
// 0x0000TTDD (TT the element type, DD the number of dimensions), DD big-endian uint32 dimension sizes, then the
// elements in row-major order. Files may be gzip-compressed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sieve {

// An IDX array of unsigned bytes (type 0x08), the only element type the data sets use.
struct IdxArray {
  std::vector<int64_t> dims;  // 1 to 4 sizes, outermost first
  std::vector<uint8_t> data;  // product(dims) bytes, row-major
  int64_t numel() const;
};

// Reads `path`, raw or gzip-compressed (zlib detects which). Throws sieve::Error, with a one-line message
// that starts with the path, for a missing or unreadable file, an empty file, a bad magic number, an element
// type other than unsigned byte, a dimension count outside 1..4, a zero or implausible dimension size, data
// shorter than the header declares (truncated) or longer (trailing bytes), and corrupt gzip data.
IdxArray read_idx(const std::string& path);

// "60000x28x28": the dimensions as they appear in messages.
std::string idx_dims_string(const std::vector<int64_t>& dims);

}  // namespace sieve
