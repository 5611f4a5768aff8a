// sieve-eval: evaluates a checkpoint of sieve-train on a split of the data it was trained on, from the checkpoint
// alone (Note [data description] in data/description.h): loss, accuracy, per-class accuracy, confusion matrix.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "apps/blas_kernels.h"
#include "apps/evaluation.h"
#include "apps/text_file.h"
#include "core/checkpoint.h"
#include "core/device.h"
#include "core/error.h"
#include "data/description.h"
#include "layers/models.h"
#include "layers/module_state.h"

namespace {

using namespace sieve;

// One row per example: example,label,predicted,loss. Written to a temporary file and renamed, so that a failed
// write leaves no partial file under the name.
void write_predictions(const std::string& path, const Dataset& d, const ClassifierEvaluation& e) {
  const std::vector<int32_t> labels = d.labels.to(Device::cpu()).to_vector<int32_t>();
  write_text_file(path, "predictions", [&](std::ostream& out) {
    out << "example,label,predicted,loss\n" << std::setprecision(9);
    for (size_t i = 0; i < labels.size(); ++i)
      out << i << "," << labels[i] << "," << e.predictions[i] << "," << e.losses[i] << "\n";
  });
}

// Row k of the confusion matrix: (examples of class k predicted right, examples of class k).
std::pair<int64_t, int64_t> class_counts(const ClassifierEvaluation& e, int k) {
  const int c = e.num_classes;
  int64_t total = 0;
  for (int j = 0; j < c; ++j) total += e.confusion[static_cast<size_t>(k * c + j)];
  return {e.confusion[static_cast<size_t>(k * c + k)], total};
}

void print_report(const ClassifierEvaluation& e) {
  std::cout << std::fixed << std::setprecision(4) << "loss " << e.loss << "  accuracy " << std::setprecision(2)
            << 100 * e.accuracy << "%  (" << e.examples << " examples)\n\n";
  const int c = e.num_classes;
  std::cout << "per-class accuracy\n";
  for (int k = 0; k < c; ++k) {
    const auto [right, total] = class_counts(e, k);
    std::cout << "  class " << std::setw(3) << k << "  ";
    if (total == 0) {
      std::cout << "      -  (no examples)\n";
      continue;
    }
    const double share = static_cast<double>(right) / static_cast<double>(total);
    std::cout << std::setw(6) << std::setprecision(2) << 100 * share << "%  (" << right << " of " << total << ")\n";
  }
  int64_t largest = 1;
  for (int64_t v : e.confusion) largest = std::max(largest, v);
  const int width = std::max(4, static_cast<int>(std::to_string(largest).size()) + 1);
  std::cout << "\nconfusion matrix (rows: true class, columns: predicted class)\n      ";
  for (int j = 0; j < c; ++j) std::cout << std::setw(width) << j;
  std::cout << "\n";
  for (int k = 0; k < c; ++k) {
    std::cout << std::setw(6) << k;
    for (int j = 0; j < c; ++j) std::cout << std::setw(width) << e.confusion[static_cast<size_t>(k * c + j)];
    std::cout << "\n";
  }
}
// The same numbers as one JSON object, for scripts: loss and accuracy exactly as the training log writes them.
void print_json(const ClassifierEvaluation& e, const std::string& checkpoint, const std::string& split) {
  nlohmann::json per_class = nlohmann::json::array(), confusion = nlohmann::json::array();
  const int c = e.num_classes;
  for (int k = 0; k < c; ++k) {
    const auto [right, total] = class_counts(e, k);
    per_class.push_back(total > 0 ? nlohmann::json(static_cast<double>(right) / static_cast<double>(total))
                                  : nlohmann::json(nullptr));
    confusion.push_back(std::vector<int64_t>(e.confusion.begin() + k * c, e.confusion.begin() + (k + 1) * c));
  }
  const nlohmann::json j = {{"checkpoint", checkpoint},         {"split", split},
                            {"examples", e.examples},           {"loss", e.loss},
                            {"accuracy", e.accuracy},           {"per_class_accuracy", per_class},
                            {"confusion", confusion}};
  std::cout << j.dump() << "\n";
}

int run(int argc, char** argv) {
  CLI::App app{
      "sieve-eval: evaluate a sieve-train checkpoint on the data it was trained on.\n"
      "The checkpoint names the model, the data set, its normalisation and sequence view; prints the loss, the\n"
      "accuracy, the accuracy per class and the confusion matrix. On the test split the loss and accuracy equal\n"
      "those of sieve-train's log for the same weights (its final record, when the run evaluated the whole test set)."};
  app.get_formatter()->column_width(30);
  std::string checkpoint, data_spec, split = "test", device_name = "auto", predictions;
  app.add_option("checkpoint", checkpoint, "a checkpoint written by sieve-train --checkpoint")->required();
  app.add_option("--data", data_spec,
                 "where the data are: NAME[:DIR] or npz:FILE as sieve-train's --data (default: the checkpoint's data "
                 "set at its default location; npz data must be given)");
  app.add_option("--split", split, "test|train: the split to evaluate")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "train"}));
  app.add_option("--device", device_name, "auto|cpu|cuda|cuda:N")->capture_default_str();
  app.add_option("--predictions", predictions, "write one CSV row per example: example,label,predicted,loss");
  bool json = false;
  app.add_flag("--json", json, "print one JSON object (loss, accuracy, per_class_accuracy, confusion) instead");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const Device device = parse_device(device_name);
  const CheckpointState state = load_checkpoint(checkpoint);
  const DataDescription description = DataDescription::from_checkpoint(state, checkpoint);
  const std::string model_spec = state.get_string("model");
  parse_model_spec(model_spec);
  // Note [npz data sets] in data/npz_dataset.cpp: a checkpoint does not record the .npz file's path.
  SIEVE_CHECK(!data_spec.empty() || description.name != "npz", checkpoint, ": a model trained on an .npz file, "
              "whose path the checkpoint does not record: give it with --data npz:FILE");
  const DataSpec spec = data_spec.empty() ? DataSpec{description.name, ""} : parse_data_spec(data_spec);
  SIEVE_CHECK(spec.name == description.name, checkpoint, ": a model trained on ", description.name, ", not on ",
              spec.name, " (--data)");
  if (!predictions.empty()) check_writable_folder("--predictions", predictions);

  DataSplits loaded = load_dataset(spec);
  description.check_matches(loaded.train, checkpoint);
  loaded.train = loaded.train.to(device);
  loaded.test = loaded.test.to(device);
  const DataSplits data = description.apply(loaded);
  const Dataset& d = split == "train" ? data.train : data.test;

  Generator init(0);  // every weight is then replaced by the checkpoint's
  const Shape sample{d.channels(), d.height(), d.width()};
  std::shared_ptr<Module> model = make_model(model_spec, sample, d.num_classes, init, device);
  load_module_state(state, *model);
  model->eval();
  const ClassifierEvaluation e = evaluate_classifier(*model, d, true);
  if (!predictions.empty()) write_predictions(predictions, d, e);
  if (json) {
    print_json(e, checkpoint, split);
    return 0;
  }
  std::cout << "checkpoint: " << checkpoint << " (model " << model_spec
            << (state.has("sampler") ? ", sampler " + state.get_string("sampler") : std::string())
            << (state.has("step") ? ", step " + state.get_string("step") : std::string()) << ")\n"
            << "data: " << description.summary() << "; " << split << " split, " << d.size() << " examples, on "
            << to_string(device) << "\n";
  print_report(e);
  if (!predictions.empty()) std::cout << "\npredictions: " << predictions << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  use_better_blas_kernels(argv);  // Note [openblas kernels] in core/ops/linear.h
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sieve-eval: error: %s\n", e.what());
  }
  return 1;
}
