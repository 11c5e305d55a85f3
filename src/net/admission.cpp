// Admission counting; see admission.hpp. One short critical section per accept and close.
#include "net/admission.hpp"

#include <string_view>

namespace maild::net {

Admission::Ticket::~Ticket() {
  if (owner_ != nullptr) owner_->release(ip_);
}

Admission::Admission(std::size_t max_total, std::size_t max_per_ip)
    : max_total_(max_total), max_per_ip_(max_per_ip) {}

std::size_t Admission::IpHash::operator()(const IpAddress& ip) const noexcept {
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(ip.bytes.data()), ip.bytes.size()));
}

Admission::Decision Admission::admit(const IpAddress& ip) {
  std::lock_guard lock(mutex_);
  if (total_ >= max_total_) return {std::nullopt, Refusal::total};
  auto& count = per_ip_[ip];
  if (count >= max_per_ip_) {
    if (count == 0) per_ip_.erase(ip);
    return {std::nullopt, Refusal::per_ip};
  }
  ++count;
  ++total_;
  return {Ticket(this, ip), Refusal::total};
}

void Admission::release(const IpAddress& ip) {
  std::lock_guard lock(mutex_);
  --total_;
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
}

std::size_t Admission::active() const {
  std::lock_guard lock(mutex_);
  return total_;
}

}  // namespace maild::net
