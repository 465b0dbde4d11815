#include "s3/s3_error.hpp"

#include <pugixml.hpp>

#include <cmath>
#include <ctime>

namespace mxcd::s3 {

namespace {

// Skew beyond which SigV4 requests are refused (AWS allows 15 minutes; we warn earlier).
constexpr auto kNotableSkew = std::chrono::minutes(5);

std::string code_for_status(unsigned status) {
  switch (status) {
    case 301:
      return "PermanentRedirect";
    case 400:
      return "BadRequest";
    case 403:
      return "AccessDenied";
    case 404:
      return "NotFound";
    case 429:
      return "SlowDown";
    case 503:
      return "ServiceUnavailable";
    default:
      return status >= 500 ? "InternalError" : "HTTP" + std::to_string(status);
  }
}

std::string skew_sentence(const S3Error& e, const ErrorContext& c) {
  if (!e.server_time) return {};
  auto skew = std::chrono::duration_cast<std::chrono::seconds>(c.local_time - *e.server_time);
  if (std::chrono::abs(skew) < kNotableSkew) return {};
  return " This machine's clock is " + std::to_string(std::abs(skew.count())) + " s " +
         (skew.count() > 0 ? "ahead of" : "behind") +
         " the server's: signatures are only valid within 15 minutes, so set the clock "
         "right (NTP).";
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  if (*end == '.') {
    ++end;
    while (*end >= '0' && *end <= '9') ++end;
  }
  if (std::string_view(end) != "Z") return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

bool points_at_region(const S3Error& e, std::string_view configured_region) {
  return (!e.region.empty() && e.region != configured_region) ||
         e.code == "AuthorizationHeaderMalformed" || e.code == "PermanentRedirect" ||
         e.code == "IllegalLocationConstraintException";
}

bool S3Error::retryable() const {
  return http_status >= 500 || http_status == 429 || code == "SlowDown" ||
         code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable";
}

S3Error parse_s3_error(unsigned http_status, std::string_view body, const ErrorHeaders& headers) {
  S3Error e;
  e.http_status = http_status;
  pugi::xml_document document;
  if (!body.empty() && document.load_buffer(body.data(), body.size())) {
    pugi::xml_node error = document.child("Error");
    e.code = error.child_value("Code");
    e.message = error.child_value("Message");
    e.region = error.child_value("Region");
    e.request_id = error.child_value("RequestId");
  }
  if (e.code.empty()) e.code = code_for_status(http_status);
  if (e.region.empty()) e.region = std::string(headers.bucket_region);
  if (e.request_id.empty()) e.request_id = std::string(headers.request_id);
  if (!headers.date.empty()) e.server_time = parse_http_date(headers.date);
  return e;
}

std::string explain(const S3Error& e, const ErrorContext& c) {
  const std::string where = " at " + c.endpoint;
  const bool wrong_region = !e.region.empty() && e.region != c.configured_region;
  if (points_at_region(e, c.configured_region)) {
    if (wrong_region) {
      return "Bucket \"" + c.bucket + "\" is in region " + e.region + ", not " +
             c.configured_region + ": set the store's region to " + e.region + ".";
    }
    return "The server refused region " + c.configured_region + " for bucket \"" + c.bucket + "\"" +
           where + ": check the store's region and endpoint (" + e.code + ").";
  }
  if (e.code == "NoSuchBucket") {
    return "Bucket \"" + c.bucket + "\" does not exist" + where +
           ": create it, or correct the bucket name or endpoint.";
  }
  if (e.code == "InvalidAccessKeyId") {
    return "The access key ID is unknown" + where +
           ": check access_key_id (it must be an S3-compatible key of this provider).";
  }
  if (e.code == "SignatureDoesNotMatch") {
    std::string skew = skew_sentence(e, c);
    return "The server computed a different signature" + where + ": " +
           (skew.empty() ? "check secret_access_key (it must belong to access_key_id)."
                         : "check secret_access_key." + skew);
  }
  if (e.code == "RequestTimeTooSkewed") {
    std::string skew = skew_sentence(e, c);
    return "The server refused the request time" + where + "." +
           (skew.empty() ? " Set this machine's clock right (NTP)." : skew);
  }
  if (e.code == "AccessDenied") {
    return "Access denied to bucket \"" + c.bucket + "\"" + where +
           ": the key needs s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on "
           "this bucket (and its policy must allow them)." +
           skew_sentence(e, c);
  }
  std::string text = "The S3 server answered " + std::to_string(e.http_status) + " " + e.code;
  if (!e.message.empty()) text += " (" + e.message + ")";
  text += where + (e.retryable() ? "; retrying may help." : ".");
  if (!e.request_id.empty()) text += " Request ID " + e.request_id + ".";
  return text;
}

}  // namespace mxcd::s3
