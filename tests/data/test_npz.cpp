// NumPy .npz data sets (Note [npz data sets]): archives written here byte by byte (stored and deflated members, ZIP64
// records as numpy writes them) round-trip through every layout and dtype, and every malformed file is a one-line
// sieve::Error naming the file and the fault. Where python3 can import numpy, files numpy itself wrote are read too.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"
#include "data/npz.h"
#include "tests/data/npz_writer.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::TempDir;
using testing::throws_error;
using namespace npz_test;
using Parts = std::vector<std::string>;

// ---- a small data set ----

// Images as sieve should return them, [N, C, H, W], and their labels.
struct Expected {
  int64_t n_train = 0, n_test = 0, c = 0, h = 0, w = 0;
  std::vector<uint8_t> train, test;
  std::vector<int32_t> train_labels, test_labels;
};

Expected random_expected(int64_t n_train, int64_t n_test, int64_t c, int64_t h, int64_t w, int classes,
                         uint32_t seed) {
  std::mt19937 rng(seed);
  Expected e{n_train, n_test, c, h, w, {}, {}, {}, {}};
  for (auto* v : {&e.train, &e.test}) {
    v->resize(static_cast<size_t>((v == &e.train ? n_train : n_test) * c * h * w));
    for (auto& b : *v) b = static_cast<uint8_t>(rng() & 0xFF);
  }
  for (int64_t i = 0; i < n_train; ++i) e.train_labels.push_back(static_cast<int32_t>(i % classes));
  for (int64_t i = 0; i < n_test; ++i) e.test_labels.push_back(static_cast<int32_t>((i * 5 + 1) % classes));
  return e;
}

enum class Layout { NHW, NHWC, NCHW };

// The pixels [N, C, H, W] rearranged into `layout` (row-major, or first index fastest when `fortran`), as T.
template <typename T>
std::vector<T> arrange(const std::vector<uint8_t>& nchw, int64_t n, int64_t c, int64_t h, int64_t w, Layout layout,
                       bool fortran, const std::function<T(uint8_t)>& value, std::vector<int64_t>& shape) {
  shape = layout == Layout::NHW    ? std::vector<int64_t>{n, h, w}
          : layout == Layout::NHWC ? std::vector<int64_t>{n, h, w, c}
                                   : std::vector<int64_t>{n, c, h, w};
  std::vector<T> out(nchw.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          std::vector<int64_t> index = layout == Layout::NHW    ? std::vector<int64_t>{i, y, x}
                                       : layout == Layout::NHWC ? std::vector<int64_t>{i, y, x, k}
                                                                : std::vector<int64_t>{i, k, y, x};
          int64_t flat = 0;
          if (fortran)
            for (size_t d = shape.size(); d-- > 0;) flat = flat * shape[d] + index[d];
          else
            for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + index[d];
          out[static_cast<size_t>(flat)] = value(nchw[static_cast<size_t>(((i * c + k) * h + y) * w + x)]);
        }
  return out;
}

template <typename T>
Bytes image_npy(const std::string& descr, const Expected& e, bool train, Layout layout, bool fortran,
                const std::function<T(uint8_t)>& value) {
  std::vector<int64_t> shape;
  const std::vector<T> v = arrange<T>(train ? e.train : e.test, train ? e.n_train : e.n_test, e.c, e.h, e.w, layout,
                                      fortran, value, shape);
  return npy(descr, shape, v, fortran);
}

Bytes labels_npy(const std::vector<int32_t>& labels) {
  std::vector<int64_t> v(labels.begin(), labels.end());
  return npy("<i8", {static_cast<int64_t>(v.size())}, v);
}

// The four members of a uint8 data set in `layout`.
std::vector<Member> members_of(const Expected& e, Layout layout = Layout::NCHW, uint16_t method = 0) {
  const std::function<uint8_t(uint8_t)> same = [](uint8_t b) { return b; };
  return {{"x_train.npy", image_npy<uint8_t>("|u1", e, true, layout, false, same), method},
          {"y_train.npy", labels_npy(e.train_labels), method},
          {"x_test.npy", image_npy<uint8_t>("|u1", e, false, layout, false, same), method},
          {"y_test.npy", labels_npy(e.test_labels), method}};
}

