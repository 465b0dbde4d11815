#include "http/router.hpp"

#include <algorithm>

namespace mxcd::http {

namespace {

bool is_capture(const std::string& s) {
  return s.size() >= 2 && s.front() == '{' && s.back() == '}';
}

bool matches(const std::vector<std::string>& pattern, const std::vector<std::string>& segments,
             std::vector<std::string>* params) {
  if (pattern.size() != segments.size()) return false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (is_capture(pattern[i])) {
      if (segments[i].empty()) return false;
      if (params) params->push_back(segments[i]);
    } else if (pattern[i] != segments[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

void Router::add(std::vector<beast_http::verb> methods, std::string_view pattern, Handler handler,
                 BodyMode body_mode) {
  std::vector<std::string> parts;
  std::size_t start = 1;  // patterns begin with '/'
  while (start <= pattern.size()) {
    std::size_t end = pattern.find('/', start);
    if (end == std::string_view::npos) end = pattern.size();
    parts.emplace_back(pattern.substr(start, end - start));
    start = end + 1;
  }
  routes_.push_back({std::move(methods), std::move(parts), std::move(handler), body_mode});
}

std::optional<Router::Match> Router::match(beast_http::verb method,
                                           const std::vector<std::string>& segments) const {
  std::optional<Match> result;
  for (const Route& route : routes_) {
    if (!matches(route.pattern, segments, nullptr)) continue;
    if (!result) result.emplace();
    if (std::find(route.methods.begin(), route.methods.end(), method) != route.methods.end()) {
      result->handler = &route.handler;
      result->body_mode = route.body_mode;
      result->params.clear();
      matches(route.pattern, segments, &result->params);
      return result;
    }
    for (beast_http::verb m : route.methods) {
      if (!result->allowed_methods.empty()) result->allowed_methods += ", ";
      result->allowed_methods += std::string(beast_http::to_string(m));
    }
  }
  return result;
}

}  // namespace mxcd::http
