// Awaitable store calls for sessions: blocking calls run on the store worker
// pool, deliveries go to the store's group-commit writer, and the session's
// coroutine resumes on its own strand either way. No I/O thread ever blocks
// on the database.
// Trust: the store is ours; its exceptions reach the awaiting session.
// Both take their arguments by reference: GCC 12 destroys temporaries passed
// into a co_await expression twice (PR 99576), so callers pass named objects.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include "maild/store/store.hpp"
#include "net/session_log.hpp"

namespace maild::net {

namespace detail {
// Hands the result to the awaiting coroutine on its own executor.
template <class Handler, class... Results>
void complete_on_owner(std::shared_ptr<Handler> handler, std::exception_ptr error,
                       Results&&... results) {
  auto executor = boost::asio::get_associated_executor(*handler);
  boost::asio::post(executor,
                    [handler, error, ... results = std::forward<Results>(results)]() mutable {
                      (*handler)(error, std::move(results)...);
                    });
}
}  // namespace detail

// Runs a copy of `call` (a blocking store call) on `pool` and returns its result.
template <class Call>
auto run_blocking(const boost::asio::any_io_executor& pool, const Call& call)
    -> boost::asio::awaitable<std::invoke_result_t<Call&>> {
  using Result = std::invoke_result_t<Call&>;
  if constexpr (std::is_void_v<Result>) {
    co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                         void(std::exception_ptr)>(
        [&pool, &call](auto handler) {
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          boost::asio::post(pool, [shared, work = call]() mutable {
            std::exception_ptr error;
            try {
              work();
            } catch (...) {
              error = std::current_exception();
            }
            detail::complete_on_owner(shared, error);
          });
        },
        boost::asio::use_awaitable);
  } else {
    co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                   void(std::exception_ptr, Result)>(
        [&pool, &call](auto handler) {
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          boost::asio::post(pool, [shared, work = call]() mutable {
            std::exception_ptr error;
            Result result{};
            try {
              result = work();
            } catch (...) {
              error = std::current_exception();
            }
            detail::complete_on_owner(shared, error, std::move(result));
          });
        },
        boost::asio::use_awaitable);
  }
}

// What try_blocking() gives: the call's result, or (for a void call) true;
// nothing (false) when the store failed.
template <class Result>
using StoreOutcome = std::conditional_t<std::is_void_v<Result>, bool, std::optional<Result>>;

// run_blocking() for sessions: a store failure is logged ("store error
// <what>: <reason>") and gives nothing, and the session answers with its
// protocol's temporary reply. The one place sessions turn a store failure
// into "try again later".
template <class Call>
auto try_blocking(const boost::asio::any_io_executor& pool, const Call& call, const SessionLog& log,
                  std::string_view what)
    -> boost::asio::awaitable<StoreOutcome<std::invoke_result_t<Call&>>> {
  using Result = std::invoke_result_t<Call&>;
  try {
    if constexpr (std::is_void_v<Result>) {
      co_await run_blocking(pool, call);
      co_return true;
    } else {
      auto result = co_await run_blocking(pool, call);
      co_return std::optional<Result>(std::move(result));
    }
  } catch (const std::exception& e) {
    log.warn("store error {}: {}", what, e.what());
  }
  co_return StoreOutcome<Result>{};
}

// Delivers through the group-commit writer (moving `message` there); returns
// once the commit is durable.
inline boost::asio::awaitable<store::StoredMessage> deliver(store::MailStore& mail,
                                                            store::NewMessage& message) {
  co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                 void(std::exception_ptr, store::StoredMessage)>(
      [&mail, &message](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        try {
          mail.deliver_async(std::move(message),
                             [shared](std::exception_ptr error, store::StoredMessage stored) {
                               detail::complete_on_owner(shared, error, std::move(stored));
                             });
        } catch (...) {
          detail::complete_on_owner(shared, std::current_exception(), store::StoredMessage{});
        }
      },
      boost::asio::use_awaitable);
}

}  // namespace maild::net
