#include "data/cifar.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <vector>

#include "core/error.h"

namespace sieve {

namespace {

namespace fs = std::filesystem;

constexpr int64_t kChannels = 3, kSide = 32;
constexpr int64_t kPixelBytes = kChannels * kSide * kSide;  // 3072
constexpr int kCoarseClasses = 20;                          // CIFAR-100's superclasses
// Records are read this many at a time: memory stays small whatever the file holds.
constexpr int64_t kChunkRecords = 1024;

struct CifarLayout {
  std::string title;   // "CIFAR-10", for messages
  std::string folder;  // the folder the archive extracts to
  std::vector<std::string> train, test;
  int label_bytes;     // 1 (label) or 2 (coarse, fine)
  int num_classes;     // of the label sieve uses: the last label byte
  int64_t record_bytes() const { return label_bytes + kPixelBytes; }
  std::string record_text() const {
    return label_bytes == 1 ? "1 label byte + 3072 pixel bytes" : "1 coarse + 1 fine label byte + 3072 pixel bytes";
  }
};

const CifarLayout& layout(const std::string& name) {
  static const CifarLayout cifar10{"CIFAR-10",
                                   "cifar-10-batches-bin",
                                   {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                    "data_batch_5.bin"},
                                   {"test_batch.bin"},
                                   1,
                                   10};
  static const CifarLayout cifar100{"CIFAR-100", "cifar-100-binary", {"train.bin"}, {"test.bin"}, 2, 100};
  if (name == "cifar10") return cifar10;
  if (name == "cifar100") return cifar100;
  SIEVE_FAIL("load_cifar_dataset: unknown CIFAR data set '", name, "' (expected cifar10 or cifar100)");
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// The number of records in `path`, from its size: the file must be a non-empty whole number of records.
int64_t count_records(const std::string& path, const CifarLayout& l) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  SIEVE_CHECK(!ec, path, ": cannot read its size (", ec.message(), ")");
  SIEVE_CHECK(size > 0, path, ": empty file (expected ", l.title, " records of ", l.record_text(), ")");
  const int64_t record = l.record_bytes();
  SIEVE_CHECK(size % static_cast<uintmax_t>(record) == 0, path, ": size ", size,
              " bytes is not a multiple of the record size ", record, " (", l.record_text(), "): ",
              size / static_cast<uintmax_t>(record), " whole records and ", size % static_cast<uintmax_t>(record),
              " bytes over; truncated, or not a ", l.title, " file");
  return static_cast<int64_t>(size / static_cast<uintmax_t>(record));
}

// Reads the `count` records of `path` into images[first, first + count) and labels[first, first + count).
void read_records(const std::string& path, const CifarLayout& l, int64_t count, int64_t first, uint8_t* images,
                  int32_t* labels) {
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) SIEVE_FAIL(path, ": cannot open (", std::strerror(errno), ")");
  const int64_t record = l.record_bytes();
  std::vector<uint8_t> chunk(static_cast<size_t>(std::min(count, kChunkRecords) * record));
  for (int64_t done = 0; done < count;) {
    const int64_t n = std::min(count - done, kChunkRecords);
    const size_t got = std::fread(chunk.data(), 1, static_cast<size_t>(n * record), file.get());
    SIEVE_CHECK(got == static_cast<size_t>(n * record), path, ": read error at record ", done + static_cast<int64_t>(got) / record, " of ",
                count, " (", std::ferror(file.get()) ? std::strerror(errno) : "the file shrank while being read",
                ")");
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* r = chunk.data() + i * record;
      const int64_t index = done + i;  // within this file, as a user counts records in it
      if (l.label_bytes == 2)
        SIEVE_CHECK(r[0] < kCoarseClasses, path, ": coarse label out of range at record ", index, ": ", int{r[0]},
                    " (expected 0 to ", kCoarseClasses - 1, ")");
      const int label = r[l.label_bytes - 1];
      SIEVE_CHECK(label < l.num_classes, path, ": label out of range at record ", index, ": ", label,
                  " (expected 0 to ", l.num_classes - 1, ")");
      labels[first + index] = label;
      std::memcpy(images + (first + index) * kPixelBytes, r + l.label_bytes, kPixelBytes);
    }
    done += n;
  }
}

