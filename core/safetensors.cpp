#include "core/safetensors.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace sieve {
namespace {

// The data is little-endian (Note [safetensors layout]), and sieve writes and reads host memory as it is.
static_assert(std::endian::native == std::endian::little, "safetensors stores little-endian data");

constexpr uint64_t kLengthBytes = 8;
constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the package refuses longer headers, so a writer must not exceed it

// The package's order of dtypes (its Rust enum), which its writer sorts by, widest last.
int dtype_rank(DType t) {
  switch (t) {
    case DType::U8: return 0;
    case DType::I32: return 1;
    case DType::F32: return 2;
    case DType::I64: return 3;
  }
  return 0;
}

bool parse_dtype(const std::string& name, DType* out) {
  for (DType t : {DType::F32, DType::I32, DType::I64, DType::U8})
    if (name == safetensors_dtype_name(t)) {
      *out = t;
      return true;
    }
  return false;
}

std::string errno_text() { return std::strerror(errno); }

// A name from a file as it may appear in a one-line message: control characters (a newline) become '?'.
std::string printable(std::string name) {
  for (char& c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return name;
}

// A file descriptor closed on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Note [atomic save]: a checkpoint is never lost to a crash, a full disk or a bad tensor half way. The bytes go to a
// fresh file beside the target (same directory, so same file system and rename(2) is atomic), are flushed to the
// disk with fsync, and only then renamed over the target; on any failure the temporary is removed and the target
// is as it was. The temporary is created with mode 0666 (less the umask), like any new file, not mkstemp's 0600.
//
// Note [stale temporaries]: a process killed while it writes (SIGKILL, a lost node) cannot remove its temporary,
// "<target>.tmp.<pid>.<n>". Each save therefore first removes the temporaries of the same target whose writing
// process no longer exists (kill(pid, 0) fails with ESRCH). A live process of that number, its own or another's,
// keeps its file: a writer in progress is never disturbed, and a reused number only delays the cleaning. Process
// numbers are those of this machine: a directory shared by several machines keeps their temporaries until one of
// the machine's own runs saves again.
void remove_stale_temporaries(const std::string& target) {
  const std::filesystem::path path(target);
  const std::filesystem::path dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  const std::string prefix = path.filename().string() + ".tmp.";
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    // The rest is "<pid>.<n>", both decimal.
    const std::string rest = name.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos || dot + 1 == rest.size() ||
        rest.find_first_not_of("0123456789.") != std::string::npos || rest.find('.', dot + 1) != std::string::npos)
      continue;
    const long long pid = std::strtoll(rest.substr(0, dot).c_str(), nullptr, 10);
    if (pid <= 0 || pid > std::numeric_limits<pid_t>::max()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    std::filesystem::remove(entry.path(), error);  // best effort: a file another cleaner took first is fine
  }
}

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& target) : target_(target) {
    remove_stale_temporaries(target);
    static std::atomic<uint64_t> counter{0};
    for (int attempt = 0; attempt < 100 && fd_.fd < 0; ++attempt) {
      temp_ = target + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
      fd_.fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      SIEVE_CHECK(fd_.fd >= 0 || errno == EEXIST, "cannot write ", target, ": cannot create ", temp_, ": ",
                  errno_text());
    }
    SIEVE_CHECK(fd_.fd >= 0, "cannot write ", target, ": no free temporary name beside it");
  }
  ~AtomicFile() {
    if (!committed_) ::unlink(temp_.c_str());
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes) {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ssize_t n = ::write(fd_.fd, p, bytes);
      if (n < 0 && errno == EINTR) continue;
      SIEVE_CHECK(n > 0, "cannot write ", target_, ": ", n < 0 ? errno_text() : "no progress writing");
      p += n;
      bytes -= static_cast<size_t>(n);
    }
  }

  void commit() {
    SIEVE_CHECK(::fsync(fd_.fd) == 0, "cannot write ", target_, ": fsync: ", errno_text());
    const int fd = fd_.fd;
    fd_.fd = -1;
    SIEVE_CHECK(::close(fd) == 0, "cannot write ", target_, ": close: ", errno_text());
    SIEVE_CHECK(::rename(temp_.c_str(), target_.c_str()) == 0, "cannot write ", target_, ": rename: ", errno_text());
    committed_ = true;
    // Makes the rename itself durable. Best effort: the new file is complete and in place whether or not the
    // directory can be synced (some file systems refuse), so a failure here is no reason to report a failed save.
    std::string dir = std::filesystem::path(target_).parent_path().string();
    Fd d{::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (d.fd >= 0) (void)::fsync(d.fd);
  }

 private:
  std::string target_, temp_;
  Fd fd_;
  bool committed_ = false;
};

