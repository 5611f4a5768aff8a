// The programs' text outputs (the selection dump, sieve-eval's predictions): written whole or not at all.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace sieve {

// Calls `write` on a temporary file beside `path`, then renames it over `path`: a write that fails (a full disk, a
// file-size limit) leaves no partial file under the name, only a one-line sieve::Error naming `what` and `path`.
void write_text_file(const std::string& path, const std::string& what, const std::function<void(std::ostream&)>& write);

// Throws a one-line sieve::Error naming `flag` unless the folder that is to hold `path` exists and is writable: for
// outputs written at the end of a long run, refused before it starts.
void check_writable_folder(const std::string& flag, const std::string& path);

}  // namespace sieve
