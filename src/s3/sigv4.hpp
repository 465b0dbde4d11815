// AWS Signature Version 4, for S3 requests (Authorization header) and presigned URLs (query
// string). Ours because no maintained C++ S3 SDK is packaged in Debian; checked against the
// AWS SigV4 test suite (tests/unit/sigv4_test.cpp).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mxcd::s3 {

using NameValues = std::vector<std::pair<std::string, std::string>>;

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials
};

struct SigningScope {
  std::string region;
  std::string service = "s3";
  // RFC 3986 dot-segment removal and slash collapsing. Other AWS services expect it; S3 does
  // not, since object keys may contain "//" and "./".
  bool normalize_path = false;
};

struct RequestToSign {
  std::string method;
  std::string path;            // decoded, beginning with '/'; encoded by the signer as S3 expects
  NameValues query;            // decoded names and values
  NameValues headers;          // must include Host
  std::string payload_sha256;  // lower-case hex of the body, or "UNSIGNED-PAYLOAD"
};

struct Signature {
  NameValues added;  // headers (header signing) or query parameters (presigning) to send
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;
};

// Signs with an Authorization header. Adds X-Amz-Date, X-Amz-Security-Token (when there is a
// session token), X-Amz-Content-Sha256 when add_content_sha256 is set (S3 requires it), and
// Authorization.
Signature sign_with_headers(const RequestToSign& request, const Credentials& credentials,
                            const SigningScope& scope, std::chrono::system_clock::time_point now,
                            bool add_content_sha256 = true);

// Presigns into the query string (X-Amz-Algorithm ... X-Amz-Signature), valid for `expires`.
Signature sign_with_query(const RequestToSign& request, const Credentials& credentials,
                          const SigningScope& scope, std::chrono::system_clock::time_point now,
                          std::chrono::seconds expires);

// Percent-encodes everything but the unreserved characters (A-Z a-z 0-9 - . _ ~), and '/'
// when keep_slash is set. This is also the encoding to put on the wire.
std::string uri_encode(std::string_view text, bool keep_slash);

// The canonical form of a decoded path: optionally normalised, then encoded segment by segment.
std::string canonical_path(std::string_view path, bool normalize);

}  // namespace mxcd::s3
