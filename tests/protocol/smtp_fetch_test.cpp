// ClientSession::fetch(), GET as SOURCE-GET.md 3 frames it, against a
// scripted origin on loopback TCP: the content byte-exact after unstuffing,
// every kind of failure classified as the retrieval worker needs it.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "scripted_peer.hpp"
#include "smtp/client.hpp"

namespace maild::smtp {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace std::string_literals;
using testing::PeerConnection;
using testing::quit;
using testing::ScriptedPeer;
using Kind = Fetched::Kind;

const std::string token = "5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a";

// What the origin stored, and what goes on the wire for it.
const std::string content =
    "Subject: dots\r\n"
    "\r\n"
    ".one dot\r\n"
    "..\r\n"
    "a bare\nLF and a bare\rCR inside\r\n"
    "\n.\nnot the end\r\n"
    "end\r\n";
const std::string stuffed =
    "Subject: dots\r\n"
    "\r\n"
    "..one dot\r\n"
    "...\r\n"
    "a bare\nLF and a bare\rCR inside\r\n"
    "\n.\nnot the end\r\n"
    "end\r\n"
    ".\r\n";

// The origin's greeting and EHLO, with SOURCE listed (scripted_peer.hpp).
void greet(PeerConnection& peer) { testing::greet(peer, {"SOURCE"}); }

struct Fetches {
  std::vector<Fetched> fetched;
  bool usable = false;
  bool source = false;
};

class SmtpFetchTest : public ::testing::Test {
 protected:
  void SetUp() override { peer_.emplace("127.0.0.1"); }
  void TearDown() override { peer_->finish(); }

  // Opens a session to the peer and fetches each token in turn, then QUIT.
  Fetches fetch(std::vector<std::string> tokens, DataLimits limits) {
    auto task = [&]() -> asio::awaitable<Fetches> {
      const auto executor = co_await asio::this_coro::executor;
      asio::ip::tcp::socket socket(executor);
      const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), peer_->port());
      co_await socket.async_connect(endpoint, asio::use_awaitable);
      ClientOptions options;
      options.helo_name = "client.example.test";
      options.server_name = "mx.origin.test";
      options.remote_host = "mx.origin.test[127.0.0.1]";
      options.timeouts = timeouts_;
      Fetches run;
      ClientSession session(socket, options, std::make_shared<net::SessionControl>(),
                            net::SessionLog("T1"));
      const bool opened = co_await session.open();
      EXPECT_TRUE(opened);
      run.source = session.extensions().source;
      for (const auto& t : tokens) {
        auto one = co_await session.fetch(t, limits);
        run.fetched.push_back(std::move(one));
      }
      run.usable = session.usable();
      co_await session.quit();
      co_return run;
    };
    auto result = asio::co_spawn(io_, task(), asio::use_future);
    io_.run();
    return result.get();
  }

  static DataLimits limits(std::uint64_t size = 1 << 20,
                           BareNewline bare = BareNewline::normalize) {
    return DataLimits{ByteSize{size}, text_line_max, bare};
  }

  std::optional<ScriptedPeer> peer_;
  asio::io_context io_;
  ClientTimeouts timeouts_;
};

TEST_F(SmtpFetchTest, ContentIsUnstuffedByteExactAndBareNewlinesNeverEndIt) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer);
    peer.expect("GET " + token + "\r\n");
    peer.say("354 2.0.0 " + token + " message follows\r\n");
    peer.say(stuffed);
    peer.say("250 2.0.0 " + token + " transferred\r\n");
    peer.expect("GET 00112233445566778899aabbccddeeff\r\n");
    peer.say("354 2.0.0 go\r\n.\r\n250 2.0.0 transferred\r\n");  // an empty message, one write
    quit(peer);
  }});
  const auto run = fetch({token, "00112233445566778899aabbccddeeff"}, limits());
  ASSERT_EQ(run.fetched.size(), 2u);
  EXPECT_TRUE(run.source);
  EXPECT_EQ(run.fetched[0].kind, Kind::content) << run.fetched[0].reply;
  // Bare CR and LF are stored as line ends (normalize), and ".\n" inside is text.
  EXPECT_EQ(run.fetched[0].content,
            "Subject: dots\r\n\r\n.one dot\r\n..\r\na bare\r\nLF and a bare\r\nCR inside\r\n"
            "\r\n.\r\nnot the end\r\nend\r\n");
  EXPECT_EQ(run.fetched[1].kind, Kind::content);
  EXPECT_EQ(run.fetched[1].content, "");
  EXPECT_TRUE(run.usable);
}

