// CIFAR-10/100 binary loading on small synthetic sets: exact contents, both directory layouts, and every malformed
// input a sieve::Error naming the file and the fault.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/cifar.h"
#include "data/dataset.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::TempDir;

using testing::throws_error;

namespace fs = std::filesystem;

constexpr size_t kPixels = 3 * 32 * 32;

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// One split as the loader should return it, and the files that hold it.
struct Split {
  std::vector<uint8_t> pixels;  // (N, 3, 32, 32)
  std::vector<int32_t> labels;  // (N,) the fine labels for CIFAR-100
};

// `n` records of random pixels; CIFAR-100 records carry a coarse label byte before the fine one.
std::vector<uint8_t> records(int n, int classes, bool coarse, std::mt19937& rng, Split& split) {
  std::vector<uint8_t> out;
  for (int i = 0; i < n; ++i) {
    if (coarse) out.push_back(static_cast<uint8_t>(rng() % 20));
    const int label = static_cast<int>(rng() % static_cast<uint32_t>(classes));
    out.push_back(static_cast<uint8_t>(label));
    split.labels.push_back(label);
    for (size_t p = 0; p < kPixels; ++p) {
      const uint8_t v = static_cast<uint8_t>(rng() & 0xFF);
      out.push_back(v);
      split.pixels.push_back(v);
    }
  }
  return out;
}

// CIFAR-10 with training files of different lengths, so that their order shows in the result.
struct FakeCifar {
  Split train, test;
};

FakeCifar write_cifar10(const std::string& dir) {
  std::mt19937 rng(101);
  FakeCifar s;
  const int counts[5] = {3, 1, 4, 2, 5};
  for (int i = 0; i < 5; ++i)
    write_file(dir + "/data_batch_" + std::to_string(i + 1) + ".bin", records(counts[i], 10, false, rng, s.train));
  write_file(dir + "/test_batch.bin", records(6, 10, false, rng, s.test));
  return s;
}

FakeCifar write_cifar100(const std::string& dir) {
  std::mt19937 rng(102);
  FakeCifar s;
  write_file(dir + "/train.bin", records(9, 100, true, rng, s.train));
  write_file(dir + "/test.bin", records(4, 100, true, rng, s.test));
  return s;
}

void expect_split(const Dataset& d, const Split& want, const std::string& name, int classes) {
  const int64_t n = static_cast<int64_t>(want.labels.size());
  EXPECT_EQ(d.name, name);
  EXPECT_EQ(d.num_classes, classes);
  EXPECT_EQ(d.images.shape(), (Shape{n, 3, 32, 32}));
  EXPECT_EQ(d.images.dtype(), DType::U8);
  EXPECT_EQ(d.labels.dtype(), DType::I32);
  EXPECT_EQ(d.images.to_vector<uint8_t>(), want.pixels);
  EXPECT_EQ(d.labels.to_vector<int32_t>(), want.labels);
}

// Per-channel constants of the training pixels in double: each record's channel planes are 1024 bytes apart.
void expect_constants(const DataSplits& d, const Split& train) {
  ASSERT_EQ(d.train.mean.size(), 3u);
  ASSERT_EQ(d.train.std.size(), 3u);
  for (size_t c = 0; c < 3; ++c) {
    double sum = 0, sum_sq = 0, count = 0;
    for (size_t r = 0; r < train.labels.size(); ++r)
      for (size_t j = 0; j < 1024; ++j) {
        const double v = train.pixels[r * kPixels + c * 1024 + j] / 255.0;
        sum += v;
        sum_sq += v * v;
        ++count;
      }
    const double mean = sum / count;
    EXPECT_NEAR(d.train.mean[c], mean, 1e-6) << "channel " << c;
    EXPECT_NEAR(d.train.std[c], std::sqrt(sum_sq / count - mean * mean), 1e-6) << "channel " << c;
  }
  EXPECT_EQ(d.test.mean, d.train.mean);
  EXPECT_EQ(d.test.std, d.train.std);
}

