// Percent-encoding (RFC 3986 §2.1) with upper-case hex digits; the caller says which bytes
// stay as they are.
#pragma once

#include <string>
#include <string_view>

namespace mxcd {

template <class KeepPredicate>
std::string percent_encode(std::string_view text, KeepPredicate keep) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (keep(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 0xF];
    }
  }
  return out;
}

inline bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

}  // namespace mxcd
