// Admission control: how many sessions may be open, in total and per client address.
// Trust: counts only; the address comes from the kernel (accept), not the client.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "maild/core/net_types.hpp"

namespace maild::net {

class Admission {
 public:
  enum class Refusal { total, per_ip };

  // Holds one admitted session's place; gives it back when destroyed.
  class Ticket {
   public:
    Ticket(Admission* owner, const IpAddress& ip) : owner_(owner), ip_(ip) {}
    Ticket(Ticket&& other) noexcept : owner_(other.owner_), ip_(other.ip_) {
      other.owner_ = nullptr;
    }
    Ticket& operator=(Ticket&&) = delete;
    Ticket(const Ticket&) = delete;
    ~Ticket();

   private:
    Admission* owner_;
    IpAddress ip_;
  };

  Admission(std::size_t max_total, std::size_t max_per_ip);

  // A ticket, or why there is none.
  struct Decision {
    std::optional<Ticket> ticket;
    Refusal refusal = Refusal::total;
  };
  Decision admit(const IpAddress& ip);

  std::size_t active() const;

 private:
  struct IpHash {
    std::size_t operator()(const IpAddress& ip) const noexcept;
  };
  void release(const IpAddress& ip);

  const std::size_t max_total_;
  const std::size_t max_per_ip_;
  mutable std::mutex mutex_;
  std::size_t total_ = 0;
  std::unordered_map<IpAddress, std::size_t, IpHash> per_ip_;
};

}  // namespace maild::net
