// What a model was trained on, as a checkpoint records it (Note [data description]): enough to feed the model
// again from the checkpoint alone, and to refuse data it was not trained on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "data/dataset.h"

namespace sieve {

// Note [data description]: a checkpoint describes its data under "data." metadata keys: the data set's name,
// class count, example shape C,H,W (of the images as stored, before any sequence view), the normalisation mean and
// std per channel (Note [normalisation constants]: measured on the training split when it was loaded), and the
// sequence view ("none" or "pixels") with its pixel order as the tensor "data.pixel_order" (absent: row-major).
// The constants are stored rather than measured again so that an evaluation normalises exactly as training did;
// the order is stored itself, not its seed, so that it does not depend on how a permutation is drawn.
struct DataDescription {
  std::string name;                   // "fashion-mnist", "mnist", "cifar10", "cifar100"
  int num_classes = 0;
  int64_t channels = 0, height = 0, width = 0;
  std::vector<float> mean, std;       // one per channel
  std::string sequence = "none";      // "none" or "pixels"
  std::vector<int32_t> pixel_order;   // with "pixels": the permutation of H*W pixels, empty for row-major

  // The description of training data `train` (the images as loaded, not a sequence view) seen through `sequence`
  // ("", "none" or "pixels") in `pixel_order`.
  static DataDescription of(const Dataset& train, const std::string& sequence, std::vector<int32_t> pixel_order);
  // Reads and checks the "data." entries of a checkpoint read from `path` (for messages); throws a one-line
  // sieve::Error when one is missing, does not parse or contradicts the others.
  static DataDescription from_checkpoint(const CheckpointState& state, const std::string& path);
  // Whether the checkpoint has a description at all (checkpoints written before it was recorded have none).
  static bool in_checkpoint(const CheckpointState& state);

  void save(CheckpointState& state) const;
  // Throws a one-line sieve::Error naming `path` (the checkpoint) when `loaded` (a training split as loaded) is
  // not the data described: another name, class count or example shape, or other normalisation constants.
  void check_matches(const Dataset& loaded, const std::string& path) const;
  // The same comparison with another description (its sequence view and pixel order are not compared).
  void check_matches(const DataDescription& loaded, const std::string& path) const;
  // The splits as the model saw them: this description's normalisation constants, and its sequence view built.
  DataSplits apply(const DataSplits& loaded) const;
  // "fashion-mnist, 10 classes, 1x28x28" (", pixel sequence" or ", permuted pixel sequence" added).
  std::string summary() const;
};

}  // namespace sieve