// Reads exactly `bytes` at `offset`; a short read means the file shrank since it was measured.
void read_at(int fd, const std::string& path, uint64_t offset, void* out, uint64_t bytes) {
  char* p = static_cast<char*>(out);
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    SIEVE_CHECK(n >= 0, "cannot read ", path, ": ", errno_text());
    SIEVE_CHECK(n > 0, path, ": truncated while reading (the file changed?)");
    p += n;
    offset += static_cast<uint64_t>(n);
    bytes -= static_cast<uint64_t>(n);
  }
}

// One tensor's header entry, checked against its own dtype and shape (not yet against the others).
struct Entry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& j) {
  const std::string where = path + ": tensor '" + printable(name) + "'";
  SIEVE_CHECK(j.is_object(), where, ": its header entry is ", j.type_name(), ", expected an object");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    SIEVE_CHECK(j.contains(field), where, ": its header entry lacks \"", field, "\"");
  Entry e;
  e.name = name;
  const nlohmann::json& dtype = j["dtype"];
  SIEVE_CHECK(dtype.is_string() && parse_dtype(dtype.get<std::string>(), &e.dtype), where, ": dtype ", dtype.dump(),
              " is not one sieve reads (F32, I32, I64, U8)");
  const nlohmann::json& shape = j["shape"];
  SIEVE_CHECK(shape.is_array(), where, ": shape is ", shape.type_name(), ", expected an array of sizes");
  uint64_t bytes = dtype_size(e.dtype);
  for (const nlohmann::json& d : shape) {
    SIEVE_CHECK(d.is_number_unsigned() && d.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max()), where,
                ": shape ", shape.dump(), " holds ", d.dump(), ", expected sizes >= 0");
    SIEVE_CHECK(!__builtin_mul_overflow(bytes, d.get<uint64_t>(), &bytes), where, ": shape ", shape.dump(),
                " is too large");
    e.shape.push_back(d.get<int64_t>());
  }
  const nlohmann::json& offsets = j["data_offsets"];
  SIEVE_CHECK(
      offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() && offsets[1].is_number_unsigned(),
      where, ": data_offsets is ", offsets.dump(), ", expected [begin, end]");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  SIEVE_CHECK(e.begin <= e.end && e.end - e.begin == bytes, where, ": data_offsets ", offsets.dump(), " span ",
              e.end >= e.begin ? std::to_string(e.end - e.begin) : "a negative number of", " bytes, but ",
              to_string(e.dtype), shape_string(e.shape), " takes ", bytes);
  return e;
}

}  // namespace

