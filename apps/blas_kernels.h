// sieve's programs on the CPU: the BLAS kernels this CPU can run (Note [openblas kernels] in core/ops/linear.h).
#pragma once

namespace sieve {

// When OpenBLAS loaded kernels older than this CPU and OPENBLAS_CORETYPE is unset, starts this program again, the
// same arguments and process, with OPENBLAS_CORETYPE naming the better kernels; else returns at once. Call it
// first thing in main, before any thread, file or MPI is set up. Returns (doing nothing) if the restart fails, and
// SIEVE_KEEP_BLAS_KERNELS=1 keeps the loaded kernels.
void use_better_blas_kernels(char** argv);

}  // namespace sieve
