// The PostgreSQL backend's bounded pool of connections.
#pragma once

#include "meta/postgres/pg_connection.hpp"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mxcd {

// At most `size` connections; callers beyond that wait for one to come back, for a while.
// A server that did not answer (a statement or a connection attempt timed out, or was
// refused) is probed by one caller at a time: the others fail at once instead of each
// waiting out a timeout of its own, so a frozen database costs a request milliseconds, not
// seconds, and the few blocking threads stay free for the work that needs no database.
class PgPool {
 public:
  PgPool(std::string conninfo, unsigned size, PgTimeouts timeouts,
         std::chrono::milliseconds acquire_timeout)
      : conninfo_(std::move(conninfo)),
        size_(size),
        timeouts_(timeouts),
        acquire_timeout_(acquire_timeout) {}

  class Lease {
   public:
    Lease(PgPool& pool, std::unique_ptr<PgConnection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    ~Lease() { pool_.give_back(std::move(connection_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    PgConnection& operator*() { return *connection_; }
    PgConnection* operator->() { return connection_.get(); }

   private:
    PgPool& pool_;
    std::unique_ptr<PgConnection> connection_;
  };

  Lease acquire();

  // After a lost connection the others are likely lost too (the server restarted): close
  // the idle ones rather than fail on each in turn.
  void drop_idle();

  // The server did not answer a statement in time: new connections wait for a probe.
  void not_answering(const char* why);

 private:
  void give_back(std::unique_ptr<PgConnection> connection);

  // Said once per outage: while it lasts, failures are logged at debug level only.
  void mark_unreachable(const char* why);

  const std::string conninfo_;
  const unsigned size_;
  const PgTimeouts timeouts_;
  const std::chrono::milliseconds acquire_timeout_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  unsigned open_ = 0;         // idle and leased
  bool unreachable_ = false;  // the last connection attempt or statement got no answer
  bool probing_ = false;      // a connection attempt is under way while unreachable_
};

}  // namespace mxcd