void expect_loaded(const DataSplits& d, const Expected& e, int classes) {
  EXPECT_EQ(d.train.name, "npz");
  EXPECT_EQ(d.train.images.shape(), (Shape{e.n_train, e.c, e.h, e.w}));
  EXPECT_EQ(d.test.images.shape(), (Shape{e.n_test, e.c, e.h, e.w}));
  EXPECT_TRUE(d.train.images.to_vector<uint8_t>() == e.train) << "training images differ";
  EXPECT_TRUE(d.test.images.to_vector<uint8_t>() == e.test) << "test images differ";
  EXPECT_EQ(d.train.labels.to_vector<int32_t>(), e.train_labels);
  EXPECT_EQ(d.test.labels.to_vector<int32_t>(), e.test_labels);
  EXPECT_EQ(d.train.num_classes, classes);
  EXPECT_EQ(d.test.num_classes, classes);
  std::vector<float> mean, std;
  channel_mean_std(d.train.images, mean, std);
  EXPECT_EQ(d.train.mean, mean);
  EXPECT_EQ(d.train.std, std);
  EXPECT_EQ(d.test.mean, mean);
  EXPECT_EQ(d.test.std, std);
}

// ---- round trips ----

TEST(NpzDataset, ReadsEveryImageLayoutStoredAndDeflated) {
  TempDir dir;
  struct Case {
    Layout layout;
    int64_t c, h, w;
  };
  // [N, 3, 5, 3] has 3 last but also 3 second: channels-first by the rule, as is [N, 4, 5, 6].
  for (const Case& k : {Case{Layout::NHW, 1, 5, 6}, Case{Layout::NHWC, 3, 5, 6}, Case{Layout::NHWC, 1, 5, 6},
                        Case{Layout::NCHW, 3, 5, 6}, Case{Layout::NCHW, 1, 5, 6}, Case{Layout::NCHW, 4, 5, 6},
                        Case{Layout::NCHW, 3, 5, 3}})
    for (uint16_t method : {0, 8}) {
      SCOPED_TRACE("layout " + std::to_string(static_cast<int>(k.layout)) + ", C " + std::to_string(k.c) +
                   ", method " + std::to_string(method));
      const Expected e = random_expected(7, 4, k.c, k.h, k.w, 3, 11 + static_cast<uint32_t>(k.c));
      const std::string path = dir.file("d.npz");
      write_file(path, zip(members_of(e, k.layout, method)));
      expect_loaded(load_npz_dataset(path), e, 3);
    }
}

TEST(NpzDataset, ReadsFortranOrderedImages) {
  TempDir dir;
  const Expected e = random_expected(5, 3, 3, 4, 6, 4, 2);
  const std::function<uint8_t(uint8_t)> same = [](uint8_t b) { return b; };
  for (Layout layout : {Layout::NHW, Layout::NHWC, Layout::NCHW}) {
    Expected f = layout == Layout::NHW ? random_expected(5, 3, 1, 4, 6, 4, 2) : e;
    std::vector<Member> m = members_of(f, layout);
    m[0].data = image_npy<uint8_t>("|u1", f, true, layout, true, same);
    m[2].data = image_npy<uint8_t>("|u1", f, false, layout, true, same);
    const std::string path = dir.file("f.npz");
    write_file(path, zip(m));
    expect_loaded(load_npz_dataset(path), f, 4);
  }
}

