#include "apps/text_file.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "core/error.h"

namespace sieve {

void write_text_file(const std::string& path, const std::string& what, const std::function<void(std::ostream&)>& write) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary);
    SIEVE_CHECK(out.good(), path, ": cannot open for writing");
    try {
      write(out);
      out.flush();
    } catch (...) {
      std::remove(temporary.c_str());
      throw;
    }
    if (!out.good()) std::remove(temporary.c_str());
    SIEVE_CHECK(out.good(), path, ": writing the ", what, " failed (disk full?)");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    SIEVE_FAIL(path, ": cannot rename ", temporary, " to it");
  }
}

void check_writable_folder(const std::string& flag, const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const std::string folder = slash == std::string::npos ? "." : path.substr(0, std::max<size_t>(slash, 1));
  SIEVE_CHECK(::access(folder.c_str(), W_OK) == 0, flag, " ", path, ": the folder ", folder,
              " does not exist or is not writable");
}

}  // namespace sieve
