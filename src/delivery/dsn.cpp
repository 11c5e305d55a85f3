// RFC 3464 delivery status notifications; see dsn.hpp.
#include "delivery/dsn.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <ctime>
#include <string_view>

namespace maild::delivery {
namespace {

constexpr std::size_t field_line_max = 900;  // under RFC 5322's 998, with room to fold

// RFC 5322 3.3 date-time, in UTC.
std::string rfc5322_date(std::chrono::system_clock::time_point when) {
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[64];
  const auto n = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return std::string(text, n);
}

// Untrusted text for a header field: printable ASCII only, one line, bounded.
std::string field_text(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (out.size() >= field_line_max) break;
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : ' ';
  }
  return out;
}

// An address as an RFC 3464 address field: "rfc822;" for ASCII, RFC 6533's "utf-8;" otherwise.
std::string typed_address(std::string_view address) {
  const bool ascii = std::all_of(address.begin(), address.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  return (ascii ? "rfc822;" : "utf-8;") + field_text(address);
}

// The original's header section (up to and including the empty line, or all of it).
std::string_view header_section(std::string_view message) {
  if (message.starts_with("\r\n")) return message.substr(0, 2);
  const auto end = message.find("\r\n\r\n");
  return end == std::string_view::npos ? message : message.substr(0, end + 4);
}

// Delivered by us into a mailbox, rather than relayed to a server that does not report.
bool delivered_here(const NoticeRecipient& r) {
  return r.state == store::RecipientState::delivered && r.remote_host.empty();
}

std::string_view action(const NoticeRecipient& r) {
  switch (r.state) {
    case store::RecipientState::failed:
      return "failed";
    case store::RecipientState::queued:
      return "delayed";
    case store::RecipientState::delivered:
      break;
  }
  return delivered_here(r) ? "delivered" : "relayed";
}

// The reply's code when it starts with one ("550 ..."), else nothing.
bool has_reply_code(std::string_view reply) {
  return reply.size() >= 3 &&
         std::all_of(reply.begin(), reply.begin() + 3, [](char c) { return c >= '0' && c <= '9'; });
}

// RFC 3464 2.3.5: the next hop's name from "mx.example.org[192.0.2.1]:2526";
// a hop named by its address (a route by IP) as an address literal (RFC 5321 4.1.3).
std::string remote_mta(const std::string& remote_host) {
  const auto host = remote_host.substr(0, remote_host.find('['));
  unsigned char address[16];
  if (inet_pton(AF_INET, host.c_str(), address) == 1) return "[" + host + "]";
  if (inet_pton(AF_INET6, host.c_str(), address) == 1) return "[IPv6:" + host + "]";
  return field_text(host);
}

}  // namespace

std::string status_of(const std::string& reply) {
  // "550 5.1.1 text": the enhanced code after the reply code.
  const std::string_view view(reply);
  if (has_reply_code(view) && view.size() > 4) {
    const auto rest = view.substr(4);
    const auto end = rest.find(' ');
    const auto code = rest.substr(0, end);
    const bool shaped = code.size() >= 5 && code.size() <= 11 &&
                        (code[0] == '2' || code[0] == '4' || code[0] == '5') && code[1] == '.' &&
                        std::count(code.begin(), code.end(), '.') == 2 &&
                        std::all_of(code.begin(), code.end(),
                                    [](char c) { return c == '.' || (c >= '0' && c <= '9'); }) &&
                        code.back() != '.' && code.find("..") == std::string_view::npos;
    if (shaped && code[0] == view[0]) return std::string(code);
  }
  if (!view.empty() && (view[0] == '2' || view[0] == '4' || view[0] == '5'))
    return std::string(1, view[0]) + ".0.0";
  return "5.0.0";
}

bool wants_failure_notice(const std::string& reverse_path, unsigned notify) {
  if (reverse_path.empty() || (notify & store::notify_never) != 0) return false;
  return notify == 0 || (notify & store::notify_failure) != 0;
}

bool wants_delay_notice(const std::string& reverse_path, unsigned notify) {
  if (reverse_path.empty() || (notify & store::notify_never) != 0) return false;
  return notify == 0 || (notify & store::notify_delay) != 0;
}

std::string compose_notice(const NoticeInput& input) {
  const bool failure = std::any_of(
      input.recipients.begin(), input.recipients.end(),
      [](const NoticeRecipient& r) { return r.state == store::RecipientState::failed; });
  const bool delayed_only =
      !failure &&
      std::any_of(input.recipients.begin(), input.recipients.end(), [](const NoticeRecipient& r) {
        return r.state == store::RecipientState::queued;
      });
  const bool delivered_only =
      !failure && !delayed_only &&
      std::all_of(input.recipients.begin(), input.recipients.end(), delivered_here);
  const std::string boundary = "=_maild_" + input.token;
  const std::string mailer_daemon = "MAILER-DAEMON@" + input.hostname;

  std::string out;
  out += "From: Mail Delivery System <" + mailer_daemon + ">\r\n";
  out += "To: <" + field_text(input.reverse_path) + ">\r\n";
  out += "Subject: ";
  out += failure          ? "Undelivered Mail Returned to Sender"
         : delayed_only   ? "Delayed Mail (still being retried)"
         : delivered_only ? "Successful Mail Delivery Report"
                          : "Successful Mail Relay Report";
  out += "\r\n";
  out += "Date: " + rfc5322_date(input.now) + "\r\n";
  out += "Message-ID: <" + input.token + "." + "notice@" + input.hostname + ">\r\n";
  out += "Auto-Submitted: auto-replied\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: multipart/report; report-type=delivery-status;\r\n";
  out += "\tboundary=\"" + boundary + "\"\r\n";
  out += "\r\n";
  out += "This is a MIME-encapsulated message.\r\n\r\n";

  // Part 1: for people.
  out += "--" + boundary + "\r\n";
  out += "Content-Type: text/plain; charset=us-ascii\r\n";
  out += "Content-Description: Notification\r\n\r\n";
  out += "This is the mail system at host " + input.hostname + ".\r\n\r\n";
  if (failure)
    out +=
        "Your message could not be delivered to one or more recipients.\r\n"
        "The problem is described below.\r\n\r\n";
  else if (delayed_only)
    out +=
        "Your message could not be delivered yet. The mail system will keep\r\n"
        "trying until " +
        rfc5322_date(input.retry_until) + ".\r\nYou do not need to send it again.\r\n\r\n";
  else if (delivered_only)
    out += "Your message was delivered to the mailboxes listed below.\r\n\r\n";
  else
    out +=
        "Your message was delivered to a server that does not report\r\n"
        "delivery itself, so this is the last report you will get.\r\n\r\n";
  for (const auto& r : input.recipients) {
    out += "<" + field_text(r.address) + ">: ";
    out += r.remote_host.empty() ? "" : "host " + field_text(r.remote_host) + " said: ";
    out += field_text(r.last_reply) + "\r\n";
  }
  out += "\r\n";

  // Part 2: for programs (RFC 3464 2.2 and 2.3).
  out += "--" + boundary + "\r\n";
  out += "Content-Type: message/delivery-status\r\n";
  out += "Content-Description: Delivery report\r\n\r\n";
  out += "Reporting-MTA: dns; " + input.hostname + "\r\n";
  if (!input.envid.empty()) out += "Original-Envelope-Id: " + field_text(input.envid) + "\r\n";
  out += "Arrival-Date: " + rfc5322_date(input.arrival) + "\r\n";
  for (const auto& r : input.recipients) {
    out += "\r\n";
    if (!r.orcpt.empty()) out += "Original-Recipient: " + field_text(r.orcpt) + "\r\n";
    out += "Final-Recipient: " + typed_address(r.address) + "\r\n";
    out += "Action: " + std::string(action(r)) + "\r\n";
    out += "Status: " + status_of(r.last_reply) + "\r\n";
    if (!r.remote_host.empty()) out += "Remote-MTA: dns; " + remote_mta(r.remote_host) + "\r\n";
    if (has_reply_code(r.last_reply) && !r.remote_host.empty())
      out += "Diagnostic-Code: smtp; " + field_text(r.last_reply) + "\r\n";
    else if (!r.last_reply.empty() && !delivered_here(r))
      out += "Diagnostic-Code: X-maild; " + field_text(r.last_reply) + "\r\n";
    out += "Last-Attempt-Date: " + rfc5322_date(input.now) + "\r\n";
    if (r.state == store::RecipientState::queued)
      out += "Will-Retry-Until: " + rfc5322_date(input.retry_until) + "\r\n";
  }
  out += "\r\n";

  // Part 3: the original, whole or its header only. A failure notice returns it whole unless
  // RET=HDRS (or it is large without RET); a success notice only with RET=FULL (RFC 3461 4.3).
  const bool success = !failure && !delayed_only;
  const bool whole = (failure && input.ret != store::DsnReturn::headers &&
                      (input.ret == store::DsnReturn::full ||
                       input.original.size() <= notice_full_return_max.bytes)) ||
                     (success && input.ret == store::DsnReturn::full);
  out += "--" + boundary + "\r\n";
  if (whole) {
    out += "Content-Type: message/rfc822\r\n";
    out += failure ? "Content-Description: Undelivered Message\r\n\r\n"
                   : "Content-Description: Delivered Message\r\n\r\n";
    out += input.original;
    if (!input.original.empty() && !input.original.ends_with("\r\n")) out += "\r\n";
  } else {
    out += "Content-Type: text/rfc822-headers\r\n";
    out += "Content-Description: Message Headers\r\n\r\n";
    out += header_section(input.original);
  }
  out += "\r\n--" + boundary + "--\r\n";
  return out;
}

}  // namespace maild::delivery
