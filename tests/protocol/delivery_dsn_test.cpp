// The delivery status notices: what senders and their software read.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "delivery/dsn.hpp"

namespace maild::delivery {
namespace {

using store::RecipientState;

const std::string original =
    "Received: from client.example by mx.example.test\r\n"
    "From: alice@example.test\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "The body.\r\n";

NoticeInput base() {
  NoticeInput in;
  in.hostname = "mx.example.test";
  in.reverse_path = "alice@example.test";
  in.arrival = std::chrono::system_clock::from_time_t(1700000000);
  in.now = in.arrival + std::chrono::hours(1);
  in.retry_until = in.arrival + std::chrono::hours(24 * 5);
  in.original = original;
  in.token = "0123456789abcdef0123456789abcdef";
  return in;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DeliveryStatusNotice, FailureListsEachRecipientWithTheRemoteReply) {
  auto in = base();
  in.envid = "QQ314159";
  in.recipients.push_back({"bob@example.org", "rfc822;bob@example.org", RecipientState::failed,
                           "550 5.1.1 <bob@example.org>: no such user",
                           "mx.example.org[192.0.2.1]"});
  in.recipients.push_back({"carol@example.org", "", RecipientState::failed,
                           "554 no enhanced code here", "mx.example.org[192.0.2.1]"});
  const auto text = compose_notice(in);
  EXPECT_TRUE(has(text, "Subject: Undelivered Mail Returned to Sender\r\n"));
  EXPECT_TRUE(has(text, "To: <alice@example.test>\r\n"));
  EXPECT_TRUE(has(text, "Auto-Submitted: auto-replied\r\n"));
  EXPECT_TRUE(has(text, "Content-Type: multipart/report; report-type=delivery-status;"));
  EXPECT_TRUE(has(text, "Reporting-MTA: dns; mx.example.test\r\n"));
  EXPECT_TRUE(has(text, "Original-Envelope-Id: QQ314159\r\n"));
  EXPECT_TRUE(has(text,
                  "Original-Recipient: rfc822;bob@example.org\r\n"
                  "Final-Recipient: rfc822;bob@example.org\r\n"
                  "Action: failed\r\n"
                  "Status: 5.1.1\r\n"
                  "Remote-MTA: dns; mx.example.org\r\n"
                  "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: no such user\r\n"));
  EXPECT_TRUE(has(text,
                  "Final-Recipient: rfc822;carol@example.org\r\nAction: failed\r\n"
                  "Status: 5.0.0\r\n"));
  // The whole original comes back by default (small message).
  EXPECT_TRUE(has(text, "Content-Type: message/rfc822\r\n"));
  EXPECT_TRUE(has(text, "The body.\r\n"));
  EXPECT_TRUE(text.ends_with("--=_maild_0123456789abcdef0123456789abcdef--\r\n"));
}

TEST(DeliveryStatusNotice, AHopNamedByItsAddressIsAnAddressLiteral) {
  auto in = base();
  in.recipients.push_back(
      {"bob@example.org", "", RecipientState::failed, "550 5.1.1 no", "127.0.0.3[127.0.0.3]:2526"});
  in.recipients.push_back({"carol@example.org", "", RecipientState::failed, "550 5.1.1 no",
                           "2001:db8::25[2001:db8::25]"});
  const auto text = compose_notice(in);
  EXPECT_TRUE(has(text, "Remote-MTA: dns; [127.0.0.3]\r\n"));
  EXPECT_TRUE(has(text, "Remote-MTA: dns; [IPv6:2001:db8::25]\r\n"));
}

TEST(DeliveryStatusNotice, RetHdrsReturnsOnlyTheHeader) {
  auto in = base();
  in.ret = store::DsnReturn::headers;
  in.recipients.push_back(
      {"bob@example.org", "", RecipientState::failed, "550 5.1.1 no", "h[1.2.3.4]"});
  const auto text = compose_notice(in);
  EXPECT_TRUE(has(text, "Content-Type: text/rfc822-headers\r\n"));
  EXPECT_TRUE(has(text, "Subject: hello\r\n"));
  EXPECT_FALSE(has(text, "The body."));
}

TEST(DeliveryStatusNotice, ALargeOriginalReturnsTheHeaderUnlessRetFull) {
  auto in = base();
  in.original = original + std::string(notice_full_return_max.bytes, 'x') + "\r\n";
  in.recipients.push_back(
      {"bob@example.org", "", RecipientState::failed, "550 5.1.1 no", "h[1.2.3.4]"});
  EXPECT_FALSE(has(compose_notice(in), "The body."));
  in.ret = store::DsnReturn::full;
  EXPECT_TRUE(has(compose_notice(in), "The body."));
}

TEST(DeliveryStatusNotice, DelayNoticeSaysUntilWhenAndCarriesNoBody) {
  auto in = base();
  in.recipients.push_back(
      {"bob@example.org", "", RecipientState::queued, "451 4.4.1 connection refused", ""});
  const auto text = compose_notice(in);
  EXPECT_TRUE(has(text, "Subject: Delayed Mail (still being retried)\r\n"));
  EXPECT_TRUE(has(text, "Action: delayed\r\nStatus: 4.4.1\r\n"));
  EXPECT_TRUE(has(text, "Diagnostic-Code: X-maild; 451 4.4.1 connection refused\r\n"));
  EXPECT_TRUE(has(text, "Will-Retry-Until: "));
  EXPECT_FALSE(has(text, "The body."));
}

TEST(DeliveryStatusNotice, RelayedNotice) {
  auto in = base();
  in.recipients.push_back({"bob@example.org", "", RecipientState::delivered, "250 2.0.0 Ok",
                           "mx.example.org[192.0.2.1]"});
  const auto text = compose_notice(in);
  EXPECT_TRUE(has(text, "Action: relayed\r\nStatus: 2.0.0\r\n"));
  EXPECT_TRUE(has(text, "Subject: Successful Mail Relay Report\r\n"));
  EXPECT_TRUE(has(text, "Content-Type: text/rfc822-headers\r\n"));
  EXPECT_FALSE(has(text, "The body."));
}

TEST(DeliveryStatusNotice, DeliveredNoticeForLocalMailboxes) {
  auto in = base();
  in.envid = "env-7";
  in.recipients.push_back({"bob@example.test", "rfc822;Bob@example.test", RecipientState::delivered,
                           store::local_delivery_reply, ""});
  in.recipients.push_back(
      {"carol@example.test", "", RecipientState::delivered, store::local_delivery_reply, ""});
  const auto text = compose_notice(in);
  EXPECT_TRUE(has(text, "Subject: Successful Mail Delivery Report\r\n"));
  EXPECT_TRUE(has(text, "Original-Envelope-Id: env-7\r\n"));
  EXPECT_TRUE(has(text,
                  "Original-Recipient: rfc822;Bob@example.test\r\n"
                  "Final-Recipient: rfc822;bob@example.test\r\n"
                  "Action: delivered\r\n"
                  "Status: 2.0.0\r\n"
                  "Last-Attempt-Date: "));
  EXPECT_TRUE(has(text,
                  "\r\n\r\nFinal-Recipient: rfc822;carol@example.test\r\n"
                  "Action: delivered\r\nStatus: 2.0.0\r\n"));
  EXPECT_FALSE(has(text, "Remote-MTA:"));
  EXPECT_FALSE(has(text, "Diagnostic-Code:"));
  // Without RET=FULL a success notice carries the header only (RFC 3461 4.3).
  EXPECT_TRUE(has(text, "Content-Type: text/rfc822-headers\r\n"));
  EXPECT_TRUE(has(text, "Subject: hello\r\n"));
  EXPECT_FALSE(has(text, "The body."));
  in.ret = store::DsnReturn::headers;
  EXPECT_FALSE(has(compose_notice(in), "The body."));
}

TEST(DeliveryStatusNotice, RetFullReturnsTheWholeMessageWithASuccessNotice) {
  auto in = base();
  in.ret = store::DsnReturn::full;
  in.recipients.push_back(
      {"bob@example.test", "", RecipientState::delivered, store::local_delivery_reply, ""});
  const auto text = compose_notice(in);
  EXPECT_TRUE(has(text, "Content-Type: message/rfc822\r\n"));
  EXPECT_TRUE(has(text, "Content-Description: Delivered Message\r\n"));
  EXPECT_TRUE(has(text, "The body."));
}

TEST(DeliveryStatusNotice, DeliveredAndRelayedTogetherMakeOneRelayReport) {
  auto in = base();
  in.recipients.push_back(
      {"bob@example.test", "", RecipientState::delivered, store::local_delivery_reply, ""});
  in.recipients.push_back({"dave@example.org", "", RecipientState::delivered, "250 2.0.0 Ok",
                           "mx.example.org[192.0.2.1]"});
  const auto text = compose_notice(in);
  EXPECT_TRUE(has(text, "Subject: Successful Mail Relay Report\r\n"));
  EXPECT_TRUE(has(text, "Final-Recipient: rfc822;bob@example.test\r\nAction: delivered\r\n"));
  EXPECT_TRUE(has(text, "Final-Recipient: rfc822;dave@example.org\r\nAction: relayed\r\n"));
}

TEST(DeliveryStatusNotice, AFailureNextToADeliveryIsAFailureNotice) {
  auto in = base();
  in.recipients.push_back(
      {"bob@example.test", "", RecipientState::delivered, store::local_delivery_reply, ""});
  in.recipients.push_back({"dave@example.org", "", RecipientState::failed, "550 5.1.1 unknown",
                           "mx.example.org[192.0.2.1]"});
  const auto text = compose_notice(in);
  EXPECT_TRUE(has(text, "Subject: Undelivered Mail Returned to Sender\r\n"));
  EXPECT_TRUE(has(text, "Action: delivered\r\n"));
  EXPECT_TRUE(has(text, "Action: failed\r\n"));
  EXPECT_TRUE(has(text, "Content-Description: Undelivered Message\r\n"));
}

TEST(DeliveryStatusNotice, HostileRepliesStayOnOneBoundedLine) {
  auto in = base();
  in.recipients.push_back({"bob@example.org", "", RecipientState::failed,
                           "550 5.7.1 evil\r\nBcc: victim@example.net\r\n" + std::string(5000, 'a'),
                           "mx[1.2.3.4]"});
  const auto text = compose_notice(in);
  EXPECT_FALSE(has(text, "\r\nBcc:"));
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find("\r\n", start);
    ASSERT_NE(end, std::string::npos);
    EXPECT_LE(end - start, 998u);
    start = end + 2;
  }
}

TEST(DeliveryStatusNotice, NonAsciiRecipientsUseTheUtf8AddressType) {
  auto in = base();
  in.recipients.push_back({"\xc3\xa9l\xc3\xa8ve@example.org", "", RecipientState::failed,
                           "550 5.1.1 no", "mx[1.2.3.4]"});
  EXPECT_TRUE(has(compose_notice(in), "Final-Recipient: utf-8;"));
}

TEST(DeliveryStatusNotice, StatusOfReplies) {
  EXPECT_EQ(status_of("550 5.1.1 no such user"), "5.1.1");
  EXPECT_EQ(status_of("451 4.4.1 refused"), "4.4.1");
  EXPECT_EQ(status_of("550 no code"), "5.0.0");
  EXPECT_EQ(status_of("450 5.1.1 mismatched class"), "4.0.0");
  EXPECT_EQ(status_of("250 2.0.0 Ok"), "2.0.0");
  EXPECT_EQ(status_of("550 5.1.1.1.1 too many"), "5.0.0");
  EXPECT_EQ(status_of(""), "5.0.0");
}

TEST(DeliveryStatusNotice, WhoWantsNotices) {
  EXPECT_TRUE(wants_failure_notice("a@b", 0));
  EXPECT_FALSE(wants_failure_notice("", 0));  // never to the null sender
  EXPECT_FALSE(wants_failure_notice("a@b", store::notify_never));
  EXPECT_FALSE(wants_failure_notice("a@b", store::notify_success));
  EXPECT_TRUE(wants_failure_notice("a@b", store::notify_failure | store::notify_delay));
  EXPECT_TRUE(wants_delay_notice("a@b", 0));
  EXPECT_FALSE(wants_delay_notice("a@b", store::notify_failure));
  EXPECT_FALSE(wants_delay_notice("", store::notify_delay));
}

}  // namespace
}  // namespace maild::delivery
