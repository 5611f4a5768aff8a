// sieve-bench's pieces: timing, the table it prints (and its CSV), and the sections of cases it times.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/distributed.h"

namespace sieve::bench {

struct Options {
  Device device;
  int repeats = 30;
  int warmup = 5;
  std::string filter;  // only cases whose name or size contains this text
  std::string csv;     // also write the rows here
  bool quick = false;  // skip the Wide-ResNet training steps
};

// Median seconds of `repeats` runs of fn after `warmup` runs: CUDA events on sieve's compute stream around each run
// on a GPU (device time, not launch time), the steady clock on the CPU.
double time_median(Device device, int repeats, int warmup, const std::function<void()>& fn);

// One timed case. Rates are reported against the device's measured references: bandwidth (bytes > 0) against the
// copy bandwidth, arithmetic (flops > 0) against the sgemm rate.
struct Case {
  std::string name, size;
  double bytes = 0;  // the least the kernel must move
  double flops = 0;  // floating-point operations (a multiply-add is two)
  double items = 0;  // what the rate column counts per run (rows, images, ...)
  std::string unit;  // of that rate, e.g. "images/s"
  int repeats = 0;   // 0: Options::repeats
  int warmup = -1;   // -1: Options::warmup
};

class Table {
 public:
  explicit Table(const Options& o) : o_(o) {}

  // The references, measured once at start-up, and the lines that state them above the table.
  void set_references(double copy_bytes_per_s, double matmul_flops_per_s, const std::string& matmul_what);
  void print_preamble() const;

  // Starts a section: its name (also a CSV column) and a note on how to read it, printed as one line before the
  // section's first row, so that a filter that skips the whole section hides it.
  void section(const std::string& name, const std::string& note);
  // A note that depends on state set up by the section's cases (e.g. the TF32 setting a Trainer chose).
  void section(const std::string& name, std::function<std::string()> note);
  // Whether the filter admits a case: ask before costly set-up.
  bool wants(const std::string& name, const std::string& size) const;
  // Times fn (if wanted) and prints its row.
  void add(const Case& c, const std::function<void()>& fn);
  void write_csv() const;

 private:
  struct Row {
    std::string section;
    Case c;
    double seconds = 0;
  };
  void print(const Row& r) const;

  const Options& o_;
  std::vector<Row> rows_;
  std::string section_;
  std::function<std::string()> note_;
  bool section_printed_ = true;
  double copy_bytes_per_s_ = 0, matmul_flops_per_s_ = 0;
  std::string matmul_what_;
};

// apps/bench_conv.cpp: the sgemm reference (its rate, and what was measured), and the convolution sections.
double matmul_flops_per_s(const Options& o, std::string* what);
void convolution_cases(Table& t, const Options& o);
// apps/bench_lstm.cpp: the LSTM forward and forward + backward at the pixel-by-pixel MNIST shape.
void lstm_cases(Table& t, const Options& o);

// apps/bench_selectors.cpp: the epoch draws of SRS and random-subset, coverage marking, online batch selection.
void selector_cases(Table& t, const Options& o);

// apps/bench_hutchinson.cpp: CREST's Hutchinson kernels over WRN-28-2's parameter count.
void hutchinson_cases(Table& t, const Options& o);

// apps/bench_crest.cpp: CREST's facility-location coreset and loss-history bookkeeping.
void crest_cases(Table& t, const Options& o);

// apps/bench_allreduce.cpp: the communicator sieve-bench measures (MPI under a launcher, NCCL at one process on a
// GPU built with it, none otherwise), and the all-reduce of WRN-28-2's gradient buckets on it.
std::shared_ptr<Communicator> bench_communicator(const Options& o);
void allreduce_cases(Table& t, const Options& o, const std::shared_ptr<Communicator>& comm);

}  // namespace sieve::bench
