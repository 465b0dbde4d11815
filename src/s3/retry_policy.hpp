// When an S3 request that failed is sent again, and after how long. The decision is a pure
// function of what happened on the attempt, so every case is unit-tested; the client's I/O
// code only reports the outcome, logs, waits and repeats.
//
// A request is repeated when the failure may be temporary (a network failure, a 5xx, 429,
// SlowDown, RequestTimeout...: S3Error::retryable()) and repeating it is safe: the request is
// idempotent, or it was certainly not carried out (the server throttled it or was unavailable,
// or a kept-alive connection the server had already closed failed before any answer).
// The pause grows exponentially with the attempt number, up to a ceiling, and is drawn at
// random between a quarter of it and all of it, so that clients retrying at once spread out.
#pragma once

#include <chrono>
#include <string_view>

namespace mxcd::s3 {

struct AttemptOutcome {
  unsigned attempt = 1;            // 1 for the first try
  bool network_failure = false;    // no answer, or an answer that broke off
  unsigned http_status = 0;        // of the answer; 0 when no answer head arrived
  std::string_view error_code;     // S3's error code from the answer, e.g. "SlowDown"
  bool idempotent = true;          // the request may be carried out twice without harm
  bool reused_connection = false;  // sent on a kept-alive connection from the pool
};

struct RetryDecision {
  bool retry = false;
  // When retrying: the pause is drawn from [shortest_pause, longest_pause].
  std::chrono::milliseconds shortest_pause{0};
  std::chrono::milliseconds longest_pause{0};
  // When giving up: the failure may pass (the storage is unavailable, 503) rather than the
  // storage refusing the request (502).
  bool temporary = false;
};

class RetryPolicy {
 public:
  static constexpr std::chrono::milliseconds kFirstPause{100};
  static constexpr std::chrono::milliseconds kLongestPause{5000};

  // max_attempts counts the first try; 0 or 1 means no retry.
  explicit RetryPolicy(unsigned max_attempts) : max_attempts_(max_attempts) {}

  // Only for failures: a 2xx answer (and a 404 where it is an answer) never gets here.
  RetryDecision decide(const AttemptOutcome& outcome) const;

 private:
  unsigned max_attempts_;
};

// A random pause within the decision's bounds.
std::chrono::milliseconds draw_pause(const RetryDecision& decision);

}  // namespace mxcd::s3
