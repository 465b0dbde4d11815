// Runs blocking work (fsync, SQLite) on a separate thread pool so that the network threads
// never wait on a disk, and resumes the caller on its own executor afterwards.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>
#include <type_traits>
#include <utility>

namespace mxcd {

template <class F>
boost::asio::awaitable<std::invoke_result_t<F>> run_blocking(boost::asio::thread_pool& pool,
                                                             F work) {
  using R = std::invoke_result_t<F>;
  if constexpr (std::is_void_v<R>) {
    auto task = [work = std::move(work)]() mutable -> boost::asio::awaitable<void> {
      work();
      co_return;
    };
    co_await boost::asio::co_spawn(pool, std::move(task), boost::asio::use_awaitable);
  } else {
    // co_spawn needs a default-constructible result; std::optional supplies one.
    auto task = [work = std::move(work)]() mutable -> boost::asio::awaitable<std::optional<R>> {
      co_return std::optional<R>(work());
    };
    co_return std::move(
        *co_await boost::asio::co_spawn(pool, std::move(task), boost::asio::use_awaitable));
  }
}

}  // namespace mxcd
