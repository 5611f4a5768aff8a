#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace sieve {

namespace {

constexpr int kMaxDims = 4;
constexpr uint8_t kTypeUnsignedByte = 0x08;
// Guards the size computation and the allocation against a corrupt header; far above any real data set.
constexpr int64_t kMaxIdxBytes = int64_t{1} << 38;
// Data is read in chunks, so a header that declares more than the file holds costs no more memory than the file.
constexpr int64_t kReadChunk = int64_t{1} << 26;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

std::string hex8(uint32_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", v & 0xFFu);
  return buf;
}

// Owns a zlib file handle. gzopen reads uncompressed files transparently (Note [idx via zlib]).
class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path) {
    errno = 0;
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) {
      const int err = errno;
      SIEVE_FAIL(path, ": cannot open (", err ? std::strerror(err) : "out of memory", ")");
    }
    gzbuffer(file_, 1 << 20);
  }
  ~GzFile() {
    if (file_) gzclose_r(file_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads up to n bytes; fewer only at the end of the data. Throws on read errors and corrupt gzip data.
  int64_t read(void* dst, int64_t n) {
    int64_t got = 0;
    while (got < n) {
      const unsigned want = static_cast<unsigned>(std::min<int64_t>(n - got, kReadChunk));
      const int r = gzread(file_, static_cast<char*>(dst) + got, want);
      if (r < 0) fail_read();
      if (r == 0) break;
      got += r;
    }
    return got;
  }

  // After the end of the data: a gzip stream cut short reads as a clean end of file, zlib only flags it.
  void check_complete() {
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    if (code == Z_BUF_ERROR)
      SIEVE_FAIL(path_, ": truncated gzip stream (the compressed file ends before its end marker: ", message, ")");
    if (code != Z_OK) fail_read();
  }

 private:
  [[noreturn]] void fail_read() {
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    if (code == Z_ERRNO) SIEVE_FAIL(path_, ": read error (", std::strerror(errno), ")");
    SIEVE_FAIL(path_, ": corrupt gzip data (", message, ")");
  }

  std::string path_;
  gzFile file_ = nullptr;
};

uint32_t big_endian(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

int64_t IdxArray::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::string idx_dims_string(const std::vector<int64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += 'x';
    s += std::to_string(dims[i]);
  }
  return s;
}

// Note [idx via zlib]: every IDX file is read through gzopen/gzread, which decompresses gzip files and passes
// other files through unchanged, so the raw and the .gz downloads share one code path and one set of checks.
IdxArray read_idx(const std::string& path) {
  GzFile file(path);

  uint8_t magic[4];
  const int64_t magic_got = file.read(magic, 4);
  SIEVE_CHECK(magic_got > 0, path, ": empty file (expected an IDX header)");
  SIEVE_CHECK(magic_got == 4, path, ": truncated header: expected a 4-byte magic number, found ", magic_got,
              " byte(s)");
  const uint32_t magic_value = big_endian(magic);
  SIEVE_CHECK(magic[0] == 0 && magic[1] == 0, path, ": bad magic number ", hex32(magic_value),
              ": not an IDX file (expected 0x0000TTDD: two zero bytes, the element type, the dimension count)");
  SIEVE_CHECK(magic[2] == kTypeUnsignedByte, path, ": unsupported element type ", hex8(magic[2]),
              " in magic number ", hex32(magic_value), " (only 0x08, unsigned byte, is supported)");
  const int ndims = magic[3];
  SIEVE_CHECK(ndims >= 1 && ndims <= kMaxDims, path, ": bad dimension count ", ndims, " in magic number ",
              hex32(magic_value), " (expected 1 to ", kMaxDims, ")");

  uint8_t sizes[4 * kMaxDims];
  const int64_t sizes_got = file.read(sizes, 4 * ndims);
  SIEVE_CHECK(sizes_got == 4 * ndims, path, ": truncated header: ", ndims, " dimension sizes need ", 4 * ndims,
              " bytes after the magic number, found ", sizes_got);

  IdxArray out;
  int64_t declared = 1;
  for (int i = 0; i < ndims; ++i) {
    const int64_t d = big_endian(sizes + 4 * i);
    out.dims.push_back(d);
    SIEVE_CHECK(d > 0, path, ": dimension ", i, " has size 0 in a ", ndims, "-d header (an empty array)");
    SIEVE_CHECK(declared <= kMaxIdxBytes / d, path, ": implausible dimensions ", idx_dims_string(out.dims),
                "...: more than ", kMaxIdxBytes, " bytes of data (a corrupt header?)");
    declared *= d;
  }

  const std::string declared_text =
      "header declares " + idx_dims_string(out.dims) + " = " + std::to_string(declared) + " bytes of data";
  out.data.reserve(static_cast<size_t>(std::min(declared, kReadChunk)));
  int64_t got = 0;
  while (got < declared) {
    const int64_t want = std::min(declared - got, kReadChunk);
    out.data.resize(static_cast<size_t>(got + want));
    const int64_t r = file.read(out.data.data() + got, want);
    got += r;
    if (r < want) break;
  }
  out.data.resize(static_cast<size_t>(got));
  SIEVE_CHECK(got == declared, path, ": truncated: ", declared_text, ", found ", got);

  // Count whatever follows, so the message says how much there is.
  int64_t extra = 0;
  std::vector<uint8_t> scratch(1 << 16);
  for (int64_t r; (r = file.read(scratch.data(), static_cast<int64_t>(scratch.size()))) > 0;) extra += r;
  SIEVE_CHECK(extra == 0, path, ": trailing bytes: ", declared_text, ", found ", declared + extra, " (", extra,
              " too many)");
  file.check_complete();
  return out;
}

}  // namespace sieve
