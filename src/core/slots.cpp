#include "core/slots.hpp"

#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <chrono>

namespace mxcd {

namespace asio = boost::asio;

struct Slots::State {
  struct Waiter {
    enum class Outcome { waiting, granted, refused };
    std::shared_ptr<Wakeup> wakeup;
    Outcome outcome = Outcome::waiting;
  };

  std::mutex mutex;
  std::size_t free = 0;
  bool closed = false;
  std::deque<std::shared_ptr<Waiter>> queues[2];  // by Priority: urgent first

  static std::size_t index(Priority priority) { return priority == Priority::urgent ? 0 : 1; }

  // With the mutex held: a released slot goes to the first waiter, or back to the free ones.
  void pass_on() {
    for (auto& queue : queues) {
      if (queue.empty()) continue;
      std::shared_ptr<Waiter> next = std::move(queue.front());
      queue.pop_front();
      next->outcome = Waiter::Outcome::granted;
      Wakeup::wake(next->wakeup);
      return;
    }
    ++free;
  }
};

Slots::Slot::Slot(Slot&& other) noexcept : state_(std::move(other.state_)) {}

Slots::Slot& Slots::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
  }
  return *this;
}

void Slots::Slot::release() {
  if (!state_) return;
  std::lock_guard lock(state_->mutex);
  state_->pass_on();
  state_.reset();
}

Slots::Slots(std::size_t count) : state_(std::make_shared<State>()) { state_->free = count; }

asio::awaitable<Slots::Slot> Slots::acquire(Priority priority) {
  using Waiter = State::Waiter;
  std::shared_ptr<State> state = state_;
  auto waiter = std::make_shared<Waiter>();
  waiter->wakeup = std::make_shared<Wakeup>(co_await asio::this_coro::executor);
  {
    std::lock_guard lock(state->mutex);
    if (state->closed) co_return Slot();
    // Free slots go to nobody while an urgent waiter (or, for background work, any waiter)
    // is in line: they are handed on in pass_on().
    const bool others_first = !state->queues[0].empty() ||
                              (priority == Priority::background && !state->queues[1].empty());
    if (state->free > 0 && !others_first) {
      --state->free;
      co_return Slot(state);
    }
    state->queues[State::index(priority)].push_back(waiter);
  }
  // When the frame is destroyed while waiting (its io_context goes away), the place in line
  // is given up, and a slot granted meanwhile is passed on.
  struct GiveUp {
    State& state;
    Waiter& waiter;
    Priority priority;
    bool done = false;
    ~GiveUp() {
      if (done) return;
      std::lock_guard lock(state.mutex);
      if (waiter.outcome == Waiter::Outcome::granted) {
        state.pass_on();
      } else if (waiter.outcome == Waiter::Outcome::waiting) {
        auto& queue = state.queues[State::index(priority)];
        std::erase_if(queue, [&](const auto& queued) { return queued.get() == &waiter; });
      }
    }
  } give_up{*state, *waiter, priority};
  while (true) {
    co_await waiter->wakeup->wait(std::chrono::hours(1));  // pass_on() or close() ends it
    std::lock_guard lock(state->mutex);
    if (waiter->outcome == Waiter::Outcome::waiting) continue;
    give_up.done = true;
    if (waiter->outcome == Waiter::Outcome::refused) co_return Slot();
    co_return Slot(state);
  }
}

std::size_t Slots::waiting(Priority priority) const {
  std::lock_guard lock(state_->mutex);
  return state_->queues[State::index(priority)].size();
}

void Slots::close() {
  std::lock_guard lock(state_->mutex);
  state_->closed = true;
  for (auto& queue : state_->queues) {
    for (auto& waiter : queue) {
      waiter->outcome = State::Waiter::Outcome::refused;
      Wakeup::wake(waiter->wakeup);
    }
    queue.clear();
  }
}

}  // namespace mxcd
