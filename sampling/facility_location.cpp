#include "sampling/facility_location.h"

namespace sieve {

Coreset facility_location_coreset(const Tensor&, const Tensor&, int64_t, int) {
  SIEVE_CHECK(false, "facility_location_coreset: not implemented yet");
  return {};
}

double facility_location_value(const Tensor&, const Tensor&) {
  SIEVE_CHECK(false, "facility_location_value: not implemented yet");
  return 0.0;
}

}  // namespace sieve
