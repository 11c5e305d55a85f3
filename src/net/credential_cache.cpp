// The verified-credentials cache; see credential_cache.hpp.
#include "net/credential_cache.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "maild/core/password.hpp"

namespace maild::net {

CredentialCache::CredentialCache(Clock::duration ttl, std::size_t max_entries)
    : ttl_(ttl), max_entries_(max_entries) {
  if (RAND_bytes(key_.data(), static_cast<int>(key_.size())) != 1)
    throw std::runtime_error("no random bytes for the credential cache's key");
}

std::size_t CredentialCache::DigestHash::operator()(const std::string& digest) const noexcept {
  // The digest is already uniformly random: its first bytes are a good hash.
  std::size_t out = 0;
  std::memcpy(&out, digest.data(), std::min(sizeof(out), digest.size()));
  return out;
}

std::string CredentialCache::digest(std::string_view address, std::string_view password,
                                    std::string_view hash) const {
  // Each field with its length in front: no two triples give the same input.
  std::string input;
  input.reserve(address.size() + password.size() + hash.size() + 3 * sizeof(std::uint64_t));
  for (const std::string_view field : {address, hash, password}) {
    const std::uint64_t length = field.size();
    input.append(reinterpret_cast<const char*>(&length), sizeof(length));
    input.append(field);
  }
  Digest out{};
  unsigned int out_length = 0;
  const unsigned char* done = HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
                                   reinterpret_cast<const unsigned char*>(input.data()),
                                   input.size(), out.data(), &out_length);
  OPENSSL_cleanse(input.data(), input.size());
  if (done == nullptr || out_length != out.size())
    throw std::runtime_error("HMAC-SHA256 failed in the credential cache");
  return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

bool CredentialCache::check(std::string_view address, std::string_view password,
                            std::string_view hash, Clock::time_point now) {
  if (ttl_ <= Clock::duration::zero()) return password::verify(password, hash);
  const std::string key = digest(address, password, hash);
  {
    std::lock_guard lock(mutex_);
    const auto found = verified_.find(key);
    if (found != verified_.end()) {
      if (now < found->second) return true;
      verified_.erase(found);
    }
  }
  // The slow check runs outside the lock: other logins go on meanwhile.
  if (!password::verify(password, hash)) return false;
  std::lock_guard lock(mutex_);
  if (verified_.size() >= max_entries_) {
    std::erase_if(verified_, [now](const auto& entry) { return entry.second <= now; });
    if (verified_.size() >= max_entries_) verified_.clear();  // bounded; refills as clients return
  }
  verified_[key] = now + ttl_;
  return true;
}

std::size_t CredentialCache::size() const {
  std::lock_guard lock(mutex_);
  return verified_.size();
}

}  // namespace maild::net
