// sieve-bench's timing and its table: one row per case, at most 100 columns, grouped by sections, and a CSV copy.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "apps/bench.h"
#include "core/ops/conv2d.h"
#include "core/ops/linear.h"
#include "core/cuda_check.h"
#include "core/error.h"

namespace sieve::bench {
namespace {

// Column widths; they add up to 100.
constexpr int kNameWidth = 26, kSizeWidth = 24, kTimeWidth = 10, kAchievedWidth = 14, kShareWidth = 7,
              kRateWidth = 19;

std::string format(const char* fmt, double v, const char* suffix = "") {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, fmt, v, suffix);
  return buffer;
}

// 874.3 M, 12.5 k: rates span ten orders of magnitude and must fit their column.
std::string si(double v) {
  static const char* const kPrefixes[] = {"", " k", " M", " G", " T"};
  int i = 0;
  while (v >= 1000 && i < 4) v /= 1000, ++i;
  return format("%.1f%s", v, kPrefixes[i]);
}

std::string flop_rate(double flops_per_s) {
  return flops_per_s >= 1e12 ? format("%.2f TFLOP/s", flops_per_s / 1e12) : format("%.1f GFLOP/s", flops_per_s / 1e9);
}

std::string achieved(const Case& c, double seconds) {
  if (c.flops > 0) return flop_rate(c.flops / seconds);
  if (c.bytes > 0) {
    const double gbs = c.bytes / seconds / 1e9;
    return format(gbs < 10 ? "%.2f GB/s" : "%.1f GB/s", gbs);
  }
  return "";
}

// The share of the section's reference: copy bandwidth for bytes, the sgemm rate for flops; negative: none.
double share(const Case& c, double seconds, double copy_bytes_per_s, double matmul_flops_per_s) {
  if (c.flops > 0 && matmul_flops_per_s > 0) return 100 * c.flops / seconds / matmul_flops_per_s;
  if (c.bytes > 0 && copy_bytes_per_s > 0) return 100 * c.bytes / seconds / copy_bytes_per_s;
  return -1;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

double time_median(Device device, int repeats, int warmup, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  synchronize(device);
  std::vector<double> seconds;
  if (device.is_cuda()) {
    cudaEvent_t start, stop;
    SIEVE_CUDA_CHECK(cudaEventCreate(&start));
    SIEVE_CUDA_CHECK(cudaEventCreate(&stop));
    // The events go on sieve's compute stream: the legacy default stream would not order them with the work.
    for (int i = 0; i < repeats; ++i) {
      SIEVE_CUDA_CHECK(cudaEventRecord(start, cuda::stream()));
      fn();
      SIEVE_CUDA_CHECK(cudaEventRecord(stop, cuda::stream()));
      SIEVE_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      SIEVE_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      seconds.push_back(ms * 1e-3);
    }
    SIEVE_CUDA_CHECK(cudaEventDestroy(start));
    SIEVE_CUDA_CHECK(cudaEventDestroy(stop));
  } else {
    for (int i = 0; i < repeats; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

void Table::set_references(double copy_bytes_per_s, double matmul_flops_per_s, const std::string& matmul_what) {
  copy_bytes_per_s_ = copy_bytes_per_s;
  matmul_flops_per_s_ = matmul_flops_per_s;
  matmul_what_ = matmul_what;
}

void Table::print_preamble() const {
  std::string name = "host CPU";
  if (o_.device.is_cuda()) {
    cudaDeviceProp prop{};
    SIEVE_CUDA_CHECK(cudaGetDeviceProperties(&prop, o_.device.index));
    name = prop.name;
  }
  std::cout << "sieve-bench on " << to_string(o_.device) << " (" << name << "), median of " << o_.repeats
            << " runs after " << o_.warmup << " warm-up runs\n"
            << "reference: copy bandwidth (read + write): " << format("%.1f GB/s", copy_bytes_per_s_ / 1e9)
            << ", measured\n"
            << "reference: " << matmul_what_ << ": " << flop_rate(matmul_flops_per_s_) << ", measured\n";
  if (o_.device.is_cpu())
    std::cout << "convolutions, LSTM and matrix products (CPU): " << cpu_backend_name(cpu_backend())
              << " (the convolution section times both; Note [cpu backends])\n";
  if (o_.device.is_cpu() && !cpu_blas_advice().empty()) std::cout << "note: " << cpu_blas_advice() << "\n";
  std::cout << "\n"
            << std::left << std::setw(kNameWidth) << "case" << ' ' << std::setw(kSizeWidth) << "size" << std::right
            << ' ' << std::setw(kTimeWidth) << "time (us)" << ' ' << std::setw(kAchievedWidth) << "achieved" << ' '
            << std::setw(kShareWidth) << "% ref" << ' ' << std::setw(kRateWidth) << "rate" << "\n";
}

void Table::section(const std::string& name, const std::string& note) {
  section(name, [note] { return note; });
}

void Table::section(const std::string& name, std::function<std::string()> note) {
  if (name != section_) section_printed_ = false;  // the same section again (several sizes) keeps its heading
  section_ = name;
  note_ = std::move(note);
}

bool Table::wants(const std::string& name, const std::string& size) const {
  return o_.filter.empty() || name.find(o_.filter) != std::string::npos || size.find(o_.filter) != std::string::npos;
}

void Table::add(const Case& c, const std::function<void()>& fn) {
  if (!wants(c.name, c.size)) return;
  const int repeats = c.repeats > 0 ? c.repeats : o_.repeats;
  const int warmup = c.warmup >= 0 ? c.warmup : o_.warmup;
  Row r{section_, c, time_median(o_.device, repeats, warmup, fn)};
  if (!section_printed_) {
    std::cout << "\n-- " << section_ << ": " << note_() << "\n";
    section_printed_ = true;
  }
  print(r);
  rows_.push_back(std::move(r));
}

void Table::print(const Row& r) const {
  const double us = r.seconds * 1e6;
  const double pct = share(r.c, r.seconds, copy_bytes_per_s_, matmul_flops_per_s_);
  // One space between columns, so that a value wider than its column never runs into the next one.
  std::cout << std::left << std::setw(kNameWidth) << r.c.name << ' ' << std::setw(kSizeWidth) << r.c.size
            << std::right << ' ' << std::setw(kTimeWidth) << format(us >= 1e5 ? "%.0f" : "%.1f", us) << ' '
            << std::setw(kAchievedWidth) << achieved(r.c, r.seconds) << ' ' << std::setw(kShareWidth)
            << (pct >= 0 ? format("%.1f%%", pct) : "") << ' ' << std::setw(kRateWidth)
            << (r.c.items > 0 ? si(r.c.items / r.seconds) + " " + r.c.unit : "") << std::endl;
}

// Not-applicable cells are left empty.
void Table::write_csv() const {
  if (o_.csv.empty()) return;
  std::ofstream f(o_.csv);
  SIEVE_CHECK(f.good(), o_.csv, ": cannot open for writing");
  f << "device,kernel,size,time_us,gb_per_s,percent_of_copy,rate,unit,section,tflop_per_s,percent_of_matmul\n";
  f << std::setprecision(6);
  for (const Row& r : rows_) {
    const Case& c = r.c;
    f << to_string(o_.device) << "," << quoted(c.name) << "," << quoted(c.size) << "," << r.seconds * 1e6 << ",";
    if (c.bytes > 0) f << c.bytes / r.seconds / 1e9 << "," << 100 * c.bytes / r.seconds / copy_bytes_per_s_;
    else f << ",";
    f << ",";
    if (c.items > 0) f << c.items / r.seconds;
    f << "," << c.unit << "," << quoted(r.section) << ",";
    if (c.flops > 0) f << c.flops / r.seconds / 1e12 << "," << 100 * c.flops / r.seconds / matmul_flops_per_s_;
    else f << ",";
    f << "\n";
  }
  SIEVE_CHECK(f.good(), o_.csv, ": writing failed");
}

}  // namespace sieve::bench
