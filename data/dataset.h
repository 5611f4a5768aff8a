// Device-resident image classification data sets, and the loaders that read them from disk.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace sieve {

// A whole split held as raw bytes; batches are gathered and normalised from it on the fly (data/batch.h).
struct Dataset {
  std::string name;               // "fashion-mnist", "mnist", "cifar10", "cifar100", "npz"
  Tensor images;                  // uint8 [N, C, H, W] (C = 1 for the IDX sets, 3 for CIFAR, as stored for npz)
  Tensor labels;                  // int32 [N], on the same device as images
  int num_classes = 0;
  std::vector<float> mean, std;   // per channel, in units of [0, 1] pixels (Note [normalisation constants])

  int64_t size() const;           // N; 0 for an empty Dataset
  int64_t channels() const;       // C
  int64_t height() const;         // H
  int64_t width() const;          // W
  int64_t sample_numel() const;   // C * H * W
  Device device() const { return images.device(); }

  // The same data on `device` (this Dataset itself when already there).
  Dataset to(Device device) const;
  // The rows `indices` (int32 [k], on this Dataset's device), in that order; used for fixed evaluation subsets.
  Dataset subset(const Tensor& indices) const;
  // Examples [begin, end) as a view (no copy): an evaluation's chunk, a rank's part of a split.
  Dataset rows(int64_t begin, int64_t end) const;
};

struct DataSplits {
  Dataset train, test;
};

// Loads one of the IDX data sets ("fashion-mnist" or "mnist") from `dir` (empty: default_data_dir(name)) onto
// the CPU; move it with .to(device). Looks for train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each preferably with a .gz suffix. Throws sieve::Error
// naming the file for a missing directory or file, a malformed file, image and label counts that differ, and a
// label outside [0, 10).
DataSplits load_idx_dataset(const std::string& name, const std::string& dir);

// Where a data set is installed by default: $SIEVE_DATA_DIR/NAME when that variable is set, else
// /usr/share/datasets/NAME (Debian's dataset-fashion-mnist installs /usr/share/datasets/fashion-mnist).
std::string default_data_dir(const std::string& name);

// Per-channel mean and standard deviation, in units of [0, 1] pixels, of uint8 [N, C, H, W] images on the CPU.
void channel_mean_std(const Tensor& images, std::vector<float>& mean, std::vector<float>& std);

// The command line's --data value: NAME, NAME:DIR, or npz:FILE.
struct DataSpec {
  std::string name;  // a name from known_dataset_names()
  std::string dir;   // empty: the default location (IDX sets only); for "npz", the .npz file
};

// Parses "fashion-mnist", "mnist", "fashion-mnist:DIR", "mnist:DIR", "cifar10:DIR", "cifar100:DIR" (CIFAR has
// no default location: DIR is required) and "npz:FILE" (Note [npz data sets] in data/npz_dataset.cpp); an unknown
// name throws an error listing the accepted ones.
DataSpec parse_data_spec(const std::string& text);
const std::vector<std::string>& known_dataset_names();

// Loads the data set a spec names, onto the CPU (load_idx_dataset, load_cifar_dataset in data/cifar.h, or
// load_npz_dataset in data/npz.h).
DataSplits load_dataset(const DataSpec& spec);

}  // namespace sieve
