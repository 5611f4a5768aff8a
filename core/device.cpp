#include "core/device.h"

#include <mutex>
#include <vector>

#include "core/cuda_check.h"
#include "core/dtype.h"

namespace sieve {

std::string to_string(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::U8: return "uint8";
  }
  return "?";
}

std::string to_string(Device d) { return d.is_cpu() ? "cpu" : "cuda:" + std::to_string(d.index); }

int cuda_device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "auto") return cuda_available() ? Device::cuda(0) : Device::cpu();
  if (text == "cuda" || text.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (text.size() > 5) {
      try {
        size_t used = 0;
        index = std::stoi(text.substr(5), &used);
        SIEVE_CHECK(used == text.size() - 5 && index >= 0, "bad device '", text, "': expected cuda:N");
      } catch (const std::logic_error&) {
        SIEVE_FAIL("bad device '", text, "': expected cpu, cuda, cuda:N or auto");
      }
    }
    SIEVE_CHECK(index < cuda_device_count(), "device '", text, "' requested but ",
                cuda_device_count() == 0 ? std::string("no CUDA GPU is present")
                                         : std::to_string(cuda_device_count()) + " CUDA device(s) are present");
    return Device::cuda(index);
  }
  SIEVE_FAIL("bad device '", text, "': expected cpu, cuda, cuda:N or auto");
}

void synchronize(Device d) {
  if (d.is_cuda()) {
    DeviceGuard guard(d);
    SIEVE_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
  }
}

DeviceEvent::~DeviceEvent() {
  if (event_) cudaEventDestroy(static_cast<cudaEvent_t>(event_));  // never throws; a pending event is simply dropped
}

void DeviceEvent::record(Device d) {
  if (d.is_cpu()) return;
  DeviceGuard guard(d);
  if (event_ == nullptr || device_ != d.index) {
    if (event_) SIEVE_CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(event_)));
    event_ = nullptr;
    cudaEvent_t e;
    SIEVE_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    event_ = e;
    device_ = d.index;
  }
  SIEVE_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_), cuda::stream()));
  pending_ = true;
}

void DeviceEvent::wait() {
  if (!pending_) return;
  DeviceGuard guard(Device::cuda(device_));
  SIEVE_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
  pending_ = false;
}

DeviceGuard::DeviceGuard(Device d) {
  if (d.is_cuda()) {
    SIEVE_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != d.index) SIEVE_CUDA_CHECK(cudaSetDevice(d.index));
    active_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  if (active_) cudaSetDevice(previous_);
}

namespace cuda {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  cudaGetLastError();
  throw Error(detail::concat("CUDA error ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ") in ",
                             call, " at ", file, ":", line));
}

cudaStream_t stream() {
  static std::mutex mutex;
  static std::vector<cudaStream_t> streams;
  int device = 0;
  SIEVE_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  if (device >= static_cast<int>(streams.size())) streams.resize(device + 1, nullptr);
  if (streams[device] == nullptr) SIEVE_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[device], cudaStreamNonBlocking));
  return streams[device];
}

}  // namespace cuda
}  // namespace sieve
