// Routing and smarthost logins; see route.hpp.
#include "delivery/route.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "net/watchdog.hpp"

namespace maild::delivery {

namespace {

namespace asio = boost::asio;

asio::ip::address to_asio(const IpAddress& address) {
  const asio::ip::address_v6 v6(address.bytes);
  if (address.is_v4()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6);
  return v6;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return text;
}

std::string key_of(const Endpoint& endpoint) {
  return lower(Endpoint{endpoint.host, endpoint.port}.to_string());
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// The next whitespace-separated word of `text`, removed from it.
std::string_view next_word(std::string_view& text) {
  text = trim(text);
  const auto end = std::find_if(text.begin(), text.end(), is_space);
  const auto word = text.substr(0, static_cast<std::size_t>(end - text.begin()));
  text.remove_prefix(word.size());
  return word;
}

}  // namespace

Destination destination_for(const config::DeliverySettings& delivery, const std::string& domain) {
  const auto name = lower(domain);
  const auto& routes = delivery.routes;
  auto route = std::find_if(routes.begin(), routes.end(),
                            [&](const config::Route& r) { return r.domain == name; });
  if (route == routes.end())
    route = std::find_if(routes.begin(), routes.end(),
                         [](const config::Route& r) { return r.domain == "*"; });
  if (route == routes.end()) return Destination{name, name, std::nullopt};
  return Destination{name, key_of(route->next_hop), route->next_hop};
}

boost::asio::awaitable<Hops> find_hops(dns::Resolver& resolver, const Destination& destination,
                                       std::uint16_t smtp_port) {
  if (destination.next_hop)
    co_return Hops{
        Hops::Kind::ok, {Hop{destination.next_hop->host, destination.next_hop->port}}, {}};
  const auto& domain = destination.domain;
  const auto mx = co_await resolver.mx(domain);
  switch (mx.outcome) {
    case dns::Outcome::ok:
      break;
    case dns::Outcome::null_mx:
      co_return Hops{
          Hops::Kind::permanent, {}, "556 5.1.10 " + domain + " accepts no mail (null MX)"};
    case dns::Outcome::no_such_domain:
      co_return Hops{Hops::Kind::permanent, {}, "550 5.1.2 domain " + domain + " does not exist"};
    case dns::Outcome::no_data:
      co_return Hops{
          Hops::Kind::permanent, {}, "550 5.1.2 " + domain + " has no MX or address records"};
    case dns::Outcome::temporary:
      co_return Hops{Hops::Kind::temporary,
                     {},
                     "451 4.4.3 DNS lookup of MX for " + domain + " failed: " + mx.detail};
  }
  Hops hops{Hops::Kind::ok, {}, {}};
  for (const auto& host : mx.hosts) hops.hops.push_back(Hop{host.host, smtp_port});
  co_return hops;
}

boost::asio::awaitable<HopAddresses> addresses_of(dns::Resolver& resolver, const Hop& hop) {
  if (const auto literal = parse_ip(hop.host)) co_return HopAddresses{{*literal}, {}};
  const auto found = co_await resolver.addresses(hop.host);
  if (found.outcome == dns::Outcome::ok) co_return HopAddresses{found.addresses, {}};
  const std::string why = found.outcome == dns::Outcome::temporary ? found.detail : "not found";
  co_return HopAddresses{{}, "451 4.4.3 no address for " + hop.host + ": " + why};
}

std::string remote_host_text(const std::string& host, const IpAddress& address,
                             std::uint16_t port) {
  auto text = host + "[" + address.to_string() + "]";
  if (port != 25) text += ":" + std::to_string(port);
  return text;
}

RouteLogins RouteLogins::parse(std::string_view text, const std::string& file_name) {
  RouteLogins logins;
  unsigned number = 0;
  while (!text.empty()) {
    const auto newline = text.find('\n');
    auto line = trim(text.substr(0, newline));
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++number;
    if (line.empty() || line.front() == '#') continue;
    const auto where = file_name + " line " + std::to_string(number) + ": ";
    const auto hop_text = next_word(line);
    const auto user = next_word(line);
    const auto password = trim(line);  // the rest of the line: a password may hold spaces
    const auto hop = parse_endpoint(hop_text);
    if (!hop)
      throw std::runtime_error(where + "\"" + std::string(hop_text) + "\" is not host:port");
    if (user.empty() || password.empty())
      throw std::runtime_error(where + "needs HOST:PORT USER PASSWORD");
    const auto [entry, added] = logins.logins_.emplace(
        key_of(*hop), smtp::Credentials{std::string(user), std::string(password)});
    if (!added) throw std::runtime_error(where + hop->to_string() + " given twice");
  }
  return logins;
}

RouteLogins RouteLogins::load(const std::filesystem::path& file) {
  if (file.empty()) return {};
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw std::runtime_error("delivery.route_auth_file " + file.string() + ": cannot read it");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), "delivery.route_auth_file " + file.string());
}

