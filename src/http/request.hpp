// A request as handlers see it: the parsed head, decoded path segments and query parameters,
// route captures, the client's address, and the body as a ByteSource read on demand.
#pragma once

#include "core/byte_source.hpp"

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mxcd::http {

namespace beast_http = boost::beast::http;

struct Request {
  beast_http::verb method = beast_http::verb::unknown;
  std::string_view path;                                   // as sent, still percent-encoded
  std::vector<std::string> segments;                       // percent-decoded path segments
  std::vector<std::pair<std::string, std::string>> query;  // percent-decoded
  const beast_http::fields* headers = nullptr;
  std::string client_address;
  std::vector<std::string> params;  // the route's {captures}, in order
  ByteSource* body = nullptr;       // for routes that stream their body
  std::string small_body;           // for all other routes (at most 64 KiB)

  std::optional<std::string_view> query_param(std::string_view name) const {
    for (const auto& [key, value] : query) {
      if (key == name) return std::string_view(value);
    }
    return std::nullopt;
  }

  std::string_view header(beast_http::field name) const {
    auto it = headers->find(name);
    return it == headers->end() ? std::string_view() : std::string_view(it->value());
  }
};

}  // namespace mxcd::http
