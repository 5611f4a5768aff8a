#include "apps/blas_kernels.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/ops/linear.h"

namespace sieve {

void use_better_blas_kernels(char** argv) {
  if (std::getenv("SIEVE_KEEP_BLAS_KERNELS")) return;
  const std::string better = cpu_blas_better_kernels();  // "" once OPENBLAS_CORETYPE is set: no second restart
  if (better.empty()) return;
  if (setenv("OPENBLAS_CORETYPE", better.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only when it failed: go on with the loaded kernels
  unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace sieve