TEST_F(SmtpFetchTest, CleanContentIsExactlyWhatTheOriginStored) {
  const std::string clean = "Subject: x\r\n\r\n.lead\r\n..\r\n.\r\nlast\r\n";
  peer_->play({[](PeerConnection& peer) {
    greet(peer);
    peer.expect("GET " + token + "\r\n");
    peer.say("354 2.0.0 follows\r\nSubject: x\r\n\r\n..lead\r\n...\r\n..\r\nlast\r\n.\r\n");
    peer.say("250 2.0.0 transferred\r\n");
    quit(peer);
  }});
  const auto run = fetch({token}, limits(1 << 20, BareNewline::reject));
  ASSERT_EQ(run.fetched.size(), 1u);
  EXPECT_EQ(run.fetched[0].kind, Kind::content) << run.fetched[0].reply;
  EXPECT_EQ(run.fetched[0].content, clean);
}

TEST_F(SmtpFetchTest, UnknownTokenIsPermanentAndTheSessionGoesOn) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer);
    peer.expect("GET " + token + "\r\n");
    peer.say("550 5.1.0 unknown token\r\n");
    peer.expect("GET " + token + "\r\n");
    peer.say("550 5.7.1 you are not authorised to fetch this message\r\n");
    peer.expect("GET " + token + "\r\n");
    peer.say("450 4.3.0 temporarily unavailable, try again later\r\n");
    quit(peer);
  }});
  const auto run = fetch({token, token, token}, limits());
  ASSERT_EQ(run.fetched.size(), 3u);
  EXPECT_EQ(run.fetched[0].kind, Kind::permanent);
  EXPECT_EQ(run.fetched[0].reply, "550 5.1.0 unknown token");
  EXPECT_EQ(run.fetched[1].kind, Kind::permanent);
  EXPECT_EQ(run.fetched[1].reply, "550 5.7.1 you are not authorised to fetch this message");
  EXPECT_EQ(run.fetched[2].kind, Kind::temporary);
  EXPECT_EQ(run.fetched[2].reply, "450 4.3.0 temporarily unavailable, try again later");
  EXPECT_TRUE(run.usable);
}

TEST_F(SmtpFetchTest, TokensInRepliesAreNotRepeatedWhole) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer);
    peer.expect("GET " + token + "\r\n");
    peer.say("550 5.1.0 " + token + " unknown\r\n");
    quit(peer);
  }});
  const auto run = fetch({token}, limits());
  ASSERT_EQ(run.fetched.size(), 1u);
  EXPECT_EQ(run.fetched[0].reply, "550 5.1.0 5f0c2e8a... unknown");
}

TEST_F(SmtpFetchTest, DropInTheMiddleOfTheContentIsTemporary) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer);
    peer.expect("GET " + token + "\r\n");
    peer.say("354 2.0.0 follows\r\nSubject: x\r\n\r\nhalf a mess");
    peer.close();
  }});
  const auto run = fetch({token}, limits());
  ASSERT_EQ(run.fetched.size(), 1u);
  EXPECT_EQ(run.fetched[0].kind, Kind::temporary);
  EXPECT_TRUE(run.fetched[0].reply.starts_with("451 4.4.2 lost connection with mx.origin.test"))
      << run.fetched[0].reply;
  EXPECT_FALSE(run.usable);
}

