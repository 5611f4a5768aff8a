// NumPy's .npz archives (numpy.savez, numpy.savez_compressed) and the .npy arrays inside them, and "bring your own
// data": an image classification data set given as one .npz file with the Keras keys x_train, y_train, x_test,
// y_test (`--data npz:FILE`).
//
// An .npz file is a ZIP archive (https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT) whose members are
// .npy files named KEY.npy, stored (method 0, np.savez) or deflated (method 8, np.savez_compressed). An .npy file
// (numpy/lib/format.py) is the magic "\x93NUMPY", a major and minor version byte, the header's length (2 bytes
// little-endian in version 1.0, 4 bytes in 2.0 and 3.0), the header, a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }, then the elements.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace sieve {

// One .npy array of plain numbers: little-endian, or single bytes.
struct NpyArray {
  std::string descr;           // numpy's type string as written: "|u1", "<f4", "<i8"
  char kind = 0;               // 'u' unsigned integer, 'i' signed integer, 'f' floating point, 'b' boolean
  int item_size = 0;           // bytes per element
  bool fortran_order = false;  // elements stored first index fastest (Note [npz fortran order])
  std::vector<int64_t> shape;  // outermost first; empty for a scalar
  std::vector<uint8_t> data;   // numel() * item_size bytes, in the order fortran_order says
  int64_t numel() const;
};

// Parses a whole .npy file held in `bytes` (moved into the result's data); `where` (e.g. "FILE: x_train.npy")
// starts every message. Throws a one-line sieve::Error for a bad magic string, an unknown version, a header that is
// not the dict numpy writes (missing or malformed descr, fortran_order or shape), a big-endian, structured or
// non-numeric type, and data shorter or longer than the header declares.
NpyArray parse_npy(std::vector<uint8_t> bytes, const std::string& where);

// A ZIP archive of .npy arrays. Opening reads the central directory only; each read() decompresses one member
// and checks its CRC-32. ZIP64 is read, not refused: numpy opens every member with force_zip64 (numpy issue 10776),
// so each local header carries a ZIP64 extra field, and archives past 4 GiB or 65535 members carry ZIP64 sizes,
// offsets and end records. Sizes and CRCs come from the central directory, so members written with a data
// descriptor (np.savez to a pipe) read as any other.
class NpzArchive {
 public:
  // Throws a one-line sieve::Error naming `path` for a missing, unreadable or empty file, a plain .npy file, a file
  // that is not a ZIP archive (no end-of-central-directory record), a truncated or corrupt central directory, and
  // a multi-disk or encrypted archive.
  explicit NpzArchive(const std::string& path);

  const std::string& path() const { return path_; }
  // The arrays' keys: member names without their ".npy" suffix, in archive order.
  std::vector<std::string> keys() const;
  bool has(const std::string& key) const;
  // The array under `key` (member KEY.npy, or KEY). Throws naming the file and the member for a missing key, a
  // compression method other than stored or deflate, a local header that disagrees with the central directory,
  // compressed data beyond the end of the file, corrupt or truncated deflate data, a CRC-32 that differs from the
  // one recorded, and every fault parse_npy names.
  NpyArray read(const std::string& key) const;

 private:
  struct Member {
    std::string name;
    uint16_t flags = 0, method = 0;
    uint32_t crc = 0;
    uint64_t compressed_size = 0, size = 0, local_header_offset = 0;
  };
  const Member* find(const std::string& key) const;
  std::vector<uint8_t> extract(const Member& m) const;

  std::string path_;
  uint64_t file_size_ = 0;
  std::vector<Member> members_;
};

// Loads an image classification data set from the .npz file at `path` onto the CPU (Note [npz data sets] in
// data/npz_dataset.cpp: the arrays, layouts, dtypes and labels accepted, and why a checkpoint names it "npz"): images
// uint8 [N, C, H, W], labels int32 [N] in [0, num_classes), name "npz", mean and std per channel measured on the
// training images (Note [normalisation constants]), the test split normalised with the training split's constants.
// Throws a one-line sieve::Error naming the file (and the array) for a missing key, an unsupported dtype, a shape
// that is not images or labels, lengths that differ, train and test images of different shapes, a negative or
// implausibly large label, float pixels outside [0, 255] or not finite, and every fault NpzArchive names.
DataSplits load_npz_dataset(const std::string& path);

}  // namespace sieve
