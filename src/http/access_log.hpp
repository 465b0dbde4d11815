// One line per request on stderr, in the same format as the rest of the log:
//   <time> info request method=GET path=/... status=200 bytes=123 duration_ms=0.412 client=...
// Lines are collected per network thread and written a few KiB at a time, each write made
// of whole lines and no larger than PIPE_BUF, so lines from different threads never mix even
// when stderr is a pipe. A thread's lines go out at the latest a quarter of a second after
// they were logged (the connections' watchdogs call flush_if_stale) or when a connection
// closes. A write(2) per request would cost a tenth of small-download throughput.
#pragma once

#include <cstdint>
#include <string_view>

namespace mxcd::http::access_log {

struct Entry {
  std::string_view method;
  std::string_view target;  // the access_token query value is redacted when written
  unsigned status = 0;
  std::uint64_t bytes = 0;
  double duration_ms = 0;
  std::string_view client;
  bool aborted = false;
};

void enable(bool on);  // off when the log level is above info
void write(const Entry& entry);
void flush_if_stale();
void flush();

}  // namespace mxcd::http::access_log
