// Training checkpoints: a model and its SGD momentum restored into fresh objects continue bit for bit, scalars and
// generators read back exactly, foreign files and mismatched models are refused without touching anything.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "core/checkpoint.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "layers/models.h"
#include "layers/module_state.h"
#include "optim/optimizer_state.h"
#include "optim/sgd.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

namespace fs = std::filesystem;
using testing::random_labels;
using testing::random_tensor;
using testing::throws_error;
using Parts = std::vector<std::string>;

fs::path fresh_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string("sieve-") + info->test_suite_name() + "-" + info->name();
  for (char& c : name)
    if (c == '/') c = '-';  // parameterised names carry a '/'
  const fs::path dir = fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Every parameter's bytes, in order: equal vectors mean bit-identical models.
std::vector<std::string> parameter_bytes(const Module& m) {
  std::vector<std::string> out;
  for (const auto& [name, p] : m.named_parameters()) {
    const Tensor host = p.to(Device::cpu());
    out.emplace_back(static_cast<const char*>(host.raw_data()), host.nbytes());
  }
  return out;
}

void train_step(Module& model, Sgd& opt, const Tensor& x, const Tensor& y) {
  Tensor loss = mean(cross_entropy(model.forward(x), y));
  opt.zero_grad();
  loss.backward();
  opt.step();
}

class CheckpointDeviceTest : public testing::DeviceTest {
 protected:
  void SetUp() override {
    testing::DeviceTest::SetUp();
    if (!IsSkipped()) dir_ = fresh_dir();
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_P(CheckpointDeviceTest, RestoredModelAndMomentumContinueBitForBit) {
  const SgdOptions options{.lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-3f, .nesterov = true};
  const Tensor x = random_tensor({8, 6}, 10, device()), y = random_labels(8, 3, 11, device());
  Generator init_a(1);
  auto model_a = make_mlp(6, {5, 4}, 3, init_a, device());
  Sgd opt_a(model_a->parameters(), options);
  for (int i = 0; i < 3; ++i) train_step(*model_a, opt_a, random_tensor({8, 6}, 20 + i, device()), y);

  CheckpointState state;
  add_module_state(state, *model_a);
  add_optimizer_state(state, opt_a);
  state.set_int("step", 3);
  const std::string file = (dir_ / "run.ckpt").string();
  save_checkpoint(file, state);

  // Names a user opening the file from Python expects: the module hierarchy, the optimizer under "optimizer.".
  const SafetensorsFile raw = load_safetensors(file);
  std::set<std::string> names;
  for (const auto& [name, t] : raw.tensors) names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{"1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias",
                                          "optimizer.momentum.0", "optimizer.momentum.1", "optimizer.momentum.2",
                                          "optimizer.momentum.3", "optimizer.momentum.4", "optimizer.momentum.5"}));

  // A fresh model from another seed and a fresh optimizer, restored.
  Generator init_b(2);
  auto model_b = make_mlp(6, {5, 4}, 3, init_b, device());
  Sgd opt_b(model_b->parameters(), options);
  ASSERT_NE(parameter_bytes(*model_b), parameter_bytes(*model_a));
  const CheckpointState loaded = load_checkpoint(file);
  load_module_state(loaded, *model_b);
  opt_b.load_state(optimizer_state(loaded));
  EXPECT_EQ(loaded.get_int("step"), 3);
  EXPECT_EQ(parameter_bytes(*model_b), parameter_bytes(*model_a));
  ASSERT_EQ(opt_b.state().size(), opt_a.state().size());
  for (size_t i = 0; i < opt_a.state().size(); ++i) {
    EXPECT_EQ(opt_b.state()[i].first, opt_a.state()[i].first);
    EXPECT_EQ(opt_b.state()[i].second.device(), device());
    EXPECT_EQ(opt_b.state()[i].second.to_vector<float>(), opt_a.state()[i].second.to_vector<float>());
  }

  // A third copy restores the model but not the momentum: its step starts v afresh and must differ, which shows
  // that the identical step below depends on the restored buffers.
  Generator init_c(3);
  auto model_c = make_mlp(6, {5, 4}, 3, init_c, device());
  Sgd opt_c(model_c->parameters(), options);
  load_module_state(loaded, *model_c);

  train_step(*model_a, opt_a, x, y);
  train_step(*model_b, opt_b, x, y);
  train_step(*model_c, opt_c, x, y);
  EXPECT_EQ(parameter_bytes(*model_b), parameter_bytes(*model_a));
  EXPECT_NE(parameter_bytes(*model_c), parameter_bytes(*model_a));
}

