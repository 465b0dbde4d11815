// A fixed number of slots that coroutines on any thread take turns to hold, such as the
// thumbnail workers: a coroutine waits for a slot before it does the work the slots bound
// (and before it takes the memory that work needs), so that waiting costs nothing but the
// waiter. Urgent waiters (a client waiting for the answer) are served before background
// ones, each kind in the order it came. After close(), every waiter and every later
// acquire() gets an empty slot, so that nothing waits on a stopping server.
#pragma once

#include "core/wakeup.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

namespace mxcd {

class Slots {
  struct State;

 public:
  enum class Priority { urgent, background };

  // One slot while it lives (or nothing, when the slots were closed). Movable, and released
  // on destruction or by release().
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }
    explicit operator bool() const { return state_ != nullptr; }
    void release();

   private:
    friend class Slots;
    explicit Slot(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
  };

  explicit Slots(std::size_t count);

  // Waits until a slot is free. Thread-safe; the caller resumes on its own executor.
  boost::asio::awaitable<Slot> acquire(Priority priority);
  // How many coroutines of a priority are waiting.
  std::size_t waiting(Priority priority) const;
  void close();

 private:
  // The waiting coroutines and the free slots; shared with every Slot and waiter, so that
  // either may outlive this object (a coroutine frame destroyed with its io_context).
  std::shared_ptr<State> state_;
};

}  // namespace mxcd