// One split from its files, in the order listed (data_batch_1 first), checked before anything is allocated.
Dataset load_split(const std::string& dir, const std::vector<std::string>& files, const std::string& name,
                   const CifarLayout& l) {
  std::vector<int64_t> counts;
  int64_t total = 0;
  for (const std::string& f : files) {
    counts.push_back(count_records((fs::path(dir) / f).string(), l));
    total += counts.back();
  }
  // Batches index rows with int32 (data/batch.h).
  SIEVE_CHECK(total <= std::numeric_limits<int32_t>::max(), dir, ": ", total, " ", l.title,
              " records exceed the int32 row index of a batch");
  Dataset d;
  d.name = name;
  d.num_classes = l.num_classes;
  d.images = Tensor::empty({total, kChannels, kSide, kSide}, DType::U8);
  d.labels = Tensor::empty({total}, DType::I32);
  int64_t first = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    read_records((fs::path(dir) / files[i]).string(), l, counts[i], first, d.images.data<uint8_t>(),
                 d.labels.data<int32_t>());
    first += counts[i];
  }
  return d;
}

bool has_any(const fs::path& dir, const CifarLayout& l) {
  std::error_code ec;
  for (const auto* list : {&l.train, &l.test})
    for (const std::string& f : *list)
      if (fs::exists(dir / f, ec)) return true;
  return false;
}

// `dir` itself when it holds any of the files, else its extracted-archive folder when that exists; then every
// file must be there, and a missing one is named with the directory looked in.
std::string resolve_dir(const std::string& name, const std::string& dir, const CifarLayout& l) {
  std::error_code ec;
  SIEVE_CHECK(!dir.empty(), "load_cifar_dataset: ", name, " needs a directory (", cifar_download_hint(name), ")");
  SIEVE_CHECK(fs::is_directory(dir, ec), dir, ": no such directory (looked there for the ", l.title,
              " binary files, e.g. ", l.test.front(), "; ", cifar_download_hint(name), ")");
  const fs::path nested = fs::path(dir) / l.folder;
  const bool direct = has_any(dir, l);
  const bool use_nested = !direct && fs::is_directory(nested, ec);
  const fs::path chosen = use_nested ? nested : fs::path(dir);
  const std::string where = direct || use_nested ? "" : " (which holds none of them, nor a " + l.folder + "/ folder)";
  const std::string set = l.train.front() + (l.train.size() > 1 ? " ... " + l.train.back() : "") + " and " +
                          l.test.front();
  for (const auto* list : {&l.train, &l.test})
    for (const std::string& f : *list)
      SIEVE_CHECK(fs::is_regular_file(chosen / f, ec), (chosen / f).string(), ": no such file: ", l.title,
                  " needs ", set, " in ", chosen.string(), where, "; ", cifar_download_hint(name));
  return chosen.string();
}

}  // namespace

bool is_cifar_dataset(const std::string& name) { return name == "cifar10" || name == "cifar100"; }

std::string cifar_download_hint(const std::string& name) {
  const std::string archive = name == "cifar100" ? "cifar-100-binary.tar.gz" : "cifar-10-binary.tar.gz";
  return "no package installs " + layout(name).title + ": download " + archive +
         " from https://www.cs.toronto.edu/~kriz/cifar.html, extract it and pass --data " + name + ":DIR";
}

DataSplits load_cifar_dataset(const std::string& name, const std::string& dir_arg) {
  const CifarLayout& l = layout(name);
  const std::string dir = resolve_dir(name, dir_arg, l);
  DataSplits s{load_split(dir, l.train, name, l), load_split(dir, l.test, name, l)};
  channel_mean_std(s.train.images, s.train.mean, s.train.std);
  s.test.mean = s.train.mean;
  s.test.std = s.train.std;
  return s;
}

}  // namespace sieve
