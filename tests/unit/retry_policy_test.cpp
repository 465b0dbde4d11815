#include "s3/retry_policy.hpp"

#include <gtest/gtest.h>

namespace mxcd::s3 {
namespace {

using std::chrono::milliseconds;

AttemptOutcome answered(unsigned status, std::string_view code, unsigned attempt = 1) {
  AttemptOutcome outcome;
  outcome.attempt = attempt;
  outcome.http_status = status;
  outcome.error_code = code;
  return outcome;
}

AttemptOutcome network_failure(unsigned attempt = 1) {
  AttemptOutcome outcome;
  outcome.attempt = attempt;
  outcome.network_failure = true;
  return outcome;
}

const RetryPolicy kFive(5);

TEST(RetryPolicy, ServerErrorsAndThrottlingAreRetried) {
  for (unsigned status : {500u, 502u, 503u, 504u, 429u}) {
    auto decision = kFive.decide(answered(status, ""));
    EXPECT_TRUE(decision.retry) << status;
    EXPECT_TRUE(decision.temporary) << status;
  }
  EXPECT_TRUE(kFive.decide(answered(503, "SlowDown")).retry);
  EXPECT_TRUE(kFive.decide(answered(500, "InternalError")).retry);
}

TEST(RetryPolicy, TemporaryErrorCodesAreRetriedWhateverTheStatus) {
  for (const char* code : {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"}) {
    auto decision = kFive.decide(answered(400, code));
    EXPECT_TRUE(decision.retry) << code;
    EXPECT_TRUE(decision.temporary) << code;
  }
}

TEST(RetryPolicy, ClientErrorsAreFinalAndNotTemporary) {
  for (auto [status, code] : std::initializer_list<std::pair<unsigned, const char*>>{
           {403, "AccessDenied"},
           {403, "SignatureDoesNotMatch"},
           {404, "NoSuchBucket"},
           {400, "BadRequest"},
           {400, "AuthorizationHeaderMalformed"},
           {301, "PermanentRedirect"},
           {409, "BucketAlreadyExists"},
           {416, "InvalidRange"},
           {400, ""}}) {
    auto decision = kFive.decide(answered(status, code));
    EXPECT_FALSE(decision.retry) << status << " " << code;
    EXPECT_FALSE(decision.temporary) << status << " " << code;
  }
}

TEST(RetryPolicy, NetworkFailuresAreTemporaryAndRetried) {
  auto decision = kFive.decide(network_failure());
  EXPECT_TRUE(decision.retry);
  EXPECT_TRUE(decision.temporary);
  // Also when an answer had begun and then broke off.
  auto broke_off = network_failure();
  broke_off.http_status = 200;
  EXPECT_TRUE(kFive.decide(broke_off).retry);
}

TEST(RetryPolicy, AttemptLimit) {
  EXPECT_TRUE(kFive.decide(answered(500, "", 4)).retry);
  auto last = kFive.decide(answered(500, "", 5));
  EXPECT_FALSE(last.retry);
  EXPECT_TRUE(last.temporary);
  EXPECT_FALSE(kFive.decide(network_failure(5)).retry);
  EXPECT_TRUE(kFive.decide(network_failure(5)).temporary);
  EXPECT_FALSE(kFive.decide(answered(500, "", 6)).retry);
  // One attempt (the bucket check's probes), or none configured: never a retry.
  EXPECT_FALSE(RetryPolicy(1).decide(network_failure()).retry);
  EXPECT_FALSE(RetryPolicy(0).decide(network_failure()).retry);
  EXPECT_TRUE(RetryPolicy(2).decide(network_failure(1)).retry);
  EXPECT_FALSE(RetryPolicy(2).decide(network_failure(2)).retry);
}

TEST(RetryPolicy, NonIdempotentRequestIsNotRepeatedAfterAFailureThatMayHaveTakenEffect) {
  auto failure = network_failure();
  failure.idempotent = false;
  auto decision = kFive.decide(failure);
  EXPECT_FALSE(decision.retry);
  EXPECT_TRUE(decision.temporary);

  for (unsigned status : {500u, 502u, 504u}) {
    auto outcome = answered(status, "InternalError");
    outcome.idempotent = false;
    EXPECT_FALSE(kFive.decide(outcome).retry) << status;
    EXPECT_TRUE(kFive.decide(outcome).temporary) << status;
  }
  auto timeout = answered(400, "RequestTimeout");
  timeout.idempotent = false;
  EXPECT_FALSE(kFive.decide(timeout).retry);
}

TEST(RetryPolicy, NonIdempotentRequestIsRepeatedWhenItWasCertainlyNotCarriedOut) {
  // Throttled or unavailable: the server did nothing.
  for (auto [status, code] :
       std::initializer_list<std::pair<unsigned, const char*>>{{503, ""},
                                                               {503, "ServiceUnavailable"},
                                                               {429, ""},
                                                               {400, "SlowDown"},
                                                               {503, "SlowDown"}}) {
    auto outcome = answered(status, code);
    outcome.idempotent = false;
    EXPECT_TRUE(kFive.decide(outcome).retry) << status << " " << code;
  }
  // A kept-alive connection that failed before any answer: the server had closed it.
  auto stale = network_failure();
  stale.idempotent = false;
  stale.reused_connection = true;
  EXPECT_TRUE(kFive.decide(stale).retry);
  // ...but not once an answer had begun: then the server had the request.
  stale.http_status = 200;
  EXPECT_FALSE(kFive.decide(stale).retry);
  // A new connection that failed may have delivered the request.
  auto fresh = network_failure();
  fresh.idempotent = false;
  EXPECT_FALSE(kFive.decide(fresh).retry);
  // Still bounded by the attempt limit.
  stale.http_status = 0;
  stale.attempt = 5;
  EXPECT_FALSE(kFive.decide(stale).retry);
}

TEST(RetryPolicy, ReusedConnectionDoesNotMakeAFinalErrorRetryable) {
  auto outcome = answered(403, "AccessDenied");
  outcome.reused_connection = true;
  EXPECT_FALSE(kFive.decide(outcome).retry);
}

TEST(RetryPolicy, PauseDoublesFromTwoHundredMillisecondsUpToFiveSeconds) {
  const RetryPolicy many(100);
  auto pause = [&](unsigned attempt) { return many.decide(network_failure(attempt)); };
  EXPECT_EQ(pause(1).longest_pause, milliseconds(200));
  EXPECT_EQ(pause(1).shortest_pause, milliseconds(50));
  EXPECT_EQ(pause(2).longest_pause, milliseconds(400));
  EXPECT_EQ(pause(2).shortest_pause, milliseconds(100));
  EXPECT_EQ(pause(3).longest_pause, milliseconds(800));
  EXPECT_EQ(pause(4).longest_pause, milliseconds(1600));
  EXPECT_EQ(pause(5).longest_pause, milliseconds(3200));
  EXPECT_EQ(pause(6).longest_pause, milliseconds(5000));
  EXPECT_EQ(pause(6).shortest_pause, milliseconds(1250));
  EXPECT_EQ(pause(16).longest_pause, milliseconds(5000));
  EXPECT_EQ(pause(50).longest_pause, milliseconds(5000));
  EXPECT_EQ(pause(50).shortest_pause, milliseconds(1250));
}

TEST(RetryPolicy, NoPauseWhenGivingUp) {
  auto decision = kFive.decide(answered(403, "AccessDenied"));
  EXPECT_EQ(decision.longest_pause, milliseconds(0));
  EXPECT_EQ(decision.shortest_pause, milliseconds(0));
}

TEST(RetryPolicy, DrawnPauseStaysWithinBounds) {
  RetryDecision decision;
  decision.retry = true;
  decision.shortest_pause = milliseconds(50);
  decision.longest_pause = milliseconds(200);
  bool varied = false;
  auto first = draw_pause(decision);
  for (int i = 0; i < 200; ++i) {
    auto pause = draw_pause(decision);
    EXPECT_GE(pause, milliseconds(50));
    EXPECT_LE(pause, milliseconds(200));
    varied = varied || pause != first;
  }
  EXPECT_TRUE(varied);
  decision.shortest_pause = decision.longest_pause = milliseconds(7);
  EXPECT_EQ(draw_pause(decision), milliseconds(7));
}

}  // namespace
}  // namespace mxcd::s3
