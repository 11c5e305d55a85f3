#include "dns/resolver.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <optional>
#include <random>
#include <string_view>
#include <utility>

#include "dns/channel.hpp"

namespace maild::dns {

namespace asio = boost::asio;

namespace {

constexpr std::size_t max_name_length = 253;
constexpr std::size_t max_label_length = 63;

// The form every name takes inside maild: LDH (and underscore) labels, lower
// case, no trailing dot. Anything else (c-ares escapes odd octets with a
// backslash) is refused.
std::optional<std::string> normalize_name(std::string_view text) {
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  if (text.empty() || text.size() > max_name_length) return std::nullopt;
  std::string name;
  name.reserve(text.size());
  std::size_t label = 0;
  for (const char c : text) {
    if (c == '.') {
      if (label == 0) return std::nullopt;
      label = 0;
    } else {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
      if (!ok || ++label > max_label_length) return std::nullopt;
    }
    name += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (label == 0) return std::nullopt;
  return name;
}

Outcome outcome_of(int status) {
  switch (status) {
    case ARES_SUCCESS:
      return Outcome::ok;
    case ARES_ENODATA:
      return Outcome::no_data;
    case ARES_ENOTFOUND:
      return Outcome::no_such_domain;  // NXDOMAIN
    default:
      return Outcome::temporary;  // SERVFAIL, REFUSED, timeouts, bad answers, shutdown
  }
}

std::string describe(int status) {
  return status == ARES_EDESTRUCTION ? "resolver shut down" : ares_strerror(status);
}

int message_length(const Answer& answer) { return static_cast<int>(answer.message.size()); }

std::mt19937& random_engine() {
  thread_local std::mt19937 engine{std::random_device{}()};
  return engine;
}

IpAddress from_v4(const in_addr& address) {
  IpAddress ip;
  ip.bytes[10] = 0xff;
  ip.bytes[11] = 0xff;
  const auto* octets = reinterpret_cast<const std::uint8_t*>(&address.s_addr);
  std::copy(octets, octets + 4, ip.bytes.begin() + 12);
  return ip;
}

IpAddress from_v6(const ares_in6_addr& address) {
  IpAddress ip;
  std::copy(std::begin(address._S6_un._S6_u8), std::end(address._S6_un._S6_u8), ip.bytes.begin());
  return ip;
}

// Addresses from one A or AAAA answer; ok, or why there are none.
struct Addresses {
  int status = ARES_ETIMEOUT;
  std::vector<IpAddress> list;
};

Addresses parse_addresses(const Answer& answer, int type) {
  Addresses out{answer.status, {}};
  if (answer.status != ARES_SUCCESS) return out;
  int count = static_cast<int>(max_addresses);
  if (type == type_a) {
    std::array<ares_addrttl, max_addresses> records{};
    out.status = ares_parse_a_reply(answer.message.data(), message_length(answer), nullptr,
                                    records.data(), &count);
    for (int i = 0; out.status == ARES_SUCCESS && i < count; ++i) {
      out.list.push_back(from_v4(records[static_cast<std::size_t>(i)].ipaddr));
    }
  } else {
    std::array<ares_addr6ttl, max_addresses> records{};
    out.status = ares_parse_aaaa_reply(answer.message.data(), message_length(answer), nullptr,
                                       records.data(), &count);
    for (int i = 0; out.status == ARES_SUCCESS && i < count; ++i) {
      out.list.push_back(from_v6(records[static_cast<std::size_t>(i)].ip6addr));
    }
  }
  if (out.status == ARES_SUCCESS && out.list.empty()) out.status = ARES_ENODATA;
  return out;
}

// A then AAAA answers for one name, combined: any address is success; else a
// temporary failure wins over NXDOMAIN, which wins over no data.
AddressResult combine(const std::vector<Answer>& answers) {
  AddressResult result;
  const Addresses v4 = parse_addresses(answers.at(0), type_a);
  const Addresses v6 = parse_addresses(answers.at(1), type_aaaa);
  for (const Addresses* part : {&v4, &v6}) {
    for (const IpAddress& address : part->list) {
      if (result.addresses.size() < max_addresses) result.addresses.push_back(address);
    }
  }
  if (!result.addresses.empty()) {
    result.outcome = Outcome::ok;
    return result;
  }
  const Outcome a = outcome_of(v4.status);
  const Outcome aaaa = outcome_of(v6.status);
  if (a == Outcome::temporary || aaaa == Outcome::temporary) {
    result.outcome = Outcome::temporary;
    result.detail = describe(a == Outcome::temporary ? v4.status : v6.status);
  } else if (a == Outcome::no_such_domain || aaaa == Outcome::no_such_domain) {
    result.outcome = Outcome::no_such_domain;
    result.detail = describe(ARES_ENOTFOUND);
  } else {
    result.outcome = Outcome::no_data;
    result.detail = describe(ARES_ENODATA);
  }
  return result;
}

// An MX answer: null MX when every target is "." (RFC 7505); otherwise the
// usable targets, a "." among real ones ignored, each host once at its best
// preference, sorted, equal preferences in random order (RFC 5321 5.1).
MxResult parse_mx(const Answer& answer) {
  MxResult result;
  ares_mx_reply* replies = nullptr;
  const int status = ares_parse_mx_reply(answer.message.data(), message_length(answer), &replies);
  if (status != ARES_SUCCESS) {
    result.outcome = outcome_of(status) == Outcome::no_data ? Outcome::no_data : Outcome::temporary;
    result.detail = describe(status);
    return result;
  }
  std::size_t null_targets = 0;
  std::size_t bad_targets = 0;
  for (const ares_mx_reply* reply = replies; reply != nullptr; reply = reply->next) {
    const std::string_view target = reply->host != nullptr ? reply->host : "";
    if (target.empty() || target == ".") {
      ++null_targets;
      continue;
    }
    auto host = normalize_name(target);
    if (!host) {
      ++bad_targets;
      continue;
    }
    auto same = std::find_if(result.hosts.begin(), result.hosts.end(),
                             [&host](const MxHost& known) { return known.host == *host; });
    if (same != result.hosts.end()) {
      same->preference = std::min(same->preference, reply->priority);
    } else {
      result.hosts.push_back(MxHost{reply->priority, std::move(*host)});
    }
  }
  ares_free_data(replies);

  if (result.hosts.empty()) {
    if (null_targets > 0 && bad_targets == 0) {
      result.outcome = Outcome::null_mx;
      result.detail = "null MX (RFC 7505)";
    } else {
      result.outcome = Outcome::temporary;  // only malformed targets: maybe fixed later
      result.detail = "no usable MX target";
    }
    return result;
  }
  std::shuffle(result.hosts.begin(), result.hosts.end(), random_engine());
  std::stable_sort(result.hosts.begin(), result.hosts.end(),
                   [](const MxHost& a, const MxHost& b) { return a.preference < b.preference; });
  if (result.hosts.size() > max_mx_hosts) result.hosts.resize(max_mx_hosts);
  result.outcome = Outcome::ok;
  return result;
}

std::string reverse_name(const IpAddress& address) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string name;
  if (address.is_v4()) {
    for (std::size_t i = 16; i-- > 12;) name += std::to_string(address.bytes[i]) + ".";
    return name + "in-addr.arpa";
  }
  for (std::size_t i = 16; i-- > 0;) {
    name += hex[address.bytes[i] & 0x0f];
    name += '.';
    name += hex[address.bytes[i] >> 4];
    name += '.';
  }
  return name + "ip6.arpa";
}

NamesResult parse_ptr(const Answer& answer, const IpAddress& address) {
  NamesResult result;
  hostent* host = nullptr;
  const bool v4 = address.is_v4();
  const void* raw = v4 ? static_cast<const void*>(address.bytes.data() + 12) : address.bytes.data();
  const int status = ares_parse_ptr_reply(answer.message.data(), message_length(answer), raw,
                                          v4 ? 4 : 16, v4 ? AF_INET : AF_INET6, &host);
  if (status != ARES_SUCCESS) {
    result.outcome = outcome_of(status) == Outcome::no_data ? Outcome::no_data : Outcome::temporary;
    result.detail = describe(status);
    return result;
  }
  const auto add = [&result](const char* text) {
    if (text == nullptr || result.names.size() >= max_names) return;
    auto name = normalize_name(text);
    if (name && std::find(result.names.begin(), result.names.end(), *name) == result.names.end()) {
      result.names.push_back(std::move(*name));
    }
  };
  add(host->h_name);
  for (char** alias = host->h_aliases; alias != nullptr && *alias != nullptr; ++alias) add(*alias);
  ares_free_hostent(host);
  result.outcome = result.names.empty() ? Outcome::no_data : Outcome::ok;
  if (result.names.empty()) result.detail = "no usable PTR name";
  return result;
}

constexpr std::array<int, 1> mx_query{type_mx};
constexpr std::array<int, 2> address_queries{type_a, type_aaaa};
constexpr std::array<int, 1> ptr_query{type_ptr};

}  // namespace

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::ok:
      return "ok";
    case Outcome::no_such_domain:
      return "no such domain";
    case Outcome::no_data:
      return "no data";
    case Outcome::null_mx:
      return "null MX";
    case Outcome::temporary:
      return "temporary failure";
  }
  return "unknown";
}

