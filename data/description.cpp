#include "data/description.h"

#include <charconv>
#include <cmath>
#include <sstream>

#include "core/error.h"
#include "data/sequence.h"

namespace sieve {
namespace {

constexpr const char* kName = "data.name";
constexpr const char* kClasses = "data.classes";
constexpr const char* kShape = "data.shape";
constexpr const char* kMean = "data.mean";
constexpr const char* kStd = "data.std";
constexpr const char* kSequence = "data.sequence";
constexpr const char* kPixelOrder = "data.pixel_order";

// Floats in their shortest round-trip form, comma-separated: "0.2860402,0.3530239".
std::string join_floats(const std::vector<float>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    char buffer[32];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, values[i]);
    if (i > 0) out += ",";
    out.append(buffer, end);
  }
  return out;
}

// A comma-separated list of numbers of type T, all of `text`; throws naming the key otherwise.
template <typename T>
std::vector<T> split_numbers(const std::string& text, const std::string& key, const std::string& path) {
  std::vector<T> out;
  size_t begin = 0;
  while (true) {
    const size_t comma = text.find(',', begin);
    const std::string item = text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    T value{};
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    SIEVE_CHECK(!item.empty() && ec == std::errc() && ptr == item.data() + item.size(), path,
                ": the checkpoint's ", key, " is not a comma-separated list of numbers");
    out.push_back(value);
    if (comma == std::string::npos) return out;
    begin = comma + 1;
  }
}

bool same_constants(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  // Measured again from the same bytes they are equal; a few ulps allow for another summation order.
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::abs(a[i] - b[i]) <= 1e-6f * std::max(1.f, std::abs(b[i])))) return false;
  return true;
}

}  // namespace

DataDescription DataDescription::of(const Dataset& train, const std::string& sequence,
                                    std::vector<int32_t> pixel_order) {
  DataDescription d;
  d.name = train.name;
  d.num_classes = train.num_classes;
  d.channels = train.channels();
  d.height = train.height();
  d.width = train.width();
  d.mean = train.mean;
  d.std = train.std;
  d.sequence = parse_sequence_view(sequence) == SequenceView::Pixels ? "pixels" : "none";
  d.pixel_order = std::move(pixel_order);
  return d;
}

bool DataDescription::in_checkpoint(const CheckpointState& state) { return state.has(kName); }

