// RFC 9110 character classes shared by what mxcd parses and what it writes into headers.
#pragma once

#include <algorithm>
#include <string_view>

namespace mxcd {

// tchar: a visible ASCII character that is not a delimiter.
inline bool is_tchar(unsigned char c) {
  if (c <= 32 || c >= 127) return false;
  static constexpr std::string_view kDelimiters = "()<>@,;:\\\"/[]?={}";
  return kDelimiters.find(static_cast<char>(c)) == std::string_view::npos;
}

// token = 1*tchar (header names, Content-Disposition filenames without quoting).
inline bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

// An access token mxcd is willing to pass on in "Authorization: Bearer <token>": tchar plus
// the "/" and "=" of RFC 6750's b64token, so every token a homeserver issues fits, while
// spaces, quotes, control bytes and non-ASCII (which the header cannot carry) do not.
inline bool is_access_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return is_tchar(static_cast<unsigned char>(c)) || c == '/' || c == '=';
  });
}

}  // namespace mxcd
