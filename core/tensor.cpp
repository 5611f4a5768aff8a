#include "core/tensor.h"

#include <cstring>
#include <sstream>

#include "core/allocator.h"
#include "core/autograd.h"
#include "core/cuda_check.h"
#include "core/ops/elementwise.h"

namespace sieve {

std::string shape_string(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Storage::Storage(size_t bytes, Device device, bool pinned)
    : bytes_(bytes), device_(device), pinned_(pinned && device.is_cpu() && cuda_available()) {
  if (device.is_cuda()) {
    data_ = device_malloc(bytes, device.index);
  } else {
    data_ = pinned_ ? pinned_malloc(bytes) : host_malloc(bytes);  // without a GPU there is nothing to pin for
  }
}

Storage::~Storage() {
  if (device_.is_cuda()) {
    device_free(data_, device_.index);
  } else if (pinned_) {
    pinned_free(data_);
  } else {
    host_free(data_);
  }
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) SIEVE_CHECK(d >= 0, "tensor shape ", shape_string(shape), " has a negative dimension");
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  fill_(t, value);
  return t;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  SIEVE_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
              " values do not fill shape ", shape_string(shape));
  Tensor host = empty(shape, dtype_of<T>(), Device::cpu());
  if (!values.empty()) std::memcpy(host.raw_data(), values.data(), values.size() * sizeof(T));
  return host.to(device);
}
template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor Tensor::from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, Device);
template Tensor Tensor::from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, Device);
template Tensor Tensor::from_vector<uint8_t>(const std::vector<uint8_t>&, const Shape&, Device);

int64_t Tensor::size(int d) const {
  const int n = dim();
  const int i = d < 0 ? d + n : d;
  SIEVE_CHECK(i >= 0 && i < n, "dimension ", d, " out of range for a ", n, "-d tensor");
  return shape_[i];
}

Device Tensor::device() const { return storage_ ? storage_->device() : Device::cpu(); }

void* Tensor::raw_data() const {
  SIEVE_CHECK(defined(), "use of an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_;
}

template <typename T>
T* Tensor::data() const {
  SIEVE_CHECK(dtype_ == dtype_of<T>(), "tensor holds ", to_string(dtype_), ", accessed as ", to_string(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;

TensorView Tensor::view() const {
  TensorView v;
  v.data = defined() ? raw_data() : nullptr;
  v.dtype = dtype_;
  SIEVE_CHECK(dim() <= 6, "tensors of more than 6 dimensions are not supported");
  v.ndim = dim();
  for (int i = 0; i < v.ndim; ++i) v.shape[i] = shape_[i];
  return v;
}

namespace {
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  // Between two GPUs the copy runs on the destination's stream, which is not ordered after the source's: wait for
  // the work that produces the source first, and (below) for the copy itself before the source block can be freed
  // and reused by the source's stream (Note [stream-ordered reuse] holds within one device only).
  const bool across_gpus = dst_dev.is_cuda() && src_dev.is_cuda() && dst_dev != src_dev;
  if (across_gpus) synchronize(src_dev);
  const Device on = dst_dev.is_cuda() ? dst_dev : src_dev;
  DeviceGuard guard(on);
  cudaMemcpyKind kind = cudaMemcpyDefault;
  SIEVE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, cuda::stream()));
  // The host side of a transfer must be complete before the caller reads or frees it.
  if (dst_dev.is_cpu() || src_dev.is_cpu() || across_gpus) SIEVE_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
}
}  // namespace

Tensor Tensor::to(Device device) const {
  SIEVE_CHECK(defined(), "to(): undefined tensor");
  if (device == this->device()) return *this;
  Tensor out = empty(shape_, dtype_, device);
  copy_bytes(out.raw_data(), device, raw_data(), this->device(), nbytes());
  return out;
}

Tensor Tensor::pin_memory() const {
  SIEVE_CHECK(device().is_cpu(), "pin_memory: ", description(), " is not in host memory");
  if (is_pinned()) return *this;
  Tensor out;
  out.shape_ = shape_;
  out.dtype_ = dtype_;
  out.storage_ = std::make_shared<Storage>(nbytes(), Device::cpu(), /*pinned=*/true);
  copy_bytes(out.raw_data(), Device::cpu(), raw_data(), Device::cpu(), nbytes());
  return out;
}

bool Tensor::is_pinned() const { return storage_ && storage_->pinned(); }

Tensor Tensor::clone() const {
  Tensor out = empty(shape_, dtype_, device());
  copy_bytes(out.raw_data(), device(), raw_data(), device(), nbytes());
  return out;
}

void Tensor::copy_(const Tensor& src) {
  SIEVE_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "copy_: cannot copy ", src.description(), " into ",
              description());
  copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      SIEVE_CHECK(infer < 0, "reshape: more than one -1 in ", shape_string(shape));
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    SIEVE_CHECK(known > 0 && numel() % known == 0, "reshape: cannot view ", description(), " as ", shape_string(shape));
    s[infer] = numel() / known;
  }
  SIEVE_CHECK(shape_numel(s) == numel(), "reshape: cannot view ", description(), " as ", shape_string(shape));
  Tensor out = *this;
  out.shape_ = s;
  out.meta_ = nullptr;
  if (needs_grad({this})) {
    const Shape original = shape_;
    record(out, "reshape", {*this}, [original](const Tensor& g) { return std::vector<Tensor>{g.reshape(original)}; });
  }
  return out;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  SIEVE_CHECK(dim() >= 1 && begin >= 0 && begin <= end && end <= shape_[0], "rows(", begin, ", ", end,
              ") out of range for ", description());
  Tensor out = *this;
  out.meta_ = nullptr;
  out.shape_[0] = end - begin;
  out.offset_ += static_cast<size_t>(begin) * (numel() / (shape_[0] ? shape_[0] : 1)) * dtype_size(dtype_);
  return out;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  SIEVE_CHECK(dtype_ == dtype_of<T>(), "to_vector: tensor holds ", to_string(dtype_), ", read as ",
              to_string(dtype_of<T>()));
  std::vector<T> out(static_cast<size_t>(numel()));
  copy_bytes(out.data(), Device::cpu(), raw_data(), device(), nbytes());
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