const smtp::Credentials* RouteLogins::find(const Endpoint& next_hop) const {
  const auto found = logins_.find(key_of(next_hop));
  return found == logins_.end() ? nullptr : &found->second;
}

namespace {

std::shared_ptr<net::SessionControl> control_for(asio::ip::tcp::socket& socket,
                                                 asio::any_io_executor executor) {
  auto control = std::make_shared<net::SessionControl>();
  control->executor = std::move(executor);
  control->interrupt = [&socket](bool) {
    boost::system::error_code ignored;
    socket.close(ignored);
  };
  return control;
}

}  // namespace

OutgoingSocket::OutgoingSocket(net::SessionRegistry& sessions, asio::any_io_executor executor)
    : socket(executor), control(control_for(socket, executor)), registration_(sessions, control) {}

// The interrupt names the socket: it goes first (a session's Connection, if
// one took over, has set its own by then and removed it when it ended).
OutgoingSocket::~OutgoingSocket() { control->interrupt = nullptr; }

asio::awaitable<std::string> connect_from(asio::ip::tcp::socket& socket,
                                          const std::optional<asio::ip::address>& bind,
                                          const IpAddress& address, std::uint16_t port,
                                          Seconds timeout) {
  const asio::ip::tcp::endpoint endpoint(to_asio(address), port);
  boost::system::error_code ec;
  socket.open(endpoint.protocol(), ec);
  if (!ec && bind) {
    if (bind->is_v4() != endpoint.address().is_v4())
      co_return "no source address of its family ([delivery] bind_address)";
    socket.bind(asio::ip::tcp::endpoint(*bind, 0), ec);
  }
  if (ec) co_return ec.message();
  net::Watchdog<asio::ip::tcp::socket> watchdog(socket);
  watchdog.arm(timeout);
  co_await socket.async_connect(endpoint, asio::redirect_error(asio::use_awaitable, ec));
  watchdog.disarm();
  if (ec) co_return watchdog.expired() ? "timed out" : ec.message();
  co_return "";
}

namespace {

std::string comparable_name(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return lower(std::string(host));
}

bool is_loopback(const IpAddress& address) {
  static const auto v4 = parse_network("127.0.0.0/8");
  static const auto v6 = parse_network("::1/128");
  return v4->contains(address) || v6->contains(address);
}

}  // namespace

Ourselves::Ourselves(const config::Settings& settings, std::vector<IpAddress> local_addresses)
    : hostname_(comparable_name(settings.server.hostname)),
      local_addresses_(std::move(local_addresses)) {
  const auto& smtp = settings.smtp;
  for (const auto* list : {&smtp.listen, &smtp.submission, &smtp.submissions}) {
    for (const auto& endpoint : *list) {
      const auto address = parse_ip(endpoint.host);
      if (!address) continue;  // listeners are addresses (the config table checks)
      if (address == parse_ip("0.0.0.0") || address == parse_ip("::"))
        wildcard_ports_.push_back(endpoint.port);
      else
        listeners_.emplace_back(*address, endpoint.port);
    }
  }
}

std::vector<IpAddress> Ourselves::interface_addresses() {
  std::vector<IpAddress> addresses;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return addresses;
  for (const auto* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    const auto family = entry->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = family == AF_INET
                          ? static_cast<const void*>(
                                &reinterpret_cast<const sockaddr_in*>(entry->ifa_addr)->sin_addr)
                          : static_cast<const void*>(
                                &reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr)->sin6_addr);
    if (inet_ntop(family, raw, text, sizeof text) == nullptr) continue;
    if (const auto address = parse_ip(text)) addresses.push_back(*address);
  }
  freeifaddrs(list);
  return addresses;
}

bool Ourselves::named(std::string_view host) const {
  return !hostname_.empty() && comparable_name(host) == hostname_;
}

bool Ourselves::reached_at(const IpAddress& address, std::uint16_t port) const {
  const auto exact = std::find(listeners_.begin(), listeners_.end(), std::pair{address, port});
  if (exact != listeners_.end()) return true;
  if (std::find(wildcard_ports_.begin(), wildcard_ports_.end(), port) == wildcard_ports_.end())
    return false;
  return is_loopback(address) || std::find(local_addresses_.begin(), local_addresses_.end(),
                                           address) != local_addresses_.end();
}

std::optional<asio::ip::address> bind_address_of(const config::DeliverySettings& delivery) {
  if (delivery.bind_address.empty()) return std::nullopt;
  return asio::ip::make_address(delivery.bind_address);
}

}  // namespace maild::delivery