DataDescription DataDescription::from_checkpoint(const CheckpointState& state, const std::string& path) {
  SIEVE_CHECK(in_checkpoint(state), path, ": the checkpoint does not describe its data (no ", kName,
              "; it was written before sieve recorded it): give the model and data options by hand");
  for (const char* key : {kClasses, kShape, kMean, kStd, kSequence})
    SIEVE_CHECK(state.has(key), path, ": the checkpoint's data description is incomplete: ", key, " is missing");
  DataDescription d;
  d.name = state.get_string(kName);
  const std::vector<int64_t> classes = split_numbers<int64_t>(state.get_string(kClasses), kClasses, path);
  SIEVE_CHECK(classes.size() == 1 && classes[0] >= 2 && classes[0] <= 1000000, path, ": the checkpoint's ",
              kClasses, " is ", state.get_string(kClasses), ", expected a class count >= 2");
  d.num_classes = static_cast<int>(classes[0]);
  const std::vector<int64_t> shape = split_numbers<int64_t>(state.get_string(kShape), kShape, path);
  SIEVE_CHECK(shape.size() == 3 && shape[0] > 0 && shape[1] > 0 && shape[2] > 0, path, ": the checkpoint's ",
              kShape, " is ", state.get_string(kShape), ", expected C,H,W");
  d.channels = shape[0];
  d.height = shape[1];
  d.width = shape[2];
  d.mean = split_numbers<float>(state.get_string(kMean), kMean, path);
  d.std = split_numbers<float>(state.get_string(kStd), kStd, path);
  SIEVE_CHECK(static_cast<int64_t>(d.mean.size()) == d.channels && static_cast<int64_t>(d.std.size()) == d.channels,
              path, ": the checkpoint's normalisation has ", d.mean.size(), " means and ", d.std.size(),
              " standard deviations for ", d.channels, " channels");
  for (size_t c = 0; c < d.std.size(); ++c)
    SIEVE_CHECK(std::isfinite(d.mean[c]) && std::isfinite(d.std[c]) && d.std[c] > 0.f, path,
                ": the checkpoint's normalisation of channel ", c, " is mean ", d.mean[c], ", std ", d.std[c],
                "; expected finite numbers and a positive std");
  d.sequence = state.get_string(kSequence);
  SIEVE_CHECK(d.sequence == "none" || d.sequence == "pixels", path, ": the checkpoint's ", kSequence, " is '",
              d.sequence, "', expected none or pixels");
  const Tensor order = state.find(kPixelOrder);
  if (order.defined()) {
    SIEVE_CHECK(d.sequence == "pixels", path, ": the checkpoint has a pixel order but no sequence view");
    d.pixel_order = state.get_vector(kPixelOrder, DType::I32).to_vector<int32_t>();
    SIEVE_CHECK(static_cast<int64_t>(d.pixel_order.size()) == d.height * d.width, path, ": the checkpoint's pixel "
                "order has ", d.pixel_order.size(), " entries for ", d.height, "x", d.width, " images");
  }
  SIEVE_CHECK(d.sequence == "none" || d.channels == 1, path, ": the checkpoint describes a pixel sequence of ",
              d.channels, "-channel images; sequences are of single-channel images");
  return d;
}

void DataDescription::save(CheckpointState& state) const {
  state.set_string(kName, name);
  state.set_int(kClasses, num_classes);
  state.set_string(kShape, std::to_string(channels) + "," + std::to_string(height) + "," + std::to_string(width));
  state.set_string(kMean, join_floats(mean));
  state.set_string(kStd, join_floats(std));
  state.set_string(kSequence, sequence);
  if (!pixel_order.empty())
    state.add_tensors({{kPixelOrder, Tensor::from_vector(pixel_order, {static_cast<int64_t>(pixel_order.size())})}});
}

void DataDescription::check_matches(const Dataset& loaded, const std::string& path) const {
  check_matches(of(loaded, "none", {}), path);
}

void DataDescription::check_matches(const DataDescription& loaded, const std::string& path) const {
  SIEVE_CHECK(loaded.name == name, path, ": a model trained on ", name, ", not on ", loaded.name);
  SIEVE_CHECK(loaded.num_classes == num_classes && loaded.channels == channels && loaded.height == height &&
                  loaded.width == width,
              path, ": a model of ", summary(), ", but the data loaded have ", loaded.num_classes, " classes and ",
              loaded.channels, "x", loaded.height, "x", loaded.width, " examples");
  SIEVE_CHECK(same_constants(loaded.mean, mean) && same_constants(loaded.std, std), path,
              ": the training images loaded have mean ", join_floats(loaded.mean), " and std ", join_floats(loaded.std),
              ", the model was trained on mean ", join_floats(mean), " and std ", join_floats(std),
              ": another version of ", name, "?");
}

DataSplits DataDescription::apply(const DataSplits& loaded) const {
  DataSplits out = loaded;
  for (Dataset* split : {&out.train, &out.test}) {
    split->mean = mean;
    split->std = std;
  }
  if (sequence == "pixels") {
    out.train = pixel_sequence(out.train, pixel_order);
    out.test = pixel_sequence(out.test, pixel_order);
  }
  return out;
}

std::string DataDescription::summary() const {
  std::ostringstream os;
  os << name << ", " << num_classes << " classes, " << channels << "x" << height << "x" << width;
  if (sequence == "pixels") os << (pixel_order.empty() ? ", pixel sequence" : ", permuted pixel sequence");
  return os.str();
}

}  // namespace sieve