TEST(CifarLoader, LoadsCifar10InFileOrder) {
  TempDir dir;
  const FakeCifar s = write_cifar10(dir.str());
  const DataSplits d = load_cifar_dataset("cifar10", dir.str());
  expect_split(d.train, s.train, "cifar10", 10);
  expect_split(d.test, s.test, "cifar10", 10);
  expect_constants(d, s.train);
}

TEST(CifarLoader, LoadsCifar100FineLabels) {
  TempDir dir;
  const FakeCifar s = write_cifar100(dir.str());
  const DataSplits d = load_cifar_dataset("cifar100", dir.str());
  expect_split(d.train, s.train, "cifar100", 100);
  expect_split(d.test, s.test, "cifar100", 100);
  expect_constants(d, s.train);
}

TEST(CifarLoader, FindsTheExtractedArchiveFolder) {
  TempDir dir;
  fs::create_directories(dir.file("cifar-10-batches-bin"));
  fs::create_directories(dir.file("cifar-100-binary"));
  const FakeCifar ten = write_cifar10(dir.file("cifar-10-batches-bin"));
  const FakeCifar hundred = write_cifar100(dir.file("cifar-100-binary"));
  expect_split(load_cifar_dataset("cifar10", dir.str()).train, ten.train, "cifar10", 10);
  expect_split(load_cifar_dataset("cifar10", dir.file("cifar-10-batches-bin")).test, ten.test, "cifar10", 10);
  expect_split(load_cifar_dataset("cifar100", dir.str()).train, hundred.train, "cifar100", 100);
}

TEST(CifarLoader, LoadsThroughDataSpec) {
  TempDir dir;
  const FakeCifar s = write_cifar100(dir.str());
  const DataSplits d = load_dataset(parse_data_spec("cifar100:" + dir.str()));
  expect_split(d.test, s.test, "cifar100", 100);
}

TEST(CifarLoader, RejectsMissingFileNamingItAndTheDirectory) {
  TempDir dir;
  write_cifar10(dir.str());
  fs::remove(dir.file("data_batch_3.bin"));
  EXPECT_TRUE(throws_error([&] { load_cifar_dataset("cifar10", dir.str()); },
                           {dir.file("data_batch_3.bin"), "no such file", "in " + dir.str(), "cifar-10-binary.tar.gz"}));
  fs::create_directories(dir.file("cifar-100-binary"));
  write_cifar100(dir.file("cifar-100-binary"));
  const std::string nested = dir.file("cifar-100-binary");
  fs::remove(nested + "/test.bin");
  EXPECT_TRUE(throws_error([&] { load_cifar_dataset("cifar100", dir.str()); },
                           {nested + "/test.bin", "no such file", "in " + nested}));
}

TEST(CifarLoader, RejectsDirectoryWithoutAnyFile) {
  TempDir dir;
  EXPECT_TRUE(throws_error([&] { load_cifar_dataset("cifar10", dir.str()); },
                           {dir.file("data_batch_1.bin"), "holds none of them", "cifar-10-batches-bin/"}));
  EXPECT_TRUE(throws_error([&] { load_cifar_dataset("cifar100", "/nonexistent/sieve-cifar"); },
                           {"/nonexistent/sieve-cifar", "no such directory", "cifar-100-binary.tar.gz"}));
  EXPECT_TRUE(throws_error([&] { load_cifar_dataset("cifar10", ""); }, "cifar10 needs a directory"));
}

TEST(CifarLoader, RejectsSizeNotAWholeNumberOfRecords) {
  TempDir dir;
  write_cifar10(dir.str());
  std::mt19937 rng(3);
  Split unused;
  std::vector<uint8_t> bytes = records(2, 10, false, rng, unused);
  bytes.resize(bytes.size() - 5);  // 6141 = 3073 + 3068
  write_file(dir.file("data_batch_2.bin"), bytes);
  EXPECT_TRUE(throws_error([&] { load_cifar_dataset("cifar10", dir.str()); },
                           {dir.file("data_batch_2.bin"), "size 6141 bytes", "record size 3073"}));

  TempDir dir100;
  write_cifar100(dir100.str());
  write_file(dir100.file("test.bin"), records(1, 10, false, rng, unused));  // a CIFAR-10 record: 3073 bytes
  EXPECT_TRUE(throws_error([&] { load_cifar_dataset("cifar100", dir100.str()); },
                           {dir100.file("test.bin"), "size 3073 bytes", "record size 3074"}));
}

