// The safetensors format: round trips over every dtype and shape, the exact bytes of a tiny file as the Python
// package writes them, refusal of each kind of malformed file, and atomic saves that leave nothing behind.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/safetensors.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

namespace fs = std::filesystem;
using testing::random_tensor;
using testing::throws_error;
using Parts = std::vector<std::string>;

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           (std::string("sieve-") + info->test_suite_name() + "-" + info->name() + "-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::set<std::string> listing() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.insert(e.path().filename().string());
    return names;
  }
  fs::path dir_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file with this header text (not padded: the format does not require it) and these data bytes.
std::string file_with_header(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

std::string bytes_of(const Tensor& t) {
  const Tensor host = t.to(Device::cpu());
  return std::string(static_cast<const char*>(host.raw_data()), host.nbytes());
}

Tensor random_of(DType dtype, const Shape& shape, uint64_t seed, Device device) {
  const Tensor f = random_tensor(shape, seed, Device::cpu(), -100.f, 100.f);
  const std::vector<float> v = f.to_vector<float>();
  switch (dtype) {
    case DType::F32:
      return f.to(device);
    case DType::I32:
      return Tensor::from_vector(std::vector<int32_t>(v.begin(), v.end()), shape, device);
    case DType::I64: {
      std::vector<int64_t> w;
      for (float x : v) w.push_back(static_cast<int64_t>(x) * 40000000000LL);  // beyond 32 bits
      return Tensor::from_vector(w, shape, device);
    }
    case DType::U8: {
      std::vector<uint8_t> w;
      for (float x : v) w.push_back(static_cast<uint8_t>(x + 100.f));
      return Tensor::from_vector(w, shape, device);
    }
  }
  return f;
}

class SafetensorsDeviceTest : public testing::DeviceTest {
 protected:
  void SetUp() override {
    testing::DeviceTest::SetUp();
    dir_ = fs::temp_directory_path() / ("sieve-safetensors-device-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_P(SafetensorsDeviceTest, RoundTripsEveryDtypeAndShape) {
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"u8.cube", random_of(DType::U8, {2, 3, 4}, 1, device())},
      {"f32.matrix", random_of(DType::F32, {3, 5}, 2, device())},
      {"i64.scalar", random_of(DType::I64, {}, 3, device())},
      {"i32.vector", random_of(DType::I32, {7}, 4, device())},
      {"f32.empty", Tensor::empty({0}, DType::F32, device())},
      {"i64.empty", Tensor::empty({2, 0, 3}, DType::I64, device())},
      {"f32.scalar", random_of(DType::F32, {}, 5, device())},
      {"u8.odd", random_of(DType::U8, {5}, 6, device())},
  };
  const std::map<std::string, std::string> metadata = {
      {"plain", "value"}, {"quoted \"json\"", "{\"a\": [1, 2]}\n\ttabbed"}, {"utf8 τ", "ñ ü 中"}, {"empty", ""}};
  const std::string file = (dir_ / "all.safetensors").string();
  save_safetensors(file, tensors, metadata);

  const SafetensorsFile loaded = load_safetensors(file);
  EXPECT_EQ(loaded.metadata, metadata);
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  // Note [safetensors layout]: the file's order is the package's, widest dtype first, then by name.
  const std::vector<std::string> order = {"i64.empty",  "i64.scalar", "f32.empty", "f32.matrix",
                                          "f32.scalar", "i32.vector", "u8.cube",   "u8.odd"};
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& [name, t] = loaded.tensors[i];
    EXPECT_EQ(name, order[i]);
    const auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
    ASSERT_NE(it, tensors.end()) << name;
    EXPECT_TRUE(t.device().is_cpu());
    EXPECT_EQ(t.dtype(), it->second.dtype()) << name;
    EXPECT_EQ(t.shape(), it->second.shape()) << name;
    EXPECT_EQ(bytes_of(t), bytes_of(it->second)) << name;  // bit-exact, every dtype
  }
}

SIEVE_INSTANTIATE_DEVICE_TESTS(SafetensorsDeviceTest);

