// A file that one producer is still writing while readers already send what is there: a
// blob streaming in from object storage reaches its first client before its last byte does.
// The producer says how far the file is readable; readers wait for more without polling.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace mxcd {

class GrowingFile {
 public:
  enum class State { growing, complete, failed };

  // Producer: bytes [0, available) are written and may be read. Never moves backwards.
  void advance(std::uint64_t available);
  // Producer: the file will not grow any more (complete) or is unusable (failed).
  void finish(bool complete);

  std::uint64_t available() const;
  State state() const;
  // Returns once more than offset bytes are readable or the file stopped growing.
  boost::asio::awaitable<void> wait_beyond(std::uint64_t offset);

 private:
  struct Waiter;
  void wake_all(std::unique_lock<std::mutex>& lock);

  mutable std::mutex mutex_;
  std::uint64_t available_ = 0;
  State state_ = State::growing;
  std::vector<std::shared_ptr<Waiter>> waiters_;
};

}  // namespace mxcd
