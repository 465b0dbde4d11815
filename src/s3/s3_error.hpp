// What an S3 server's error answer means, in words an operator can act on. Parses the
// <Error> document (and the headers that carry the same facts when there is no body, as on
// HEAD), tells which errors are worth retrying, and explains the common set-up mistakes:
// wrong keys, wrong region (naming the right one), a missing bucket, a skewed clock.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mxcd::s3 {

struct S3Error {
  unsigned http_status = 0;
  std::string code;     // e.g. "NoSuchBucket"; derived from the status when there is no body
  std::string message;  // the server's own words, if any
  std::string region;   // the bucket's real region, when the server tells it
  std::string request_id;
  std::optional<std::chrono::system_clock::time_point> server_time;  // from the Date header

  // Network-level trouble, throttling and server errors: the request may succeed if repeated.
  bool retryable() const;
};

// headers: the x-amz-bucket-region, x-amz-request-id and Date values, when present.
struct ErrorHeaders {
  std::string_view bucket_region;
  std::string_view request_id;
  std::string_view date;
};

S3Error parse_s3_error(unsigned http_status, std::string_view body, const ErrorHeaders& headers);

// An HTTP Date header ("Sun, 06 Nov 1994 08:49:37 GMT"); absent when it is not one.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);
// An ISO 8601 UTC time as S3's XML answers give it ("2026-12-02T17:33:14.000Z"); fractions of
// a second are dropped.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);

// Whether the server refused the request because of the region it was signed for, or told
// a region other than the configured one (error.region then names the right one).
bool points_at_region(const S3Error& error, std::string_view configured_region);

struct ErrorContext {
  std::string bucket;
  std::string endpoint;
  std::string configured_region;
  std::chrono::system_clock::time_point local_time;
};

// One or two sentences: what is wrong and what to change.
std::string explain(const S3Error& error, const ErrorContext& context);

}  // namespace mxcd::s3