TEST_F(SafetensorsTest, WritesTheExactBytesOfThePythonPackage) {
  // What safetensors.numpy.save({"b": uint8 [1, 2, 3], "a": float32 [1, -2]}, metadata={"k": "v"}) returns:
  // the length 136 little-endian, 132 bytes of compact JSON with the tensors sorted (F32 before U8) and 4 spaces
  // of padding to a multiple of 8, then a's 8 bytes and b's 3.
  const std::string json = R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}})";
  ASSERT_EQ(json.size(), 132u);
  const std::string expected = std::string("\x88\0\0\0\0\0\0\0", 8) + json + "    " +
                               std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0\x01\x02\x03", 11);
  const std::string file = path("tiny.safetensors");
  save_safetensors(
      file, {{"b", Tensor::from_vector<uint8_t>({1, 2, 3}, {3})}, {"a", Tensor::from_vector<float>({1.f, -2.f}, {2})}},
      {{"k", "v"}});
  EXPECT_EQ(read_bytes(file), expected);

  // Without metadata there is no "__metadata__" key (the package's metadata=None).
  save_safetensors(file, {{"x", Tensor::from_vector<int32_t>({7}, {})}});
  const std::string bare = R"({"x":{"dtype":"I32","shape":[],"data_offsets":[0,4]}})";
  EXPECT_EQ(read_bytes(file), le64(56) + bare + std::string(56 - bare.size(), ' ') + std::string("\x07\0\0\0", 4));
}

TEST_F(SafetensorsTest, RefusesMalformedFilesWithOneLine) {
  const std::string f = path("bad.safetensors");
  const auto refused = [&](const std::string& bytes, const std::vector<std::string>& parts) {
    write_bytes(f, bytes);
    std::vector<std::string> all = parts;
    all.push_back(f);  // every message names the file
    return throws_error([&] { load_safetensors(f); }, all);
  };
  const std::string u8 = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  write_bytes(f, file_with_header(u8, "xy"));
  ASSERT_NO_THROW(load_safetensors(f));  // the well-formed base the cases below break

  EXPECT_TRUE(refused("", {"truncated", "0 bytes"}));
  EXPECT_TRUE(refused(std::string("\x10\0\0", 3), {"truncated", "3 bytes"}));
  EXPECT_TRUE(refused(le64(uint64_t(1) << 40) + "{}", {"not a safetensors file", "header length"}));
  EXPECT_TRUE(refused("\x89PNG\r\n\x1a\n and more", {"not a safetensors file"}));
  EXPECT_TRUE(refused(le64(100) + u8, {"truncated", "header takes 100 bytes"}));
  EXPECT_TRUE(refused(file_with_header("{\"a\": [1,\n", ""), {"not a safetensors file", "not JSON"}));
  EXPECT_TRUE(refused(file_with_header(std::string("{}\0\0\0\0\0\0", 8), ""), {"not JSON"}));
  EXPECT_TRUE(refused(file_with_header("[1, 2]", ""), {"not a safetensors file", "array", "expected an object"}));
  EXPECT_TRUE(refused(file_with_header(R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", "xy"),
                      {"tensor 'a'", "dtype \"F16\"", "F32, I32, I64, U8"}));
  EXPECT_TRUE(refused(file_with_header(R"({"a\nb":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}})", "x"),
                      {"tensor 'a?b'"}));  // a name from the file cannot break the message over two lines
  EXPECT_TRUE(
      refused(file_with_header(R"({"a":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}})", "x"), {"dtype \"Q8\""}));
  EXPECT_TRUE(refused(file_with_header(R"({"a":{"dtype":"U8","data_offsets":[0,1]}})", "x"), {"lacks \"shape\""}));
  EXPECT_TRUE(refused(file_with_header(R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "x"),
                      {"tensor 'a'", "sizes >= 0"}));
  EXPECT_TRUE(refused(file_with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"),
                      {"tensor 'a'", "span 4 bytes", "float32[2] takes 8"}));
  EXPECT_TRUE(refused(file_with_header(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}})", "xy"),
                      {"tensor 'a'", "negative"}));
  EXPECT_TRUE(refused(file_with_header(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0]}})", "xy"),
                      {"expected [begin, end]"}));
  EXPECT_TRUE(refused(file_with_header(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                       R"("b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})",
                                       "xyz"),
                      {"tensor 'b'", "overlaps tensor 'a'"}));
  EXPECT_TRUE(refused(file_with_header(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", "xyz"),
                      {"bytes [0, 1)", "no gap"}));
  EXPECT_TRUE(refused(file_with_header(u8, "x"), {"truncated", "take 2 bytes", "holds 1"}));
  EXPECT_TRUE(refused(file_with_header(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],)"
                                       R"("data_offsets":[0,0]}})",
                                       ""),
                      {"too large"}));
  EXPECT_TRUE(refused(file_with_header(u8, "xyGARBAGE"), {"7 bytes of trailing data"}));
  EXPECT_TRUE(refused(file_with_header(R"({"__metadata__":{"k":1}})", ""), {"__metadata__", "expected a string"}));
  EXPECT_TRUE(throws_error([&] { load_safetensors(path("missing.safetensors")); }, Parts{"cannot open", "missing"}));
  EXPECT_TRUE(throws_error([&] { load_safetensors(dir_.string()); }, Parts{"not a regular file"}));
}