std::string safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
  }
  return "?";
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Everything that can be checked is checked before the temporary exists.
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    SIEVE_CHECK(!name.empty() && name != "__metadata__", "cannot write ", path, ": \"", printable(name),
                "\" is not a valid tensor name");
    SIEVE_CHECK(names.insert(name).second, "cannot write ", path, ": two tensors are named '", printable(name), "'");
    SIEVE_CHECK(t.defined(), "cannot write ", path, ": tensor '", printable(name), "' is undefined");
  }
  // The package's order, widest dtype first, then by name (Note [safetensors layout]).
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int ra = dtype_rank(tensors[a].second.dtype()), rb = dtype_rank(tensors[b].second.dtype());
    return ra != rb ? ra > rb : tensors[a].first < tensors[b].first;
  });

  // The package writes compact JSON, "__metadata__" first, then each tensor's fields in this order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i : order) {
    const Tensor& t = tensors[i].second;
    header[tensors[i].first] = {{"dtype", safetensors_dtype_name(t.dtype())},
                                {"shape", t.shape()},
                                {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception&) {
    SIEVE_FAIL("cannot write ", path, ": a tensor name or metadata string is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  SIEVE_CHECK(text.size() <= kMaxHeaderBytes, "cannot write ", path, ": the header would take ", text.size(),
              " bytes, more than the format's limit of ", kMaxHeaderBytes);

  AtomicFile file(path);
  uint8_t length[kLengthBytes];
  for (size_t i = 0; i < kLengthBytes; ++i) length[i] = static_cast<uint8_t>(uint64_t(text.size()) >> (8 * i));
  file.write(length, sizeof length);
  file.write(text.data(), text.size());
  for (size_t i : order) {
    // One tensor at a time on the host: saving a GPU model needs host memory for its largest tensor only.
    const Tensor host = tensors[i].second.to(Device::cpu());
    if (host.nbytes() > 0) file.write(host.raw_data(), host.nbytes());
  }
  file.commit();
}

SafetensorsFile load_safetensors(const std::string& path) {
  Fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  SIEVE_CHECK(fd.fd >= 0, "cannot open ", path, ": ", errno_text());
  struct stat st {};
  SIEVE_CHECK(::fstat(fd.fd, &st) == 0, "cannot read ", path, ": ", errno_text());
  SIEVE_CHECK(S_ISREG(st.st_mode), "cannot read ", path, ": not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  SIEVE_CHECK(size >= kLengthBytes, path, ": truncated: ", size,
              " bytes, shorter than the 8-byte header length that starts a safetensors file");

  uint8_t length[kLengthBytes];
  read_at(fd.fd, path, 0, length, kLengthBytes);
  uint64_t n = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) n |= uint64_t(length[i]) << (8 * i);
  SIEVE_CHECK(n <= kMaxHeaderBytes, path, ": not a safetensors file: its first 8 bytes give a header length of ", n,
              " bytes, beyond the format's limit of ", kMaxHeaderBytes);
  SIEVE_CHECK(n <= size - kLengthBytes, path, ": truncated: the header takes ", n, " bytes but only ",
              size - kLengthBytes, " follow its length");
  std::string text(n, '\0');
  read_at(fd.fd, path, kLengthBytes, text.data(), n);

  // nlohmann's parser stops at a NUL byte; JSON text cannot hold one, and the package refuses it.
  const size_t nul = text.find('\0');
  SIEVE_CHECK(nul == std::string::npos, path, ": not a safetensors file: its header is not JSON (NUL byte at byte ",
              nul, " of ", n, ")");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    SIEVE_FAIL(path, ": not a safetensors file: its header is not JSON (error near byte ",
               std::min<uint64_t>(e.byte, n), " of ", n, ")");
  }
  SIEVE_CHECK(header.is_object(), path, ": not a safetensors file: its header is a JSON ", header.type_name(),
              ", expected an object");

  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key != "__metadata__") {
      entries.push_back(parse_entry(path, key, value));
      continue;
    }
    SIEVE_CHECK(value.is_object(), path, ": \"__metadata__\" is ", value.type_name(), ", expected an object");
    for (const auto& [k, v] : value.items()) {
      SIEVE_CHECK(v.is_string(), path, ": \"__metadata__\" maps \"", printable(k), "\" to ", v.type_name(),
                  ", expected a string");
      out.metadata[k] = v.get<std::string>();
    }
  }

  // The tensors must tile the data exactly: no gap, no overlap, nothing after the last.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t data_end = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    SIEVE_CHECK(e.begin >= data_end, path, ": tensor '", printable(e.name), "' (data_offsets [", e.begin, ", ", e.end,
                "]) overlaps tensor '", printable(i > 0 ? entries[i - 1].name : ""), "', which ends at ", data_end);
    SIEVE_CHECK(e.begin == data_end, path, ": bytes [", data_end, ", ", e.begin,
                ") of the data belong to no tensor (data_offsets must leave no gap)");
    data_end = e.end;
  }
  const uint64_t data_size = size - kLengthBytes - n;
  SIEVE_CHECK(data_end <= data_size, path, ": truncated: the tensors take ", data_end, " bytes, the file holds ",
              data_size, " after its header");
  SIEVE_CHECK(data_end == data_size, path, ": ", data_size - data_end,
              " bytes of trailing data after the last tensor (a safetensors file ends with its last tensor)");

  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype, Device::cpu());
    read_at(fd.fd, path, kLengthBytes + n + e.begin, t.raw_data(), e.end - e.begin);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

}  // namespace sieve
