// Progress of a long command: on a terminal, a bar redrawn in place with counts, bytes and
// the time left; otherwise (a log file, a pipe) a plain line at a fixed interval.
#pragma once

#include "core/human_bytes.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

namespace mxcd {

class Progress {
 public:
  enum class Style { bar, lines, none };
  // A bar when stderr is a terminal, else lines.
  static Style automatic_style();

  // Draws to out (stderr in practice) until finish() or destruction. unit: what the items
  // are, in the plural.
  Progress(std::ostream& out, std::string what, std::int64_t total_items, std::int64_t total_bytes,
           Style style, std::chrono::milliseconds line_interval, std::string unit = "media");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Safe from any thread.
  void advance(std::int64_t items, std::int64_t bytes) {
    items_ += items;
    bytes_ += bytes;
  }
  // Draws the final state once and stops drawing.
  void finish();

 private:
  void run();
  std::string describe() const;

  std::ostream& out_;
  const std::string what_;
  const std::string unit_;
  const std::int64_t total_items_;
  const std::int64_t total_bytes_;
  const Style style_;
  const std::chrono::milliseconds interval_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::atomic<std::int64_t> items_{0};
  std::atomic<std::int64_t> bytes_{0};

  std::mutex mutex_;
  std::condition_variable wake_;
  bool finished_ = false;
  std::thread thread_;
};

}  // namespace mxcd