// Note [npz float images]: [0, 1] pixels are scaled by 255, [0, 255] pixels kept, both rounded half to even.
TEST(NpzDataset, TurnsFloatImagesIntoBytes) {
  TempDir dir;
  const Expected e = random_expected(6, 3, 3, 4, 5, 5, 8);
  const std::string path = dir.file("float.npz");
  auto with = [&](const Bytes& x_train, const Bytes& x_test) {
    std::vector<Member> m = members_of(e);
    m[0].data = x_train;
    m[2].data = x_test;
    write_file(path, zip(m, {}));
  };
  // x / 255 in float32 and float64 come back exactly, channels-last and deflated too.
  const std::function<float(uint8_t)> unit32 = [](uint8_t b) { return static_cast<float>(b) / 255.f; };
  const std::function<double(uint8_t)> unit64 = [](uint8_t b) { return b / 255.0; };
  const std::function<float(uint8_t)> plain32 = [](uint8_t b) { return static_cast<float>(b); };
  with(image_npy<float>("<f4", e, true, Layout::NHWC, false, unit32),
       image_npy<float>("<f4", e, false, Layout::NHWC, false, unit32));
  expect_loaded(load_npz_dataset(path), e, 5);
  with(image_npy<double>("<f8", e, true, Layout::NCHW, true, unit64),
       image_npy<double>("<f8", e, false, Layout::NCHW, false, unit64));
  expect_loaded(load_npz_dataset(path), e, 5);
  with(image_npy<float>("<f4", e, true, Layout::NCHW, false, plain32),
       image_npy<float>("<f4", e, false, Layout::NCHW, false, plain32));
  expect_loaded(load_npz_dataset(path), e, 5);

  // Rounding: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 254.6 -> 255 in [0, 255] (254.6 > 1 sets that scale).
  const std::vector<float> values = {0.5f, 1.5f, 2.5f, 254.6f, 3.49f, 0.f};
  std::vector<Member> m = members_of(random_expected(1, 1, 1, 2, 3, 2, 1));
  m[0].data = npy("<f4", {1, 2, 3}, values);
  m[2].data = npy("<f4", {1, 2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  m[1].data = npy("<i8", {1}, std::vector<int64_t>{1});
  write_file(path, zip(m));
  EXPECT_EQ(load_npz_dataset(path).train.images.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 2, 2, 255, 3, 0}));
  // In [0, 1]: 0.5 -> 127.5 -> 128 and 0.1 -> 25.5 (in float32) -> 26, ties to even; 1 -> 255.
  m[0].data = npy("<f4", {1, 2, 3}, std::vector<float>{0.5f, 1.f, 0.1f, 0.f, 0.002f, 0.998f});
  m[2].data = npy("<f4", {1, 2, 3}, std::vector<float>{0, 0, 0, 0, 0, 1});
  write_file(path, zip(m));
  EXPECT_EQ(load_npz_dataset(path).train.images.to_vector<uint8_t>(),
            (std::vector<uint8_t>{128, 255, 26, 0, 1, 254}));
}

TEST(NpzDataset, ReadsLabelsOfEveryIntegerType) {
  TempDir dir;
  const Expected e = random_expected(6, 4, 1, 3, 3, 6, 5);
  const std::string path = dir.file("labels.npz");
  auto as = [](const std::vector<int32_t>& labels, const std::string& descr, bool column) {
    const std::vector<int64_t> shape = column ? std::vector<int64_t>{static_cast<int64_t>(labels.size()), 1}
                                              : std::vector<int64_t>{static_cast<int64_t>(labels.size())};
    const int size = descr[2] - '0';
    Bytes data;
    for (int32_t v : labels)
      for (int b = 0; b < size; ++b) data.push_back(static_cast<uint8_t>(b < 4 ? (v >> (8 * b)) : 0));
    return npy_raw(descr, shape, data);
  };
  for (const std::string descr : {"|u1", "<u1", "|i1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8"})
    for (bool column : {false, true}) {
      SCOPED_TRACE(descr + (column ? " (N, 1)" : " (N,)"));
      std::vector<Member> m = members_of(e);
      m[1].data = as(e.train_labels, descr, column);
      m[3].data = as(e.test_labels, descr, column);
      write_file(path, zip(m));
      expect_loaded(load_npz_dataset(path), e, 6);
    }
}

// The class count is the largest label over both splits plus one.
TEST(NpzDataset, CountsClassesOverBothSplits) {
  TempDir dir;
  Expected e = random_expected(4, 3, 1, 2, 2, 2, 1);
  e.test_labels = {0, 6, 1};
  write_file(dir.file("d.npz"), zip(members_of(e)));
  expect_loaded(load_npz_dataset(dir.file("d.npz")), e, 7);
}

// ZIP variants: ZIP64 values in the central directory and end records, an archive comment, no ZIP64 local field,
// every .npy version, members without the .npy suffix, and other arrays beside the four.
TEST(NpzDataset, ReadsZip64RecordsCommentsVersionsAndExtraArrays) {
  TempDir dir;
  const Expected e = random_expected(5, 3, 3, 4, 4, 3, 21);
  const std::string path = dir.file("d.npz");
  for (const ZipOptions& o : {ZipOptions{false, false, false, "", 0}, ZipOptions{true, true, false, "", 0},
                              ZipOptions{true, true, true, "", 0}, ZipOptions{true, false, false, "a comment", 0}}) {
    write_file(path, zip(members_of(e, Layout::NHWC, 8), o));
    expect_loaded(load_npz_dataset(path), e, 3);
  }
  const std::function<uint8_t(uint8_t)> same = [](uint8_t b) { return b; };
  for (int major : {1, 2, 3}) {
    std::vector<Member> m = members_of(e);
    std::vector<int64_t> shape;
    const std::vector<uint8_t> v = arrange<uint8_t>(e.train, e.n_train, e.c, e.h, e.w, Layout::NCHW, false, same,
                                                    shape);
    m[0].data = npy("|u1", shape, v, false, major);
    m[1].name = "y_train";
    m.push_back({"class_names.npy", npy("<i4", {3}, std::vector<int32_t>{1, 2, 3})});
    write_file(path, zip(m));
    const NpzArchive a(path);
    EXPECT_EQ(a.keys(), (std::vector<std::string>{"x_train", "y_train", "x_test", "y_test", "class_names"}));
    expect_loaded(load_npz_dataset(path), e, 3);
  }
}

