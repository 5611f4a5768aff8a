// IDX reading and the IDX data sets: every malformed input is a sieve::Error naming the file and the fault.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/idx.h"

namespace sieve {
namespace {

using testing::TempDir;

using testing::throws_error;

namespace fs = std::filesystem;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng() & 0xFF);
  return out;
}

// Magic 0x0000TTDD, big-endian sizes, then the payload.
std::vector<uint8_t> idx_file(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& payload,
                              uint8_t type = 0x08) {
  std::vector<uint8_t> out = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(d >> shift));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << path;
    if (!bytes.empty()) ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), int(bytes.size()));
    ASSERT_EQ(gzclose(f), Z_OK);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
  }
}

const char* suffix(bool gzip) { return gzip ? ".gz" : ""; }

// Small IDX data set: `n_train` / `n_test` images of 4x5 pixels and their labels.
struct FakeSet {
  std::vector<uint8_t> train_images, test_images, train_labels, test_labels;
};

FakeSet write_fake_dataset(const TempDir& dir, bool gzip, int n_train = 12, int n_test = 7) {
  FakeSet s;
  s.train_images = random_bytes(static_cast<size_t>(n_train) * 20, 1);
  s.test_images = random_bytes(static_cast<size_t>(n_test) * 20, 2);
  for (int i = 0; i < n_train; ++i) s.train_labels.push_back(static_cast<uint8_t>((i * 7) % 10));
  for (int i = 0; i < n_test; ++i) s.test_labels.push_back(static_cast<uint8_t>((i * 3 + 1) % 10));
  const uint32_t ntr = static_cast<uint32_t>(n_train), nte = static_cast<uint32_t>(n_test);
  write_file(dir.file(std::string("train-images-idx3-ubyte") + suffix(gzip)), idx_file({ntr, 4, 5}, s.train_images),
             gzip);
  write_file(dir.file(std::string("train-labels-idx1-ubyte") + suffix(gzip)), idx_file({ntr}, s.train_labels), gzip);
  write_file(dir.file(std::string("t10k-images-idx3-ubyte") + suffix(gzip)), idx_file({nte, 4, 5}, s.test_images),
             gzip);
  write_file(dir.file(std::string("t10k-labels-idx1-ubyte") + suffix(gzip)), idx_file({nte}, s.test_labels), gzip);
  return s;
}

class IdxLoader : public ::testing::TestWithParam<bool> {  // parameter: gzip-compressed
 protected:
  bool gzip() const { return GetParam(); }
  // Writes `bytes` as a file named for this test and returns its path.
  std::string write(const std::vector<uint8_t>& bytes) {
    const std::string path = dir_.file(std::string("data-idx3-ubyte") + suffix(gzip()));
    write_file(path, bytes, gzip());
    return path;
  }
  TempDir dir_;
};

TEST_P(IdxLoader, LoadsValidFileExactly) {
  const std::vector<uint8_t> payload = random_bytes(5 * 4 * 3, 11);
  const IdxArray a = read_idx(write(idx_file({5, 4, 3}, payload)));
  EXPECT_EQ(a.dims, (std::vector<int64_t>{5, 4, 3}));
  EXPECT_EQ(a.numel(), 60);
  EXPECT_EQ(a.data, payload);
}

TEST_P(IdxLoader, LoadsOneAndFourDimensions) {
  const std::vector<uint8_t> labels = random_bytes(9, 12);
  EXPECT_EQ(read_idx(write(idx_file({9}, labels))).data, labels);
  const std::vector<uint8_t> cube = random_bytes(2 * 3 * 4 * 5, 13);
  const IdxArray a = read_idx(write(idx_file({2, 3, 4, 5}, cube)));
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(a.data, cube);
}

TEST_P(IdxLoader, RejectsTruncatedData) {
  const std::string path = write(idx_file({5, 4, 3}, random_bytes(59, 14)));
  EXPECT_TRUE(throws_error([&] { read_idx(path); },
                                {path, "truncated", "header declares 5x4x3 = 60 bytes of data, found 59"}));
}

