// The communicator of sieve_mpi_tests, made once by its main() (tests/mpi/main.cpp) under mpirun.
#pragma once

#include "core/distributed.h"

namespace sieve::testing {

Communicator& world();

}  // namespace sieve::testing