// A file of unpadded JSON, leading whitespace and unknown fields is still valid (the package reads it).
TEST_F(SafetensorsTest, ReadsWhatThePackageAccepts) {
  const std::string f = path("ok.safetensors");
  write_bytes(f, file_with_header(R"( {"z":{"dtype":"I32","shape":[],"data_offsets":[4,8],"extra":1},)"
                                  R"("y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"U8",)"
                                  R"("shape":[0],"data_offsets":[8,8]}})",
                                  std::string("\0\0\x80\x3f\x05\0\0\0", 8)));
  const SafetensorsFile loaded = load_safetensors(f);
  ASSERT_EQ(loaded.tensors.size(), 3u);
  EXPECT_EQ(loaded.tensors[0].first, "y");
  EXPECT_EQ(loaded.tensors[0].second.to_vector<float>(), std::vector<float>{1.f});
  EXPECT_EQ(loaded.tensors[1].first, "z");
  EXPECT_EQ(loaded.tensors[1].second.to_vector<int32_t>(), std::vector<int32_t>{5});
  EXPECT_EQ(loaded.tensors[2].first, "e");
  EXPECT_EQ(loaded.tensors[2].second.shape(), Shape{0});
  EXPECT_TRUE(loaded.metadata.empty());
}

TEST_F(SafetensorsTest, FailedSaveLeavesTheTargetAndNoTemporary) {
  const std::string target = path("model.safetensors");
  save_safetensors(target, {{"w", random_tensor({4, 4}, 1)}}, {{"step", "1"}});
  const std::string before = read_bytes(target);
  const std::set<std::string> only_target = {"model.safetensors"};

  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(target, {{"w", random_tensor({4}, 2)}, {"u", Tensor()}});
      },
      {target, "tensor 'u' is undefined"}));
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(target, {{"w", random_tensor({4}, 2)}, {"w", random_tensor({4}, 3)}});
      },
      Parts{"two tensors are named 'w'"}));
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(target, {{"__metadata__", random_tensor({4}, 2)}});
      },
      Parts{"not a valid tensor name"}));
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(target, {{"w", random_tensor({4}, 2)}}, {{"bad", "\xff\xfe"}});
      },
      Parts{"not valid UTF-8"}));
  EXPECT_TRUE(throws_error(
      [&] {
        save_safetensors(path("missing/dir/model.safetensors"), {{"w", random_tensor({4}, 2)}});
      },
      Parts{"cannot write", "missing/dir/model.safetensors", "No such file or directory"}));
  EXPECT_EQ(read_bytes(target), before);
  EXPECT_EQ(listing(), only_target);

  // A write that fails half way (as on a full disk): a file-size limit makes write(2) fail with EFBIG once the
  // temporary passes 4 KiB, long after it was created and partly written.
  {
    struct rlimit old_limit {};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old_limit;
    small.rlim_cur = 4096;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    const auto failure = throws_error(
        [&] {
          save_safetensors(target, {{"w", random_tensor({100000}, 2)}});
        },
        Parts{"cannot write", target, "File too large"});
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    ::signal(SIGXFSZ, old_handler);
    EXPECT_TRUE(failure);
  }
  EXPECT_EQ(read_bytes(target), before);
  EXPECT_EQ(listing(), only_target);

  // A successful save replaces the target, and leaves nothing else.
  const Tensor w = random_tensor({3}, 9);
  save_safetensors(target, {{"w", w}});
  EXPECT_NE(read_bytes(target), before);
  EXPECT_EQ(bytes_of(load_safetensors(target).tensors.at(0).second), bytes_of(w));
  EXPECT_EQ(listing(), only_target);
}