TEST_P(IdxLoader, RejectsTrailingBytes) {
  const std::string path = write(idx_file({5, 4, 3}, random_bytes(63, 15)));
  EXPECT_TRUE(throws_error([&] { read_idx(path); }, {path, "trailing", "found 63 (3 too many)"}));
}

TEST_P(IdxLoader, RejectsWrongMagic) {
  std::vector<uint8_t> bytes = idx_file({5}, random_bytes(5, 16));
  bytes[1] = 0x01;
  const std::string path = write(bytes);
  EXPECT_TRUE(throws_error([&] { read_idx(path); }, {path, "bad magic number 0x00010801", "not an IDX file"}));
}

TEST_P(IdxLoader, RejectsWrongTypeByte) {
  const std::string path = write(idx_file({5}, random_bytes(20, 17), 0x0D));
  EXPECT_TRUE(throws_error([&] { read_idx(path); }, {path, "unsupported element type 0x0D"}));
}

TEST_P(IdxLoader, RejectsBadDimensionCount) {
  const std::string none = write(idx_file({}, {}));
  EXPECT_TRUE(throws_error([&] { read_idx(none); }, {none, "bad dimension count 0"}));
  const std::string five = write(idx_file({1, 1, 1, 1, 1}, {7}));
  EXPECT_TRUE(throws_error([&] { read_idx(five); }, {five, "bad dimension count 5"}));
}

TEST_P(IdxLoader, RejectsZeroDimension) {
  const std::string path = write(idx_file({3, 0, 2}, {}));
  EXPECT_TRUE(throws_error([&] { read_idx(path); }, {path, "dimension 1 has size 0"}));
}

TEST_P(IdxLoader, RejectsTruncatedHeader) {
  const std::string magic_only = write({0, 0, 8});
  EXPECT_TRUE(throws_error([&] { read_idx(magic_only); }, {magic_only, "truncated header"}));
  std::vector<uint8_t> bytes = idx_file({5, 4, 3}, {});
  bytes.resize(10);
  const std::string sizes = write(bytes);
  EXPECT_TRUE(throws_error([&] { read_idx(sizes); }, {sizes, "truncated header", "found 6"}));
}

TEST_P(IdxLoader, RejectsEmptyFile) {
  const std::string path = write({});
  EXPECT_TRUE(throws_error([&] { read_idx(path); }, {path, "empty file"}));
}

TEST_P(IdxLoader, RejectsMissingFile) {
  const std::string path = dir_.file(std::string("absent-idx3-ubyte") + suffix(gzip()));
  EXPECT_TRUE(throws_error([&] { read_idx(path); }, path + ": cannot open (No such file or directory)"));
}

TEST_P(IdxLoader, LoadsSmallDataset) {
  const FakeSet s = write_fake_dataset(dir_, gzip());
  const DataSplits d = load_idx_dataset("mnist", dir_.str());
  EXPECT_EQ(d.train.name, "mnist");
  EXPECT_EQ(d.train.num_classes, 10);
  EXPECT_EQ(d.train.images.shape(), (Shape{12, 1, 4, 5}));
  EXPECT_EQ(d.test.images.shape(), (Shape{7, 1, 4, 5}));
  EXPECT_EQ(d.train.images.to_vector<uint8_t>(), s.train_images);
  EXPECT_EQ(d.test.images.to_vector<uint8_t>(), s.test_images);
  const std::vector<int32_t> train_labels(s.train_labels.begin(), s.train_labels.end());
  const std::vector<int32_t> test_labels(s.test_labels.begin(), s.test_labels.end());
  EXPECT_EQ(d.train.labels.to_vector<int32_t>(), train_labels);
  EXPECT_EQ(d.test.labels.to_vector<int32_t>(), test_labels);

  // Normalisation constants from the training pixels, in double: float32 keeps ~7 digits.
  double sum = 0, sum_sq = 0;
  for (uint8_t v : s.train_images) {
    sum += v / 255.0;
    sum_sq += (v / 255.0) * (v / 255.0);
  }
  const double mean = sum / s.train_images.size();
  const double std = std::sqrt(sum_sq / s.train_images.size() - mean * mean);
  ASSERT_EQ(d.train.mean.size(), 1u);
  EXPECT_NEAR(d.train.mean[0], mean, 1e-6);
  EXPECT_NEAR(d.train.std[0], std, 1e-6);
  EXPECT_EQ(d.test.mean, d.train.mean);
  EXPECT_EQ(d.test.std, d.train.std);
}