SIEVE_INSTANTIATE_DEVICE_TESTS(CheckpointDeviceTest);

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fresh_dir(); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(CheckpointTest, ScalarsAndGeneratorsReadBackExactly) {
  CheckpointState state;
  state.add_tensors({{"w", random_tensor({2}, 1)}});
  const float tau = 1.f / 3.f;
  const Generator gen(0x8000000000000005ull, 123456789012345ull);
  state.set_int("step", -9007199254740993LL);  // not representable as a double: stored as an integer
  state.set_double("time_s", 1234.5678901234567);
  state.set_double("tau", tau);
  state.set_double("tiny", 5e-324);
  state.set_generator("rng.sampler", gen);
  state.set_string("trainer", R"({"sampler": "upper-bound"})");
  save_checkpoint(path("s.ckpt"), state);

  const CheckpointState r = load_checkpoint(path("s.ckpt"));
  EXPECT_EQ(r.get_int("step"), -9007199254740993LL);
  EXPECT_EQ(r.get_double("time_s"), 1234.5678901234567);
  EXPECT_EQ(static_cast<float>(r.get_double("tau")), tau);
  EXPECT_EQ(r.get_double("tiny"), 5e-324);
  EXPECT_EQ(r.get_generator("rng.sampler").seed(), gen.seed());
  EXPECT_EQ(r.get_generator("rng.sampler").offset(), gen.offset());
  EXPECT_EQ(r.get_string("trainer"), R"({"sampler": "upper-bound"})");
  EXPECT_EQ(r.get_string(kCheckpointFormatKey), kCheckpointFormat);
  EXPECT_TRUE(r.find("w").defined());
  EXPECT_FALSE(r.find("v").defined());

  EXPECT_TRUE(throws_error([&] { r.get_int("missing"); }, "metadata has no \"missing\""));
  EXPECT_TRUE(throws_error([&] { r.get_int("time_s"); }, Parts{"\"time_s\"", "expected an integer"}));
  EXPECT_TRUE(throws_error([&] { r.get_double("trainer"); }, Parts{"\"trainer\"", "expected a number"}));
  EXPECT_TRUE(throws_error([&] { r.get_generator("step"); }, Parts{"\"step\"", "not a generator"}));
}

TEST_F(CheckpointTest, RefusesForeignFilesAndOtherVersions) {
  const std::string foreign = path("foreign.safetensors");
  save_safetensors(foreign, {{"w", random_tensor({2}, 1)}}, {{"format", "pt"}});
  EXPECT_TRUE(
      throws_error([&] { load_checkpoint(foreign); }, {foreign, "is a safetensors file but not a sieve checkpoint"}));
  save_safetensors(foreign, {{"w", random_tensor({2}, 1)}});
  EXPECT_TRUE(throws_error([&] { load_checkpoint(foreign); }, "not a sieve checkpoint"));
  save_safetensors(foreign, {}, {{"format", "sieve-checkpoint"}, {"version", "2"}});
  EXPECT_TRUE(
      throws_error([&] { load_checkpoint(foreign); }, Parts{"sieve checkpoint of version 2", "reads version 1"}));

  CheckpointState state;
  state.set_string("format", "other");
  EXPECT_TRUE(throws_error([&] { save_checkpoint(path("x.ckpt"), state); }, Parts{"\"format\" is reserved"}));
  EXPECT_FALSE(fs::exists(path("x.ckpt")));
  EXPECT_TRUE(throws_error([&] { state.add_tensors({{"a", Tensor()}}); }, "tensor 'a' is undefined"));
  state.add_tensors({{"a", random_tensor({1}, 1)}});
  EXPECT_TRUE(throws_error([&] { state.add_tensors({{"a", random_tensor({1}, 1)}}); }, "two tensors named 'a'"));
}

