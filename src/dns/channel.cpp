#include "dns/channel.hpp"

#include <sys/time.h>

#include <algorithm>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "maild/core/net_types.hpp"

namespace maild::dns {

namespace asio = boost::asio;

namespace {

constexpr int class_in = 1;
constexpr int tries = 2;
// c-ares doubles the wait on its second round (timeout << (try / servers)):
// with one server, a third of the budget per first try spends it exactly.
constexpr int budget_shares = 3;
constexpr std::chrono::milliseconds min_try_timeout{100};

void init_library_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    const int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS)
      throw std::runtime_error(std::string("c-ares: ") + ares_strerror(status));
  });
}

// "127.0.0.1:5353,[::1]:53" for ares_set_servers_ports_csv.
std::string servers_csv(const std::vector<Endpoint>& servers) {
  std::string csv;
  for (const Endpoint& server : servers) {
    const auto address = parse_ip(server.host);
    if (!address) throw std::invalid_argument("[dns] servers: not an IP address: " + server.host);
    if (!csv.empty()) csv += ',';
    csv += address->is_v4() ? address->to_string() : "[" + address->to_string() + "]";
    if (server.port != 0) csv += ":" + std::to_string(server.port);
  }
  return csv;
}

}  // namespace

struct Channel::Lookup {
  Lookup(const Strand& strand, std::size_t count)
      : deadline(strand), answers(count), outstanding(count) {}

  void finish() {
    if (done) return;
    done = true;
    deadline.cancel();
    auto deliver = std::move(complete);
    complete = nullptr;
    if (deliver) deliver(std::move(answers));
  }

  asio::steady_timer deadline;
  std::vector<Answer> answers;
  std::size_t outstanding;
  bool done = false;
  std::function<void(std::vector<Answer>)> complete;
};

// What c-ares carries for one query; deleted by answer_callback, which c-ares
// calls exactly once (at the latest from ares_destroy).
struct Channel::QueryRef {
  Channel* channel;
  std::shared_ptr<Lookup> lookup;
  std::size_t index;
};

// One of c-ares' sockets, watched for the readiness c-ares asked for.
struct Channel::Watch {
  Watch(const Strand& strand, ares_socket_t socket) : descriptor(strand), fd(socket) {}
  ~Watch() { stop(); }
  void stop() {
    stopped = true;
    if (descriptor.is_open()) (void)descriptor.release();  // c-ares closes the fd itself
  }

  asio::posix::stream_descriptor descriptor;
  ares_socket_t fd;
  bool want_read = false;
  bool want_write = false;
  bool reading = false;
  bool writing = false;
  bool stopped = false;
};

Channel::Channel(const config::DnsSettings& settings, const asio::any_io_executor& executor)
    : strand_(asio::make_strand(executor)), budget_(settings.timeout), timer_(strand_) {
  init_library_once();
  const auto try_timeout = std::max(
      std::chrono::duration_cast<std::chrono::milliseconds>(settings.timeout) / budget_shares,
      min_try_timeout);
  ares_options options{};
  options.timeout = static_cast<int>(try_timeout.count());
  options.tries = tries;
  options.sock_state_cb = &Channel::socket_state_callback;
  options.sock_state_cb_data = this;
  const int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
  int status = ares_init_options(&channel_, &options, mask);
  if (status != ARES_SUCCESS) {
    channel_ = nullptr;
    throw std::runtime_error(std::string("c-ares: ") + ares_strerror(status));
  }
  if (!settings.servers.empty()) {
    try {
      const std::string csv = servers_csv(settings.servers);
      status = ares_set_servers_ports_csv(channel_, csv.c_str());
      if (status != ARES_SUCCESS)
        throw std::invalid_argument(std::string("[dns] servers: ") + ares_strerror(status));
    } catch (...) {
      ares_destroy(channel_);
      channel_ = nullptr;
      throw;
    }
  }
}

Channel::~Channel() {
  // Only reached without close() when the io_context went away first with our
  // handlers: there is nobody left to resume.
  if (channel_ != nullptr) {
    abandoned_ = true;
    closing_ = true;
    ares_destroy(channel_);
    channel_ = nullptr;
  }
  for (auto& [fd, watch] : watches_) watch->stop();
}

asio::awaitable<std::vector<Answer>> Channel::ask(const std::string& name,
                                                  std::span<const int> types,
                                                  Clock::time_point deadline) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(std::vector<Answer>)>(
      [self = shared_from_this(), name, wanted = std::vector<int>(types.begin(), types.end()),
       deadline](auto handler) mutable {
        using Handler = decltype(handler);
        auto owner = asio::prefer(asio::get_associated_executor(handler),
                                  asio::execution::outstanding_work.tracked);
        auto shared = std::make_shared<Handler>(std::move(handler));
        auto lookup = std::make_shared<Lookup>(self->strand_, wanted.size());
        lookup->complete = [shared, owner](std::vector<Answer> answers) {
          asio::post(owner, [shared, answers = std::move(answers)]() mutable {
            (*shared)(std::move(answers));
          });
        };
        asio::post(self->strand_, [self, lookup, name = std::move(name), wanted = std::move(wanted),
                                   deadline] { self->start(lookup, name, wanted, deadline); });
      },
      asio::use_awaitable);
}