Resolver::Resolver(const config::DnsSettings& settings, const asio::any_io_executor& executor)
    : channel_(std::make_shared<Channel>(settings, executor)) {}

Resolver::~Resolver() { channel_->shutdown(); }

asio::awaitable<MxResult> Resolver::mx(const std::string& domain) {
  // A copy: the Resolver may be destroyed while this lookup waits.
  const std::shared_ptr<Channel> channel = channel_;
  const std::optional<std::string> name = normalize_name(domain);
  if (!name) {
    MxResult invalid;
    invalid.outcome = Outcome::no_such_domain;
    invalid.detail = "not a valid domain name";
    co_return invalid;
  }
  const Channel::Clock::time_point deadline = Channel::Clock::now() + channel->budget();
  const std::vector<Answer> answers = co_await channel->ask(*name, mx_query, deadline);
  MxResult result = answers.at(0).status == ARES_SUCCESS ? parse_mx(answers.at(0)) : MxResult{};
  if (answers.at(0).status != ARES_SUCCESS) {
    result.outcome = outcome_of(answers.at(0).status);
    result.detail = describe(answers.at(0).status);
  }
  if (result.outcome != Outcome::no_data) co_return result;

  // No MX records: the domain itself is the implicit MX if it has an address.
  const std::vector<Answer> address_answers =
      co_await channel->ask(*name, address_queries, deadline);
  const AddressResult addresses = combine(address_answers);
  MxResult implicit;
  implicit.outcome = addresses.outcome;
  implicit.detail = addresses.detail;
  if (addresses.outcome == Outcome::ok) implicit.hosts.push_back(MxHost{0, *name});
  co_return implicit;
}

