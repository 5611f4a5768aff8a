// SIEVE_HD marks the per-element functions that the CPU and CUDA backends share (Note [one meaning]).
//
// Note [one meaning]: every operation has a CPU backend and a CUDA backend, and both compute the same function. The
// CPU backend is the reference: plain loops (OpenBLAS for matrix products), complete enough to train everything on
// a machine without a GPU, and every CUDA path is tested against it (tests/test_util.h: DeviceTest, GpuTest). Where
// the arithmetic of one element or one row is more than a line, it is written once, as a SIEVE_HD function in the
// family's *_math.h, and the CPU loop and the CUDA kernel both call it: a CPU test then exercises the arithmetic the
// GPU runs, and the GPU-versus-CPU test checks what remains (indexing, the launch, parallel reductions). The two
// agree to a tolerance the arithmetic justifies (order of summation, host and device maths libraries, cuBLAS and
// cuDNN against OpenBLAS and loops); where they must agree bit for bit (Philox uniforms, dropout masks) the host
// never contracts a multiply-add (-ffp-contract=off, CMakeLists.txt) and device code rounds each operation
// explicitly (mul_add_unfused in core/philox.h).
#pragma once

#if defined(__CUDACC__)
#define SIEVE_HD __host__ __device__ __forceinline__
#else
#define SIEVE_HD inline
#endif