TEST_P(IdxLoader, RejectsLabelCountDifferentFromImageCount) {
  write_fake_dataset(dir_, gzip());
  const std::string labels = dir_.file(std::string("t10k-labels-idx1-ubyte") + suffix(gzip()));
  write_file(labels, idx_file({6}, {1, 2, 3, 4, 5, 6}), gzip());
  EXPECT_TRUE(throws_error([&] { load_idx_dataset("mnist", dir_.str()); },
                                {labels, "label count differs from image count: 6 labels for 7 images"}));
}

TEST_P(IdxLoader, RejectsLabelOutOfRange) {
  write_fake_dataset(dir_, gzip());
  const std::string labels = dir_.file(std::string("train-labels-idx1-ubyte") + suffix(gzip()));
  std::vector<uint8_t> values(12, 4);
  values[9] = 10;
  write_file(labels, idx_file({12}, values), gzip());
  EXPECT_TRUE(throws_error([&] { load_idx_dataset("fashion-mnist", dir_.str()); },
                                {labels, "label out of range at index 9: 10"}));
}

TEST_P(IdxLoader, RejectsImagesOfWrongRank) {
  write_fake_dataset(dir_, gzip());
  const std::string images = dir_.file(std::string("train-images-idx3-ubyte") + suffix(gzip()));
  write_file(images, idx_file({12, 20}, random_bytes(240, 18)), gzip());
  EXPECT_TRUE(throws_error([&] { load_idx_dataset("mnist", dir_.str()); },
                                {images, "expected 3 dimensions", "found 2 (12x20)"}));
}

