// mailctl: administers maild's store from the command line. Talks to the store
// (directly, not through maild) and to mail.conf; trusts its user as an administrator.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>

#include "command.hpp"

namespace po = boost::program_options;
using maild::admin::StoreAccess;
using maild::admin::Verb;

namespace {

// Every command mailctl knows: group, verb, positional arguments (with their least and most
// count), the verb's options, how it needs the store, its handler and its line in the help.
const std::vector<Verb>& verb_table() {
  namespace a = maild::admin;
  constexpr auto existing = StoreAccess::existing;
  const maild::admin::VerbOption hash_scheme{"hash-scheme", "yescrypt|sha512-crypt", "yescrypt",
                                             "the crypt(3) method of the stored hash"};
  // clang-format off
  static const std::vector<Verb> verbs = {
      {"db", "migrate", "", 0, 0, {}, StoreAccess::create, a::db_migrate,
       "create the store if missing and apply migrations"},
      {"db", "status", "", 0, 0,
       {{"admin-user", "USER", "", "MySQL account for the endpoints (default: [mysql] user)"},
        {"admin-password-file", "FILE", "", "its password (default: [mysql] password)"}},
       StoreAccess::none, a::db_status,
       "backend, location, schema version and counts; each MySQL endpoint's role and state"},
      {"db", "replicate", "", 0, 0,
       {{"primary", "HOST:PORT", "", "the writable server (required)"},
        {"standby", "HOST:PORT", "", "the server to replicate it (required)"},
        {"admin-user", "USER", "", "MySQL account with replication rights (default: [mysql] user)"},
        {"admin-password-file", "FILE", "", "its password (default: [mysql] password)"},
        {"replication-user", "USER", "maild_repl", "the account the standby replicates as"},
        {"replication-password-file", "FILE", "", "its password (default: a new random one)"},
        {"semi-sync-timeout", "DURATION", "10s",
         "how long a commit waits for the standby before going on without it"}},
       StoreAccess::none, a::db_replicate,
       "make a standby replicate the primary (GTID, semi-synchronous AFTER_SYNC)"},
      {"db", "failover", "", 0, 0,
       {{"admin-user", "USER", "", "MySQL account with replication rights (default: [mysql] user)"},
        {"admin-password-file", "FILE", "", "its password (default: [mysql] password)"},
        {"replication-user", "USER", "maild_repl", "the account standbys replicate as"},
        {"replication-password-file", "FILE", "", "its password (default: a new random one)"},
        {"semi-sync-timeout", "DURATION", "10s", "as for db replicate, for re-attached standbys"}},
       StoreAccess::none, a::db_failover,
       "promote the most advanced standby and fence the old primary"},
      {"domain", "add", "NAME", 1, 1, {}, existing, a::domain_add, "add a local domain"},
      {"domain", "del", "NAME", 1, 1, {}, existing, a::domain_del,
       "delete a domain with its users and aliases"},
      {"domain", "list", "", 0, 0, {}, existing, a::domain_list, "list the local domains"},
      {"user", "add", "ADDRESS", 1, 1, {hash_scheme}, existing, a::user_add,
       "add a mailbox; the password is read from stdin or asked for"},
      {"user", "del", "ADDRESS", 1, 1, {}, existing, a::user_del, "delete a mailbox"},
      {"user", "passwd", "ADDRESS", 1, 1, {hash_scheme}, existing, a::user_passwd,
       "set a mailbox's password from stdin or a prompt"},
      {"user", "list", "[DOMAIN]", 0, 1, {}, existing, a::user_list, "list mailboxes"},
      {"alias", "add", "SOURCE TARGET", 2, 2, {}, existing, a::alias_add,
       "deliver mail for SOURCE (local@domain or @domain) also to TARGET"},
      {"alias", "del", "SOURCE TARGET", 2, 2, {}, existing, a::alias_del, "delete an alias"},
      {"alias", "list", "[DOMAIN]", 0, 1, {}, existing, a::alias_list, "list aliases"},
      {"mail", "list", "", 0, 0,
       {{"last", "N", "20", "how many deliveries, newest first"},
        {"mailbox", "ADDRESS", "", "only this mailbox's"}},
       existing, a::mail_list, "list the newest deliveries"},
      {"mail", "show", "ID", 1, 1, {}, existing, a::mail_show, "a delivery's metadata and message"},
      {"mail", "export", "ID", 1, 1,
       {{"format", "eml|mbox", "eml", "eml: the message as served; mbox: mboxrd"}},
       existing, a::mail_export, "write a delivery's message to stdout"},
      // Hidden: for tests and for importing a message by hand (docs/mailctl.md).
      {"mail", "inject", "", 0, 0,
       {{"mailbox", "ADDRESS", "", "the mailbox to deliver to (required)"},
        {"from", "SENDER", "", "the envelope sender (default: the null sender)"}},
       existing, a::mail_inject, "deliver a message read from stdin", true},
      {"queue", "list", "", 0, 0,
       {{"domain", "DOMAIN", "", "only messages with a recipient at DOMAIN"},
        {"status", "STATE", "",
         "queued, delivered or failed: only messages with a recipient in this state "
         "(with --domain: the same recipient)"},
        {"older-than", "AGE", "", "only messages queued longer ago than AGE (30s, 5m, 2h, 5d)"},
        {"limit", "N", "1000", "at most N messages"}},
       existing, a::queue_list, "list the outbound queue, oldest first"},
      {"queue", "show", "ID", 1, 1, {}, existing, a::queue_show,
       "a queued message's envelope and each recipient's state"},
      {"queue", "retry", "[ID]", 0, 1, {{"all", "", "", "every queued message", true}}, existing,
       a::queue_retry, "make a message's (or with --all every) queued recipients due now"},
      {"queue", "delete", "ID", 1, 1, {}, existing, a::queue_delete,
       "remove a message from the queue; nobody is told"},
      {"queue", "bounce", "ID", 1, 1, {}, existing, a::queue_bounce,
       "fail its queued recipients now; the running maild composes and sends the notice"},
      // Hidden: for tests (docs/mailctl.md).
      {"queue", "inject", "", 0, 0,
       {{"to", "ADDRESS[,ADDRESS...]", "", "the outbound recipients (required)"},
        {"from", "SENDER", "", "the envelope sender (default: the null sender)"}},
       existing, a::queue_inject, "queue a message read from stdin for outbound recipients",
       true},
      {"policy", "set", "DOMAIN", 1, 1,
       {{"unverified", "POLICY", "",
         "accept, tag, reject or default: mail for DOMAIN (ours) that came by plain DATA"},
        {"tls", "POLICY", "", "may, encrypt or default: STARTTLS for mail sent to DOMAIN"}},
       existing, a::policy_set, "set a domain's policies; default = the mail.conf value"},
      {"policy", "list", "", 0, 0, {}, existing, a::policy_list,
       "list the domains with their own policies"},
      {"policy", "show", "DOMAIN", 1, 1, {}, existing, a::policy_show,
       "a domain's policies as maild applies them"},
      {"stats", "", "", 0, 0, {}, existing, a::stats,
       "SOURCE/GET counters of every node, and what is waiting now"},
      {"retrieval", "list", "", 0, 0, {{"limit", "N", "100", "at most N retrievals"}}, existing,
       a::retrieval_list, "SOURCEs accepted for GET, newest first, with state and last problem"},
      // Hidden: for tests, until the courier offers messages by SOURCE itself.
      {"pickup", "inject", "TOKEN", 1, 1,
       {{"from", "SENDER", "", "the envelope sender (required)"},
        {"to", "ADDRESS[,ADDRESS...]", "", "the recipients at other servers (required)"}},
       existing, a::pickup_inject, "offer a message read from stdin for GET", true},
  };
  // clang-format on
  return verbs;
}

}  // namespace

