// parse_npy (data/npz.h): an .npy file's header and elements.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

#include "core/error.h"
#include "data/npz.h"

namespace sieve {

namespace {

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const uint8_t* p) { return uint32_t{le16(p)} | (uint32_t{le16(p + 2)} << 16); }

std::string printable(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 120)) out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  return s.size() > 120 ? out + "..." : out;
}

// A value of the header's dict: a string, a bool, a tuple of integers, or a list (a structured dtype's descr).
struct HeaderValue {
  enum Kind { String, Bool, Tuple, List } kind = String;
  std::string text;
  bool flag = false;
  std::vector<int64_t> numbers;
};

// The header is a Python literal written by numpy's repr of a dict; this reads exactly that grammar: string keys,
// and values that are strings, True/False, tuples of non-negative integers (Python 2 wrote "3L"), or lists.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& where) : s_(text), where_(where) {}

  std::map<std::string, HeaderValue> dict() {
    std::map<std::string, HeaderValue> out;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal();
      expect(':');
      out[key] = value();
      skip_space();
      if (peek() == ',') ++i_;
      else if (peek() != '}') fail("expected ',' or '}'");
    }
    ++i_;
    skip_space();
    if (i_ != s_.size()) fail("text after the closing '}'");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    SIEVE_FAIL(where_, ": malformed .npy header (", what, " at character ", i_, "): ", printable(s_));
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  bool starts_with(const char* word) const { return s_.compare(i_, std::strlen(word), word) == 0; }

  std::string string_literal() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    const size_t end = s_.find(quote, i_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(i_ + 1, end - i_ - 1);
    i_ = end + 1;
    return out;
  }

  HeaderValue value() {
    skip_space();
    HeaderValue v;
    if (peek() == '\'' || peek() == '"') {
      v.text = string_literal();
    } else if (starts_with("True") || starts_with("False")) {
      v.kind = HeaderValue::Bool;
      v.flag = starts_with("True");
      i_ += v.flag ? 4 : 5;
    } else if (peek() == '(') {
      v.kind = HeaderValue::Tuple;
      ++i_;
      while (true) {
        skip_space();
        if (peek() == ')') break;
        if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a non-negative integer in the shape");
        int64_t n = 0;
        while (std::isdigit(static_cast<unsigned char>(peek()))) {
          if (n > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("a dimension too large");
          n = n * 10 + (s_[i_++] - '0');
        }
        if (peek() == 'L') ++i_;
        v.numbers.push_back(n);
        skip_space();
        if (peek() == ',') ++i_;
        else if (peek() != ')') fail("expected ',' or ')' in the shape");
      }
      ++i_;
    } else if (peek() == '[') {
      v.kind = HeaderValue::List;  // kept only to be refused by name: its bracketed contents are skipped
      int depth = 0;
      do {
        if (peek() == '\0') fail("unterminated list");
        depth += peek() == '[' ? 1 : peek() == ']' ? -1 : 0;
        ++i_;
      } while (depth > 0);
    } else {
      fail("expected a string, True, False, a tuple or a list");
    }
    return v;
  }

  const std::string& s_;
  const std::string& where_;
  size_t i_ = 0;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

NpyArray parse_npy(std::vector<uint8_t> bytes, const std::string& where) {
  static const char kMagic[] = "\x93NUMPY";
  SIEVE_CHECK(bytes.size() >= 6 && std::memcmp(bytes.data(), kMagic, 6) == 0, where,
              ": not an .npy array (it does not start with the magic string \\x93NUMPY)");
  SIEVE_CHECK(bytes.size() >= 8, where, ": truncated .npy header (", bytes.size(), " bytes)");
  const int major = bytes[6], minor = bytes[7];
  SIEVE_CHECK(major >= 1 && major <= 3, where, ": .npy format version ", major, ".", minor,
              " not supported (expected 1.0, 2.0 or 3.0)");
  const size_t prefix = major == 1 ? 10 : 12;  // the header length is 2 bytes in version 1.0, 4 bytes after
  SIEVE_CHECK(bytes.size() >= prefix, where, ": truncated .npy header (", bytes.size(), " bytes)");
  const uint64_t header_size = major == 1 ? le16(bytes.data() + 8) : le32(bytes.data() + 8);
  SIEVE_CHECK(header_size <= bytes.size() - prefix, where, ": truncated .npy header (it declares ", header_size,
              " bytes, ", bytes.size() - prefix, " follow)");
  const std::string header(reinterpret_cast<const char*>(bytes.data() + prefix), static_cast<size_t>(header_size));
  const std::map<std::string, HeaderValue> dict = HeaderParser(header, where).dict();

  auto entry = [&](const char* key, HeaderValue::Kind kind, const char* expected) -> const HeaderValue& {
    const auto it = dict.find(key);
    SIEVE_CHECK(it != dict.end(), where, ": the .npy header has no '", key, "': ", printable(header));
    SIEVE_CHECK(it->second.kind == kind || (kind == HeaderValue::String && it->second.kind == HeaderValue::List),
                where, ": the .npy header's '", key, "' is not ", expected, ": ", printable(header));
    return it->second;
  };
  NpyArray a;
  const HeaderValue& descr = entry("descr", HeaderValue::String, "a type string");
  SIEVE_CHECK(descr.kind == HeaderValue::String, where, ": a structured dtype (record array) is not supported: "
              "expected an array of plain numbers");
  a.descr = descr.text;
  a.fortran_order = entry("fortran_order", HeaderValue::Bool, "True or False").flag;
  a.shape = entry("shape", HeaderValue::Tuple, "a tuple of integers").numbers;

  // "<f4": byte order, kind, item size. '|' marks single bytes, where order does not apply.
  const std::string& d = a.descr;
  const bool numeric = d.size() >= 3 && std::string("uifb").find(d[1]) != std::string::npos &&
                       std::all_of(d.begin() + 2, d.end(), [](char c) { return c >= '0' && c <= '9'; });
  a.kind = numeric ? d[1] : 0;
  a.item_size = numeric && d.size() <= 4 ? std::stoi(d.substr(2)) : 0;
  const bool sized = (a.kind == 'u' || a.kind == 'i')   ? (a.item_size == 1 || a.item_size == 2 ||
                                                           a.item_size == 4 || a.item_size == 8)
                     : a.kind == 'f'                    ? (a.item_size == 2 || a.item_size == 4 || a.item_size == 8)
                     : a.kind == 'b'                    ? a.item_size == 1
                                                        : false;
  SIEVE_CHECK(sized, where, ": dtype '", d, "' is not supported (expected numbers: integers, floats or booleans)");
  SIEVE_CHECK(d[0] != '>' || a.item_size == 1, where, ": dtype '", d, "' is big-endian, not supported (write "
              "little-endian arrays, e.g. x.astype('<", d.substr(1), "'))");
  SIEVE_CHECK(d[0] == '<' || d[0] == '|' || (d[0] == '>' && a.item_size == 1), where, ": dtype '", d,
              "' has byte order '", d[0], "' (expected '<', little-endian, or '|')");

  // Sizes guarded against overflow: the data present bound what a valid header can declare.
  const uint64_t have = bytes.size() - prefix - header_size;
  uint64_t expected = static_cast<uint64_t>(a.item_size);
  bool overflow = false;
  for (int64_t dim : a.shape) {
    if (dim != 0 && expected > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(dim)) overflow = true;
    else expected *= static_cast<uint64_t>(dim);
  }
  SIEVE_CHECK(!overflow && expected <= have, where, ": truncated array data: the header declares shape ",
              shape_text(a.shape), " of ", d, overflow ? "" : " = " + std::to_string(expected) + " bytes",
              ", found ", have, " bytes");
  SIEVE_CHECK(expected == have, where, ": trailing bytes: the header declares shape ", shape_text(a.shape), " of ",
              d, " = ", expected, " bytes, found ", have);
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(prefix + header_size));
  a.data = std::move(bytes);
  return a;
}

}  // namespace sieve