// Note [stale temporaries]: a save removes the temporaries of its own target whose writer is gone, and nothing else:
// not a live writer's (this process's), not another target's, not a name that only looks like one.
TEST_F(SafetensorsTest, SaveRemovesTheTemporariesOfDeadWritersOnly) {
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(dead, &status, 0), dead);  // reaped: its number names no process now
  const std::string target = path("model.safetensors");
  const std::string gone = "model.safetensors.tmp." + std::to_string(dead) + ".0";
  const std::string live = "model.safetensors.tmp." + std::to_string(::getpid()) + ".7";
  const std::string other = "other.safetensors.tmp." + std::to_string(dead) + ".0";
  for (const std::string& name : {gone, live, other, std::string("model.safetensors.tmp.x1.0"),
                                  std::string("model.safetensors.tmp." + std::to_string(dead))})
    std::ofstream(path(name)) << "partial";
  save_safetensors(target, {{"w", random_tensor({4}, 1)}});
  const std::set<std::string> expected = {"model.safetensors", live, other, "model.safetensors.tmp.x1.0",
                                          "model.safetensors.tmp." + std::to_string(dead)};
  EXPECT_EQ(listing(), expected);
}

// Optional: with SIEVE_PYTHON (or python3) able to import safetensors and numpy, the package reads sieve's file
// (tensors and metadata) and, re-saving the tensors it read, writes the very bytes sieve writes for them; sieve
// reads the package's file back. (The package orders metadata keys as its hash map does, so the byte comparison
// leaves metadata out and compares it as JSON.)
TEST_F(SafetensorsTest, MatchesThePythonPackage) {
  const char* env = std::getenv("SIEVE_PYTHON");
  const std::string python = env ? env : "python3";
  if (std::system((python + " -c 'import safetensors, numpy' > /dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << python << " cannot import safetensors and numpy (set SIEVE_PYTHON to one that can)";
  const std::string ours = path("ours.safetensors"), bare = path("bare.safetensors"),
                    theirs = path("theirs.safetensors"), meta = path("meta.json");
  const Device cpu = Device::cpu();
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"1.weight", random_of(DType::F32, {4, 3}, 1, cpu)}, {"1.bias", random_of(DType::F32, {4}, 2, cpu)},
      {"labels", random_of(DType::I32, {6}, 3, cpu)},      {"count", random_of(DType::I64, {}, 4, cpu)},
      {"pixels", random_of(DType::U8, {2, 5}, 5, cpu)},    {"none", Tensor::empty({0, 2}, DType::F32)}};
  const std::map<std::string, std::string> metadata = {{"format", "sieve-checkpoint"}, {"note", "τ \"quoted\"\n"}};
  save_safetensors(ours, tensors, metadata);
  save_safetensors(bare, tensors);
  const std::string script =
      "import sys, json; from safetensors.numpy import load_file, save_file; from safetensors import safe_open; "
      "save_file(load_file(sys.argv[1]), sys.argv[2]); "
      "json.dump(safe_open(sys.argv[1], 'np').metadata(), open(sys.argv[3], 'w'))";
  ASSERT_EQ(std::system((python + " -c \"" + script + "\" " + ours + " " + theirs + " " + meta).c_str()), 0);
  EXPECT_EQ(read_bytes(theirs), read_bytes(bare));
  using StringMap = std::map<std::string, std::string>;
  EXPECT_EQ(nlohmann::json::parse(read_bytes(meta)).get<StringMap>(), metadata);
  const SafetensorsFile back = load_safetensors(theirs);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [name, t] : back.tensors) {
    const auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
    ASSERT_NE(it, tensors.end()) << name;
    EXPECT_EQ(t.shape(), it->second.shape()) << name;
    EXPECT_EQ(bytes_of(t), bytes_of(it->second)) << name;
  }
}

}  // namespace
}  // namespace sieve