TEST(CifarLoader, RejectsLabelOutOfRangeNamingRecordAndValue) {
  TempDir dir;
  write_cifar10(dir.str());
  std::mt19937 rng(4);
  Split unused;
  std::vector<uint8_t> bytes = records(4, 10, false, rng, unused);
  bytes[2 * (kPixels + 1)] = 10;  // label byte of record 2
  write_file(dir.file("data_batch_4.bin"), bytes);
  EXPECT_TRUE(throws_error([&] { load_cifar_dataset("cifar10", dir.str()); },
                           {dir.file("data_batch_4.bin"), "label out of range at record 2: 10", "0 to 9"}));

  TempDir dir100;
  write_cifar100(dir100.str());
  bytes = records(3, 100, true, rng, unused);
  bytes[1 * (kPixels + 2) + 1] = 100;  // fine label of record 1
  write_file(dir100.file("train.bin"), bytes);
  EXPECT_TRUE(throws_error([&] { load_cifar_dataset("cifar100", dir100.str()); },
                           {dir100.file("train.bin"), "label out of range at record 1: 100", "0 to 99"}));
  bytes[1 * (kPixels + 2) + 1] = 7;
  bytes[2 * (kPixels + 2)] = 20;  // coarse label of record 2
  write_file(dir100.file("train.bin"), bytes);
  EXPECT_TRUE(throws_error([&] { load_cifar_dataset("cifar100", dir100.str()); },
                           {dir100.file("train.bin"), "coarse label out of range at record 2: 20"}));
}

TEST(CifarLoader, RejectsEmptyFile) {
  TempDir dir;
  write_cifar10(dir.str());
  write_file(dir.file("test_batch.bin"), {});
  EXPECT_TRUE(throws_error([&] { load_cifar_dataset("cifar10", dir.str()); },
                           {dir.file("test_batch.bin"), "empty file"}));
}

TEST(CifarSpec, RequiresADirectory) {
  const std::vector<std::string>& names = known_dataset_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "cifar10"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "cifar100"), names.end());
  EXPECT_EQ(parse_data_spec("cifar10:/data/c10").dir, "/data/c10");
  EXPECT_EQ(parse_data_spec("cifar100:/data/c100").name, "cifar100");
  EXPECT_TRUE(throws_error([] { parse_data_spec("cifar10"); },
                           {"bad --data 'cifar10'", "needs a directory", "cifar10:DIR", "cifar-10-binary.tar.gz"}));
  EXPECT_TRUE(throws_error([] { parse_data_spec("cifar100"); }, std::vector<std::string>{"cifar100:DIR", "cifar-100-binary.tar.gz"}));
  EXPECT_TRUE(throws_error([] { parse_data_spec("cifar"); }, {"unknown data set 'cifar'", "cifar10", "cifar100"}));
}

// The real CIFAR-10, where SIEVE_CIFAR10_DIR points at it (no package installs it).
TEST(CifarLoader, LoadsRealCifar10) {
  const char* dir = std::getenv("SIEVE_CIFAR10_DIR");
  if (!dir) GTEST_SKIP() << "SIEVE_CIFAR10_DIR not set";
  const DataSplits d = load_cifar_dataset("cifar10", dir);
  EXPECT_EQ(d.train.images.shape(), (Shape{50000, 3, 32, 32}));
  EXPECT_EQ(d.test.images.shape(), (Shape{10000, 3, 32, 32}));
  // The widely quoted constants, to the digits they are quoted with.
  const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2470f, 0.2435f, 0.2616f};
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(d.train.mean[c], mean[c], 5e-4) << "channel " << c;
    EXPECT_NEAR(d.train.std[c], std[c], 5e-4) << "channel " << c;
  }
}

}  // namespace
}  // namespace sieve
