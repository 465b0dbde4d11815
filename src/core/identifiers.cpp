#include "core/identifiers.hpp"

#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <stdexcept>

namespace mxcd {

namespace {

constexpr std::size_t kMaxMediaIdLength = 255;
constexpr std::size_t kMaxServerNameLength = 255;

bool is_alnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_ipv4_literal(std::string_view s) {
  int parts = 0;
  while (true) {
    std::size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
    if (n == 0 || n > 3) return false;
    int value = 0;
    std::from_chars(s.data(), s.data() + n, value);
    if (value > 255) return false;
    ++parts;
    s.remove_prefix(n);
    if (s.empty()) return parts == 4;
    if (s.front() != '.' || parts == 4) return false;
    s.remove_prefix(1);
  }
}

// Inside the brackets: hex groups, colons and an optional embedded IPv4 tail. The exact
// IPv6 grammar matters less than the character set: nothing here can form a path.
bool is_ipv6_literal(std::string_view s) {
  if (s.size() < 2 || s.size() > 45) return false;
  bool has_colon = false;
  for (char c : s) {
    if (c == ':') has_colon = true;
    else if (!is_hex(c) && c != '.') return false;
  }
  return has_colon;
}

bool is_dns_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_alnum(c) && c != '.' && c != '-') return false;
  }
  // A name of dots alone ("." or "..") is the one dns-name a path could misread.
  return s.find_first_not_of('.') != std::string_view::npos;
}

bool is_valid_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size() && value >= 1 && value <= 65535;
}

}  // namespace

bool is_valid_media_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxMediaIdLength) return false;
  for (char c : id) {
    if (!is_alnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

bool is_valid_server_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxServerNameLength) return false;
  std::string_view host = name;
  std::string_view port;
  if (name.front() == '[') {
    auto close = name.find(']');
    if (close == std::string_view::npos) return false;
    host = name.substr(1, close - 1);
    std::string_view rest = name.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (!is_valid_port(port)) return false;
    }
    return is_ipv6_literal(host);
  }
  if (auto colon = name.rfind(':'); colon != std::string_view::npos) {
    host = name.substr(0, colon);
    port = name.substr(colon + 1);
    if (!is_valid_port(port)) return false;
  }
  return is_ipv4_literal(host) || is_dns_name(host);
}

std::string generate_media_id() {
  static constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id;
  id.reserve(24);
  std::array<unsigned char, 64> random{};
  while (id.size() < 24) {
    if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
      throw std::runtime_error("the system random number generator failed");
    }
    for (unsigned char byte : random) {
      // 248 = 4 * 62: rejecting the top values keeps every character equally likely.
      if (byte < 248 && id.size() < 24) id.push_back(alphabet[byte % alphabet.size()]);
    }
  }
  return id;
}

std::string mxc_uri(std::string_view server_name, std::string_view media_id) {
  std::string uri = "mxc://";
  uri.append(server_name).append("/").append(media_id);
  return uri;
}

}  // namespace mxcd