TEST(NpzArchive, ReadsArraysOfAnyNumericType) {
  TempDir dir;
  const std::string path = dir.file("a.npz");
  write_file(path, zip({{"h.npy", npy("<i2", {2, 3}, std::vector<int16_t>{-1, 2, -300, 4, 5, 6}), 8},
                        {"s.npy", npy("<f8", {}, std::vector<double>{2.5})},
                        {"e.npy", npy("<f4", {0, 3}, std::vector<float>{})}}));
  const NpzArchive a(path);
  EXPECT_TRUE(a.has("h"));
  EXPECT_FALSE(a.has("x"));
  const NpyArray h = a.read("h");
  EXPECT_EQ(h.descr, "<i2");
  EXPECT_EQ(h.kind, 'i');
  EXPECT_EQ(h.item_size, 2);
  EXPECT_EQ(h.shape, (std::vector<int64_t>{2, 3}));
  std::vector<int16_t> values(6);
  ASSERT_EQ(h.data.size(), 12u);
  std::memcpy(values.data(), h.data.data(), 12);
  EXPECT_EQ(values, (std::vector<int16_t>{-1, 2, -300, 4, 5, 6}));
  const NpyArray s = a.read("s");
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.numel(), 1);
  double v = 0;
  std::memcpy(&v, s.data.data(), 8);
  EXPECT_EQ(v, 2.5);
  EXPECT_EQ(a.read("e").numel(), 0);
  EXPECT_TRUE(throws_error([&] { a.read("x"); }, {path, "no array 'x'", "holds h, s, e"}));
}

TEST(NpzSpec, NamesTheFile) {
  const std::vector<std::string>& names = known_dataset_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "npz"), names.end());
  const DataSpec s = parse_data_spec("npz:/data/my:set.npz");
  EXPECT_EQ(s.name, "npz");
  EXPECT_EQ(s.dir, "/data/my:set.npz");
  EXPECT_TRUE(throws_error([] { parse_data_spec("npz"); }, {"bad --data 'npz'", "npz:FILE"}));
  EXPECT_TRUE(throws_error([] { parse_data_spec("npz:"); }, {"empty file", "npz:FILE"}));
  EXPECT_TRUE(throws_error([] { load_dataset(DataSpec{"npz", ""}); }, "--data npz:FILE"));
  TempDir dir;
  const Expected e = random_expected(3, 2, 3, 2, 2, 2, 3);
  write_file(dir.file("d.npz"), zip(members_of(e, Layout::NHWC)));
  expect_loaded(load_dataset(parse_data_spec("npz:" + dir.file("d.npz"))), e, 2);
}

// ---- malformed data sets ----

class NpzErrors : public ::testing::Test {
 protected:
  void SetUp() override { e_ = random_expected(4, 3, 3, 4, 4, 3, 9); }
  // The data set with member `index` replaced by `data` (or changed by `change`), written and loaded.
  std::function<void()> loading(const std::vector<Member>& members, const ZipOptions& o = {}) {
    write_file(path(), zip(members, o));
    return [p = path()] { load_npz_dataset(p); };
  }
  std::vector<Member> with(size_t index, const Bytes& data) const {
    std::vector<Member> m = members_of(e_);
    m[index].data = data;
    return m;
  }
  std::vector<Member> changed(size_t index, const std::function<void(Member&)>& change, uint16_t method = 0) const {
    std::vector<Member> m = members_of(e_, Layout::NCHW, method);
    change(m[index]);
    return m;
  }
  std::string path() const { return dir_.file("bad.npz"); }
  Parts at(const std::string& array, const Parts& parts) const {
    Parts out = {path() + ": " + array};
    out.insert(out.end(), parts.begin(), parts.end());
    return out;
  }

  TempDir dir_;
  Expected e_;
};

