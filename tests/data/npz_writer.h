// Writes .npy files and .npz archives byte by byte, for the tests of data/npz.h: stored and deflated members, the
// ZIP64 records numpy writes, and the faults a reader must refuse (a wrong CRC, cut or foreign data, sizes and
// offsets that lie).
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace sieve::npz_test {

using Bytes = std::vector<uint8_t>;

inline void put16(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
inline void put32(Bytes& b, uint32_t v) {
  put16(b, v & 0xFFFF);
  put16(b, v >> 16);
}
inline void put64(Bytes& b, uint64_t v) {
  put32(b, static_cast<uint32_t>(v));
  put32(b, static_cast<uint32_t>(v >> 32));
}

inline std::string shape_literal(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// An .npy file as numpy's format.write_array writes it: the header dict padded with spaces and a newline so that
// the data start at a multiple of 64 bytes. `header` replaces the dict when given.
inline Bytes npy_raw(const std::string& descr, const std::vector<int64_t>& shape, const Bytes& data,
                     bool fortran = false, int major = 1, const std::string& header = "") {
  std::string dict = header.empty() ? "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                                          ", 'shape': " + shape_literal(shape) + ", }"
                                    : header;
  const size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  Bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  if (major == 1) put16(out, static_cast<uint32_t>(dict.size()));
  else put32(out, static_cast<uint32_t>(dict.size()));
  out.insert(out.end(), dict.begin(), dict.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

template <typename T>
Bytes npy(const std::string& descr, const std::vector<int64_t>& shape, const std::vector<T>& values,
          bool fortran = false, int major = 1) {
  Bytes data(values.size() * sizeof(T));
  std::memcpy(data.data(), values.data(), data.size());
  return npy_raw(descr, shape, data, fortran, major);
}

inline Bytes deflate_raw(const Bytes& in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&z, static_cast<uLong>(in.size())));
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// One archive member and the faults it can be written with.
struct Member {
  Member(std::string name_, Bytes data_, uint16_t method_ = 0)
      : name(std::move(name_)), data(std::move(data_)), method(method_) {}
  std::string name;
  Bytes data;                 // the uncompressed member
  uint16_t method = 0;        // 0 stored, 8 deflate; anything else is written as stored data under that number
  uint16_t flags = 0;
  bool bad_crc = false;       // record a CRC-32 that differs from the data's
  std::optional<Bytes> written;  // written instead of the (compressed) data, the CRC still the data's
  int flip = -1;              // a byte of the written data inverted, the CRC still the data's
  size_t cut = 0;             // drop this many bytes from the end of the (compressed) data
  int64_t declared_size = -1, declared_compressed = -1;  // sizes the central directory records instead
  int64_t local_offset = -1;  // the local header offset the central directory records instead
};

struct ZipOptions {
  bool zip64_local = true;     // a ZIP64 extra field in each local header, as numpy writes (force_zip64)
  bool zip64_central = false;  // 0xFFFFFFFF markers in the central directory, the values in its ZIP64 extra field
  bool zip64_end = false;      // the ZIP64 end record and locator, markers in the end record
  std::string comment;
  uint16_t disk = 0;
};

inline Bytes zip(const std::vector<Member>& members, const ZipOptions& o = {}) {
  Bytes out, central;
  for (const Member& m : members) {
    Bytes data = m.written ? *m.written : m.method == 8 ? deflate_raw(m.data) : m.data;
    if (m.flip >= 0) data.at(static_cast<size_t>(m.flip)) ^= 0xFF;
    data.resize(data.size() - std::min(m.cut, data.size()));
    uint32_t crc = static_cast<uint32_t>(crc32(0L, m.data.data(), static_cast<uInt>(m.data.size())));
    if (m.bad_crc) crc ^= 0x00010000;
    const uint64_t size = m.declared_size >= 0 ? static_cast<uint64_t>(m.declared_size) : m.data.size();
    const uint64_t compressed =
        m.declared_compressed >= 0 ? static_cast<uint64_t>(m.declared_compressed) : data.size();
    const uint64_t offset = out.size();
    // Local header: signature, version, flags, method, time, date, CRC, sizes, name and extra lengths.
    put32(out, 0x04034b50);
    put16(out, o.zip64_local ? 45 : 20);
    put16(out, m.flags);
    put16(out, m.method);
    put16(out, 0);
    put16(out, 0x21);
    put32(out, crc);
    put32(out, static_cast<uint32_t>(compressed));
    put32(out, static_cast<uint32_t>(size));
    put16(out, static_cast<uint32_t>(m.name.size()));
    put16(out, o.zip64_local ? 20 : 0);
    out.insert(out.end(), m.name.begin(), m.name.end());
    if (o.zip64_local) {
      put16(out, 1);
      put16(out, 16);
      put64(out, size);
      put64(out, compressed);
    }
    out.insert(out.end(), data.begin(), data.end());
    // Central directory header.
    const uint64_t recorded_offset = m.local_offset >= 0 ? static_cast<uint64_t>(m.local_offset) : offset;
    put32(central, 0x02014b50);
    put16(central, 45);
    put16(central, o.zip64_central ? 45 : 20);
    put16(central, m.flags);
    put16(central, m.method);
    put16(central, 0);
    put16(central, 0x21);
    put32(central, crc);
    put32(central, o.zip64_central ? 0xFFFFFFFF : static_cast<uint32_t>(compressed));
    put32(central, o.zip64_central ? 0xFFFFFFFF : static_cast<uint32_t>(size));
    put16(central, static_cast<uint32_t>(m.name.size()));
    put16(central, o.zip64_central ? 28 : 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put32(central, 0);
    put32(central, o.zip64_central ? 0xFFFFFFFF : static_cast<uint32_t>(recorded_offset));
    central.insert(central.end(), m.name.begin(), m.name.end());
    if (o.zip64_central) {
      put16(central, 1);
      put16(central, 24);
      put64(central, size);
      put64(central, compressed);
      put64(central, recorded_offset);
    }
  }
  const uint64_t directory = out.size();
  out.insert(out.end(), central.begin(), central.end());
  if (o.zip64_end) {
    const uint64_t zip64_end = out.size();
    put32(out, 0x06064b50);
    put64(out, 44);
    put16(out, 45);
    put16(out, 45);
    put32(out, o.disk);
    put32(out, 0);
    put64(out, members.size());
    put64(out, members.size());
    put64(out, central.size());
    put64(out, directory);
    put32(out, 0x07064b50);
    put32(out, 0);
    put64(out, zip64_end);
    put32(out, 1);
  }
  put32(out, 0x06054b50);
  put16(out, o.zip64_end ? 0xFFFF : o.disk);
  put16(out, o.zip64_end ? 0xFFFF : 0);
  put16(out, o.zip64_end ? 0xFFFF : static_cast<uint32_t>(members.size()));
  put16(out, o.zip64_end ? 0xFFFF : static_cast<uint32_t>(members.size()));
  put32(out, o.zip64_end ? 0xFFFFFFFF : static_cast<uint32_t>(central.size()));
  put32(out, o.zip64_end ? 0xFFFFFFFF : static_cast<uint32_t>(directory));
  put16(out, static_cast<uint32_t>(o.comment.size()));
  out.insert(out.end(), o.comment.begin(), o.comment.end());
  return out;
}

inline void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// `classes` classes of 8x8 RGB images, channels-last float32 in [0, 1] and deflated, as np.savez_compressed writes
// Keras-style arrays: noise, with class k's quadrant brighter in channel k mod 3, so that a small MLP learns it.
inline void write_synthetic(const std::string& path, int classes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> noise(0.f, 0.5f);
  std::vector<Member> members;
  for (const auto& [split, n] : {std::pair<std::string, int64_t>{"train", 240}, {"test", 80}}) {
    std::vector<float> x(static_cast<size_t>(n * 8 * 8 * 3));
    std::vector<int64_t> y(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const int k = static_cast<int>(rng() % static_cast<uint32_t>(classes));
      y[static_cast<size_t>(i)] = k;
      for (int h = 0; h < 8; ++h)
        for (int w = 0; w < 8; ++w)
          for (int c = 0; c < 3; ++c) {
            const bool lit = c == k % 3 && (h / 4) * 2 + (w / 4) == k % 4;
            x[static_cast<size_t>(((i * 8 + h) * 8 + w) * 3 + c)] = noise(rng) + (lit ? 0.5f : 0.f);
          }
    }
    members.emplace_back("x_" + split + ".npy", npy("<f4", {n, 8, 8, 3}, x), uint16_t{8});
    members.emplace_back("y_" + split + ".npy", npy("<i8", {n}, y), uint16_t{8});
  }
  write_file(path, zip(members));
}

}  // namespace sieve::npz_test