TEST_F(CheckpointTest, MismatchedModelIsRefusedAndLeftUntouched) {
  Generator g(1);
  auto saved = make_mlp(6, {5}, 3, g);
  CheckpointState state;
  add_module_state(state, *saved, "model.");
  save_checkpoint(path("m.ckpt"), state);
  const CheckpointState loaded = load_checkpoint(path("m.ckpt"));

  // "1.weight" and "1.bias" match, "3.weight" does not: nothing may have been copied when the error comes.
  auto other = make_mlp(6, {5}, 4, g);
  const auto before = parameter_bytes(*other);
  EXPECT_TRUE(throws_error([&] { load_module_state(loaded, *other, "model."); },
                           Parts{"'model.3.weight'", "float32[3, 5]", "float32[4, 5]"}));
  EXPECT_EQ(parameter_bytes(*other), before);
  EXPECT_TRUE(throws_error([&] { load_module_state(loaded, *other); }, Parts{"no tensor '1.weight'"}));
  EXPECT_EQ(parameter_bytes(*other), before);

  auto same = make_mlp(6, {5}, 3, g);
  load_module_state(loaded, *same, "model.");
  EXPECT_EQ(parameter_bytes(*same), parameter_bytes(*saved));
}

TEST(SgdState, LoadStateChecksEveryEntryFirst) {
  const Tensor a = random_tensor({3, 2}, 1).set_requires_grad(), b = random_tensor({4}, 2).set_requires_grad();
  Sgd opt({a, b}, SgdOptions{.lr = 0.1f, .momentum = 0.9f});
  opt.load_state({{"momentum.1", random_tensor({4}, 3)}});
  ASSERT_EQ(opt.state().size(), 1u);
  EXPECT_EQ(opt.state()[0].first, "momentum.1");
  const auto kept = opt.state()[0].second.to_vector<float>();

  const Tensor good = random_tensor({3, 2}, 4);
  EXPECT_TRUE(throws_error(
      [&] {
        opt.load_state({{"momentum.0", good}, {"momentum.2", good}});
      },
      Parts{"'momentum.2'", "2 parameters"}));
  EXPECT_TRUE(throws_error([&] { opt.load_state({{"momentum.0", good}, {"velocity.0", good}}); }, "'velocity.0'"));
  EXPECT_TRUE(throws_error([&] { opt.load_state({{"momentum.", good}}); }, "'momentum.'"));
  EXPECT_TRUE(throws_error(
      [&] {
        opt.load_state({{"momentum.0", good}, {"momentum.1", good}});
      },
      Parts{"'momentum.1'", "float32[3, 2]", "expected float32[4]"}));
  EXPECT_TRUE(throws_error([&] { opt.load_state({{"momentum.0", good}, {"momentum.0", good}}); }, "two entries"));
  ASSERT_EQ(opt.state().size(), 1u);  // unchanged by every refused load
  EXPECT_EQ(opt.state()[0].second.to_vector<float>(), kept);

  Sgd plain({a, b}, SgdOptions{.lr = 0.1f});
  EXPECT_TRUE(throws_error([&] { plain.load_state({{"momentum.0", good}}); }, "momentum 0"));
  opt.load_state({});
  EXPECT_TRUE(opt.state().empty());
}

// What a rank sends to the rank writing a data-parallel checkpoint (Note [state bytes]): every dtype, an empty
// tensor and metadata come back as they were; bytes that are not a state are refused in one line.
TEST(Checkpoint, StateBytesRoundTrip) {
  CheckpointState state;
  state.tensors = {{"rank1.selector.scores", testing::random_tensor({3, 5}, 21)},
                   {"rank1.selector.counts", Tensor::from_vector<int32_t>({4, -2, 7}, {3})},
                   {"rank1.selector.order", Tensor::from_vector<int64_t>({int64_t{1} << 40, 5}, {2})},
                   {"rank1.selector.bytes", Tensor::from_vector<uint8_t>({0, 255}, {2})},
                   {"rank1.selector.empty", Tensor::zeros({0}, DType::F32)}};
  state.set_double("rank1.selector.tau", 1.25);
  state.set_generator("rank1.selector.rng", Generator(9, 33));
  const CheckpointState back = decode_state(encode_state(state));
  EXPECT_EQ(back.metadata, state.metadata);
  ASSERT_EQ(back.tensors.size(), state.tensors.size());
  for (size_t i = 0; i < state.tensors.size(); ++i) {
    const auto& [name, t] = state.tensors[i];
    EXPECT_EQ(back.tensors[i].first, name);
    const Tensor& u = back.tensors[i].second;
    EXPECT_EQ(u.dtype(), t.dtype()) << name;
    EXPECT_EQ(u.shape(), t.shape()) << name;
    EXPECT_EQ(0, std::memcmp(u.raw_data(), t.raw_data(), t.nbytes())) << name;
  }
  EXPECT_TRUE(testing::throws_error([] { decode_state("not a state"); }, "decode_state"));
}

}  // namespace
}  // namespace sieve