TEST_F(NpzErrors, WrongKeys) {
  std::vector<Member> m = members_of(e_);
  m.erase(m.begin() + 2, m.end());
  m.push_back({"x_val.npy", m[0].data});
  EXPECT_TRUE(throws_error(loading(m), {path(), "no x_test, y_test", "holds x_train, y_train, x_val"}));
  EXPECT_TRUE(throws_error(loading({}), {path(), "no x_train, y_train, x_test, y_test", "holds none"}));
  m = members_of(e_);
  m.push_back({"x_train", m[0].data});
  EXPECT_TRUE(throws_error(loading(m), {path(), "holds 'x_train' twice"}));
}

TEST_F(NpzErrors, WrongDtypes) {
  const Bytes float_labels = npy("<f4", {4}, std::vector<float>{0, 1, 2, 0});
  const Bytes int_images = npy("<i8", {4, 2, 2}, std::vector<int64_t>(16, 1));
  EXPECT_TRUE(throws_error(loading(with(0, int_images)), at("x_train", {"images of dtype '<i8'", "uint8"})));
  EXPECT_TRUE(throws_error(loading(with(2, npy("<f2", {3, 2, 2}, std::vector<uint16_t>(12, 0)))),
                           at("x_test", {"images of dtype '<f2'"})));
  EXPECT_TRUE(throws_error(loading(with(0, npy("|b1", {4, 2, 2}, std::vector<uint8_t>(16, 1)))),
                           at("x_train", {"images of dtype '|b1'"})));
  EXPECT_TRUE(throws_error(loading(with(1, float_labels)), at("y_train", {"labels of dtype '<f4'", "integer"})));
  EXPECT_TRUE(throws_error(loading(with(0, npy(">f4", {4, 2, 2}, std::vector<float>(16, 1)))),
                           at("x_train.npy", {"'>f4' is big-endian"})));
  EXPECT_TRUE(throws_error(loading(with(0, npy_raw("|O", {4}, Bytes(32, 0)))), at("x_train.npy", {"'|O'", "not "
                           "supported"})));
  EXPECT_TRUE(throws_error(loading(with(0, npy_raw("", {}, {}, false, 1, "{'descr': [('a', '<i4')], "
                                                   "'fortran_order': False, 'shape': (1,), }"))),
                           at("x_train.npy", {"structured dtype"})));
  std::vector<Member> mixed = with(0, npy("<f4", {4, 3, 4, 4}, std::vector<float>(192, 0.5f)));
  EXPECT_TRUE(throws_error(loading(mixed), {path(), "x_train is <f4 but x_test is |u1"}));
}

TEST_F(NpzErrors, WrongShapes) {
  EXPECT_TRUE(throws_error(loading(with(0, npy("|u1", {4, 48}, std::vector<uint8_t>(192, 1)))),
                           at("x_train", {"expected images of shape [N, H, W], [N, H, W, C] or [N, C, H, W]",
                                          "(4, 48)"})));
  EXPECT_TRUE(throws_error(loading(with(0, npy("|u1", {4, 1, 3, 4, 4}, std::vector<uint8_t>(192, 1)))),
                           at("x_train", {"(4, 1, 3, 4, 4)"})));
  EXPECT_TRUE(throws_error(loading(with(2, npy("|u1", {3, 0, 4}, std::vector<uint8_t>{}))),
                           at("x_test", {"(3, 0, 4)", "no pixels"})));
  EXPECT_TRUE(throws_error(loading(with(2, npy("|u1", {3, 3, 4, 5}, std::vector<uint8_t>(180, 1)))),
                           {path(), "x_test holds 3x4x5 images", "x_train holds 3x4x4"}));
  // [N, 4, 4, 3] is channels-last: 3x4x4 as x_train, but [N, 4, 4, 4] is channels-first: 4x4x4.
  EXPECT_TRUE(throws_error(loading(with(2, npy("|u1", {3, 4, 4, 4}, std::vector<uint8_t>(192, 1)))),
                           {"x_test holds 4x4x4 images (shape (3, 4, 4, 4) read as [N, C, H, W]"}));
  EXPECT_TRUE(throws_error(loading(with(1, npy("<i8", {4, 2}, std::vector<int64_t>(8, 1)))),
                           at("y_train", {"expected labels of shape (N,) or (N, 1), found shape (4, 2)"})));
}

