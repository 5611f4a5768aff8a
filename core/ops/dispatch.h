// Internal: runs sieve::cpu::fn or sieve::cuda::fn (same signature) by the device of an operation,
// making that CUDA device current for the call.
#pragma once

#include "core/device.h"

#define SIEVE_DISPATCH(device, fn, ...)             \
  do {                                              \
    const ::sieve::Device sieve_dev_ = (device);    \
    switch (sieve_dev_.type) {                      \
      case ::sieve::DeviceType::CPU:                \
        ::sieve::cpu::fn(__VA_ARGS__);              \
        break;                                      \
      case ::sieve::DeviceType::CUDA: {             \
        ::sieve::DeviceGuard sieve_guard_(sieve_dev_); \
        ::sieve::cuda::fn(__VA_ARGS__);             \
        break;                                      \
      }                                             \
    }                                               \
  } while (0)