float Tensor::item() const {
  SIEVE_CHECK(numel() == 1, "item(): expected one element, found ", description());
  return to_vector<float>()[0];
}

AutogradMeta& Tensor::meta() {
  if (!meta_) meta_ = std::make_shared<AutogradMeta>();
  return *meta_;
}

bool Tensor::requires_grad() const { return meta_ && (meta_->requires_grad || meta_->grad_fn); }

Tensor& Tensor::set_requires_grad(bool on) {
  SIEVE_CHECK(!on || dtype_ == DType::F32, "only float32 tensors can require gradients, found ", description());
  meta().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return meta_ ? meta_->grad : Tensor(); }
void Tensor::set_grad(const Tensor& g) { meta().grad = g; }
void Tensor::zero_grad() {
  if (meta_) meta_->grad = Tensor();
}
std::shared_ptr<Node> Tensor::grad_fn() const { return meta_ ? meta_->grad_fn : nullptr; }
void Tensor::set_grad_fn(std::shared_ptr<Node> fn) { meta().grad_fn = std::move(fn); }

Tensor Tensor::detach() const {
  Tensor out = *this;
  out.meta_ = nullptr;
  return out;
}

std::string Tensor::description() const {
  if (!defined()) return "undefined tensor";
  return to_string(dtype_) + shape_string(shape_) + " on " + to_string(device());
}

void check_dtype(const Tensor& t, DType dtype, const char* what) {
  SIEVE_CHECK(t.defined(), what, ": undefined tensor");
  SIEVE_CHECK(t.dtype() == dtype, what, ": expected ", to_string(dtype), ", found ", t.description());
}

void check_dim(const Tensor& t, int dim, const char* what) {
  SIEVE_CHECK(t.defined(), what, ": undefined tensor");
  SIEVE_CHECK(t.dim() == dim, what, ": expected a ", dim, "-d tensor, found ", t.description());
}

void check_same_device(const Tensor& a, const Tensor& b, const char* what) {
  SIEVE_CHECK(a.device() == b.device(), what, ": tensors on different devices (", a.description(), " and ",
              b.description(), "); move one with .to(device)");
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* what) {
  SIEVE_CHECK(a.shape() == b.shape() && a.dtype() == b.dtype(), what, ": shapes differ (", a.description(), " and ",
              b.description(), ")");
  check_same_device(a, b, what);
}

}  // namespace sieve
