// Maps a method and decoded path segments to a handler. Patterns are literal segments and
// {captures}; a path that matches with another method is reported so the caller can answer
// 405 rather than 404.
#pragma once

#include "http/request.hpp"
#include "http/response.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <string>
#include <vector>

namespace mxcd::http {

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

enum class BodyMode {
  none,      // a request with a body is refused (413) before any of it is read
  small,     // the server reads up to 64 KiB into Request::small_body before the handler runs
  streamed,  // the handler reads Request::body itself, piece by piece
};

class Router {
 public:
  void add(std::vector<beast_http::verb> methods, std::string_view pattern, Handler handler,
           BodyMode body_mode = BodyMode::none);

  struct Match {
    const Handler* handler = nullptr;  // null: the path exists but not with this method
    BodyMode body_mode = BodyMode::none;
    std::vector<std::string> params;
    std::string allowed_methods;  // for the Allow header of a 405
  };
  // Empty when no route has this path.
  std::optional<Match> match(beast_http::verb method,
                             const std::vector<std::string>& segments) const;

 private:
  struct Route {
    std::vector<beast_http::verb> methods;
    std::vector<std::string> pattern;
    Handler handler;
    BodyMode body_mode;
  };
  std::vector<Route> routes_;
};

}  // namespace mxcd::http
