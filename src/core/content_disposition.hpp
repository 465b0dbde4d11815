// How a download describes its bytes. Content-Type: the stored type, with a UTF-8 charset
// added to bare text types. Content-Disposition: inline only for the specification's safe
// media types, attachment otherwise, with a filename encoded so that every client parses it
// back exactly.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mxcd {

// The Content-Type a download is served with: the stored type verbatim ("img/png" stays
// "img/png"), plus "; charset=UTF-8" when it is exactly one of the text types browsers would
// otherwise decode with a guess (text/plain, text/html, application/json, image/svg+xml...,
// compared case-insensitively). A type that names parameters of its own is left as it is.
std::string served_content_type(std::string_view stored);

// True for the types a browser may show in place (images, audio, video, plain text...).
// Compared case-insensitively; parameters after ';' are ignored.
bool is_inline_safe_content_type(std::string_view content_type);

// "inline" or "attachment", then the filename if one is given:
//   RFC 2616 token            -> filename=name.png
//   other printable ASCII     -> filename="name with spaces" (quoted-string, \ and " escaped)
//   anything non-ASCII        -> filename*=utf-8''<percent-encoded UTF-8>
std::string content_disposition(std::string_view content_type,
                                const std::optional<std::string>& filename);

// An upload name we are willing to store and echo: 1..255 bytes of valid UTF-8 with no
// control characters.
bool is_valid_upload_name(std::string_view name);

}  // namespace mxcd
