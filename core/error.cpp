#include "core/error.h"

#include <cstdlib>

namespace sieve::detail {

void throw_error(const char* file, int line, const std::string& message) {
  (void)file;
  (void)line;
  // The location is for developers; users read the message. Keep it out of the one-line error
  // unless SIEVE_DEBUG_ERRORS is set.
  static const bool with_location = std::getenv("SIEVE_DEBUG_ERRORS") != nullptr;
  if (with_location) throw Error(concat(message, " [", file, ":", line, "]"));
  throw Error(message);
}

}  // namespace sieve::detail