TEST_F(NpzErrors, WrongLengths) {
  EXPECT_TRUE(throws_error(loading(with(1, npy("<i8", {5}, std::vector<int64_t>(5, 1)))),
                           at("y_train", {"5 labels for 4 images in x_train"})));
  EXPECT_TRUE(throws_error(loading(with(3, npy("<i8", {2, 1}, std::vector<int64_t>(2, 1)))),
                           at("y_test", {"2 labels for 3 images in x_test"})));
}

TEST_F(NpzErrors, LabelsOutOfRange) {
  EXPECT_TRUE(throws_error(loading(with(1, npy("<i8", {4}, std::vector<int64_t>{0, 1, -1, 2}))),
                           at("y_train", {"negative label -1 at index 2"})));
  EXPECT_TRUE(throws_error(loading(with(3, npy("|i1", {3}, std::vector<int8_t>{0, -128, 2}))),
                           at("y_test", {"negative label -128 at index 1"})));
  EXPECT_TRUE(throws_error(loading(with(1, npy("<u8", {4}, std::vector<uint64_t>{0, 1, 2, ~uint64_t{0}}))),
                           at("y_train", {"label 18446744073709551615 at index 3 is out of range"})));
  EXPECT_TRUE(throws_error(loading(with(1, npy("<i4", {4}, std::vector<int32_t>{0, 1000000, 1, 2}))),
                           at("y_train", {"label 1000000 at index 1 is out of range", "0 to 999999"})));
  std::vector<Member> zeros = with(1, npy("<i8", {4}, std::vector<int64_t>(4, 0)));
  zeros[3].data = npy("<i8", {3}, std::vector<int64_t>(3, 0));
  EXPECT_TRUE(throws_error(loading(zeros), {path(), "every label is 0", "at least 2 classes"}));
}

TEST_F(NpzErrors, FloatPixelsOutsideTheRange) {
  std::vector<float> v(192, 0.5f);
  auto images = [&](size_t at_index, float value) {
    std::vector<float> w = v;
    w[at_index] = value;
    std::vector<Member> m = with(0, npy("<f4", {4, 3, 4, 4}, w));
    m[2].data = npy("<f4", {3, 3, 4, 4}, std::vector<float>(144, 0.25f));
    return m;
  };
  EXPECT_TRUE(throws_error(loading(images(7, -0.5f)), {path(), "float pixels range from -0.5 to 0.5", "[0, 255]"}));
  EXPECT_TRUE(throws_error(loading(images(7, 256.f)), {path(), "from 0.25 to 256"}));
  // Element 9 of [4, 3, 4, 4] is (0, 0, 2, 1); element 3 of its Fortran-ordered twin is (3, 0, 0, 0).
  EXPECT_TRUE(throws_error(loading(images(9, std::nanf(""))), at("x_train", {"pixel value nan at (0, 0, 2, 1)"})));
  std::vector<float> w = v;
  w[3] = INFINITY;
  std::vector<Member> fortran = images(0, 0.5f);
  fortran[0].data = npy("<f4", {4, 3, 4, 4}, w, true);
  EXPECT_TRUE(throws_error(loading(fortran), at("x_train", {"pixel value inf at (3, 0, 0, 0)"})));
}

TEST_F(NpzErrors, CorruptMembers) {
  EXPECT_TRUE(throws_error(loading(changed(0, [](Member& m) { m.bad_crc = true; })),
                           at("x_train.npy", {"CRC-32 mismatch", "corrupt"})));
  EXPECT_TRUE(throws_error(loading(changed(2, [](Member& m) { m.bad_crc = true; }, 8)),
                           at("x_test.npy", {"CRC-32 mismatch"})));
  // One pixel changed in stored data: everything else is well-formed, only the CRC tells.
  EXPECT_TRUE(throws_error(loading(changed(0, [](Member& m) { m.flip = static_cast<int>(m.data.size()) - 1; })),
                           at("x_train.npy", {"CRC-32 mismatch"})));
  EXPECT_TRUE(throws_error(loading(changed(1, [](Member& m) { m.cut = 5; }, 8)),
                           at("y_train.npy", {"truncated deflate data"})));
  EXPECT_TRUE(throws_error(loading(changed(1, [](Member& m) { m.written = Bytes(40, 0xFF); }, 8)),
                           at("y_train.npy", {"corrupt deflate data"})));
  EXPECT_TRUE(throws_error(loading(changed(1, [](Member& m) { m.declared_size = 20; }, 8)),
                           at("y_train.npy", {"more than the 20 bytes"})));
  EXPECT_TRUE(throws_error(loading(changed(1, [](Member& m) { m.declared_size = 1000; }, 8)),
                           at("y_train.npy", {"hold 160 bytes", "declares 1000"})));
  EXPECT_TRUE(throws_error(loading(changed(1, [](Member& m) { m.declared_size = 150; })),
                           at("y_train.npy", {"a stored member of 160 bytes declares 150 bytes"})));
  EXPECT_TRUE(throws_error(loading(changed(3, [](Member& m) { m.method = 12; })),
                           at("y_test.npy", {"compression method 12 is not supported"})));
  EXPECT_TRUE(throws_error(loading(changed(3, [](Member& m) { m.flags = 1; })), at("y_test.npy", {"encrypted"})));
  EXPECT_TRUE(throws_error(loading(changed(3, [](Member& m) { m.declared_compressed = 1 << 20; })),
                           at("y_test.npy", {"run past the end of the file", "truncated"})));
  EXPECT_TRUE(throws_error(loading(changed(3, [](Member& m) { m.local_offset = 3; })),
                           at("y_test.npy", {"no local header at offset 3"})));
  EXPECT_TRUE(throws_error(loading(changed(3, [](Member& m) { m.local_offset = 1 << 24; })),
                           at("y_test.npy", {"local header at offset 16777216 lies past the end"})));
}

