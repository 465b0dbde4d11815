#include "meta/postgres/pg_pool.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

namespace mxcd {

PgPool::Lease PgPool::acquire() {
  std::unique_lock lock(mutex_);
  bool free =
      returned_.wait_for(lock, acquire_timeout_, [&] { return !idle_.empty() || open_ < size_; });
  if (!free) {
    throw PgError("all " + std::to_string(size_) + " database connections are busy", "", false);
  }
  if (!idle_.empty()) {
    auto connection = std::move(idle_.back());
    idle_.pop_back();
    return Lease(*this, std::move(connection));
  }
  if (unreachable_ && probing_) {
    throw PgError("PostgreSQL cannot be reached (a new connection is being tried)", "", true, true);
  }
  const bool probe = unreachable_;
  probing_ = probing_ || probe;
  ++open_;
  lock.unlock();
  try {
    auto connection = std::make_unique<PgConnection>(conninfo_, timeouts_);
    lock.lock();
    if (probe) probing_ = false;
    if (unreachable_) spdlog::info("database: PostgreSQL answers again");
    unreachable_ = false;
    return Lease(*this, std::move(connection));
  } catch (const std::exception& e) {
    if (!lock.owns_lock()) lock.lock();
    if (probe) probing_ = false;
    // Refused, timed out or failed midway: probe before trying again.
    mark_unreachable(e.what());
    --open_;
    returned_.notify_one();
    throw;
  }
}

void PgPool::drop_idle() {
  std::lock_guard lock(mutex_);
  open_ -= static_cast<unsigned>(idle_.size());
  idle_.clear();
  returned_.notify_all();
}

void PgPool::not_answering(const char* why) {
  std::lock_guard lock(mutex_);
  mark_unreachable(why);
}

void PgPool::give_back(std::unique_ptr<PgConnection> connection) {
  // A connection left inside a transaction (an exception mid-way) is rolled back first.
  if (connection && connection->usable() &&
      PQtransactionStatus(connection->native()) != PQTRANS_IDLE) {
    try {
      connection->exec("ROLLBACK");
    } catch (const PgError&) {
    }
  }
  std::lock_guard lock(mutex_);
  // While the server is not answering, a connection kept would only wait out a statement
  // timeout when next used: the probe decides when connections are worth keeping again.
  if (connection && connection->usable() && !unreachable_) {
    idle_.push_back(std::move(connection));
  } else {
    --open_;
  }
  returned_.notify_one();
}

void PgPool::mark_unreachable(const char* why) {
  if (!unreachable_) spdlog::error("database: PostgreSQL cannot be reached: {}", why);
  unreachable_ = true;
}

}  // namespace mxcd