void Channel::start(const std::shared_ptr<Lookup>& lookup, const std::string& name,
                    const std::vector<int>& types, Clock::time_point deadline) {
  if (channel_ == nullptr || closing_) {
    for (Answer& answer : lookup->answers) answer.status = ARES_EDESTRUCTION;
    lookup->finish();
    return;
  }
  if (types.empty()) {
    lookup->finish();
    return;
  }
  lookup->deadline.expires_at(deadline);
  lookup->deadline.async_wait([lookup](const boost::system::error_code& ec) {
    if (!ec) lookup->finish();  // unanswered queries keep ARES_ETIMEOUT
  });
  for (std::size_t i = 0; i < types.size(); ++i) {
    // c-ares may call back at once (e.g. a bad name); answer_callback copes.
    ares_query(channel_, name.c_str(), class_in, types[i], &Channel::answer_callback,
               new QueryRef{this, lookup, i});
  }
  reschedule();
}

void Channel::answer_callback(void* arg, int status, int /*timeouts*/, unsigned char* message,
                              int length) {
  const std::unique_ptr<QueryRef> ref(static_cast<QueryRef*>(arg));
  if (ref->channel->abandoned_) return;
  Lookup& lookup = *ref->lookup;
  if (lookup.done) return;  // the deadline came first
  Answer& answer = lookup.answers[ref->index];
  answer.status = status;
  if (status == ARES_SUCCESS && message != nullptr && length > 0) {
    answer.message.assign(message, message + length);
  }
  if (--lookup.outstanding == 0) lookup.finish();
}

void Channel::shutdown() {
  asio::post(strand_, [self = shared_from_this()] { self->close(); });
}

void Channel::close() {
  if (channel_ == nullptr) return;
  closing_ = true;
  ares_destroy(
      channel_);  // every query calls back with ARES_EDESTRUCTION, every socket with (0, 0)
  channel_ = nullptr;
  timer_.cancel();
  for (auto& [fd, watch] : watches_) watch->stop();
  watches_.clear();
}

void Channel::process(ares_socket_t readable, ares_socket_t writable) {
  if (channel_ == nullptr || closing_) return;
  ares_process_fd(channel_, readable, writable);
  reschedule();
}

void Channel::reschedule() {
  if (channel_ == nullptr || closing_) return;
  timeval next{};
  if (ares_timeout(channel_, nullptr, &next) == nullptr) {
    timer_.cancel();  // nothing in flight
    return;
  }
  timer_.expires_after(std::chrono::seconds(next.tv_sec) + std::chrono::microseconds(next.tv_usec));
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  });
}

void Channel::socket_state_callback(void* data, ares_socket_t fd, int readable, int writable) {
  static_cast<Channel*>(data)->on_socket(fd, readable != 0, writable != 0);
}

void Channel::on_socket(ares_socket_t fd, bool readable, bool writable) {
  auto found = watches_.find(fd);
  if (!readable && !writable) {  // c-ares is about to close it
    if (found != watches_.end()) {
      found->second->stop();
      watches_.erase(found);
    }
    return;
  }
  if (closing_) return;
  if (found == watches_.end()) {
    auto watch = std::make_shared<Watch>(strand_, fd);
    boost::system::error_code ec;
    (void)watch->descriptor.assign(fd, ec);
    if (ec) return;  // unwatched: the query times out
    found = watches_.emplace(fd, std::move(watch)).first;
  }
  const std::shared_ptr<Watch> watch = found->second;
  watch->want_read = readable;
  watch->want_write = writable;
  arm(watch);
}

void Channel::arm(const std::shared_ptr<Watch>& watch) {
  if (watch->want_read && !watch->reading) {
    watch->reading = true;
    watch->descriptor.async_wait(
        asio::posix::descriptor_base::wait_read,
        [self = shared_from_this(), watch](const boost::system::error_code& ec) {
          watch->reading = false;
          if (ec || watch->stopped) return;
          self->process(watch->fd, ARES_SOCKET_BAD);
          if (!watch->stopped && !self->closing_) self->arm(watch);
        });
  }
  if (watch->want_write && !watch->writing) {
    watch->writing = true;
    watch->descriptor.async_wait(
        asio::posix::descriptor_base::wait_write,
        [self = shared_from_this(), watch](const boost::system::error_code& ec) {
          watch->writing = false;
          if (ec || watch->stopped) return;
          self->process(ARES_SOCKET_BAD, watch->fd);
          if (!watch->stopped && !self->closing_) self->arm(watch);
        });
  }
}

}  // namespace maild::dns
