// SOURCE/GET transcripts in memory (SOURCE-GET.md 2, 3, 5, 6): every reply of
// SOURCE and GET, pipelining, the unknown-token throttle, GET authorisation by
// trusted peers and by DNS (a private dnsmasq), the policy for unverified DATA
// mail, and tokens shortened to 8 characters in the log.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "dns/resolver.hpp"
#include "dnsmasq_fixture.hpp"
#include "maild/config/limits.hpp"
#include "reverse/source_get.hpp"
#include "session_fixture.hpp"
#include "smtp/session.hpp"

namespace maild::testing {
namespace {

using namespace std::chrono_literals;
using net::Service;

const std::string token = "5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a";
const std::string other_token = "00112233445566778899aabbccddeeff";
const std::string message = "Subject: hello\r\n\r\nline one\r\n..starts with a dot\r\n";

// The lines of a GET answer after its 354, up to the lone "." (not included).
std::vector<std::string> content_lines(Client& c) {
  std::vector<std::string> lines;
  for (;;) {
    auto line = c.line();
    if (line == ".") return lines;
    if (line.empty() && c.closed()) {
      ADD_FAILURE() << "the connection ended inside the content";
      return lines;
    }
    lines.push_back(std::move(line));
  }
}

// Undoes dot-stuffing; what a GET client stores.
std::string unstuff(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += (line.rfind('.', 0) == 0 ? line.substr(1) : line) + "\r\n";
  return out;
}

class SourceGet : public SessionFixture {
 protected:
  Client connect(Service service = Service::smtp, const char* remote = "192.0.2.7") {
    return SessionFixture::connect(&smtp::serve<LocalSocket>, service, remote);
  }
  Client said_ehlo(Service service = Service::smtp, const char* remote = "192.0.2.7") {
    auto client = connect(service, remote);
    if (service == Service::submissions) client.start_tls();
    client.expect("220 ");
    client.send("EHLO client.example\r\n");
    client.expect("250 ");
    return client;
  }
  // MAIL and RCPT for bob@example.test, both accepted.
  void envelope(Client& c, const std::string& from = "alice@origin.test") {
    c.send("MAIL FROM:<" + from + "> SIZE=1234\r\nRCPT TO:<bob@example.test>\r\n");
    c.expect("250 2.1.0");
    c.expect("250 2.1.5");
  }
  std::vector<store::PendingRetrieval> retrievals() {
    return store().reverse().list_retrievals(100);
  }

  // A pickup of `content` for recipients at `domain`, offered.
  store::PickupId offer(const std::string& content, const std::string& domain = "dest.test",
                        const std::string& with_token = token) {
    if (!world_started()) start_world();
    store::NewPickup pickup;
    pickup.token = with_token;
    pickup.reverse_path = "bob@example.test";
    pickup.arrival = store::UnixTime{std::chrono::seconds{1700000000}};
    pickup.recipients = {{"someone@" + domain, domain, 0, ""}};
    pickup.outbound_trace = "Received: from client by mx.example.test\r\n";
    pickup.content = content;
    return store().reverse().create_pickup(pickup);
  }

  // GET the token; returns the content lines between 354 and "." (without them).
  std::vector<std::string> fetch(Client& c, const std::string& with_token = token) {
    c.send("GET " + with_token + "\r\n");
    c.expect("354 2.0.0 " + with_token + " message follows");
    auto lines = content_lines(c);
    c.expect("250 2.0.0 " + with_token + " transferred");
    return lines;
  }

