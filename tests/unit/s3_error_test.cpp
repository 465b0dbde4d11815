#include "s3/s3_error.hpp"

#include <gtest/gtest.h>

namespace mxcd::s3 {
namespace {

using namespace std::chrono_literals;

const auto kNow = std::chrono::system_clock::from_time_t(1'763'812'800);  // 2025-11-22T12:00:00Z
const ErrorContext kContext{"media", "https://s3.eu-west-1.amazonaws.com", "us-east-1", kNow};

std::string xml(std::string_view code, std::string_view extra = "") {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + std::string(code) +
         "</Code><Message>server words</Message>" + std::string(extra) +
         "<RequestId>R1</RequestId></Error>";
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST(S3Error, ParsesTheErrorDocument) {
  S3Error e = parse_s3_error(404, xml("NoSuchBucket"), {});
  EXPECT_EQ(e.code, "NoSuchBucket");
  EXPECT_EQ(e.message, "server words");
  EXPECT_EQ(e.request_id, "R1");
  EXPECT_FALSE(e.retryable());
  EXPECT_TRUE(contains(explain(e, kContext), "Bucket \"media\" does not exist"));
}

TEST(S3Error, WithoutABodyTheStatusAndHeadersSpeak) {
  S3Error e = parse_s3_error(301, "", {"eu-west-1", "R2", ""});
  EXPECT_EQ(e.code, "PermanentRedirect");
  EXPECT_EQ(e.region, "eu-west-1");
  EXPECT_EQ(e.request_id, "R2");
  EXPECT_EQ(explain(e, kContext),
            "Bucket \"media\" is in region eu-west-1, not us-east-1: set the store's region to "
            "eu-west-1.");
  EXPECT_EQ(parse_s3_error(403, "", {}).code, "AccessDenied");
  EXPECT_EQ(parse_s3_error(404, "not xml <", {}).code, "NotFound");
}

TEST(S3Error, WrongRegionFromTheBody) {
  S3Error e =
      parse_s3_error(400, xml("AuthorizationHeaderMalformed", "<Region>ap-south-1</Region>"), {});
  EXPECT_TRUE(contains(explain(e, kContext), "set the store's region to ap-south-1"));
  S3Error unnamed = parse_s3_error(400, xml("AuthorizationHeaderMalformed"), {});
  EXPECT_TRUE(contains(explain(unnamed, kContext), "refused region us-east-1"));
}

TEST(S3Error, SignatureMismatchMentionsClockSkewOnlyWhenThereIsSkew) {
  S3Error in_time =
      parse_s3_error(403, xml("SignatureDoesNotMatch"), {"", "", "Sat, 22 Nov 2025 12:01:00 GMT"});
  EXPECT_TRUE(contains(explain(in_time, kContext), "check secret_access_key"));
  EXPECT_FALSE(contains(explain(in_time, kContext), "clock"));

  S3Error skewed =
      parse_s3_error(403, xml("SignatureDoesNotMatch"), {"", "", "Sat, 22 Nov 2025 12:20:00 GMT"});
  std::string text = explain(skewed, kContext);
  EXPECT_TRUE(contains(text, "1200 s behind the server's")) << text;
  EXPECT_TRUE(contains(text, "NTP"));
}

TEST(S3Error, KeysAndPermissions) {
  EXPECT_TRUE(contains(explain(parse_s3_error(403, xml("InvalidAccessKeyId"), {}), kContext),
                       "access key ID is unknown"));
  EXPECT_TRUE(
      contains(explain(parse_s3_error(403, xml("AccessDenied"), {}), kContext), "s3:PutObject"));
  EXPECT_TRUE(contains(explain(parse_s3_error(403, xml("RequestTimeTooSkewed"),
                                              {"", "", "Sat, 22 Nov 2025 11:00:00 GMT"}),
                               kContext),
                       "3600 s ahead of"));
}

TEST(S3Error, Retryable) {
  EXPECT_TRUE(parse_s3_error(503, xml("SlowDown"), {}).retryable());
  EXPECT_TRUE(parse_s3_error(500, "", {}).retryable());
  EXPECT_TRUE(parse_s3_error(429, "", {}).retryable());
  EXPECT_TRUE(parse_s3_error(400, xml("RequestTimeout"), {}).retryable());
  EXPECT_FALSE(parse_s3_error(403, xml("AccessDenied"), {}).retryable());
  EXPECT_FALSE(parse_s3_error(404, "", {}).retryable());
  std::string text = explain(parse_s3_error(503, xml("SlowDown"), {}), kContext);
  EXPECT_TRUE(contains(text, "503 SlowDown (server words)")) << text;
  EXPECT_TRUE(contains(text, "retrying may help"));
}

}  // namespace
}  // namespace mxcd::s3

namespace mxcd::s3 {
namespace {

TEST(S3Time, Iso8601AsListingsGiveIt) {
  using std::chrono::system_clock;
  EXPECT_EQ(parse_iso8601("2026-12-02T17:33:14.000Z"), system_clock::from_time_t(1796232794));
  EXPECT_EQ(parse_iso8601("2026-12-02T17:33:14Z"), system_clock::from_time_t(1796232794));
  EXPECT_EQ(parse_iso8601("2026-12-02T17:33:14.123456Z"), system_clock::from_time_t(1796232794));
  EXPECT_FALSE(parse_iso8601(""));
  EXPECT_FALSE(parse_iso8601("2026-12-02T17:33:14+01:00"));
  EXPECT_FALSE(parse_iso8601("yesterday"));
}

}  // namespace
}  // namespace mxcd::s3
