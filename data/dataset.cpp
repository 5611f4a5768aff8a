#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/ops/gather.h"
#include "data/cifar.h"
#include "data/idx.h"
#include "data/npz.h"

namespace sieve {

namespace {

constexpr int kIdxClasses = 10;

std::string install_hint(const std::string& name) {
  if (name == "fashion-mnist")
    return "; `apt-get install dataset-fashion-mnist` installs it in /usr/share/datasets/fashion-mnist (used when "
           "SIEVE_DATA_DIR is not set), or pass --data fashion-mnist:DIR";
  return "; download the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
         "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into a directory and pass --data " +
         name + ":DIR";
}

// The .gz file when present, else the raw one; neither: an error naming both and how to get them.
std::string find_idx_file(const std::string& dir, const std::string& base, const std::string& name,
                          const std::string& what) {
  const std::filesystem::path gz = std::filesystem::path(dir) / (base + ".gz");
  const std::filesystem::path raw = std::filesystem::path(dir) / base;
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz.string();
  if (std::filesystem::exists(raw, ec)) return raw.string();
  SIEVE_FAIL(gz.string(), ": cannot open (No such file or directory), nor ", raw.string(), ": the ", name, " ", what,
             " are missing", install_hint(name));
}

// One split: images [N, H, W] and labels [N] from two IDX files, checked against each other.
Dataset load_idx_split(const std::string& dir, const std::string& prefix, const std::string& name) {
  const std::string split = prefix == "train" ? "training" : "test";
  const std::string images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte", name, split + " images");
  const std::string labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte", name, split + " labels");
  IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);

  SIEVE_CHECK(images.dims.size() == 3, images_path, ": expected 3 dimensions (images x rows x columns), found ",
              images.dims.size(), " (", idx_dims_string(images.dims), ")");
  SIEVE_CHECK(labels.dims.size() == 1, labels_path, ": expected 1 dimension (labels), found ", labels.dims.size(),
              " (", idx_dims_string(labels.dims), ")");
  const int64_t n = images.dims[0];
  SIEVE_CHECK(labels.dims[0] == n, labels_path, ": label count differs from image count: ", labels.dims[0],
              " labels for ", n, " images in ", images_path);

  Dataset d;
  d.name = name;
  d.num_classes = kIdxClasses;
  d.images = Tensor::empty({n, 1, images.dims[1], images.dims[2]}, DType::U8);
  std::memcpy(d.images.raw_data(), images.data.data(), images.data.size());
  images.data = {};  // the tensor holds the only copy from here on
  d.labels = Tensor::empty({n}, DType::I32);
  int32_t* out = d.labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int label = labels.data[static_cast<size_t>(i)];
    SIEVE_CHECK(label < kIdxClasses, labels_path, ": label out of range at index ", i, ": ", label,
                " (expected 0 to ", kIdxClasses - 1, ")");
    out[i] = label;
  }
  return d;
}

}  // namespace

int64_t Dataset::size() const { return images.defined() ? images.size(0) : 0; }
int64_t Dataset::channels() const { return images.size(1); }
int64_t Dataset::height() const { return images.size(2); }
int64_t Dataset::width() const { return images.size(3); }
int64_t Dataset::sample_numel() const { return channels() * height() * width(); }

Dataset Dataset::to(Device device) const {
  Dataset out = *this;
  // Uploads go through pinned staging: page-locked memory moves at full bus speed.
  out.images = device.is_cuda() && images.device().is_cpu() ? images.pin_memory().to(device) : images.to(device);
  out.labels = device.is_cuda() && labels.device().is_cpu() ? labels.pin_memory().to(device) : labels.to(device);
  return out;
}

Dataset Dataset::subset(const Tensor& indices) const {
  check_dtype(indices, DType::I32, "Dataset::subset indices");
  check_dim(indices, 1, "Dataset::subset indices");
  check_same_device(images, indices, "Dataset::subset");
  Dataset out = *this;
  out.images = index_select(images, indices);
  out.labels = index_select(labels, indices);
  return out;
}

Dataset Dataset::rows(int64_t begin, int64_t end) const {
  Dataset out = *this;
  out.images = images.rows(begin, end);
  out.labels = labels.rows(begin, end);
  return out;
}

std::string default_data_dir(const std::string& name) {
  const char* root = std::getenv("SIEVE_DATA_DIR");
  return (root && *root ? std::string(root) : std::string("/usr/share/datasets")) + "/" + name;
}

