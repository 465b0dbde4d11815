#include "s3/retry_policy.hpp"

#include "s3/s3_error.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>

namespace mxcd::s3 {

RetryDecision RetryPolicy::decide(const AttemptOutcome& outcome) const {
  bool temporary = true;
  bool may_repeat = outcome.idempotent;
  if (outcome.network_failure) {
    // A kept-alive connection the server had closed: the request never reached it.
    if (outcome.reused_connection && outcome.http_status == 0) may_repeat = true;
  } else {
    S3Error error;
    error.http_status = outcome.http_status;
    error.code = std::string(outcome.error_code);
    temporary = error.retryable();
    // A throttled or failed request was not carried out: repeating it is safe.
    may_repeat = may_repeat || outcome.error_code == "SlowDown" || outcome.http_status == 429 ||
                 outcome.http_status == 503;
  }
  RetryDecision decision;
  decision.temporary = temporary;
  if (!temporary || !may_repeat || outcome.attempt >= max_attempts_) return decision;
  decision.retry = true;
  decision.longest_pause = std::min<std::chrono::milliseconds>(
      kFirstPause * (1LL << std::min(outcome.attempt, 16U)), kLongestPause);
  decision.shortest_pause = decision.longest_pause / 4;
  return decision;
}

std::chrono::milliseconds draw_pause(const RetryDecision& decision) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(
      decision.shortest_pause.count(), decision.longest_pause.count())(random));
}

}  // namespace mxcd::s3
