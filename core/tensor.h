// Tensor: a contiguous, typed view of shared storage on one device, with optional autograd state.
//
// Copies of a Tensor are shallow: they share storage and autograd state (like torch.Tensor). Every tensor is
// contiguous in row-major order; views (reshape, rows) share storage with an offset. Moving between devices
// is always explicit: `t.to(device)`.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace sieve {

using Shape = std::vector<int64_t>;
std::string shape_string(const Shape& s);
int64_t shape_numel(const Shape& s);

class Storage {
 public:
  // Host storage may be page-locked (pinned): transfers from it run at full bus speed and asynchronously.
  Storage(size_t bytes, Device device, bool pinned = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  bool pinned() const { return pinned_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  bool pinned_ = false;
};

struct Node;
struct AutogradMeta;

// Plain description of a tensor for kernels: .cu files take this or raw pointers.
//
// Note [views, not Tensors]: a backend function (sieve::cpu::*, sieve::cuda::*) never takes a Tensor. The op's
// .cpp file checks dtypes, shapes and devices, allocates the outputs and records the autograd node, all on Tensors;
// the backends then receive raw pointers and sizes, a TensorView, or a small shape struct of the op's own
// (Conv2dShape, LstmShape). So one declaration serves both devices, a kernel cannot copy between devices or touch
// autograd behind the op's back, and .cu files stay small and quick to compile: they include the op's header for
// the declarations and nothing of cuDNN or cuBLAS, whose calls live in host-compiled .cpp files.
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::F32;
  int ndim = 0;
  int64_t shape[6] = {0, 0, 0, 0, 0, 0};
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
};

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised memory.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu()) {
    return full(shape, 1.0, dtype, device);
  }
  // Copies host values into a new tensor on `device`; values.size() must equal the shape's element count.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());
  static Tensor scalar(float value, Device device = Device::cpu()) { return from_vector<float>({value}, {}, device); }

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int dim() const { return static_cast<int>(shape_.size()); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const;
  bool is_cuda() const { return device().is_cuda(); }

  void* raw_data() const;
  template <typename T>
  T* data() const;  // checks that T matches dtype()
  TensorView view() const;

  // Explicit copies and views.
  Tensor to(Device device) const;  // same tensor (no copy) when already there
  Tensor clone() const;
  // A copy in page-locked host memory (staging for host-to-device uploads); itself when already pinned.
  Tensor pin_memory() const;
  bool is_pinned() const;
  Tensor reshape(const Shape& shape) const;    // a view; one dimension may be -1
  Tensor rows(int64_t begin, int64_t end) const;  // a view of rows [begin, end) along dimension 0
  void copy_(const Tensor& src);               // same shape and dtype; any devices
  template <typename T>
  std::vector<T> to_vector() const;
  float item() const;  // the single float32 value of a one-element tensor (synchronises on a GPU)

  // Autograd (Note [autograd]).
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on = true);
  Tensor grad() const;               // undefined until a backward pass reaches this leaf
  void set_grad(const Tensor& g);
  void zero_grad();                  // drops the accumulated gradient
  std::shared_ptr<Node> grad_fn() const;
  void set_grad_fn(std::shared_ptr<Node> fn);
  Tensor detach() const;             // same storage, no autograd history
  void backward() const;                           // of a one-element tensor
  void backward(const Tensor& grad_output) const;  // grad_output has this tensor's shape
  // Runs `hook` in each backward pass once this leaf's gradient is complete (Note [gradient hooks] in
  // core/autograd.h); an empty function removes it. Throws for a tensor that is not a leaf.
  void set_grad_ready_hook(std::function<void()> hook);

  std::string description() const;  // e.g. "float32[128, 10] on cuda:0"
  bool same_storage(const Tensor& o) const { return storage_ == o.storage_; }

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  DType dtype_ = DType::F32;
  std::shared_ptr<AutogradMeta> meta_;
  AutogradMeta& meta();
};

// Shape and device checks with messages a user can act on. `what` names the argument, e.g. "softmax input".
void check_dtype(const Tensor& t, DType dtype, const char* what);
void check_dim(const Tensor& t, int dim, const char* what);
void check_same_device(const Tensor& a, const Tensor& b, const char* what);
void check_same_shape(const Tensor& a, const Tensor& b, const char* what);

}  // namespace sieve