// Note [normalisation constants]: mean and std are measured on the training images at load time (one pass over
// the bytes, tens of milliseconds) rather than hard-coded, so a new data set or a subset needs no table; the
// test split is normalised with the training split's constants, as a deployed model would be.
void channel_mean_std(const Tensor& images, std::vector<float>& mean, std::vector<float>& std) {
  check_dtype(images, DType::U8, "channel_mean_std images");
  check_dim(images, 4, "channel_mean_std images");
  SIEVE_CHECK(images.device().is_cpu(), "channel_mean_std: expected images on the CPU, found ", images.description());
  const int64_t n = images.size(0), c = images.size(1), hw = images.size(2) * images.size(3);
  SIEVE_CHECK(n * hw > 0, "channel_mean_std: no pixels in ", images.description());
  const uint8_t* x = images.data<uint8_t>();
  mean.assign(static_cast<size_t>(c), 0.f);
  std.assign(static_cast<size_t>(c), 0.f);
  for (int64_t ch = 0; ch < c; ++ch) {
    uint64_t sum = 0, sum_sq = 0;  // exact: at most 2^40 pixels of 255^2
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* p = x + (i * c + ch) * hw;
      for (int64_t j = 0; j < hw; ++j) {
        sum += p[j];
        sum_sq += uint64_t{p[j]} * p[j];
      }
    }
    const double count = static_cast<double>(n * hw);
    const double m = static_cast<double>(sum) / count / 255.0;
    const double var = std::max(0.0, static_cast<double>(sum_sq) / count / (255.0 * 255.0) - m * m);
    mean[static_cast<size_t>(ch)] = static_cast<float>(m);
    // A constant channel carries no information; leaving it unscaled avoids a division by zero.
    std[static_cast<size_t>(ch)] = var > 1e-12 ? static_cast<float>(std::sqrt(var)) : 1.f;
  }
}

DataSplits load_idx_dataset(const std::string& name, const std::string& dir_arg) {
  SIEVE_CHECK(name == "fashion-mnist" || name == "mnist", "load_idx_dataset: unknown IDX data set '", name,
              "' (expected fashion-mnist or mnist)");
  const std::string dir = dir_arg.empty() ? default_data_dir(name) : dir_arg;
  std::error_code ec;
  SIEVE_CHECK(std::filesystem::is_directory(dir, ec), dir, ": no such directory (looked there for the ", name,
              " IDX files, e.g. train-images-idx3-ubyte.gz)", install_hint(name));
  DataSplits s{load_idx_split(dir, "train", name), load_idx_split(dir, "t10k", name)};
  SIEVE_CHECK(s.test.height() == s.train.height() && s.test.width() == s.train.width(), dir,
              ": test images are ", s.test.height(), "x", s.test.width(), " but training images are ",
              s.train.height(), "x", s.train.width());
  channel_mean_std(s.train.images, s.train.mean, s.train.std);
  s.test.mean = s.train.mean;
  s.test.std = s.train.std;
  return s;
}

const std::vector<std::string>& known_dataset_names() {
  static const std::vector<std::string> names = {"fashion-mnist", "mnist", "cifar10", "cifar100", "npz"};
  return names;
}

DataSpec parse_data_spec(const std::string& text) {
  DataSpec spec;
  const size_t colon = text.find(':');
  spec.name = text.substr(0, colon);
  if (colon != std::string::npos) {
    spec.dir = text.substr(colon + 1);
    SIEVE_CHECK(!spec.dir.empty(), "bad --data '", text, "': empty ", spec.name == "npz" ? "file" : "directory",
                " after ':' (expected NAME, NAME:DIR or npz:FILE)");
  }
  bool known = false;
  std::string accepted;
  for (const std::string& n : known_dataset_names()) {
    known = known || n == spec.name;
    accepted += (accepted.empty() ? "" : ", ") + n;
  }
  SIEVE_CHECK(known, "bad --data '", text, "': unknown data set '", spec.name, "' (accepted: ", accepted,
              "; each followed by :DIR, optional for the IDX sets, and npz by :FILE)");
  SIEVE_CHECK(spec.name != "npz" || !spec.dir.empty(), "bad --data '", text, "': npz needs the file, as npz:FILE "
              "(an .npz archive with the arrays x_train, y_train, x_test and y_test)");
  SIEVE_CHECK(!is_cifar_dataset(spec.name) || !spec.dir.empty(), "bad --data '", text, "': ", spec.name,
              " needs a directory, as ", spec.name, ":DIR (", cifar_download_hint(spec.name), ")");
  return spec;
}

DataSplits load_dataset(const DataSpec& spec) {
  if (spec.name == "fashion-mnist" || spec.name == "mnist") return load_idx_dataset(spec.name, spec.dir);
  if (is_cifar_dataset(spec.name)) return load_cifar_dataset(spec.name, spec.dir);
  if (spec.name == "npz") {
    SIEVE_CHECK(!spec.dir.empty(), "load_dataset: npz needs the file, as --data npz:FILE");
    return load_npz_dataset(spec.dir);
  }
  SIEVE_FAIL("load_dataset: unknown data set '", spec.name, "'");
}

}  // namespace sieve