int main(int argc, char** argv) {
  // The store's own warnings (e.g. semi-sync inactive) go to stderr: stdout is the result, and
  // with --json one JSON document.
  spdlog::set_default_logger(spdlog::stderr_logger_st("mailctl"));
  spdlog::set_pattern("mailctl: %l: %v");
  spdlog::set_level(spdlog::level::warn);
  maild::admin::GlobalOptions global;
  try {
    po::options_description options;
    options.add_options()("config", po::value<std::string>(&global.config_file))(
        "json", po::bool_switch(&global.json))("help,h", po::bool_switch(&global.help))(
        "version", "print the version and exit")("words", po::value<std::vector<std::string>>());
    po::positional_options_description positional;
    positional.add("words", -1);
    // The verb's own options pass through unregistered and are parsed by dispatch().
    const int style =
        po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    const po::parsed_options parsed = po::command_line_parser(argc, argv)
                                          .options(options)
                                          .positional(positional)
                                          .style(style)
                                          .allow_unregistered()
                                          .run();
    po::variables_map values;
    po::store(parsed, values);
    po::notify(values);
    if (values.count("version")) {
      std::cout << "mailctl " << MAILD_VERSION << "\n";
      return 0;
    }
    if (global.config_file.empty()) {
      const char* from_env = std::getenv("MAILD_CONFIG");
      global.config_file =
          from_env != nullptr && *from_env != '\0' ? from_env : "/etc/maild/mail.conf";
    }
    return maild::admin::dispatch(verb_table(), global,
                                  po::collect_unrecognized(parsed.options, po::include_positional));
  } catch (const maild::admin::UsageError& e) {
    std::cerr << "mailctl: " << e.what() << "\n";
    return 2;
  } catch (const po::error& e) {
    std::cerr << "mailctl: " << e.what() << " (see mailctl --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "mailctl: " << e.what() << "\n";
    return 1;
  }
}
