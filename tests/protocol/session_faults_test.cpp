// SMTP and POP3 sessions whose connection fails at every I/O step in turn
// (net::FaultyStream): a whole dialogue is run once to count its reads and
// writes, then once more per step with that step failing. Each time the session
// must end by itself, the store must hold the whole message or nothing, and a
// POP3 deletion must wait for QUIT with the maildrop free again afterwards.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <future>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "maild/core/base64.hpp"
#include "net/faulty_stream.hpp"
#include "pop3/session.hpp"
#include "session_fixture.hpp"
#include "smtp/session.hpp"

namespace maild::testing {
namespace {

using net::FaultyStream;
using net::Service;

// A session whose connection failed must be over well within this.
constexpr std::chrono::seconds session_end_limit{5};

// One exchange of the scripted client.
struct Exchange {
  enum class Kind {
    reply,      // sends `send` (if any), then reads a reply that starts with `expect`
    lines,      // the same, then a POP3 multi-line body up to its "."
    handshake,  // a TLS handshake as the client
  };
  std::string send;
  std::string expect;
  Kind kind = Kind::reply;
};

Exchange handshake() { return {{}, {}, Exchange::Kind::handshake}; }

// What one run of a script did.
struct Outcome {
  std::size_t steps = 0;     // I/O steps the session started
  bool failed = false;       // the step to fail was reached
  std::size_t answered = 0;  // exchanges completed, in order
  bool tls_closed = false;   // after the last exchange, the server answered close_notify
};

// A TLS session's last I/O steps come after the last reply: the server's
// close_notify and the read of the client's.
constexpr std::size_t tls_closing_steps = 2;

std::string auth_plain(const std::string& user) {
  return "AUTH PLAIN " +
         base64_encode(std::string(1, '\0') + user + std::string(1, '\0') + "secret") + "\r\n";
}

// Message content of a few kilobytes (each client write stays one TLS record,
// so the session's reads do not depend on timing); one line starts with a dot.
std::string content(const std::string& subject) {
  std::string text = "Subject: " + subject + "\r\n\r\n";
  for (int i = 0; i < 40; ++i) text += "line " + std::to_string(i) + " of the fault test body\r\n";
  text += ".a line that starts with a dot\r\nthe end\r\n";
  return text;
}

// n with three digits, so that every run's message has the same size.
std::string numbered(std::size_t n) {
  auto digits = std::to_string(n);
  return std::string(3 - std::min<std::size_t>(3, digits.size()), '0') + digits;
}

std::string dot_stuffed(const std::string& text) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find("\r\n", start) + 2;
    if (text[start] == '.') out += '.';
    out.append(text, start, end - start);
    start = end;
  }
  return out;
}

class SessionFaults : public SessionFixture {
 protected:
  void SetUp() override {
    SessionFixture::SetUp();
    start_world();
  }

  // Runs `script` against a new session of `serve` whose step `fail_at` fails (0: none).
  template <class Serve>
  Outcome run(Serve serve, Service service, std::size_t fail_at,
              const std::vector<Exchange>& script) {
    LocalSocket server_end(new_strand());
    LocalSocket client_end(clients_);
    asio::local::connect_pair(server_end, client_end);
    auto server = std::make_shared<FaultyStream>(std::move(server_end), fail_at);
    auto ended = std::make_shared<std::promise<std::exception_ptr>>();
    auto session_end = ended->get_future();
    const auto control = spawn(server, serve, service, "127.0.0.1",
                               [ended](std::exception_ptr e) { ended->set_value(e); });

    Outcome outcome;
    {
      Client client(std::move(client_end));
      outcome.answered = talk(client, script);
      if (outcome.answered == script.size() && client.tls_active())
        outcome.tls_closed = client.close_tls();
      // The session ends by itself, while the client still holds its end open.
      if (session_end.wait_for(session_end_limit) != std::future_status::ready) {
        ADD_FAILURE() << "the session did not end by itself";
        asio::post(control->executor, [control] {
          if (control->interrupt) control->interrupt(true);
        });
      }
    }
    if (session_end.wait_for(session_end_limit) != std::future_status::ready) {
      ADD_FAILURE() << "the session did not end even when closed";
      return outcome;
    }
    if (const auto e = session_end.get()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& what) {
        ADD_FAILURE() << "the session threw: " << what.what();
      }
    }
    // The coroutine frame holding the session's copy goes right after its completion.
    const auto limit = std::chrono::steady_clock::now() + session_end_limit;
    while (server.use_count() > 1 && std::chrono::steady_clock::now() < limit)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(server.use_count(), 1) << "the session's frame outlived it";
    outcome.steps = server->steps();
    outcome.failed = server->failed();
    return outcome;
  }

  // Plays the script until a reply does not come; returns how many exchanges completed.
  static std::size_t talk(Client& client, const std::vector<Exchange>& script) {
    std::size_t done = 0;
    try {
      for (const auto& exchange : script) {
        if (exchange.kind == Exchange::Kind::handshake) {
          // TLS 1.2: the client's handshake ends only after the server's last
          // handshake write, so no read of the session takes the client's
          // Finished and its next command together; every run takes the same steps.
          client.start_tls(TLS1_2_VERSION);
          ++done;
          continue;
        }
        if (!exchange.send.empty()) client.send(exchange.send);
        const auto last = client.reply().back();
        if (last.empty() && client.closed()) return done;
        if (last.rfind(exchange.expect, 0) != 0) {
          ADD_FAILURE() << "expected " << exchange.expect << ", got " << last;
          return done;
        }
        if (exchange.kind == Exchange::Kind::lines) {
          for (auto line = client.line(); line != "."; line = client.line())
            if (line.empty() && client.closed()) return done;
        }
        ++done;
      }
    } catch (const std::exception&) {
      // The connection went away under a write or the handshake.
    }
    return done;
  }

  static void report(const std::string& name, std::size_t steps) {
    std::cout << "[ faults   ] " << name << ": failed each of " << steps << " I/O steps\n";
  }

  asio::io_context clients_;
};