TEST_F(NpzErrors, MalformedNpyMembers) {
  const Bytes good = npy("<i8", {4}, std::vector<int64_t>{0, 1, 2, 0});
  Bytes bad_magic = good;
  bad_magic[1] = 'X';
  EXPECT_TRUE(throws_error(loading(with(1, bad_magic)), at("y_train.npy", {"not an .npy array"})));
  Bytes version = good;
  version[6] = 4;
  EXPECT_TRUE(throws_error(loading(with(1, version)), at("y_train.npy", {"format version 4.0 not supported"})));
  EXPECT_TRUE(throws_error(loading(with(1, Bytes(good.begin(), good.begin() + 30))),
                           at("y_train.npy", {"truncated .npy header"})));
  EXPECT_TRUE(throws_error(loading(with(1, Bytes(good.begin(), good.end() - 3))),
                           at("y_train.npy", {"truncated array data", "(4,) of <i8 = 32 bytes, found 29"})));
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_TRUE(throws_error(loading(with(1, longer)), at("y_train.npy", {"trailing bytes", "found 33"})));
  for (const auto& [header, expect] : std::vector<std::pair<std::string, std::string>>{
           {"{'descr': '<i8', 'fortran_order': False, }", "has no 'shape'"},
           {"{'descr': '<i8', 'shape': (4,), }", "has no 'fortran_order'"},
           {"{'descr': '<i8', 'fortran_order': 0, 'shape': (4,), }", "malformed .npy header"},
           {"{'descr': '<i8', 'fortran_order': False, 'shape': (4,) ", "malformed .npy header"},
           {"{'descr': '<i8', 'fortran_order': False, 'shape': [4], }", "'shape' is not a tuple"},
           {"{'descr': '<i8', 'fortran_order': False, 'shape': (-4,), }", "non-negative integer"},
           {"['descr', '<i8']", "expected '{'"}}) {
    EXPECT_TRUE(throws_error(loading(with(1, npy_raw("", {}, Bytes(32, 0), false, 1, header))),
                             at("y_train.npy", {expect})))
        << header;
  }
}

// ---- files that are not .npz archives, or not whole ones ----

TEST_F(NpzErrors, NonNpzFiles) {
  EXPECT_TRUE(throws_error([&] { load_npz_dataset(dir_.file("missing.npz")); },
                           {dir_.file("missing.npz"), "cannot open (No such file or directory)"}));
  EXPECT_TRUE(throws_error([&] { load_npz_dataset(dir_.str()); }, {dir_.str(), "a directory"}));
  write_file(path(), {});
  EXPECT_TRUE(throws_error([&] { load_npz_dataset(path()); }, {path(), "empty file"}));
  const std::string text = "x_train,y_train\n1,2\n";
  write_file(path(), Bytes(text.begin(), text.end()));
  EXPECT_TRUE(throws_error([&] { load_npz_dataset(path()); }, {path(), "not an .npz archive"}));
  write_file(path(), npy("|u1", {2, 2}, std::vector<uint8_t>{1, 2, 3, 4}));
  EXPECT_TRUE(throws_error([&] { load_npz_dataset(path()); }, {path(), "an .npy file (one array)", "np.savez"}));
  write_file(path(), {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3});
  EXPECT_TRUE(throws_error([&] { load_npz_dataset(path()); }, {path(), "a gzip file"}));
}

