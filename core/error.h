// Errors as readable values: every failure throws sieve::Error naming what was expected and what was found.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace sieve {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void throw_error(const char* file, int line, const std::string& message);
}  // namespace detail

}  // namespace sieve

// Throws sieve::Error with the streamed message when `cond` is false. The message is for a user:
// say what was expected and what was found.
#define SIEVE_CHECK(cond, ...)                                                        \
  do {                                                                                \
    if (!(cond)) ::sieve::detail::throw_error(__FILE__, __LINE__,                     \
                                              ::sieve::detail::concat(__VA_ARGS__)); \
  } while (0)

#define SIEVE_FAIL(...) ::sieve::detail::throw_error(__FILE__, __LINE__, ::sieve::detail::concat(__VA_ARGS__))
