// NpzArchive (data/npz.h): the ZIP central directory, and members stored or deflated, their CRC-32 checked.
#include "data/npz.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

#include "core/error.h"

namespace sieve {

namespace {

// ZIP records (APPNOTE.TXT sections 4.3.7, 4.3.12, 4.3.14-16) and their fixed sizes.
constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint64_t kLocalHeaderSize = 30, kCentralHeaderSize = 46, kEndSize = 22, kZip64LocatorSize = 20,
                   kZip64EndSize = 56, kMaxComment = 0xFFFF;
constexpr uint16_t kMethodStored = 0, kMethodDeflate = 8;
constexpr uint16_t kFlagEncrypted = 0x1;
// Compressed data are read and inflated this many bytes at a time.
constexpr uint64_t kChunk = uint64_t{1} << 20;

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const uint8_t* p) { return uint32_t{le16(p)} | (uint32_t{le16(p + 2)} << 16); }
uint64_t le64(const uint8_t* p) { return uint64_t{le32(p)} | (uint64_t{le32(p + 4)} << 32); }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

// A read-only file read at offsets. Every read is bounds-checked by its caller first, so that a message can say
// what ran past the end; a short read here means the file shrank while it was read.
class File {
 public:
  explicit File(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) SIEVE_FAIL(path, ": cannot open (", std::strerror(errno), ")");
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      SIEVE_FAIL(path, ": cannot read its size (", std::strerror(err), ")");
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd_);
      SIEVE_FAIL(path, ": a directory, not an .npz file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~File() { ::close(fd_); }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  uint64_t size() const { return size_; }

  void read_at(uint64_t offset, void* dst, uint64_t n) const {
    uint64_t got = 0;
    while (got < n) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(n - got, uint64_t{1} << 30));
      const ssize_t r = ::pread(fd_, static_cast<char*>(dst) + got, want, static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) SIEVE_FAIL(path_, ": read error at byte ", offset + got, " (", std::strerror(errno), ")");
      if (r == 0) SIEVE_FAIL(path_, ": read error at byte ", offset + got, " (the file shrank while being read)");
      got += static_cast<uint64_t>(r);
    }
  }

  std::vector<uint8_t> read_vector(uint64_t offset, uint64_t n) const {
    std::vector<uint8_t> out(static_cast<size_t>(n));
    read_at(offset, out.data(), n);
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Owns a raw-deflate zlib stream.
class Inflater {
 public:
  Inflater() {
    // windowBits -15: raw deflate data, no zlib or gzip wrapper, as ZIP stores them.
    SIEVE_CHECK(inflateInit2(&z_, -15) == Z_OK, "zlib: cannot initialise inflate (out of memory)");
  }
  ~Inflater() { inflateEnd(&z_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  z_stream* operator->() { return &z_; }
  z_stream* get() { return &z_; }

 private:
  z_stream z_{};
};

uint32_t crc32_of(const std::vector<uint8_t>& bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < bytes.size();) {
    const uInt n = static_cast<uInt>(std::min<size_t>(bytes.size() - done, UINT_MAX));
    crc = crc32(crc, bytes.data() + done, n);
    done += n;
  }
  return static_cast<uint32_t>(crc);
}

// The archive's end: the central directory's size, offset and entry count, from the end record or, where that
// holds the ZIP64 marker values, from the ZIP64 end record its locator points to.
struct Directory {
  uint64_t entries = 0, size = 0, offset = 0, end = 0;  // end: where the records after the directory begin
};

Directory read_directory_location(const File& f, const std::string& path) {
  const uint64_t size = f.size();
  const uint64_t tail_size = std::min(size, kEndSize + kMaxComment);
  const std::vector<uint8_t> tail = f.read_vector(size - tail_size, tail_size);
  // The end record is last but for a comment of up to 64 KiB: the nearest signature to the end whose comment
  // length fits in what follows it.
  int64_t at = -1;
  for (int64_t i = static_cast<int64_t>(tail_size) - static_cast<int64_t>(kEndSize); i >= 0; --i) {
    const uint8_t* p = tail.data() + i;
    if (le32(p) == kEndSignature && static_cast<uint64_t>(i) + kEndSize + le16(p + 20) <= tail_size) {
      at = i;
      break;
    }
  }
  if (at < 0) {
    const uint8_t* head = size - tail_size == 0 ? tail.data() : nullptr;
    std::vector<uint8_t> start;
    if (!head) {
      start = f.read_vector(0, std::min<uint64_t>(size, 4));
      head = start.data();
    }
    const uint64_t n = std::min<uint64_t>(size, 4);
    SIEVE_CHECK(!(n == 4 && le32(head) == kLocalHeaderSignature), path, ": a ZIP archive without its end of central "
                "directory record: truncated (the file ends at ", size, " bytes)?");
    SIEVE_CHECK(!(n >= 2 && head[0] == 0x1f && head[1] == 0x8b), path, ": a gzip file, not an .npz archive (ZIP); "
                "write the arrays with np.savez_compressed");
    SIEVE_FAIL(path, ": not an .npz archive (no ZIP end of central directory record; expected a file written by "
               "np.savez or np.savez_compressed)");
  }
  const uint8_t* e = tail.data() + at;
  const uint64_t end_offset = size - tail_size + static_cast<uint64_t>(at);
  uint64_t disk = le16(e + 4), directory_disk = le16(e + 6), disk_entries = le16(e + 8);
  Directory d{le16(e + 10), le32(e + 12), le32(e + 16), end_offset};
  if (d.entries == 0xFFFF || d.size == 0xFFFFFFFF || d.offset == 0xFFFFFFFF) {
    SIEVE_CHECK(end_offset >= kZip64LocatorSize, path, ": the end record holds ZIP64 markers but no ZIP64 locator "
                "precedes it: corrupt archive");
    const std::vector<uint8_t> locator = f.read_vector(end_offset - kZip64LocatorSize, kZip64LocatorSize);
    SIEVE_CHECK(le32(locator.data()) == kZip64LocatorSignature, path, ": the end record holds ZIP64 markers but no "
                "ZIP64 locator precedes it: corrupt archive");
    const uint64_t zip64_end = le64(locator.data() + 8);
    SIEVE_CHECK(zip64_end <= end_offset - kZip64LocatorSize &&
                    end_offset - kZip64LocatorSize - zip64_end >= kZip64EndSize,
                path, ": the ZIP64 locator points at offset ", zip64_end, ", outside the archive: corrupt");
    const std::vector<uint8_t> z = f.read_vector(zip64_end, kZip64EndSize);
    SIEVE_CHECK(le32(z.data()) == kZip64EndSignature, path, ": no ZIP64 end record at offset ", zip64_end,
                " where the locator points: corrupt archive");
    disk = le32(z.data() + 16);
    directory_disk = le32(z.data() + 20);
    disk_entries = le64(z.data() + 24);
    d = {le64(z.data() + 32), le64(z.data() + 40), le64(z.data() + 48), zip64_end};
  }
  SIEVE_CHECK(disk == 0 && directory_disk == 0 && disk_entries == d.entries, path,
              ": a multi-disk (split) ZIP archive: not supported");
  SIEVE_CHECK(d.offset <= d.end && d.size <= d.end - d.offset, path, ": the central directory (", d.size,
              " bytes at offset ", d.offset, ") runs past its end record at offset ", d.end,
              ": truncated or corrupt archive");
  SIEVE_CHECK(d.entries <= d.size / kCentralHeaderSize, path, ": the end record declares ", d.entries,
              " entries, more than the central directory's ", d.size, " bytes can hold: corrupt archive");
  return d;
}

// ".npy" removed: the key np.load gives a member.
std::string key_of(const std::string& name) {
  const std::string suffix = ".npy";
  return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0
             ? name.substr(0, name.size() - suffix.size())
             : name;
}

}  // namespace

NpzArchive::NpzArchive(const std::string& path) : path_(path) {
  const File f(path);
  file_size_ = f.size();
  SIEVE_CHECK(file_size_ > 0, path, ": empty file (expected an .npz archive written by np.savez or "
              "np.savez_compressed)");
  const std::vector<uint8_t> head = f.read_vector(0, std::min<uint64_t>(file_size_, 6));
  SIEVE_CHECK(!(head.size() == 6 && std::memcmp(head.data(), "\x93NUMPY", 6) == 0), path,
              ": an .npy file (one array), not an .npz archive: save the four arrays together with "
              "np.savez_compressed(FILE, x_train=..., y_train=..., x_test=..., y_test=...)");
  const Directory dir = read_directory_location(f, path);
  const std::vector<uint8_t> cd = f.read_vector(dir.offset, dir.size);
  uint64_t at = 0;
  for (uint64_t e = 0; e < dir.entries; ++e) {
    const std::string entry = "central directory entry " + std::to_string(e);
    SIEVE_CHECK(cd.size() - at >= kCentralHeaderSize && le32(cd.data() + at) == kCentralHeaderSignature, path, ": ",
                entry, " of ", dir.entries, " is missing or has a bad signature: corrupt archive");
    const uint8_t* p = cd.data() + at;
    const uint64_t name_size = le16(p + 28), extra_size = le16(p + 30), comment_size = le16(p + 32);
    SIEVE_CHECK(cd.size() - at - kCentralHeaderSize >= name_size + extra_size + comment_size, path, ": ", entry,
                " runs past the end of the central directory: corrupt archive");
    Member m;
    m.flags = le16(p + 8);
    m.method = le16(p + 10);
    m.crc = le32(p + 16);
    m.compressed_size = le32(p + 20);
    m.size = le32(p + 24);
    const uint32_t disk = le16(p + 34);
    m.local_header_offset = le32(p + 42);
    m.name.assign(reinterpret_cast<const char*>(p + kCentralHeaderSize), static_cast<size_t>(name_size));
    // ZIP64: the sizes and offset that do not fit 32 bits read 0xFFFFFFFF and are in the extra field 0x0001, in
    // the order size, compressed size, offset, disk, each present only where its 32-bit field is the marker.
    std::vector<uint64_t*> wide;
    if (m.size == 0xFFFFFFFF) wide.push_back(&m.size);
    if (m.compressed_size == 0xFFFFFFFF) wide.push_back(&m.compressed_size);
    if (m.local_header_offset == 0xFFFFFFFF) wide.push_back(&m.local_header_offset);
    const uint8_t* x = p + kCentralHeaderSize + name_size;
    for (uint64_t i = 0; i + 4 <= extra_size;) {
      const uint16_t id = le16(x + i), n = le16(x + i + 2);
      SIEVE_CHECK(i + 4 + n <= extra_size, path, ": ", m.name, ": malformed extra field in the central directory: "
                  "corrupt archive");
      if (id == kZip64ExtraId) {
        SIEVE_CHECK(n >= 8 * wide.size(), path, ": ", m.name, ": the ZIP64 extra field holds ", n, " bytes for ",
                    wide.size(), " 64-bit values: corrupt archive");
        for (size_t k = 0; k < wide.size(); ++k) *wide[k] = le64(x + i + 4 + 8 * k);
        wide.clear();
      }
      i += 4 + n;
    }
    SIEVE_CHECK(wide.empty(), path, ": ", m.name, ": ZIP64 markers in the central directory but no ZIP64 extra "
                "field: corrupt archive");
    SIEVE_CHECK(disk == 0 || disk == 0xFFFF, path, ": ", m.name, ": starts on disk ", disk,
                ": multi-disk (split) ZIP archives are not supported");
    members_.push_back(std::move(m));
    at += kCentralHeaderSize + name_size + extra_size + comment_size;
  }
}

std::vector<std::string> NpzArchive::keys() const {
  std::vector<std::string> out;
  for (const Member& m : members_) out.push_back(key_of(m.name));
  return out;
}

const NpzArchive::Member* NpzArchive::find(const std::string& key) const {
  const Member* found = nullptr;
  for (const Member& m : members_) {
    if (m.name != key + ".npy" && m.name != key) continue;
    // np.load would take one of them silently; which one the user meant is unknowable.
    SIEVE_CHECK(!found, path_, ": the archive holds '", key, "' twice (", found ? found->name : "", " and ", m.name,
                ")");
    found = &m;
  }
  return found;
}

bool NpzArchive::has(const std::string& key) const { return find(key) != nullptr; }

std::vector<uint8_t> NpzArchive::extract(const Member& m) const {
  const std::string where = path_ + ": " + m.name;
  SIEVE_CHECK(!(m.flags & kFlagEncrypted), where, ": an encrypted member, not supported");
  SIEVE_CHECK(m.method == kMethodStored || m.method == kMethodDeflate, where, ": compression method ", m.method,
              " is not supported (expected 0, stored, as np.savez writes, or 8, deflate, as np.savez_compressed "
              "writes)");
  const File f(path_);
  SIEVE_CHECK(m.local_header_offset <= f.size() && f.size() - m.local_header_offset >= kLocalHeaderSize, where,
              ": its local header at offset ", m.local_header_offset, " lies past the end of the file's ", f.size(),
              " bytes: truncated?");
  const std::vector<uint8_t> local = f.read_vector(m.local_header_offset, kLocalHeaderSize);
  SIEVE_CHECK(le32(local.data()) == kLocalHeaderSignature, where, ": no local header at offset ",
              m.local_header_offset, " where the central directory points: corrupt archive");
  // The data follow the local header's own name and extra field, whose lengths may differ from the central
  // directory's (numpy writes a ZIP64 extra field in every local header); sizes and CRC come from the central
  // directory, which is complete even where a writer put them in a data descriptor after the data.
  const uint64_t name_size = le16(local.data() + 26), extra_size = le16(local.data() + 28);
  const uint64_t data_offset = m.local_header_offset + kLocalHeaderSize + name_size + extra_size;
  SIEVE_CHECK(data_offset <= f.size() && m.compressed_size <= f.size() - data_offset, where, ": its ",
              m.compressed_size, " bytes of data at offset ", data_offset, " run past the end of the file's ",
              f.size(), " bytes: truncated");
  const std::vector<uint8_t> local_name = f.read_vector(m.local_header_offset + kLocalHeaderSize, name_size);
  SIEVE_CHECK(std::string(local_name.begin(), local_name.end()) == m.name, where,
              ": its local header names another member: corrupt archive");

  std::vector<uint8_t> out;
  if (m.method == kMethodStored) {
    SIEVE_CHECK(m.size == m.compressed_size, where, ": a stored member of ", m.compressed_size, " bytes declares ",
                m.size, " bytes: corrupt archive");
    out = f.read_vector(data_offset, m.size);
  } else {
    // Output grows as it is produced, up to the declared size: a corrupt size costs no more memory than the data.
    Inflater z;
    std::vector<uint8_t> in(static_cast<size_t>(std::min(kChunk, std::max<uint64_t>(m.compressed_size, 1))));
    uint64_t read = 0, produced = 0;
    int status = Z_OK;
    while (status != Z_STREAM_END) {
      if (z->avail_in == 0) {
        SIEVE_CHECK(read < m.compressed_size, where, ": truncated deflate data (the ", m.compressed_size,
                    " compressed bytes end before the stream's end marker, after ", produced, " of ", m.size,
                    " bytes)");
        const uint64_t n = std::min(kChunk, m.compressed_size - read);
        f.read_at(data_offset + read, in.data(), n);
        z->next_in = in.data();
        z->avail_in = static_cast<uInt>(n);
        read += n;
      }
      uint8_t spare = 0;
      if (produced == out.size() && out.size() < m.size)
        out.resize(static_cast<size_t>(std::min(m.size, std::max<uint64_t>(2 * out.size(), kChunk))));
      // At the declared size, one more byte of room shows whether the stream holds more than declared.
      const bool full = produced == out.size();
      z->next_out = full ? &spare : out.data() + produced;
      z->avail_out = full ? 1 : static_cast<uInt>(std::min<uint64_t>(out.size() - produced, UINT_MAX));
      const uInt room = z->avail_out;
      status = inflate(z.get(), Z_NO_FLUSH);
      SIEVE_CHECK(status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR, where,
                  ": corrupt deflate data (", z->msg ? z->msg : "zlib error " + std::to_string(status), ")");
      const uInt written = room - z->avail_out;
      SIEVE_CHECK(!(full && written > 0), where, ": the deflate data hold more than the ", m.size,
                  " bytes the central directory declares: corrupt archive");
      produced += written;
    }
    SIEVE_CHECK(produced == m.size, where, ": the deflate data hold ", produced, " bytes, the central directory "
                "declares ", m.size, ": corrupt archive");
    out.resize(static_cast<size_t>(produced));
  }
  const uint32_t crc = crc32_of(out);
  SIEVE_CHECK(crc == m.crc, where, ": CRC-32 mismatch (computed ", hex32(crc), ", recorded ", hex32(m.crc),
              "): the member is corrupt");
  return out;
}

NpyArray NpzArchive::read(const std::string& key) const {
  const Member* m = find(key);
  if (!m) {
    std::string held;
    for (const std::string& k : keys()) held += (held.empty() ? "" : ", ") + k;
    SIEVE_FAIL(path_, ": no array '", key, "' (the archive holds ", held.empty() ? "none" : held, ")");
  }
  return parse_npy(extract(*m), path_ + ": " + m->name);
}

}  // namespace sieve
