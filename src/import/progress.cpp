#include "import/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace mxcd {

namespace {

constexpr auto kBarInterval = std::chrono::milliseconds(250);
constexpr int kBarWidth = 30;

std::string duration_text(std::int64_t seconds) {
  char text[32];
  if (seconds >= 3600) {
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(seconds / 3600),
                  static_cast<long long>(seconds / 60 % 60));
  } else {
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(seconds / 60),
                  static_cast<long long>(seconds % 60));
  }
  return text;
}

}  // namespace

Progress::Style Progress::automatic_style() {
  return isatty(STDERR_FILENO) ? Style::bar : Style::lines;
}

Progress::Progress(std::ostream& out, std::string what, std::int64_t total_items,
                   std::int64_t total_bytes, Style style, std::chrono::milliseconds line_interval,
                   std::string unit)
    : out_(out),
      what_(std::move(what)),
      unit_(std::move(unit)),
      total_items_(total_items),
      total_bytes_(total_bytes),
      style_(style),
      interval_(style == Style::bar ? kBarInterval : line_interval) {
  if (style_ != Style::none) thread_ = std::thread([this] { run(); });
}

Progress::~Progress() { finish(); }

void Progress::finish() {
  {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (style_ == Style::none) return;
  out_ << (style_ == Style::bar ? "\r\x1b[K" : "") << describe() << "\n" << std::flush;
}

void Progress::run() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return finished_; })) {
    if (style_ == Style::bar) {
      out_ << "\r\x1b[K" << describe() << std::flush;
    } else {
      out_ << describe() << "\n" << std::flush;
    }
  }
}

// "[#######.......] 23%  1200/5000 media  1.2 GiB/4.0 GiB  4.1 MiB/s  ETA 3m12s"
std::string Progress::describe() const {
  const std::int64_t items = items_;
  const std::int64_t bytes = bytes_;
  // Bytes say more about the time left than counts, when the rows record them.
  const bool by_bytes = total_bytes_ > 0;
  double done = by_bytes           ? static_cast<double>(bytes) / static_cast<double>(total_bytes_)
                : total_items_ > 0 ? static_cast<double>(items) / static_cast<double>(total_items_)
                                   : 1.0;
  done = std::clamp(done, 0.0, 1.0);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();

  std::string text;
  if (style_ == Style::bar) {
    int filled = static_cast<int>(done * kBarWidth);
    text = "[" + std::string(static_cast<std::size_t>(filled), '#') +
           std::string(static_cast<std::size_t>(kBarWidth - filled), '.') + "] ";
  }
  text += std::to_string(static_cast<int>(done * 100)) + "%  " + what_ + ": " +
          std::to_string(items) + "/" + std::to_string(total_items_) + " " + unit_ + ", " +
          human_bytes(bytes) + "/" + human_bytes(total_bytes_);
  if (elapsed > 0.5) {
    text +=
        ", " + human_bytes(static_cast<std::int64_t>(static_cast<double>(bytes) / elapsed)) + "/s";
  }
  if (done > 0.0 && done < 1.0 && elapsed > 1.0) {
    text += ", ETA " + duration_text(static_cast<std::int64_t>(elapsed / done - elapsed));
  }
  return text;
}

}  // namespace mxcd