// ---- SMTP: submission with STARTTLS and AUTH, then one message ----

class SmtpFaults : public SessionFaults {
 protected:
  // Greeting, EHLO, STARTTLS, EHLO, AUTH PLAIN, MAIL, RCPT, then `message`
  // (ending in the exchange that stores it), then QUIT.
  static std::vector<Exchange> script(const std::vector<Exchange>& message) {
    std::vector<Exchange> all{{"", "220 "},
                              {"EHLO client.example\r\n", "250 "},
                              {"STARTTLS\r\n", "220 "},
                              handshake(),
                              {"EHLO client.example\r\n", "250 "},
                              {auth_plain("bob@example.test"), "235 "},
                              {"MAIL FROM:<bob@example.test>\r\n", "250 "},
                              {"RCPT TO:<carol@example.test>\r\n", "250 "}};
    all.insert(all.end(), message.begin(), message.end());
    all.push_back({"QUIT\r\n", "221 "});
    return all;
  }

  std::set<store::DeliveryId> carol_mail() {
    std::set<store::DeliveryId> ids;
    for (const auto& mail : store().admin().list_mail(0, "carol@example.test")) ids.insert(mail.id);
    return ids;
  }

  // Runs the script once whole (n = 0), then once per I/O step n with that
  // step failing. message(text) gives the exchanges that send text, the last
  // of them the one that stores it. Each run sends a message of its own (the
  // store takes the same message to the same mailbox only once).
  template <class Message>
  void fail_every_step(const std::string& name, Message message) {
    std::size_t steps = 0;
    for (std::size_t n = 0; n <= steps; ++n) {
      SCOPED_TRACE(name + ": failing I/O step " + std::to_string(n) + " of " +
                   std::to_string(steps));
      const auto text = content(name + " " + numbered(n));
      const auto exchanges = script(message(text));
      const auto before = carol_mail();
      const auto outcome = run(&smtp::serve<FaultyStream>, Service::submission, n, exchanges);
      std::vector<store::DeliveryId> added;
      for (const auto id : carol_mail())
        if (!before.contains(id)) added.push_back(id);
      ASSERT_LE(added.size(), 1u);
      if (!added.empty()) {
        const auto detail = store().admin().get_mail(added[0]);
        ASSERT_TRUE(detail);
        EXPECT_EQ(detail->content, text);  // never a part of it
      }
      // A 250 for the message (answered past its last exchange) means it is stored.
      if (outcome.answered >= exchanges.size() - 1) {
        EXPECT_EQ(added.size(), 1u);
      }
      if (n == 0) {
        ASSERT_EQ(outcome.answered, exchanges.size());
        EXPECT_TRUE(outcome.tls_closed) << "no close_notify after the last reply";
        steps = outcome.steps;
        ASSERT_GT(steps, exchanges.size());
      } else {
        EXPECT_TRUE(outcome.failed) << "the session took only " << outcome.steps << " steps";
        if (n <= steps - tls_closing_steps) {
          EXPECT_LT(outcome.answered, exchanges.size());
        }
      }
      if (HasFatalFailure()) return;
    }
    report(name, steps);
  }
};

TEST_F(SmtpFaults, SubmissionWithBdatChunksSurvivesAFailureAtEveryStep) {
  fail_every_step("smtp submission, BDAT", [](const std::string& text) {
    const auto first = text.substr(0, 700);
    const auto last = text.substr(700);
    return std::vector<Exchange>{
        {"BDAT " + std::to_string(first.size()) + "\r\n" + first, "250 "},
        {"BDAT " + std::to_string(last.size()) + " LAST\r\n" + last, "250 2.0.0 OK"}};
  });
}

TEST_F(SmtpFaults, SubmissionWithDataSurvivesAFailureAtEveryStep) {
  fail_every_step("smtp submission, DATA", [](const std::string& text) {
    return std::vector<Exchange>{{"DATA\r\n", "354 "},
                                 {dot_stuffed(text) + ".\r\n", "250 2.0.0 OK"}};
  });
}

