// The trace fields a receiving SMTP server prepends (RFC 5321 4.4): Received
// and, at final delivery, Return-Path.
// Trust: the HELO name, user and addresses are client-supplied; control
// characters and comment delimiters are removed and the HELO name is capped.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "smtp/address.hpp"

namespace maild::smtp {

struct TlsSummary {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
};

struct ReceivedInfo {
  std::string helo;       // as the client sent it
  std::string client_ip;  // "192.0.2.1" or "2001:db8::1"
  std::string hostname;   // ours
  std::string session_id;
  bool esmtp = true;  // EHLO rather than HELO
  bool tls = false;
  bool authenticated = false;
  bool utf8 = false;  // SMTPUTF8 transaction (RFC 6531 3.7.3)
  std::optional<TlsSummary> tls_summary;
  std::optional<std::string> authenticated_user;  // printed only when set
  std::optional<Path> recipient;                  // the "for" clause, for a single recipient
  std::chrono::system_clock::time_point time;
};

// "Received: from helo ([ip])\r\n\tby host (maild) with ESMTPS id X\r\n\t...; date\r\n",
// folded at 78 columns where possible. The date is RFC 5322, in UTC.
std::string received_header(const ReceivedInfo& info);

// "Return-Path: <a@b>\r\n", or "Return-Path: <>\r\n" for the null path.
std::string return_path_line(const Path& reverse_path);

// RFC 5322 3.3 date-time in UTC: "Sun, 22 Nov 2026 07:29:14 +0000".
std::string rfc5322_date(std::chrono::system_clock::time_point time);

// The RFC 3848 / RFC 6531 "with" keyword: SMTP, ESMTP[S][A], UTF8SMTP[S][A].
std::string protocol_name(bool esmtp, bool tls, bool authenticated, bool utf8);

}  // namespace maild::smtp
