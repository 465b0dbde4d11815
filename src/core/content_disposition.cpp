#include "core/content_disposition.hpp"

#include "core/http_grammar.hpp"
#include "core/percent_encoding.hpp"

#include <algorithm>
#include <cctype>

namespace mxcd {

namespace {

constexpr std::string_view kInlineSafeTypes[] = {
    "text/css",    "text/plain", "text/csv",    "application/json", "application/ld+json",
    "image/jpeg",  "image/gif",  "image/png",   "image/apng",       "image/webp",
    "image/avif",  "video/mp4",  "video/webm",  "video/ogg",        "video/quicktime",
    "audio/mp4",   "audio/webm", "audio/aac",   "audio/mpeg",       "audio/ogg",
    "audio/wave",  "audio/wav",  "audio/x-wav", "audio/x-pn-wav",   "audio/flac",
    "audio/x-flac"};

// Text types a browser decodes with a guess unless told the charset; stored bare, they are
// served as UTF-8, which is what Matrix clients upload (the list Synapse uses).
constexpr std::string_view kUtf8DefaultTypes[] = {
    "text/css",        "text/csv",        "text/html",        "text/calendar",
    "text/plain",      "text/javascript", "application/json", "application/ld+json",
    "application/rtf", "image/svg+xml",   "text/xml"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_printable_ascii(unsigned char c) { return c >= 32 && c < 127; }

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not valid UTF-8
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  std::size_t len;
  unsigned min;
  unsigned cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else return 0;
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// The bidirectional embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069):
// in a file name they make "gpj.exe" display as "exe.jpg". Stored names keep them (a name is
// what the uploader sent); the names mxcd hands to browsers and download dialogs do not.
std::string without_bidi_controls(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (i + 2 < name.size() && name[i] == '\xE2') {
      const auto second = static_cast<unsigned char>(name[i + 1]);
      const auto third = static_cast<unsigned char>(name[i + 2]);
      if ((second == 0x80 && third >= 0xAA && third <= 0xAE) ||
          (second == 0x81 && third >= 0xA6 && third <= 0xA9)) {
        i += 2;
        continue;
      }
    }
    out += name[i];
  }
  return out;
}

}  // namespace

bool is_inline_safe_content_type(std::string_view content_type) {
  std::string_view essence = trim(content_type.substr(0, content_type.find(';')));
  return std::any_of(std::begin(kInlineSafeTypes), std::end(kInlineSafeTypes),
                     [&](std::string_view t) { return equals_ignore_case(essence, t); });
}

std::string served_content_type(std::string_view stored) {
  const bool bare_text =
      std::any_of(std::begin(kUtf8DefaultTypes), std::end(kUtf8DefaultTypes),
                  [&](std::string_view t) { return equals_ignore_case(stored, t); });
  return bare_text ? std::string(stored) + "; charset=UTF-8" : std::string(stored);
}

std::string content_disposition(std::string_view content_type,
                                const std::optional<std::string>& filename) {
  std::string header = is_inline_safe_content_type(content_type) ? "inline" : "attachment";
  if (!filename) return header;
  const std::string name = without_bidi_controls(*filename);
  if (name.empty()) return header;
  auto bytes = [&](auto predicate) {
    return std::all_of(name.begin(), name.end(),
                       [&](char c) { return predicate(static_cast<unsigned char>(c)); });
  };
  if (is_token(name)) {
    header += "; filename=" + name;
  } else if (bytes(is_printable_ascii)) {
    header += "; filename=\"";
    for (char c : name) {
      if (c == '"' || c == '\\') header += '\\';
      header += c;
    }
    header += '"';
  } else {
    // RFC 5987 ext-value: attr-chars stay, every other byte is percent-encoded.
    header += "; filename*=utf-8''";
    header += percent_encode(name, [](unsigned char c) {
      return std::isalnum(c) ||
             std::string_view("!#$&+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    });
  }
  return header;
}

bool is_valid_upload_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (std::size_t i = 0; i < name.size();) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c < 32 || c == 127) return false;
    std::size_t len = utf8_sequence_length(name, i);
    if (len == 0) return false;
    // C1 control characters U+0080..U+009F are encoded as C2 80..C2 9F.
    if (len == 2 && c == 0xC2 && static_cast<unsigned char>(name[i + 1]) < 0xA0) return false;
    i += len;
  }
  return true;
}

}  // namespace mxcd
