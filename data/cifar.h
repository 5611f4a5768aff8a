// CIFAR-10 and CIFAR-100, "binary version" (https://www.cs.toronto.edu/~kriz/cifar.html): files of fixed-size
// records, each the label byte(s) then 3072 pixel bytes, 1024 red, 1024 green, 1024 blue, every plane a 32x32
// image in row-major order, so a record's pixels are already a [3, 32, 32] image.
//   CIFAR-10:  data_batch_1.bin ... data_batch_5.bin (training), test_batch.bin; records of 1 label byte + 3072.
//   CIFAR-100: train.bin, test.bin; records of 1 coarse label byte (20 classes) + 1 fine label byte + 3072;
//              sieve uses the fine label (100 classes).
#pragma once

#include <string>

#include "data/dataset.h"

namespace sieve {

// "cifar10" or "cifar100".
bool is_cifar_dataset(const std::string& name);

// How to get the files, for messages: no package installs CIFAR, so a directory must always be given.
std::string cifar_download_hint(const std::string& name);

// Loads "cifar10" or "cifar100" from `dir` onto the CPU: images uint8 [N, 3, 32, 32], labels int32 [N] in
// [0, num_classes), mean and std per channel from the training images (Note [normalisation constants]), the
// test split normalised with the training split's constants. `dir` holds the files, or holds the extracted
// archive's folder (cifar-10-batches-bin/ or cifar-100-binary/) that does. Throws sieve::Error, one line naming
// the file, for an empty `dir`, a missing directory or file (which file, and where it was looked for), an empty
// file, a size that is not a whole number of records (the size and the record size), and a label out of range
// (the record's index in its file and the value).
DataSplits load_cifar_dataset(const std::string& name, const std::string& dir);

}  // namespace sieve
