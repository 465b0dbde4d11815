#include "auth/authenticator.hpp"

#include "core/sha256.hpp"
#include "core/http_grammar.hpp"

#include <boost/json/parse.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <spdlog/spdlog.h>

namespace mxcd::auth {

namespace {

constexpr auto kWhoamiTimeout = std::chrono::seconds(10);
// The cache is pruned of expired entries when it grows past this many.
constexpr std::size_t kCachePruneThreshold = 100'000;
// Fields of the homeserver's error that clients act on, beyond errcode and error.
constexpr std::string_view kPassedThroughFields[] = {"soft_logout", "retry_after_ms"};

std::string bearer_token(const http::Request& request) {
  std::string_view header = request.header(boost::beast::http::field::authorization);
  constexpr std::string_view scheme = "bearer ";
  if (header.size() > scheme.size()) {
    bool is_bearer = true;
    for (std::size_t i = 0; i < scheme.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) is_bearer = false;
    }
    if (is_bearer) return std::string(header.substr(scheme.size()));
  }
  return std::string(request.query_param("access_token").value_or(""));
}

MatrixError unknown_token() {
  MatrixError e;
  e.status = 401;
  e.errcode = "M_UNKNOWN_TOKEN";
  e.message = "Unknown access token";
  return e;
}

MatrixError homeserver_unreachable(const std::string& why) {
  MatrixError e;
  e.status = 502;
  e.errcode = "M_UNKNOWN";
  e.message = "Could not verify the access token with the homeserver";
  spdlog::error("whoami failed: {}", why);
  return e;
}

}  // namespace

Authenticator::Authenticator(const Config::Auth& config)
    : config_(config), client_(config.homeserver_ca_file) {
  for (const auto& t : config.static_tokens) {
    static_tokens_[Sha256::hex_of(t.token)] = Requester{t.user_id, false};
  }
}

boost::asio::awaitable<Result<Requester>> Authenticator::authenticate(
    const http::Request& request) {
  std::string token = bearer_token(request);
  if (token.empty()) co_return MatrixError::missing_token();
  // No homeserver issues such a token, and passing it on could rewrite the whoami request.
  if (!is_access_token(token)) co_return unknown_token();
  std::string asserted_user(request.query_param("user_id").value_or(""));

  if (asserted_user.empty()) {
    if (auto it = static_tokens_.find(Sha256::hex_of(token)); it != static_tokens_.end()) {
      co_return it->second;
    }
  }
  if (config_.homeserver_url.empty()) co_return unknown_token();
  // Cache keys are hashes so that no token sits in memory longer than the request needs it.
  std::string key = Sha256::hex_of(token + '\0' + asserted_user);
  if (auto hit = cached(key)) co_return *hit;
  auto result = co_await ask_homeserver(token, asserted_user);
  if (result) remember(key, *result);
  co_return result;
}

boost::asio::awaitable<Result<Requester>> Authenticator::ask_homeserver(
    const std::string& token, const std::string& asserted_user) {
  std::string url = config_.homeserver_url + "/_matrix/client/v3/account/whoami";
  if (!asserted_user.empty()) {
    url += "?user_id=" + boost::urls::encode(asserted_user, boost::urls::unreserved_chars);
  }
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Authorization", "Bearer " + token);
  auto response = co_await client_.get(url, headers, kWhoamiTimeout, 64 * 1024);
  if (!response) co_return homeserver_unreachable(response.error().message);

  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(response->body, ec);
  const boost::json::object* object = ec ? nullptr : body.if_object();

  if (response->status == 200) {
    const boost::json::value* user = object ? object->if_contains("user_id") : nullptr;
    if (!user || !user->is_string()) {
      co_return homeserver_unreachable("whoami answered 200 without a user_id");
    }
    Requester requester{std::string(user->get_string()), false};
    if (const auto* guest = object->if_contains("is_guest"); guest && guest->is_bool()) {
      requester.is_guest = guest->get_bool();
    }
    co_return requester;
  }
  if (response->status == 401 || response->status == 403 || response->status == 429) {
    // The homeserver's verdict on the token, passed through with the fields clients act on.
    MatrixError e;
    e.status = response->status;
    e.errcode = response->status == 401 ? "M_UNKNOWN_TOKEN" : "M_FORBIDDEN";
    e.message = "The homeserver rejected the access token";
    if (object) {
      if (const auto* v = object->if_contains("errcode"); v && v->is_string()) {
        e.errcode = v->get_string();
      }
      if (const auto* v = object->if_contains("error"); v && v->is_string()) {
        e.message = v->get_string();
      }
      for (std::string_view field : kPassedThroughFields) {
        if (const auto* v = object->if_contains(field)) e.extra_fields[field] = *v;
      }
    }
    co_return e;
  }
  co_return homeserver_unreachable("whoami answered HTTP " + std::to_string(response->status));
}

std::optional<Requester> Authenticator::cached(const std::string& key) {
  std::lock_guard lock(cache_mutex_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  if (it->second.expires <= std::chrono::steady_clock::now()) {
    cache_.erase(it);
    return std::nullopt;
  }
  return it->second.requester;
}

void Authenticator::remember(const std::string& key, const Requester& requester) {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() >= kCachePruneThreshold) {
    std::erase_if(cache_, [&](const auto& entry) { return entry.second.expires <= now; });
    if (cache_.size() >= kCachePruneThreshold) cache_.clear();
  }
  cache_[key] = CacheEntry{requester, now + config_.token_cache_ttl};
}

}  // namespace mxcd::auth