asio::awaitable<AddressResult> Resolver::addresses(const std::string& host) {
  const std::shared_ptr<Channel> channel = channel_;
  const std::optional<std::string> name = normalize_name(host);
  if (!name) {
    AddressResult invalid;
    invalid.outcome = Outcome::no_such_domain;
    invalid.detail = "not a valid host name";
    co_return invalid;
  }
  const Channel::Clock::time_point deadline = Channel::Clock::now() + channel->budget();
  const std::vector<Answer> answers = co_await channel->ask(*name, address_queries, deadline);
  co_return combine(answers);
}

asio::awaitable<NamesResult> Resolver::ptr(const IpAddress& address) {
  const std::shared_ptr<Channel> channel = channel_;
  const IpAddress copy = address;
  const std::string name = reverse_name(copy);
  const Channel::Clock::time_point deadline = Channel::Clock::now() + channel->budget();
  const std::vector<Answer> answers = co_await channel->ask(name, ptr_query, deadline);
  if (answers.at(0).status != ARES_SUCCESS) {
    NamesResult failed;
    failed.outcome = outcome_of(answers.at(0).status);
    failed.detail = describe(answers.at(0).status);
    co_return failed;
  }
  co_return parse_ptr(answers.at(0), copy);
}

}  // namespace maild::dns
