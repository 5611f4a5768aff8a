// Marks per-element functions shared by the CPU and CUDA backends (Note [one meaning]): the CPU tests
// exercise the same arithmetic the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define SIEVE_HD __host__ __device__ __forceinline__
#else
#define SIEVE_HD inline
#endif
