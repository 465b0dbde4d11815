// Wakes downloads that wait for an async upload the moment its bytes are committed, instead
// of polling the database. A waiter subscribes before it re-reads the record, so an upload
// that lands in between is never missed.
#pragma once

#include "core/config.hpp"
#include "core/wakeup.hpp"
#include "meta/metadata_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mxcd {

class UploadWaiters {
 public:
  class Subscription {
   public:
    Subscription(UploadWaiters& owner, std::string key, boost::asio::any_io_executor executor);
    ~Subscription();
    // Returns when the upload is announced or the timeout passes, whichever is first.
    boost::asio::awaitable<void> wait(Duration timeout);

   private:
    friend class UploadWaiters;
    UploadWaiters& owner_;
    std::string key_;
    std::shared_ptr<Wakeup> wakeup_;  // announce()'s wake-up may run after the subscription is gone
  };

  // Must be called from the coroutine that will wait (its executor runs the wake-up).
  boost::asio::awaitable<std::unique_ptr<Subscription>> subscribe(const MediaKey& key);
  // Wakes every subscriber of key.
  void announce(const MediaKey& key);
  // Wakes every subscriber, to look again: uploads may have landed unannounced (another
  // instance's notification was lost).
  void announce_all();

 private:
  std::mutex mutex_;
  std::unordered_multimap<std::string, std::shared_ptr<Wakeup>> subscribers_;
};

}  // namespace mxcd