  std::vector<store::MailSummary> stored() { return store().admin().list_mail(0, std::nullopt); }
};

// ---- advertising ----------------------------------------------------------------------------

TEST_F(SourceGet, EhloListsSourceOnTheMxPortOnly) {
  auto mx = connect();
  mx.expect("220 ");
  mx.send("EHLO client.example\r\n");
  const auto lines = mx.reply();
  EXPECT_NE(std::find(lines.begin(), lines.end(), "250-SOURCE"), lines.end());
  EXPECT_EQ(lines.back(), "250 HELP");

  auto submission = connect(Service::submission);
  submission.expect("220 ");
  submission.send("EHLO client.example\r\n");
  const auto sub = submission.reply();
  EXPECT_EQ(std::find(sub.begin(), sub.end(), "250-SOURCE"), sub.end());
}

TEST_F(SourceGet, NoSourceKeywordWhenBothSidesAreOff) {
  settings_.reverse.accept_source = false;
  settings_.reverse.use_source = false;
  auto c = connect();
  c.expect("220 ");
  c.send("EHLO client.example\r\n");
  const auto lines = c.reply();
  EXPECT_EQ(std::find(lines.begin(), lines.end(), "250-SOURCE"), lines.end());
}

// ---- SOURCE ---------------------------------------------------------------------------------

TEST_F(SourceGet, SourceIsRecordedBeforeItsReplyAndEndsTheTransaction) {
  auto c = said_ehlo();
  c.send(
      "MAIL FROM:<alice@Origin.Test> SIZE=1234\r\nRCPT TO:<bob@example.test>\r\n"
      "RCPT TO:<carol@example.test>\r\nSOURCE " +
      token + "\r\n");
  c.expect("250 2.1.0");
  c.expect("250 2.1.5");
  c.expect("250 2.1.5");
  EXPECT_EQ(c.reply(), std::vector<std::string>{"250 2.0.0 " + token + " accepted for retrieval"});
  // The reply came after the commit: the retrieval is there now.
  const auto list = retrievals();
  ASSERT_EQ(list.size(), 1u);
  const auto& r = list[0];
  EXPECT_EQ(r.token, token);
  EXPECT_EQ(r.reverse_path, "alice@Origin.Test");
  EXPECT_EQ(r.sender_domain, "origin.test");
  ASSERT_EQ(r.recipients.size(), 2u);
  EXPECT_EQ(r.recipients[0].address, "bob@example.test");
  EXPECT_EQ(r.recipients[0].mailboxes.size(), 1u);
  EXPECT_EQ(r.recipients[1].address, "carol@example.test");
  EXPECT_EQ(r.declared_size, std::optional<std::uint64_t>(1234));
  EXPECT_EQ(r.client_address, "192.0.2.7");
  EXPECT_EQ(r.helo, "client.example");
  EXPECT_EQ(r.trace.rfind("Return-Path: <alice@Origin.Test>\r\nReceived: from client.example "
                          "([192.0.2.7])",
                          0),
            0u)
      << r.trace;
  EXPECT_EQ(store().reverse().stats().counters.at(store::counter::source_accepted), 1);
  EXPECT_TRUE(stored().empty());  // nothing is delivered before the GET

  c.send("RCPT TO:<bob@example.test>\r\n");
  c.expect("503 5.5.1");  // SOURCE ended the transaction
  envelope(c);            // and a new one can start
}

TEST_F(SourceGet, TheSameSourceAgainIsAcceptedOnce) {
  auto c = said_ehlo();
  envelope(c);
  c.send("SOURCE " + token + "\r\n");
  c.expect("250 2.0.0 " + token);
  envelope(c);  // the client never saw the 250 and tries again
  c.send("SOURCE " + token + "\r\n");
  c.expect("250 2.0.0 " + token);
  EXPECT_EQ(retrievals().size(), 1u);

  envelope(c, "mallory@evil.test");  // the same token for another sender
  c.send("SOURCE " + token + "\r\n");
  c.expect("550 5.7.1");
  EXPECT_EQ(retrievals().size(), 1u);
}

TEST_F(SourceGet, MalformedTokens) {
  auto c = said_ehlo();
  envelope(c);
  const std::vector<std::string> malformed{"",
                                           token.substr(1),
                                           token + "0",
                                           "5F0C2E8A9B1D4C7E8F6A3B2C1D0E9F8A",
                                           token.substr(0, 31) + "g",
                                           token.substr(0, 16) + " " + token.substr(16)};
  for (const auto& bad : malformed) {
    c.send("SOURCE " + bad + "\r\n");
    c.expect("501 5.5.4");
  }
  c.send("SOURCE " + token + "\r\n");  // the transaction survived the syntax errors
  c.expect("250 2.0.0");
}

TEST_F(SourceGet, SourceNeedsMailAndAnAcceptedRecipient) {
  auto c = said_ehlo();
  c.send("SOURCE " + token + "\r\n");
  c.expect("503 5.5.1");
  c.send("MAIL FROM:<alice@origin.test>\r\nRCPT TO:<nobody@example.test>\r\n");
  c.expect("250 ");
  c.expect("550 5.1.1");
  c.send("SOURCE " + token + "\r\n");
  c.expect("503 5.5.1");
  EXPECT_TRUE(retrievals().empty());
}

TEST_F(SourceGet, ABounceCannotBeFetchedBack) {
  auto c = said_ehlo();
  c.send("MAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nSOURCE " + token + "\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("501 5.5.4");
  c.send("DATA\r\n");  // the client falls back to DATA in the same transaction
  c.expect("354 ");
  c.send(message + ".\r\n");
  c.expect("250 2.0.0");
}

TEST_F(SourceGet, SourceAfterBdatIsASequenceError) {
  auto c = said_ehlo();
  envelope(c);
  c.send("BDAT 4\r\nabcdSOURCE " + token + "\r\n");
  c.expect("250 2.0.0 4 octets");
  c.expect("503 5.5.1");
}

TEST_F(SourceGet, SourceIsRefusedByPolicyWhenNotAccepted) {
  settings_.reverse.accept_source = false;  // use_source keeps the keyword: we answer GET
  auto c = said_ehlo();
  envelope(c);
  c.send("SOURCE " + token + "\r\n");
  c.expect("550 5.7.1");
  c.send("RSET\r\n");  // the fallback: RSET, then MAIL, RCPT and DATA
  c.expect("250 ");
  EXPECT_TRUE(retrievals().empty());
}

TEST_F(SourceGet, SourceNeedsASenderDomainWithAnMx) {
  auto c = said_ehlo();
  c.send("MAIL FROM:<alice@[192.0.2.1]>\r\nRCPT TO:<bob@example.test>\r\nSOURCE " + token + "\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("550 5.7.1");
}

TEST_F(SourceGet, SourceIsForTheMxPortOnly) {
  auto c = said_ehlo(Service::submissions);
  c.send("SOURCE " + token + "\r\n");
  c.expect("502 5.5.1");
}

TEST_F(SourceGet, PendingRetrievalsPerSenderDomainAreBounded) {
  settings_.reverse.max_pending_per_domain = 1;
  auto c = said_ehlo();
  envelope(c);
  c.send("SOURCE " + token + "\r\n");
  c.expect("250 2.0.0");
  envelope(c, "zoe@origin.test");
  c.send("SOURCE " + other_token + "\r\n");
  c.expect("452 4.3.1");
  c.send("RCPT TO:<bob@example.test>\r\n");
  c.expect("503 5.5.1");  // the transaction ended, as with any answer to SOURCE's content
  EXPECT_EQ(retrievals().size(), 1u);
}

// SOURCE-GET.md 6: one client address cannot announce more than its share,
// whatever sender domains it claims; other addresses are not affected.
TEST_F(SourceGet, PendingRetrievalsPerClientAddressAreBounded) {
  settings_.reverse.max_pending_per_client = 2;
  auto c = said_ehlo();
  envelope(c, "a@one.test");
  c.send("SOURCE " + token + "\r\n");
  c.expect("250 2.0.0");
  envelope(c, "b@two.test");
  c.send("SOURCE " + other_token + "\r\n");
  c.expect("250 2.0.0");
  envelope(c, "c@three.test");
  c.send("SOURCE ffeeddccbbaa99887766554433221100\r\n");
  c.expect("452 4.3.1 too many pending retrievals from your address, try again later");
  EXPECT_EQ(retrievals().size(), 2u);
  auto other = said_ehlo(Service::smtp, "192.0.2.8");
  envelope(other, "c@three.test");
  other.send("SOURCE ffeeddccbbaa99887766554433221100\r\n");
  other.expect("250 2.0.0");
  EXPECT_EQ(retrievals().size(), 3u);
}

TEST_F(SourceGet, SourceMustBeTheLastCommandOfAPipelinedGroup) {
  auto c = said_ehlo();
  envelope(c);
  c.send("SOURCE " + token + "\r\nNOOP\r\n");
  c.expect("503 5.5.1");
  c.expect("250 2.0.0 OK");
  EXPECT_TRUE(retrievals().empty());
  // Last in its group it is fine, even after pipelined MAIL and RCPT.
  c.send("RSET\r\nMAIL FROM:<alice@origin.test>\r\nRCPT TO:<bob@example.test>\r\nSOURCE " + token +
         "\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("250 2.0.0 " + token);
}

TEST_F(SourceGet, AStoreFailureAtSourceIsTemporary) {
  auto c = said_ehlo();
  envelope(c);
  store().close();
  c.send("SOURCE " + token + "\r\n");
  c.expect("451 4.3.0");
}

// ---- GET ------------------------------------------------------------------------------------

TEST_F(SourceGet, GetSendsTheMessageDotStuffedToATrustedPeer) {
  settings_.reverse.trusted_peers = {*parse_network("192.0.2.0/24")};
  const std::string content = "Subject: pickup\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n";
  const auto id = offer(content);
  auto c = said_ehlo();
  c.send("GET " + token + "\r\n");
  c.expect("354 2.0.0 " + token + " message follows");
  const auto wire = content_lines(c);
  EXPECT_EQ(wire.at(3), "..leading dot");  // stuffed on the wire
  EXPECT_EQ(wire.at(5), "..");
  c.expect("250 2.0.0 " + token + " transferred");
  EXPECT_EQ(unstuff(wire), "Received: from client by mx.example.test\r\n" + content);

  // Marked after the final reply went out; served again within the retention.
  std::optional<store::Pickup> pickup;
  for (int i = 0; i < 100; ++i) {
    pickup = store().reverse().find_pickup(token);
    if (pickup->state == store::PickupState::transferred) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(pickup->id, id);
  EXPECT_EQ(pickup->state, store::PickupState::transferred);
  EXPECT_GT(pickup->first_fetched_at, store::UnixTime{});
  EXPECT_EQ(unstuff(fetch(c)), "Received: from client by mx.example.test\r\n" + content);
  c.send("QUIT\r\n");
  c.expect("221 ");
  for (int i = 0; i < 100 && store().reverse().find_pickup(token)->fetch_count < 2; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(store().reverse().find_pickup(token)->fetch_count, 2);
  EXPECT_EQ(store().reverse().stats().counters.at(store::counter::pickups_served), 2);
}

TEST_F(SourceGet, PipelinedGetsAreAnsweredInOrder) {
  settings_.reverse.trusted_peers = {*parse_network("192.0.2.7")};
  offer("Subject: one\r\n\r\n1\r\n");
  offer("Subject: two\r\n\r\n2\r\n", "dest.test", other_token);
  auto c = said_ehlo();
  c.send("GET " + token + "\r\nGET " + other_token + "\r\nGET " + token + "\r\n");
  c.expect("354 2.0.0 " + token);
  EXPECT_EQ(content_lines(c).at(1), "Subject: one");
  c.expect("250 2.0.0 " + token);
  c.expect("354 2.0.0 " + other_token);
  EXPECT_EQ(content_lines(c).at(1), "Subject: two");
  c.expect("250 2.0.0 " + other_token);
  c.expect("354 2.0.0 " + token);
}

TEST_F(SourceGet, ALargeMessageGoesOutInPiecesByteExact) {
  settings_.reverse.trusted_peers = {*parse_network("192.0.2.7")};
  std::string content = "Subject: big\r\n\r\n";
  for (int i = 0; content.size() < 3'000'000; ++i)
    content += (i % 7 == 0 ? "." : "") + std::string(70, static_cast<char>('a' + i % 26)) + "\r\n";
  offer(content);
  auto c = said_ehlo();
  EXPECT_EQ(unstuff(fetch(c)), "Received: from client by mx.example.test\r\n" + content);
}

TEST_F(SourceGet, AClientThatLeavesMidTransferDoesNotCountAsFetched) {
  settings_.reverse.trusted_peers = {*parse_network("192.0.2.7")};
  offer(std::string(5'000'000, 'x') + "\r\n");
  {
    auto c = said_ehlo();
    c.send("GET " + token + "\r\n");
    c.expect("354 2.0.0");
  }  // closed while the server is still writing
  std::this_thread::sleep_for(500ms);
  const auto pickup = store().reverse().find_pickup(token);
  EXPECT_EQ(pickup->state, store::PickupState::offered);
  EXPECT_EQ(pickup->fetch_count, 0);
}

TEST_F(SourceGet, GetNeedsEhloAndNoTransaction) {
  settings_.reverse.trusted_peers = {*parse_network("192.0.2.7")};
  offer("Subject: x\r\n\r\n");
  auto c = connect();
  c.expect("220 ");
  c.send("GET " + token + "\r\n");
  c.expect("503 5.5.1");
  c.send("HELO client.example\r\nGET " + token + "\r\n");
  c.expect("250 ");
  c.expect("503 5.5.1");
  c.send("EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nGET " + token + "\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("503 5.5.1");
  c.send("RSET\r\n");
  c.expect("250 ");
  EXPECT_FALSE(fetch(c).empty());
}

TEST_F(SourceGet, GetIsNotAnsweredOnSubmission) {
  settings_.reverse.trusted_peers = {*parse_network("192.0.2.7")};
  offer("Subject: x\r\n\r\n");
  auto c = said_ehlo(Service::submissions);
  c.send("GET " + token + "\r\n");
  c.expect("502 5.5.1");
}

TEST_F(SourceGet, UnknownExpiredAndPurgedTokensGetTheSameReply) {
  settings_.reverse.trusted_peers = {*parse_network("192.0.2.7")};
  settings_.reverse.max_unknown_tokens = 100;
  const auto expired = offer("Subject: expired\r\n\r\n", "dest.test", other_token);
  store().reverse().confirm_pickup(expired);
  store().reverse().expire_pickup(expired, std::nullopt);
  const std::string purged = "ffffffffffffffffffffffffffffffff";
  store().reverse().cancel_pickup(offer("Subject: purged\r\n\r\n", "dest.test", purged));
  auto c = said_ehlo();
  std::vector<std::string> replies;
  for (const auto& t : {token, other_token, purged}) {
    c.send("GET " + t + "\r\n");
    replies.push_back(c.reply().back());
  }
  EXPECT_EQ(replies[0].rfind("550 5.1.0 ", 0), 0u) << replies[0];
  EXPECT_EQ(replies[1], replies[0]);
  EXPECT_EQ(replies[2], replies[0]);
  c.send("GET 0123\r\n");
  c.expect("501 5.5.4");  // malformed is a syntax error, not a lookup
}

TEST_F(SourceGet, AFetchedPickupIsServedOnlyWithinTheRetention) {
  settings_.reverse.trusted_peers = {*parse_network("192.0.2.7")};
  settings_.reverse.retain_after_fetch = Seconds{0};
  const auto id = offer("Subject: x\r\n\r\n");
  store().reverse().mark_transferred(id);
  auto c = said_ehlo();
  c.send("GET " + token + "\r\n");
  c.expect("550 5.1.0");
}

// SOURCE-GET.md 3: unknown tokens are answered ever more slowly, but never
// with a refusal of the connection: a GET for a token that exists is answered
// at once, even right after many unknown ones (else a forger who announces
// made-up tokens in our name makes us block the server he sent them to).
TEST_F(SourceGet, UnknownTokensAreSlowedDownButNeverRefuseAGenuineGet) {
  settings_.reverse.trusted_peers = {*parse_network("192.0.2.0/24")};
  settings_.reverse.max_unknown_tokens = 3;
  offer(message);
  auto c = said_ehlo();
  const auto started = std::chrono::steady_clock::now();
  c.send("GET " + other_token + "\r\n");
  c.expect("550 5.1.0");
  c.send("GET " + other_token + "\r\n");
  c.expect("550 5.1.0");
  // 250 ms after the first, 500 ms after the second.
  EXPECT_GE(std::chrono::steady_clock::now() - started, 700ms);
  // At max_unknown_tokens and past it: still a 550, at the longest delay, and the session goes on.
  for (int i = 0; i < 2; ++i) {
    const auto before = std::chrono::steady_clock::now();
    c.send("GET " + other_token + "\r\n");
    c.expect("550 5.1.0");
    EXPECT_GE(std::chrono::steady_clock::now() - before, 1900ms);
  }
  // The token that exists comes at once on the same connection (still open),
  const auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(unstuff(fetch(c)), "Received: from client by mx.example.test\r\n" + message);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 200ms);
  // and on a new one from the same address.
  auto again = said_ehlo();
  fetch(again);
  // Another address starts with the shortest delay.
  auto other = said_ehlo(Service::smtp, "192.0.2.8");
  const auto other_started = std::chrono::steady_clock::now();
  other.send("GET " + other_token + "\r\n");
  other.expect("550 5.1.0");
  EXPECT_LT(std::chrono::steady_clock::now() - other_started, 1s);
}

TEST(UnknownTokenDelay, GrowsPerUnknownTokenUpToItsCap) {
  using reverse::unknown_token_delay;
  EXPECT_EQ(unknown_token_delay(1, 5), limits::unknown_token_delay);
  EXPECT_EQ(unknown_token_delay(4, 5), 4 * limits::unknown_token_delay);
  // At max_unknown_tokens and past it: the cap.
  EXPECT_EQ(unknown_token_delay(5, 5), limits::unknown_token_delay_max);
  EXPECT_EQ(unknown_token_delay(6, 5), limits::unknown_token_delay_max);
  // Never over the cap, however large max_unknown_tokens is.
  EXPECT_EQ(unknown_token_delay(100, 1000), limits::unknown_token_delay_max);
}

TEST_F(SourceGet, WithoutTrustOrResolverGetIsDeferred) {
  offer("Subject: x\r\n\r\n");
  auto c = said_ehlo();
  c.send("GET " + token + "\r\n");
  c.expect("450 4.3.0");
  EXPECT_EQ(store().reverse().find_pickup(token)->fetch_count, 0);
}

TEST_F(SourceGet, AStoreFailureAtGetIsTemporary) {
  settings_.reverse.trusted_peers = {*parse_network("192.0.2.7")};
  offer("Subject: x\r\n\r\n");
  auto c = said_ehlo();
  store().close();
  c.send("GET " + token + "\r\n");
  c.expect("450 4.3.0");
}

// ---- tokens in the log ----------------------------------------------------------------------

TEST_F(SourceGet, TheLogShowsTokensByTheirFirstEightCharactersOnly) {
  auto text = std::make_shared<std::ostringstream>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*text);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  spdlog::set_level(spdlog::level::debug);
  settings_.reverse.trusted_peers = {*parse_network("192.0.2.7")};
  offer("Subject: x\r\n\r\n", "dest.test", other_token);
  {
    auto c = said_ehlo();
    envelope(c);
    c.send("SOURCE " + token + "\r\n");
    c.expect("250 2.0.0 " + token);
    fetch(c, other_token);
    c.send("GET " + std::string(32, 'e') + "\r\nSOURCE " + token + "x\r\nQUIT\r\n");
    c.expect("550 5.1.0");
    c.expect("501 5.5.4");
    c.expect("221 ");
  }
  std::this_thread::sleep_for(100ms);  // the last lines are written after the replies
  spdlog::set_default_logger(previous);
  spdlog::set_level(spdlog::level::info);
  const std::string log = text->str();
  EXPECT_NE(log.find("SOURCE 5f0c2e8a..."), std::string::npos) << log;
  EXPECT_NE(log.find("250 2.0.0 5f0c2e8a... accepted for retrieval"), std::string::npos) << log;
  EXPECT_NE(log.find("354 2.0.0 00112233... message follows"), std::string::npos) << log;
  EXPECT_NE(log.find("GET eeeeeeee..."), std::string::npos) << log;
  EXPECT_EQ(log.find(token), std::string::npos) << log;
  EXPECT_EQ(log.find(other_token), std::string::npos) << log;
  EXPECT_EQ(log.find(std::string(32, 'e')), std::string::npos) << log;
  EXPECT_EQ(log.find(token.substr(0, 9)), std::string::npos) << log;
}

// ---- GET authorisation by DNS ---------------------------------------------------------------

class SourceGetDns : public SourceGet {
 protected:
  static void SetUpTestSuite() {
    SourceGet::SetUpTestSuite();
    binary_ = dnsmasq_path();
    if (binary_.empty()) return;
    std::string pattern = "/tmp/maild-getdns-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return;
    folder_ = pattern;
    server_ = new Dnsmasq;
    started_dns_ = server_->start(
        binary_, folder_,
        {"--local=/test/", "--mx-host=dest.test,mx1.dest.test,10",
         "--mx-host=dest.test,mx2.dest.test,20", "--host-record=mx1.dest.test,192.0.2.50",
         "--host-record=mx2.dest.test,192.0.2.51,2001:db8::51",
         "--host-record=implicit.test,192.0.2.60", "--mx-host=nullmx.test,.,0"});
  }
  static void TearDownTestSuite() {
    if (server_ != nullptr) server_->stop();
    delete server_;
    server_ = nullptr;
    std::error_code ignored;
    if (!folder_.empty()) std::filesystem::remove_all(folder_, ignored);
    SourceGet::TearDownTestSuite();
  }
  void SetUp() override {
    SourceGet::SetUp();
    if (binary_.empty()) GTEST_SKIP() << "dnsmasq is not installed (scripts/install-deps.sh test)";
    ASSERT_TRUE(started_dns_) << "dnsmasq did not start: " << (server_ ? server_->log() : "");
    config::DnsSettings dns;
    dns.servers = {Endpoint{"127.0.0.1", server_->port()}};
    dns.timeout = Seconds{2};
    dns_.emplace(dns, io().get_executor());
    resolver_ = &*dns_;
  }
  void TearDown() override {
    SourceGet::TearDown();  // the sessions and the I/O thread end first
    dns_.reset();
  }

  static inline std::string binary_;
  static inline std::filesystem::path folder_;
  static inline Dnsmasq* server_ = nullptr;
  static inline bool started_dns_ = false;
  std::optional<dns::Resolver> dns_;
};

TEST_F(SourceGetDns, AnMxHostOfARecipientDomainMayGet) {
  offer("Subject: x\r\n\r\n");
  for (const char* mx : {"192.0.2.50", "192.0.2.51", "2001:db8::51"}) {
    auto c = said_ehlo(Service::smtp, mx);
    EXPECT_FALSE(fetch(c).empty()) << mx;
  }
}

TEST_F(SourceGetDns, SeveralGetsInOneSessionAreAuthorisedOnce) {
  offer("Subject: one\r\n\r\n");
  offer("Subject: two\r\n\r\n", "dest.test", other_token);
  auto c = said_ehlo(Service::smtp, "192.0.2.50");
  EXPECT_EQ(fetch(c).at(1), "Subject: one");
  EXPECT_EQ(fetch(c, other_token).at(1), "Subject: two");
}

TEST_F(SourceGetDns, AnyOtherAddressIsRefused) {
  offer("Subject: x\r\n\r\n");
  auto c = said_ehlo(Service::smtp, "192.0.2.99");
  c.send("GET " + token + "\r\n");
  c.expect("550 5.7.1");
  EXPECT_EQ(store().reverse().find_pickup(token)->fetch_count, 0);
}

TEST_F(SourceGetDns, AnImplicitMxMayGet) {
  offer("Subject: x\r\n\r\n", "implicit.test");
  auto c = said_ehlo(Service::smtp, "192.0.2.60");
  EXPECT_FALSE(fetch(c).empty());
}

TEST_F(SourceGetDns, ANullMxDomainAuthorisesNobody) {
  offer("Subject: x\r\n\r\n", "nullmx.test");
  auto c = said_ehlo(Service::smtp, "192.0.2.50");
  c.send("GET " + token + "\r\n");
  c.expect("550 5.7.1");
}

TEST_F(SourceGetDns, OneMatchingDomainIsEnough) {
  start_world();
  store::NewPickup pickup;
  pickup.token = token;
  pickup.reverse_path = "bob@example.test";
  pickup.recipients = {{"a@nullmx.test", "nullmx.test", 0, ""},
                       {"b@nowhere.test", "nowhere.test", 0, ""},
                       {"c@dest.test", "dest.test", 0, ""}};
  pickup.content = "Subject: x\r\n\r\n";
  store().reverse().create_pickup(pickup);
  auto c = said_ehlo(Service::smtp, "192.0.2.50");
  EXPECT_FALSE(fetch(c).empty());
}

TEST_F(SourceGetDns, ADnsFailureDefers) {
  offer("Subject: x\r\n\r\n", "unreachable.example");  // outside the zone: REFUSED
  auto c = said_ehlo(Service::smtp, "192.0.2.50");
  c.send("GET " + token + "\r\n");
  c.expect("450 4.3.0");
}

// ---- the policy for unverified DATA mail ----------------------------------------------------

class Unverified : public SourceGet {
 protected:
  std::string send_data(Client& c, const std::vector<std::string>& to,
                        const std::string& from = "alice@origin.test") {
    c.send("MAIL FROM:<" + from + ">\r\n");
    c.expect("250 ");
    for (const auto& address : to) {
      c.send("RCPT TO:<" + address + ">\r\n");
      c.expect("250 ");
    }
    c.send("DATA\r\n");
    c.expect("354 ");
    c.send("Subject: " + std::to_string(++sent_) + "\r\n\r\nbody\r\n.\r\n");
    return c.reply().back();
  }
  int sent_ = 0;
};

TEST_F(Unverified, RejectRefusesAfterDataAndStoresNothing) {
  start_world();
  store().reverse().set_policy({"example.test", config::UnverifiedPolicy::reject, {}});
  auto c = said_ehlo();
  EXPECT_EQ(send_data(c, {"bob@example.test"}).rfind("550 5.7.1", 0), 0u);
  EXPECT_TRUE(stored().empty());
  c.send("NOOP\r\n");
  c.expect("250 ");
}

TEST_F(Unverified, OurOwnClientsAreNotSubjectToIt) {
  start_world();
  store().reverse().set_policy({"example.test", config::UnverifiedPolicy::reject, {}});
  auto c = said_ehlo(Service::smtp, "127.0.0.1");  // in relay_networks
  EXPECT_EQ(send_data(c, {"bob@example.test"}).rfind("250 ", 0), 0u);
  EXPECT_EQ(store().admin().get_mail(stored().at(0).id)->trace.find("Authentication-Results"),
            std::string::npos);
}

TEST_F(Unverified, TagAddsAuthenticationResultsToTheTrace) {
  start_world();
  store().reverse().set_policy({"example.test", config::UnverifiedPolicy::tag, {}});
  auto c = said_ehlo();
  EXPECT_EQ(send_data(c, {"bob@example.test"}).rfind("250 ", 0), 0u);
  const auto mail = stored();
  ASSERT_EQ(mail.size(), 1u);
  EXPECT_FALSE(mail[0].verified);
  const auto trace = store().admin().get_mail(mail[0].id)->trace;
  EXPECT_EQ(trace.rfind("Return-Path: <alice@origin.test>\r\n"
                        "Authentication-Results: mx.example.test; source-get=none\r\n"
                        "Received: from client.example",
                        0),
            0u)
      << trace;
}

TEST_F(Unverified, TheDefaultComesFromMailConfAndADomainOverridesIt) {
  settings_.reverse.unverified_policy = config::UnverifiedPolicy::tag;
  start_world();
  store().admin().add_domain("other.test");
  store().admin().add_user("dan@other.test", "$y$j9T$notarealhash");
  store().reverse().set_policy({"other.test", config::UnverifiedPolicy::accept, {}});
  auto c = said_ehlo();
  EXPECT_EQ(send_data(c, {"bob@example.test"}).rfind("250 ", 0), 0u);
  EXPECT_EQ(send_data(c, {"dan@other.test"}).rfind("250 ", 0), 0u);
  const auto mail = stored();  // newest first
  ASSERT_EQ(mail.size(), 2u);
  EXPECT_EQ(store().admin().get_mail(mail[0].id)->trace.find("source-get"), std::string::npos);
  EXPECT_NE(store().admin().get_mail(mail[1].id)->trace.find("source-get=none"), std::string::npos);
}

TEST_F(Unverified, TheStrictestDomainDecidesForTheWholeMessage) {
  start_world();
  store().admin().add_domain("other.test");
  store().admin().add_user("dan@other.test", "$y$j9T$notarealhash");
  store().reverse().set_policy({"other.test", config::UnverifiedPolicy::reject, {}});
  store().reverse().set_policy({"example.test", config::UnverifiedPolicy::tag, {}});
  auto c = said_ehlo();
  EXPECT_EQ(send_data(c, {"bob@example.test", "dan@other.test"}).rfind("550 5.7.1", 0), 0u);
  EXPECT_TRUE(stored().empty());
  EXPECT_EQ(send_data(c, {"bob@example.test"}).rfind("250 ", 0), 0u);  // tag alone
}

TEST_F(Unverified, BouncesAreTaggedWhereOtherMailIsRefused) {
  start_world();
  store().reverse().set_policy({"example.test", config::UnverifiedPolicy::reject, {}});
  auto c = said_ehlo();
  EXPECT_EQ(send_data(c, {"bob@example.test"}, "").rfind("250 ", 0), 0u);
  EXPECT_NE(store().admin().get_mail(stored().at(0).id)->trace.find("source-get=none"),
            std::string::npos);
}

TEST_F(Unverified, BdatIsUnverifiedToo) {
  start_world();
  store().reverse().set_policy({"example.test", config::UnverifiedPolicy::reject, {}});
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@origin.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT 4 LAST\r\nab\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("550 5.7.1");
  EXPECT_TRUE(stored().empty());
}

TEST_F(Unverified, APolicyChangeAppliesWithoutARestart) {
  start_world();
  auto c = said_ehlo();
  EXPECT_EQ(send_data(c, {"bob@example.test"}).rfind("250 ", 0), 0u);
  store().reverse().set_policy({"example.test", config::UnverifiedPolicy::reject, {}});
  EXPECT_EQ(send_data(c, {"bob@example.test"}).rfind("550 5.7.1", 0), 0u);
}

}  // namespace
}  // namespace maild::testing