TEST_F(NpzErrors, TruncatedAndCorruptArchives) {
  const Bytes whole = zip(members_of(e_, Layout::NCHW, 8));
  // Cut anywhere, the end record is gone.
  for (size_t keep : {whole.size() - 1, whole.size() / 2, size_t{10}}) {
    write_file(path(), Bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(keep)));
    EXPECT_TRUE(throws_error([&] { load_npz_dataset(path()); },
                             {path(), "without its end of central directory record: truncated"}))
        << keep;
  }
  // Bytes lost from the middle: the central directory's offset now points past its end record.
  Bytes holed = whole;
  holed.erase(holed.begin() + 100, holed.begin() + 200);
  write_file(path(), holed);
  EXPECT_TRUE(throws_error([&] { load_npz_dataset(path()); }, {path(), "the central directory", "runs past"}));
  // A damaged central directory entry.
  Bytes damaged = whole;
  const size_t directory = whole.size() - 22 - 4 * 46 - (11 + 11 + 10 + 10);
  damaged[directory] = 'X';
  write_file(path(), damaged);
  EXPECT_TRUE(throws_error([&] { load_npz_dataset(path()); },
                           {path(), "central directory entry 0 of 4 is missing or has a bad signature"}));
  ZipOptions split;
  split.disk = 1;
  EXPECT_TRUE(throws_error(loading(members_of(e_), split), {path(), "multi-disk"}));
}

// ---- files numpy wrote ----

// Optional: with SIEVE_PYTHON (or python3) able to import numpy, np.savez and np.savez_compressed write the data
// sets (the compressed one to a pipe, so that its members carry data descriptors) and sieve reads them.
TEST(NpzDataset, ReadsFilesNumpyWrote) {
  const char* env = std::getenv("SIEVE_PYTHON");
  const std::string python = env ? env : "python3";
  if (std::system((python + " -c 'import numpy' > /dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << python << " cannot import numpy (set SIEVE_PYTHON to one that can)";
  TempDir dir;
  // Pixel (n, h, w, c) of the channels-last arrays is (n*H*W*C + h*W*C + w*C + c) * 7 mod 256; labels n mod 3.
  const std::string script =
      "import sys, numpy as np\n"
      "def images(n): return (np.arange(n * 5 * 4 * 3) * 7 % 256).astype(np.uint8).reshape(n, 5, 4, 3)\n"
      "def labels(n): return np.arange(n) % 3\n"
      "np.savez(sys.argv[1], x_train=images(6), y_train=labels(6), x_test=images(4), "
      "y_test=labels(4).astype(np.uint8).reshape(4, 1))\n"
      "np.savez_compressed(sys.stdout.buffer, x_train=np.asfortranarray(images(6).astype(np.float32) / 255), "
      "y_train=labels(6).astype(np.int32), x_test=images(4).astype(np.float32) / 255, y_test=labels(4))\n";
  write_file(dir.file("make.py"), Bytes(script.begin(), script.end()));
  const std::string stored = dir.file("stored.npz"), compressed = dir.file("compressed.npz");
  ASSERT_EQ(std::system((python + " " + dir.file("make.py") + " " + stored + " | cat > " + compressed).c_str()), 0);
  for (const std::string& path : {stored, compressed}) {
    SCOPED_TRACE(path);
    const DataSplits d = load_npz_dataset(path);
    for (const Dataset* s : {&d.train, &d.test}) {
      const int64_t n = s->size();
      ASSERT_EQ(s->images.shape(), (Shape{n, 3, 5, 4}));
      const std::vector<uint8_t> px = s->images.to_vector<uint8_t>();
      int wrong = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < 3; ++c)
          for (int64_t h = 0; h < 5; ++h)
            for (int64_t w = 0; w < 4; ++w)
              wrong += px[static_cast<size_t>(((i * 3 + c) * 5 + h) * 4 + w)] !=
                       static_cast<uint8_t>((i * 60 + h * 12 + w * 3 + c) * 7 % 256);
      EXPECT_EQ(wrong, 0);
      std::vector<int32_t> labels;
      for (int64_t i = 0; i < n; ++i) labels.push_back(static_cast<int32_t>(i % 3));
      EXPECT_EQ(s->labels.to_vector<int32_t>(), labels);
      EXPECT_EQ(s->num_classes, 3);
    }
  }
}

}  // namespace
}  // namespace sieve
