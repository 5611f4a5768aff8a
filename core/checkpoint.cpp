#include "core/checkpoint.h"

#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/safetensors.h"

namespace sieve {
namespace {

// Parses all of `text` as a number; false on anything else (empty, trailing characters, out of range).
template <typename T>
bool parse_number(const std::string& text, T* out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && !text.empty();
}

// A metadata value as it may appear in a one-line message: control characters (a newline) become '?'.
std::string printable(std::string text) {
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return text;
}

}  // namespace

void CheckpointState::add_tensors(const std::vector<std::pair<std::string, Tensor>>& named, const std::string& prefix) {
  std::set<std::string> present;
  for (const auto& [name, t] : tensors) present.insert(name);
  for (const auto& [name, t] : named) {
    SIEVE_CHECK(present.insert(prefix + name).second, "checkpoint: two tensors named '", prefix + name, "'");
    SIEVE_CHECK(t.defined(), "checkpoint: tensor '", prefix + name, "' is undefined");
  }
  for (const auto& [name, t] : named) tensors.emplace_back(prefix + name, t);
}

Tensor CheckpointState::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  return Tensor();
}

Tensor CheckpointState::get_vector(const std::string& name, DType dtype) const {
  const Tensor t = find(name);
  SIEVE_CHECK(t.defined(), "checkpoint: the tensor '", name, "' is missing");
  SIEVE_CHECK(t.dtype() == dtype, "checkpoint: the tensor '", name, "' is ", t.description(), ", expected ",
              to_string(dtype));
  return t.reshape({t.numel()}).clone();
}

std::vector<std::pair<std::string, Tensor>> CheckpointState::with_prefix(const std::string& prefix) const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, t] : tensors)
    if (name.compare(0, prefix.size(), prefix) == 0) out.emplace_back(name.substr(prefix.size()), t);
  return out;
}

void CheckpointState::set_int(const std::string& key, int64_t value) { metadata[key] = std::to_string(value); }

void CheckpointState::set_double(const std::string& key, double value) {
  // Shortest form that parses back to the same double: a resumed run sees exactly the saved value.
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  metadata[key] = std::string(buffer, end);
}

void CheckpointState::set_generator(const std::string& key, const Generator& gen) {
  metadata[key] = nlohmann::json{{"seed", gen.seed()}, {"offset", gen.offset()}}.dump();
}

const std::string& CheckpointState::get_string(const std::string& key) const {
  const auto it = metadata.find(key);
  SIEVE_CHECK(it != metadata.end(), "checkpoint: the metadata has no \"", key, "\"");
  return it->second;
}

int64_t CheckpointState::get_int(const std::string& key) const {
  const std::string& text = get_string(key);
  int64_t v = 0;
  SIEVE_CHECK(parse_number(text, &v), "checkpoint: metadata \"", key, "\" is \"", printable(text),
              "\", expected an integer");
  return v;
}

double CheckpointState::get_double(const std::string& key) const {
  const std::string& text = get_string(key);
  double v = 0;
  SIEVE_CHECK(parse_number(text, &v), "checkpoint: metadata \"", key, "\" is \"", printable(text),
              "\", expected a number");
  return v;
}

Generator CheckpointState::get_generator(const std::string& key) const {
  const std::string& text = get_string(key);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const bool valid = j.is_object() && j.contains("seed") && j.contains("offset") && j["seed"].is_number_unsigned() &&
                     j["offset"].is_number_unsigned();
  SIEVE_CHECK(valid, "checkpoint: metadata \"", key, "\" is not a generator {\"seed\": S, \"offset\": O}");
  return Generator(j["seed"].get<uint64_t>(), j["offset"].get<uint64_t>());
}

StateArchive StateArchive::writer(CheckpointState& state, std::string prefix) {
  return StateArchive(&state, nullptr, std::move(prefix));
}

StateArchive StateArchive::reader(const CheckpointState& state, std::string prefix) {
  return StateArchive(nullptr, &state, std::move(prefix));
}

void StateArchive::scalar(const std::string& key, int64_t& value) {
  if (saving())
    writing_->set_int(prefix_ + key, value);
  else
    value = reading_->get_int(prefix_ + key);
}

void StateArchive::scalar(const std::string& key, bool& value) {
  if (saving())
    writing_->set_int(prefix_ + key, value ? 1 : 0);
  else
    value = reading_->get_int(prefix_ + key) != 0;
}

void StateArchive::scalar(const std::string& key, double& value) {
  if (saving())
    writing_->set_double(prefix_ + key, value);
  else
    value = reading_->get_double(prefix_ + key);
}

void StateArchive::scalar(const std::string& key, float& value) {
  if (saving())
    writing_->set_double(prefix_ + key, static_cast<double>(value));
  else
    value = static_cast<float>(reading_->get_double(prefix_ + key));
}

void StateArchive::generator(const std::string& key, Generator& gen) {
  if (saving())
    writing_->set_generator(prefix_ + key, gen);
  else
    gen = reading_->get_generator(prefix_ + key);
}

bool StateArchive::flag(const std::string& key, bool present) {
  scalar(key, present);
  return present;
}

bool StateArchive::has(const std::string& key) const {
  return saving() || reading_->has(prefix_ + key) || reading_->find(prefix_ + key).defined();
}

