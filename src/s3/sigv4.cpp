#include "s3/sigv4.hpp"

#include "core/sha256.hpp"
#include "core/percent_encoding.hpp"

#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

namespace mxcd::s3 {

namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Trims and collapses runs of whitespace to one space (line breaks of folded headers too).
std::string canonical_header_value(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &length);
  return std::string(reinterpret_cast<char*>(out), length);
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xF];
  }
  return out;
}

struct Timestamps {
  std::string date;       // 20150830
  std::string date_time;  // 20150830T123600Z
};

Timestamps timestamps(std::chrono::system_clock::time_point now) {
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &tm);
  return {std::string(buffer, 8), buffer};
}

std::string canonical_query(const NameValues& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(uri_encode(name, false), uri_encode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

struct CanonicalHeaders {
  std::string text;          // "name:value\n" lines
  std::string signed_names;  // "host;x-amz-date"
};

CanonicalHeaders canonical_headers(const NameValues& headers) {
  // Repeated headers are joined with commas, in the order they were given.
  std::map<std::string, std::string> joined;
  for (const auto& [name, value] : headers) {
    std::string& slot = joined[lower(name)];
    if (!slot.empty()) slot += ',';
    slot += canonical_header_value(value);
  }
  CanonicalHeaders out;
  for (const auto& [name, value] : joined) {
    out.text += name;
    out.text += ':';
    out.text += value;
    out.text += '\n';
    if (!out.signed_names.empty()) out.signed_names += ';';
    out.signed_names += name;
  }
  return out;
}

// Fills in canonical request, string to sign and signature.
void compute(Signature& s, const RequestToSign& request, const NameValues& query,
             const CanonicalHeaders& headers, const Credentials& credentials,
             const SigningScope& scope, const Timestamps& when,
             const std::string& credential_scope) {
  s.canonical_request = request.method + '\n' + canonical_path(request.path, scope.normalize_path) +
                        '\n' + canonical_query(query) + '\n' + headers.text + '\n' +
                        headers.signed_names + '\n' + request.payload_sha256;
  s.string_to_sign = std::string(kAlgorithm) + '\n' + when.date_time + '\n' + credential_scope +
                     '\n' + Sha256::hex_of(s.canonical_request);
  std::string key = hmac("AWS4" + credentials.secret_access_key, when.date);
  key = hmac(key, scope.region);
  key = hmac(key, scope.service);
  key = hmac(key, "aws4_request");
  s.signature = hex(hmac(key, s.string_to_sign));
}

}  // namespace

std::string uri_encode(std::string_view text, bool keep_slash) {
  return percent_encode(
      text, [keep_slash](unsigned char c) { return is_unreserved(c) || (keep_slash && c == '/'); });
}

std::string canonical_path(std::string_view path, bool normalize) {
  if (!normalize) return uri_encode(path.empty() ? "/" : path, true);
  // Remove "." and ".." segments and empty segments, keeping a trailing slash.
  std::vector<std::string_view> segments;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(start, end - start);
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    start = end + 1;
  }
  std::string out;
  for (auto segment : segments) out += '/' + uri_encode(segment, false);
  bool trailing =
      !path.empty() && (path.back() == '/' || path.ends_with("/.") || path.ends_with("/.."));
  if (out.empty() || (trailing && !segments.empty())) out += '/';
  return out;
}

Signature sign_with_headers(const RequestToSign& request, const Credentials& credentials,
                            const SigningScope& scope, std::chrono::system_clock::time_point now,
                            bool add_content_sha256) {
  const Timestamps when = timestamps(now);
  const std::string credential_scope =
      when.date + '/' + scope.region + '/' + scope.service + "/aws4_request";
  Signature s;
  s.added.emplace_back("X-Amz-Date", when.date_time);
  if (!credentials.session_token.empty()) {
    s.added.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  if (add_content_sha256) s.added.emplace_back("X-Amz-Content-Sha256", request.payload_sha256);
  NameValues all_headers = request.headers;
  all_headers.insert(all_headers.end(), s.added.begin(), s.added.end());
  const CanonicalHeaders headers = canonical_headers(all_headers);
  compute(s, request, request.query, headers, credentials, scope, when, credential_scope);
  s.added.emplace_back("Authorization",
                       std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + '/' +
                           credential_scope + ", SignedHeaders=" + headers.signed_names +
                           ", Signature=" + s.signature);
  return s;
}

Signature sign_with_query(const RequestToSign& request, const Credentials& credentials,
                          const SigningScope& scope, std::chrono::system_clock::time_point now,
                          std::chrono::seconds expires) {
  const Timestamps when = timestamps(now);
  const std::string credential_scope =
      when.date + '/' + scope.region + '/' + scope.service + "/aws4_request";
  const CanonicalHeaders headers = canonical_headers(request.headers);
  Signature s;
  s.added.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
  s.added.emplace_back("X-Amz-Credential", credentials.access_key_id + '/' + credential_scope);
  s.added.emplace_back("X-Amz-Date", when.date_time);
  s.added.emplace_back("X-Amz-Expires", std::to_string(expires.count()));
  if (!credentials.session_token.empty()) {
    s.added.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  s.added.emplace_back("X-Amz-SignedHeaders", headers.signed_names);
  NameValues query = request.query;
  query.insert(query.end(), s.added.begin(), s.added.end());
  compute(s, request, query, headers, credentials, scope, when, credential_scope);
  s.added.emplace_back("X-Amz-Signature", s.signature);
  return s;
}

}  // namespace mxcd::s3
