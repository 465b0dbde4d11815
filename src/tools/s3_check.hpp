// mxcd s3 check: tests each configured S3 store's bucket the way mxcd will use it and says,
// check by check, what is right (OK), risky (WARN) or broken (FAIL), and what to change:
// the endpoint and its TLS certificate, the keys, the region, the bucket, every permission
// mxcd needs (on a scratch object under the store's prefix, removed afterwards), that the
// bucket is private, versioning, the clock, and the payload signing mode. Every request is
// sent once, without retries, so a server that is down is reported at once.
#pragma once

#include "core/config.hpp"

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace mxcd {

struct S3CheckFinding {
  enum class Verdict { ok, warn, fail };
  std::string check;  // a stable id, e.g. "put-object"
  Verdict verdict = Verdict::ok;
  std::string message;  // what was seen and, unless OK, what to change
};

struct S3StoreReport {
  std::string store;
  std::string bucket;
  std::string endpoint;
  std::string provider;                  // from the endpoint's host name; empty when not recognised
  std::vector<S3CheckFinding> findings;  // in the order of the checks, skipped ones left out
};

// The provider an endpoint's host name belongs to ("Backblaze B2", ...), or empty.
std::string recognise_s3_provider(std::string_view endpoint);

// Checks the S3 stores of the configuration, or only the one named store_name (when not
// empty), and writes the report to out: lines for people, or one JSON document. Returns the
// exit code: 0 when nothing failed, 1 when a check failed, 2 when there is no such S3 store
// (the message goes to err).
int check_s3_stores(const Config& config, const std::string& store_name, bool json,
                    std::ostream& out, std::ostream& err);

}  // namespace mxcd
