// load_npz_dataset (data/npz.h): an .npz archive's four Keras arrays as a DataSplits.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "data/npz.h"

namespace sieve {

namespace {

// Note [npz data sets]: `--data npz:FILE` reads the four arrays keras.datasets' load_data() returns, saved under
// their names: x_train and x_test images, y_train and y_test integer labels (other arrays in the file are ignored).
//   - Images are [N, H, W] (one channel), [N, H, W, C] (channels-last, as Keras and PIL lay them out) when the last
//     axis is 1 or 3 and the second is not, and [N, C, H, W] (channels-first, as sieve stores them) otherwise; a
//     Fortran-ordered array reads the same as its C-ordered copy (Note [npz fortran order]). Their dtype is uint8,
//     kept as is, or float32/float64, turned into bytes (Note [npz float images]).
//   - Labels are integers of any width, [N] or [N, 1] (Keras' CIFAR labels are [N, 1]), from 0; the class count is
//     the largest label over both splits plus one, at least 2. A negative label is refused rather than shifted:
//     a shift would silently give the classes other numbers than the user's.
//   - The data set is named "npz" in messages and in a checkpoint's description (Note [data description]), which
//     does not record the file's path: a path is no identity (a file moves, two machines differ) and the recorded
//     class count, example shape and normalisation constants, measured on the training images, already refuse
//     other data. So sieve-eval and --resume need --data npz:FILE again, and sieve-eval says so when it is missing.
//
// Note [npz fortran order]: numpy saves an array that is Fortran-contiguous (np.asfortranarray, a transpose) with
// fortran_order True and its elements first index fastest. Rather than refuse it, the reader gathers through strides
// of either order: the pass that reorders channels-last images into [N, C, H, W] handles it at no extra cost.
//
// Note [npz float images]: a Dataset stores pixels as bytes and normalises them per channel with the mean and std
// it measures (Note [normalisation constants]), so float images become bytes first. Over both splits together
// (one rule for both, so that train and test pixels keep the same meaning), every value must be finite and at least
// 0; when none exceeds 1 the pixels are round(255 x), when none exceeds 255 they are round(x), and any larger value
// is refused: sieve cannot know the range of already standardised data. Rounding is to nearest, ties to even, as
// np.rint, computed in the array's own precision, so uint8 data saved as x / 255 come back exactly. The scale makes
// no difference to the normalised inputs a model sees beyond the rounding to 256 levels.

constexpr int64_t kMaxClasses = 1000000;  // as a checkpoint's description accepts (data/description.cpp)

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Element strides of `shape` stored row-major, or first index fastest for Fortran order.
std::vector<int64_t> strides_of(const std::vector<int64_t>& shape, bool fortran_order) {
  std::vector<int64_t> st(shape.size());
  int64_t s = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    const size_t i = fortran_order ? k : shape.size() - 1 - k;
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

// Where image n, channel c, row h, column w is in the source array: n * sn + c * sc + h * sh + w * sw.
struct ImageLayout {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t sn = 0, sc = 0, sh = 0, sw = 0;
  bool channels_last = false;
  std::string text;  // "[N, H, W, C] (channels-last)", for messages
};

ImageLayout image_layout(const NpyArray& a, const std::string& where) {
  const std::vector<int64_t>& s = a.shape;
  SIEVE_CHECK(s.size() == 3 || s.size() == 4, where, ": expected images of shape [N, H, W], [N, H, W, C] or "
              "[N, C, H, W], found shape ", shape_text(s));
  for (int64_t d : s)
    SIEVE_CHECK(d > 0, where, ": images of shape ", shape_text(s), " hold no pixels");
  // Batches index rows with int32 (data/batch.h).
  SIEVE_CHECK(s[0] <= std::numeric_limits<int32_t>::max(), where, ": ", s[0],
              " images exceed the int32 row index of a batch");
  const std::vector<int64_t> st = strides_of(s, a.fortran_order);
  ImageLayout l;
  l.n = s[0];
  l.sn = st[0];
  if (s.size() == 3) {
    l.c = 1;
    l.h = s[1], l.w = s[2], l.sh = st[1], l.sw = st[2];
    l.text = "[N, H, W]";
  } else if ((s[3] == 1 || s[3] == 3) && !(s[1] == 1 || s[1] == 3)) {
    l.h = s[1], l.w = s[2], l.c = s[3], l.sh = st[1], l.sw = st[2], l.sc = st[3];
    l.channels_last = true;
    l.text = "[N, H, W, C] (channels-last)";
  } else {
    l.c = s[1], l.h = s[2], l.w = s[3], l.sc = st[1], l.sh = st[2], l.sw = st[3];
    l.text = "[N, C, H, W] (channels-first)";
  }
  return l;
}

bool is_float(const NpyArray& a) { return a.kind == 'f' && (a.item_size == 4 || a.item_size == 8); }

void check_image_dtype(const NpyArray& a, const std::string& where) {
  SIEVE_CHECK((a.kind == 'u' && a.item_size == 1) || is_float(a), where, ": images of dtype '", a.descr,
              "' are not supported (expected uint8 '|u1', float32 '<f4' or float64 '<f8'; e.g. x.astype(np.uint8))");
}

template <typename T>
const T* elements(const NpyArray& a) {
  return reinterpret_cast<const T*>(a.data.data());  // the host is little-endian, as the accepted dtypes are
}

// "(3, 4, 5, 1)": the index, as numpy writes it, of the element stored at `flat`.
std::string index_text(const NpyArray& a, int64_t flat) {
  std::vector<int64_t> index(a.shape.size());
  for (size_t k = 0; k < a.shape.size(); ++k) {
    const size_t d = a.fortran_order ? k : a.shape.size() - 1 - k;  // fastest-varying first
    index[d] = flat % a.shape[d];
    flat /= a.shape[d];
  }
  return shape_text(index);
}

// The range of a float array's values; a non-finite value is refused at its index.
template <typename T>
void value_range(const NpyArray& a, const std::string& where, double& lo, double& hi) {
  const T* x = elements<T>(a);
  for (int64_t i = 0, n = a.numel(); i < n; ++i) {
    T v;
    std::memcpy(&v, x + i, sizeof v);  // .npy data need not be aligned within the member
    SIEVE_CHECK(std::isfinite(v), where, ": pixel value ", v, " at ", index_text(a, i), " is not finite");
    lo = std::min(lo, static_cast<double>(v));
    hi = std::max(hi, static_cast<double>(v));
  }
}

// The images [N, C, H, W] as bytes; float pixels multiplied by `scale` and rounded (Note [npz float images]).
template <typename T>
void gather_images(const NpyArray& a, const ImageLayout& l, T scale, uint8_t* out) {
  const uint8_t* base = a.data.data();
  for (int64_t n = 0; n < l.n; ++n)
    for (int64_t c = 0; c < l.c; ++c)
      for (int64_t h = 0; h < l.h; ++h)
        for (int64_t w = 0; w < l.w; ++w) {
          T v;
          std::memcpy(&v, base + (n * l.sn + c * l.sc + h * l.sh + w * l.sw) * static_cast<int64_t>(sizeof(T)),
                      sizeof v);
          if constexpr (std::is_same_v<T, uint8_t>) *out++ = v;
          else *out++ = static_cast<uint8_t>(std::nearbyint(v * scale));  // in [0, 255] by the range check
        }
}

Tensor to_images(const NpyArray& a, const ImageLayout& l, double scale) {
  Tensor t = Tensor::empty({l.n, l.c, l.h, l.w}, DType::U8);
  uint8_t* out = t.data<uint8_t>();
  // Row-major bytes that are [N, C, H, W] already (one channel last is the same order) need no gather.
  if (a.kind == 'u' && !a.fortran_order && (!l.channels_last || l.c == 1))
    std::memcpy(out, a.data.data(), a.data.size());
  else if (a.kind == 'u') gather_images<uint8_t>(a, l, 1, out);
  else if (a.item_size == 4) gather_images<float>(a, l, static_cast<float>(scale), out);
  else gather_images<double>(a, l, scale, out);
  return t;
}

// Labels as int32 [N]; `largest` raised to the largest label seen.
Tensor to_labels(const NpyArray& a, int64_t images, const std::string& where, const std::string& images_key,
                 int64_t& largest) {
  SIEVE_CHECK(a.kind == 'i' || a.kind == 'u', where, ": labels of dtype '", a.descr, "' are not supported "
              "(expected integer class indices; e.g. y.astype(np.int64))");
  const bool column = a.shape.size() == 2 && a.shape[1] == 1;
  SIEVE_CHECK(a.shape.size() == 1 || column, where, ": expected labels of shape (N,) or (N, 1), found shape ",
              shape_text(a.shape));
  SIEVE_CHECK(a.shape[0] == images, where, ": ", a.shape[0], " labels for ", images, " images in ", images_key);
  Tensor t = Tensor::empty({images}, DType::I32);
  int32_t* out = t.data<int32_t>();
  for (int64_t i = 0; i < images; ++i) {
    const uint8_t* p = a.data.data() + i * a.item_size;
    uint64_t bits = 0;
    std::memcpy(&bits, p, static_cast<size_t>(a.item_size));  // little-endian: the low bytes
    int64_t v = 0;
    bool too_large = false;
    if (a.kind == 'u') {
      too_large = bits >= static_cast<uint64_t>(kMaxClasses);
      v = static_cast<int64_t>(std::min<uint64_t>(bits, kMaxClasses));
    } else {
      const int shift = 64 - 8 * a.item_size;  // sign-extend the item's top bit
      v = static_cast<int64_t>(bits << shift) >> shift;
    }
    SIEVE_CHECK(v >= 0, where, ": negative label ", v, " at index ", i, " (labels are class indices from 0)");
    SIEVE_CHECK(!too_large && v < kMaxClasses, where, ": label ", a.kind == 'u' ? std::to_string(bits) :
                std::to_string(v), " at index ", i, " is out of range (class indices from 0 to ", kMaxClasses - 1,
                ")");
    out[i] = static_cast<int32_t>(v);
    largest = std::max(largest, v);
  }
  return t;
}

}  // namespace

DataSplits load_npz_dataset(const std::string& path) {
  const NpzArchive archive(path);
  std::string missing, held;
  for (const char* key : {"x_train", "y_train", "x_test", "y_test"})
    if (!archive.has(key)) missing += (missing.empty() ? "" : ", ") + std::string(key);
  for (const std::string& k : archive.keys()) held += (held.empty() ? "" : ", ") + k;
  SIEVE_CHECK(missing.empty(), path, ": no ", missing, " (an .npz data set holds the arrays x_train, y_train, x_test "
              "and y_test; this one holds ", held.empty() ? "none" : held, ")");

  // Both image arrays are read before either is converted: one rule turns both into bytes.
  const NpyArray x_train = archive.read("x_train"), x_test = archive.read("x_test");
  const std::string at = path + ": ";
  check_image_dtype(x_train, at + "x_train");
  check_image_dtype(x_test, at + "x_test");
  SIEVE_CHECK(x_train.descr == x_test.descr, path, ": x_train is ", x_train.descr, " but x_test is ", x_test.descr,
              " (expected one dtype for both)");
  const ImageLayout train_layout = image_layout(x_train, at + "x_train");
  const ImageLayout test_layout = image_layout(x_test, at + "x_test");
  SIEVE_CHECK(train_layout.c == test_layout.c && train_layout.h == test_layout.h && train_layout.w == test_layout.w,
              path, ": x_test holds ", test_layout.c, "x", test_layout.h, "x", test_layout.w, " images (shape ",
              shape_text(x_test.shape), " read as ", test_layout.text, ") but x_train holds ", train_layout.c, "x",
              train_layout.h, "x", train_layout.w, " (shape ", shape_text(x_train.shape), " read as ",
              train_layout.text, ")");
  double scale = 1;
  if (is_float(x_train)) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto& [a, key] : {std::pair{&x_train, "x_train"}, std::pair{&x_test, "x_test"}}) {
      if (a->item_size == 4) value_range<float>(*a, at + key, lo, hi);
      else value_range<double>(*a, at + key, lo, hi);
    }
    SIEVE_CHECK(lo >= 0 && hi <= 255, path, ": float pixels range from ", lo, " to ", hi, " (expected values in "
                "[0, 1] or [0, 255]: sieve stores images as bytes and normalises them itself)");
    scale = hi <= 1 ? 255 : 1;
  }

  DataSplits s;
  s.train.name = s.test.name = "npz";
  s.train.images = to_images(x_train, train_layout, scale);
  s.test.images = to_images(x_test, test_layout, scale);
  int64_t largest = 0;
  s.train.labels = to_labels(archive.read("y_train"), train_layout.n, at + "y_train", "x_train", largest);
  s.test.labels = to_labels(archive.read("y_test"), test_layout.n, at + "y_test", "x_test", largest);
  SIEVE_CHECK(largest >= 1, path, ": every label is 0 (a classifier needs at least 2 classes)");
  s.train.num_classes = s.test.num_classes = static_cast<int>(largest + 1);
  channel_mean_std(s.train.images, s.train.mean, s.train.std);
  s.test.mean = s.train.mean;
  s.test.std = s.train.std;
  return s;
}

}  // namespace sieve
