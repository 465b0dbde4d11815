#include "http/access_log.hpp"

#include "core/percent_encoding.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>

namespace mxcd::http::access_log {

namespace {

constexpr std::size_t kWriteLimit = 4096;  // PIPE_BUF: a write this small is never split
constexpr auto kMaxDelay = std::chrono::milliseconds(250);

std::atomic<bool> enabled{true};

struct ThreadBuffer {
  std::string lines;
  std::chrono::steady_clock::time_point oldest;
  std::time_t stamp_second = 0;
  char stamp[32] = {};  // "2026-11-22T12:00:00", formatted once per second
};

thread_local ThreadBuffer buffer;

void write_out() {
  std::string_view rest = buffer.lines;
  while (!rest.empty()) {
    ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // nowhere to log to: drop rather than block the request path
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  buffer.lines.clear();
}

void append_redacted(std::string& out, std::string_view target) {
  auto question = target.find('?');
  if (question == std::string_view::npos) {
    out.append(target);
    return;
  }
  out.append(target.substr(0, question + 1));
  std::string_view query = target.substr(question + 1);
  while (true) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    // Compared decoded, as the request's parameters are looked up: "access%5Ftoken" is the
    // same parameter, and so is a name in a target that was refused as malformed.
    std::string_view name = pair.substr(0, pair.find('='));
    if (percent_decode_lenient(name) == "access_token") {
      out.append(name);
      out.append("=<redacted>");
    } else {
      out.append(pair);
    }
    if (amp == std::string_view::npos) break;
    out += '&';
    query.remove_prefix(amp + 1);
  }
}

}  // namespace

void enable(bool on) { enabled = on; }

void write(const Entry& e) {
  if (!enabled.load(std::memory_order_relaxed)) return;
  auto now = std::chrono::system_clock::now();
  std::time_t second = std::chrono::system_clock::to_time_t(now);
  if (second != buffer.stamp_second) {
    std::tm tm{};
    gmtime_r(&second, &tm);
    std::strftime(buffer.stamp, sizeof buffer.stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    buffer.stamp_second = second;
  }
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;

  std::string line;
  line.reserve(256);
  fmt::format_to(std::back_inserter(line), "{}.{:03d} info request method={} path=", buffer.stamp,
                 static_cast<int>(millis.count()), e.method);
  append_redacted(line, e.target);
  fmt::format_to(std::back_inserter(line), " status={} bytes={} duration_ms={:.3f} client={}{}\n",
                 e.status, e.bytes, e.duration_ms, e.client, e.aborted ? " aborted=true" : "");
  if (buffer.lines.size() + line.size() > kWriteLimit) write_out();
  if (buffer.lines.empty()) buffer.oldest = std::chrono::steady_clock::now();
  buffer.lines += line;
}

void flush_if_stale() {
  if (!buffer.lines.empty() && std::chrono::steady_clock::now() - buffer.oldest >= kMaxDelay) {
    write_out();
  }
}

void flush() {
  if (!buffer.lines.empty()) write_out();
}

}  // namespace mxcd::http::access_log
