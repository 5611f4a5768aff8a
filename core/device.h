// Where a Tensor lives: the host, or CUDA device N.
#pragma once

#include <string>

namespace sieve {

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && (type == DeviceType::CPU || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

std::string to_string(Device d);

// "cpu", "cuda", "cuda:N", or "auto" (the first GPU when one is present, else the CPU).
Device parse_device(const std::string& text);

// Number of usable CUDA devices; 0 when there is no GPU or no driver (never throws).
int cuda_device_count();
inline bool cuda_available() { return cuda_device_count() > 0; }

}  // namespace sieve

namespace sieve {

// Waits until all queued work on `d` has finished (no-op for the CPU).
void synchronize(Device d);

// A point in a device's queue (a CUDA event on the current stream): record() marks the work queued so far, wait()
// blocks the host until that work has run. Both are no-ops for the CPU, whose work has run when its call returns.
// Not copyable; the event is created on first use.
class DeviceEvent {
 public:
  DeviceEvent() = default;
  ~DeviceEvent();
  DeviceEvent(const DeviceEvent&) = delete;
  DeviceEvent& operator=(const DeviceEvent&) = delete;

  void record(Device d);
  void wait();  // returns at once if nothing was recorded since the last wait()

 private:
  void* event_ = nullptr;  // cudaEvent_t, opaque so that this header stays free of CUDA types
  int device_ = -1;
  bool pending_ = false;
};

// Makes `d` the current CUDA device for the guard's lifetime (no-op for the CPU).
class DeviceGuard {
 public:
  explicit DeviceGuard(Device d);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool active_ = false;
};

}  // namespace sieve