// ---- POP3: login, the listings, RETR and DELE, QUIT ----

class Pop3Faults : public SessionFaults {
 protected:
  // After the greeting and login: STAT, LIST, UIDL, RETR 1, DELE 1, QUIT.
  static std::vector<Exchange> script(std::vector<Exchange> opening) {
    const std::vector<Exchange> rest{{"STAT\r\n", "+OK 2 "},
                                     {"LIST\r\n", "+OK", Exchange::Kind::lines},
                                     {"UIDL\r\n", "+OK", Exchange::Kind::lines},
                                     {"RETR 1\r\n", "+OK", Exchange::Kind::lines},
                                     {"DELE 1\r\n", "+OK"},
                                     {"QUIT\r\n", "+OK"}};
    opening.insert(opening.end(), rest.begin(), rest.end());
    return opening;
  }

  store::MailboxId bob() { return store().directory().account("bob@example.test")->mailbox; }

  std::vector<store::DeliveryId> maildrop() {
    std::vector<store::DeliveryId> ids;
    for (const auto& entry : store().maildrops().list(bob())) ids.push_back(entry.id);
    return ids;
  }

  // Bob's maildrop made exactly two messages again, new ones (the store takes
  // the same message to the same mailbox only once); returns their ids, oldest first.
  std::vector<store::DeliveryId> two_messages(std::size_t n) {
    auto& drops = store().maildrops();
    EXPECT_TRUE(drops.lock(bob(), "test", std::chrono::seconds(60)));
    drops.finish(bob(), "test", {}, maildrop());
    for (const auto* which : {"first", "second"}) {
      store::NewMessage message;
      message.reverse_path = "alice@origin.test";
      message.mailboxes = {bob()};
      message.trace = "Return-Path: <alice@origin.test>\r\n";
      message.content = content(std::string(which) + " " + numbered(n));
      store().mail().deliver(message);
    }
    return maildrop();
  }

  // A plain session can log in: the faulted one left the maildrop free.
  void log_in_again() {
    auto client = connect(&pop3::serve<LocalSocket>, Service::pop3);
    const std::vector<Exchange> login{{"", "+OK"},
                                      {"USER bob@example.test\r\n", "+OK"},
                                      {"PASS secret\r\n", "+OK"},
                                      {"QUIT\r\n", "+OK"}};
    EXPECT_EQ(talk(client, login), login.size()) << "the maildrop is still locked";
  }

  // Runs the script once whole (n = 0), then once per I/O step n with that step failing.
  void fail_every_step(const std::string& name, Service service,
                       const std::vector<Exchange>& exchanges) {
    std::size_t steps = 0;
    for (std::size_t n = 0; n <= steps; ++n) {
      SCOPED_TRACE(name + ": failing I/O step " + std::to_string(n) + " of " +
                   std::to_string(steps));
      const auto ids = two_messages(n);
      ASSERT_EQ(ids.size(), 2u);
      const auto outcome = run(&pop3::serve<FaultyStream>, service, n, exchanges);
      if (n == 0) {
        ASSERT_EQ(outcome.answered, exchanges.size());
        EXPECT_TRUE(outcome.tls_closed) << "no close_notify after the last reply";
        steps = outcome.steps;
        ASSERT_GT(steps, exchanges.size());
      } else {
        EXPECT_TRUE(outcome.failed) << "the session took only " << outcome.steps << " steps";
        if (n <= steps - tls_closing_steps) {
          EXPECT_LT(outcome.answered, exchanges.size());
        }
      }
      // The last steps write QUIT's +OK, after UPDATE, and close TLS; every
      // earlier one comes before the session has read QUIT.
      const bool quit_read = n == 0 || n >= steps - tls_closing_steps;
      const auto kept = quit_read ? std::vector<store::DeliveryId>{ids[1]} : ids;
      EXPECT_EQ(maildrop(), kept) << (quit_read ? "QUIT not applied" : "deleted before QUIT");
      log_in_again();
      if (HasFatalFailure()) return;
    }
    report(name, steps);
  }
};

TEST_F(Pop3Faults, StlsAndUserPassSurviveAFailureAtEveryStep) {
  fail_every_step("pop3 STLS, USER/PASS", Service::pop3,
                  script({{"", "+OK"},
                          {"STLS\r\n", "+OK"},
                          handshake(),
                          {"USER bob@example.test\r\n", "+OK"},
                          {"PASS secret\r\n", "+OK"}}));
}

TEST_F(Pop3Faults, ImplicitTlsAndAuthPlainSurviveAFailureAtEveryStep) {
  fail_every_step("pop3s, AUTH PLAIN", Service::pop3s,
                  script({handshake(), {"", "+OK"}, {auth_plain("bob@example.test"), "+OK"}}));
}

}  // namespace
}  // namespace maild::testing