TEST_F(SmtpFetchTest, DropBeforeTheFinalReplyIsTemporary) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer);
    peer.expect("GET " + token + "\r\n");
    peer.say("354 2.0.0 follows\r\nSubject: x\r\n\r\nall\r\n.\r\n");
    peer.close();
  }});
  const auto run = fetch({token}, limits());
  ASSERT_EQ(run.fetched.size(), 1u);
  EXPECT_EQ(run.fetched[0].kind, Kind::temporary) << run.fetched[0].reply;
  EXPECT_FALSE(run.usable);
}

TEST_F(SmtpFetchTest, ContentOverTheLimitIsAbortedAsPermanent) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer);
    peer.expect("GET " + token + "\r\n");
    peer.say("354 2.0.0 follows\r\n" + std::string(50, 'x') + "\r\n" + std::string(50, 'y') +
             "\r\n");
    peer.expect_closed();  // no QUIT: the dialogue is lost after an abort
  }});
  const auto run = fetch({token, token}, limits(60));
  ASSERT_EQ(run.fetched.size(), 2u);
  EXPECT_EQ(run.fetched[0].kind, Kind::permanent);
  EXPECT_TRUE(run.fetched[0].reply.starts_with("552 5.3.4 ")) << run.fetched[0].reply;
  EXPECT_EQ(run.fetched[1].kind, Kind::temporary);  // nothing sent on a session given up
  EXPECT_FALSE(run.usable);
}

TEST_F(SmtpFetchTest, RefusedContentIsReadToItsEndAndPermanent) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer);
    peer.expect("GET " + token + "\r\n");
    peer.say("354 2.0.0 follows\r\nnul \0 here\r\n.\r\n250 2.0.0 transferred\r\n"s);
    peer.expect("GET " + token + "\r\n");
    peer.say("354 2.0.0 follows\r\nbare\nline\r\n.\r\n250 2.0.0 transferred\r\n");
    quit(peer);
  }});
  const auto run = fetch({token, token}, limits(1 << 20, BareNewline::reject));
  ASSERT_EQ(run.fetched.size(), 2u);
  EXPECT_EQ(run.fetched[0].kind, Kind::permanent);
  EXPECT_EQ(run.fetched[0].reply, "550 5.6.0 message contains a NUL character");
  EXPECT_EQ(run.fetched[1].kind, Kind::permanent);
  EXPECT_EQ(run.fetched[1].reply, "550 5.5.2 message contains a bare CR or LF");
  EXPECT_TRUE(run.usable);
}

TEST_F(SmtpFetchTest, SilenceAfterGetTimesOut) {
  timeouts_.data = 1s;
  peer_->play({[](PeerConnection& peer) {
    greet(peer);
    peer.expect("GET " + token + "\r\n");
    peer.expect_closed();  // says nothing; the client gives up and closes
  }});
  const auto started = std::chrono::steady_clock::now();
  const auto run = fetch({token}, limits());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  ASSERT_EQ(run.fetched.size(), 1u);
  EXPECT_EQ(run.fetched[0].kind, Kind::temporary);
  EXPECT_TRUE(run.fetched[0].reply.starts_with("451 4.4.2 timeout after 1s"))
      << run.fetched[0].reply;
}

TEST_F(SmtpFetchTest, ContentThatStallsTimesOut) {
  timeouts_.data_block = 1s;
  peer_->play({[](PeerConnection& peer) {
    greet(peer);
    peer.expect("GET " + token + "\r\n");
    peer.say("354 2.0.0 follows\r\nSubject: slow\r\n");
    peer.expect_closed();
  }});
  const auto run = fetch({token}, limits());
  ASSERT_EQ(run.fetched.size(), 1u);
  EXPECT_EQ(run.fetched[0].kind, Kind::temporary);
  EXPECT_TRUE(run.fetched[0].reply.starts_with("451 4.4.2 timeout")) << run.fetched[0].reply;
}

}  // namespace
}  // namespace maild::smtp
