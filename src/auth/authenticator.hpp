// Who is asking: access tokens are resolved to a Matrix user through the homeserver's
// /account/whoami, with successful answers cached for a configured time. Fails closed:
// when the homeserver cannot confirm a token, the request is refused.
#pragma once

#include "core/config.hpp"
#include "core/result.hpp"
#include "http/client.hpp"
#include "http/request.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mxcd::auth {

struct Requester {
  std::string user_id;
  bool is_guest = false;
};

class Authenticator {
 public:
  // Throws std::runtime_error when auth.homeserver_ca_file cannot be loaded.
  explicit Authenticator(const Config::Auth& config);

  // 401 M_MISSING_TOKEN without a token; the homeserver's own 401/403/429 error passed
  // through for a token it rejects (soft_logout kept); 502 when it cannot be asked.
  boost::asio::awaitable<Result<Requester>> authenticate(const http::Request& request);

 private:
  struct CacheEntry {
    Requester requester;
    std::chrono::steady_clock::time_point expires;
  };

  boost::asio::awaitable<Result<Requester>> ask_homeserver(const std::string& token,
                                                           const std::string& asserted_user);
  std::optional<Requester> cached(const std::string& key);
  void remember(const std::string& key, const Requester& requester);

  const Config::Auth& config_;
  http::Client client_;
  std::unordered_map<std::string, Requester> static_tokens_;  // keyed by SHA-256 of the token
  std::mutex cache_mutex_;
  std::unordered_map<std::string, CacheEntry> cache_;  // keyed by SHA-256 of token + user_id
};

}  // namespace mxcd::auth