INSTANTIATE_TEST_SUITE_P(Compression, IdxLoader, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Gzip" : "Raw"; });

TEST(IdxLoaderFiles, RejectsGzipStreamCutShort) {
  TempDir dir;
  const std::string path = dir.file("cut-idx3-ubyte.gz");
  write_file(path, idx_file({50, 10, 10}, random_bytes(5000, 19)), true);
  fs::resize_file(path, fs::file_size(path) - 12);
  EXPECT_TRUE(throws_error([&] { read_idx(path); }, {path, "truncated"}));
}

TEST(IdxLoaderFiles, PrefersGzipOverRaw) {
  TempDir dir;
  write_fake_dataset(dir, true);
  // A broken raw file beside the .gz one is never opened.
  write_file(dir.file("train-images-idx3-ubyte"), {1, 2, 3}, false);
  EXPECT_EQ(load_idx_dataset("mnist", dir.str()).train.size(), 12);
}

TEST(IdxLoaderFiles, MissingFileNamesItAndHowToGetIt) {
  TempDir dir;
  write_fake_dataset(dir, true);
  fs::remove(dir.file("t10k-labels-idx1-ubyte.gz"));
  EXPECT_TRUE(throws_error([&] { load_idx_dataset("fashion-mnist", dir.str()); },
                                {dir.file("t10k-labels-idx1-ubyte.gz"), "cannot open",
                                 dir.file("t10k-labels-idx1-ubyte"), "apt-get install dataset-fashion-mnist"}));
}

TEST(IdxLoaderFiles, MissingDirectoryNamesItAndHowToGetIt) {
  const std::string dir = "/nonexistent/sieve-data-dir";
  EXPECT_TRUE(throws_error([&] { load_idx_dataset("fashion-mnist", dir); },
                                {dir, "no such directory", "apt-get install dataset-fashion-mnist"}));
  EXPECT_TRUE(throws_error([&] { load_idx_dataset("mnist", dir); }, {dir, "no such directory", "mnist:DIR"}));
}

TEST(DatasetSpec, ParsesNameAndOptionalDirectory) {
  EXPECT_EQ(parse_data_spec("fashion-mnist").name, "fashion-mnist");
  EXPECT_EQ(parse_data_spec("fashion-mnist").dir, "");
  const DataSpec s = parse_data_spec("mnist:/data/mnist:v2");
  EXPECT_EQ(s.name, "mnist");
  EXPECT_EQ(s.dir, "/data/mnist:v2");
}

// SIEVE_DATA_DIR replaces /usr/share/datasets; the test restores whatever the environment had (gpu-check sets it).
TEST(DatasetSpec, DefaultDirectoryFollowsSieveDataDir) {
  const char* before = std::getenv("SIEVE_DATA_DIR");
  const std::string saved = before ? before : "";
  unsetenv("SIEVE_DATA_DIR");
  EXPECT_EQ(default_data_dir("fashion-mnist"), "/usr/share/datasets/fashion-mnist");
  setenv("SIEVE_DATA_DIR", "", 1);
  EXPECT_EQ(default_data_dir("fashion-mnist"), "/usr/share/datasets/fashion-mnist");
  setenv("SIEVE_DATA_DIR", "/data/sets", 1);
  EXPECT_EQ(default_data_dir("mnist"), "/data/sets/mnist");
  if (before) {
    setenv("SIEVE_DATA_DIR", saved.c_str(), 1);
  } else {
    unsetenv("SIEVE_DATA_DIR");
  }
}

TEST(DatasetSpec, RejectsUnknownNameListingAcceptedOnes) {
  EXPECT_TRUE(throws_error([] { parse_data_spec("imagenet"); },
                                {"unknown data set 'imagenet'", "fashion-mnist", "mnist"}));
  EXPECT_TRUE(throws_error([] { parse_data_spec("mnist:"); }, "empty directory"));
}

TEST(DatasetSpec, LoadsThroughSpec) {
  TempDir dir;
  write_fake_dataset(dir, false);
  const DataSplits d = load_dataset(parse_data_spec("mnist:" + dir.str()));
  EXPECT_EQ(d.train.size(), 12);
  EXPECT_EQ(d.test.size(), 7);
  EXPECT_EQ(d.train.sample_numel(), 20);
}

TEST(Dataset, LoadsFashionMnist) {
  const std::string dir = default_data_dir("fashion-mnist");
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " not present (apt-get install dataset-fashion-mnist)";
  const DataSplits d = load_idx_dataset("fashion-mnist", "");
  EXPECT_EQ(d.train.images.shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(d.test.images.shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(d.train.labels.shape(), (Shape{60000}));
  EXPECT_EQ(d.test.labels.shape(), (Shape{10000}));
  EXPECT_EQ(d.train.num_classes, 10);
  for (const Dataset* split : {&d.train, &d.test}) {
    const std::vector<int32_t> labels = split->labels.to_vector<int32_t>();
    EXPECT_GE(*std::min_element(labels.begin(), labels.end()), 0);
    EXPECT_LT(*std::max_element(labels.begin(), labels.end()), 10);
    EXPECT_EQ(std::set<int32_t>(labels.begin(), labels.end()).size(), 10u);
  }
  // The widely quoted Fashion-MNIST constants (0.2860, 0.3530), to the digits they are quoted with.
  ASSERT_EQ(d.train.mean.size(), 1u);
  EXPECT_NEAR(d.train.mean[0], 0.2860, 5e-4);
  EXPECT_NEAR(d.train.std[0], 0.3530, 5e-4);
}

}  // namespace
}  // namespace sieve