void StateArchive::tensor(const std::string& name, Tensor& t, DType dtype) {
  const std::string full = prefix_ + name;
  if (saving()) {
    SIEVE_CHECK(!t.defined() || t.dtype() == dtype, "checkpoint: cannot save '", full, "' (", t.description(),
                ") as ", to_string(dtype));
    writing_->add_tensors({{full, t.defined() ? t.clone() : t}});  // add_tensors refuses an undefined tensor
    return;
  }
  const Tensor stored = reading_->find(full);
  SIEVE_CHECK(stored.defined(), "checkpoint: the tensor '", full, "' is missing");
  SIEVE_CHECK(stored.dtype() == dtype, "checkpoint: the tensor '", full, "' is ", stored.description(), ", expected ",
              to_string(dtype));
  t = stored.clone();
}

void StateArchive::vector(const std::string& name, Tensor& t, DType dtype) {
  if (saving())
    tensor(name, t, dtype);
  else
    t = reading_->get_vector(prefix_ + name, dtype);
}

void StateArchive::tensors(const std::string& group, std::vector<std::pair<std::string, Tensor>>& named) {
  if (saving()) {
    std::vector<std::pair<std::string, Tensor>> copies;
    for (const auto& [name, t] : named) copies.emplace_back(name, t.defined() ? t.clone() : t);
    writing_->add_tensors(copies, prefix_ + group);
  } else {
    named = reading_->with_prefix(prefix_ + group);
  }
}

void save_checkpoint(const std::string& path, const CheckpointState& state) {
  std::map<std::string, std::string> metadata = state.metadata;
  for (const auto& [key, value] :
       {std::pair{kCheckpointFormatKey, kCheckpointFormat}, std::pair{kCheckpointVersionKey, kCheckpointVersion}}) {
    const auto it = metadata.find(key);
    SIEVE_CHECK(it == metadata.end() || it->second == value, "cannot write ", path, ": metadata \"", key,
                "\" is reserved for the checkpoint's tag (\"", value, "\"), found \"", it->second, "\"");
    metadata[key] = value;
  }
  save_safetensors(path, state.tensors, metadata);
}

CheckpointState load_checkpoint(const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  const auto format = file.metadata.find(kCheckpointFormatKey);
  SIEVE_CHECK(format != file.metadata.end() && format->second == kCheckpointFormat, path,
              " is a safetensors file but not a sieve checkpoint (its metadata has no \"", kCheckpointFormatKey,
              "\": \"", kCheckpointFormat, "\")");
  const auto version = file.metadata.find(kCheckpointVersionKey);
  const std::string found = version == file.metadata.end() ? "none" : version->second;
  SIEVE_CHECK(found == kCheckpointVersion, path, " is a sieve checkpoint of version ", found,
              "; this build reads version ", kCheckpointVersion);
  return CheckpointState{std::move(file.tensors), std::move(file.metadata)};
}

// Note [state bytes]: CBOR of {"metadata": {...}, "tensors": [{"name", "dtype" (the safetensors name), "shape",
// "data" (bytes)}]}: nlohmann's binary encoding, compact for tensors and free of any file.
std::string encode_state(const CheckpointState& state) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& [name, tensor] : state.tensors) {
    const Tensor host = tensor.to(Device::cpu());
    const auto* bytes = static_cast<const uint8_t*>(host.raw_data());
    tensors.push_back({{"name", name},
                       {"dtype", static_cast<int>(host.dtype())},
                       {"shape", host.shape()},
                       {"data", nlohmann::json::binary(std::vector<uint8_t>(bytes, bytes + host.nbytes()))}});
  }
  const std::vector<uint8_t> cbor = nlohmann::json::to_cbor({{"metadata", state.metadata}, {"tensors", tensors}});
  return std::string(cbor.begin(), cbor.end());
}

CheckpointState decode_state(const std::string& bytes) {
  const nlohmann::json j = nlohmann::json::from_cbor(bytes, /*strict=*/true, /*allow_exceptions=*/false);
  SIEVE_CHECK(!j.is_discarded() && j.is_object() && j.contains("metadata") && j.contains("tensors"),
              "decode_state: not the bytes of encode_state");
  CheckpointState state;
  try {
    state.metadata = j.at("metadata").get<std::map<std::string, std::string>>();
    for (const nlohmann::json& t : j.at("tensors")) {
      const int dtype = t.at("dtype").get<int>();
      SIEVE_CHECK(dtype >= 0 && dtype <= static_cast<int>(DType::U8), "decode_state: unknown dtype ", dtype);
      Tensor tensor = Tensor::empty(t.at("shape").get<Shape>(), static_cast<DType>(dtype));
      const auto& data = t.at("data").get_binary();
      SIEVE_CHECK(data.size() == tensor.nbytes(), "decode_state: ", data.size(), " bytes for ", tensor.description());
      if (!data.empty()) std::memcpy(tensor.raw_data(), data.data(), data.size());
      state.tensors.emplace_back(t.at("name").get<std::string>(), tensor);
    }
  } catch (const nlohmann::json::exception& e) {
    SIEVE_FAIL("decode_state: malformed state: ", e.what());
  }
  return state;
}

}  // namespace sieve
