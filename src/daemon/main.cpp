// maild: the daemon. Reads mail.conf, binds the listeners, drops root, opens
// the store, serves until SIGTERM/SIGINT (two-phase shutdown); SIGHUP reloads
// the log level and the TLS certificate.
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "daemon/lifecycle.hpp"
#include "daemon/server.hpp"
#include "delivery/courier.hpp"
#include "delivery/queue_manager.hpp"
#include "dns/resolver.hpp"
#include "maild/config/limits.hpp"
#include "maild/config/load.hpp"
#include "maild/store/store.hpp"
#include "net/auth_throttle.hpp"
#include "net/content_budget.hpp"
#include "net/credential_cache.hpp"
#include "net/session_env.hpp"
#include "net/tls.hpp"
#include "reverse/pickup_desk.hpp"
#include "reverse/pickup_keeper.hpp"
#include "reverse/retriever.hpp"
#include "reverse/source_get.hpp"

namespace asio = boost::asio;
namespace po = boost::program_options;

namespace maild::daemon {
namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_config = 2;

spdlog::level::level_enum to_spdlog(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::trace:
      return spdlog::level::trace;
    case config::LogLevel::debug:
      return spdlog::level::debug;
    case config::LogLevel::info:
      return spdlog::level::info;
    case config::LogLevel::warn:
      return spdlog::level::warn;
    case config::LogLevel::error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

void setup_logging(const config::LogSettings& log) {
  std::shared_ptr<spdlog::logger> logger;
  if (log.file.empty())
    logger = std::make_shared<spdlog::logger>("maild",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
  else
    logger = std::make_shared<spdlog::logger>(
        "maild", std::make_shared<spdlog::sinks::basic_file_sink_mt>(log.file.string()));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  logger->set_level(to_spdlog(log.level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

struct Options {
  std::string config_file = "/etc/maild/mail.conf";
  bool check_config = false;
  bool detach = false;
};

std::optional<Options> parse_options(int argc, char** argv, int& exit_code) {
  Options options;
  po::options_description described("Usage: maild [options]\n\nOptions");
  described.add_options()(
      "config,c", po::value(&options.config_file)->default_value(options.config_file),
      "the configuration file")("check-config", po::bool_switch(&options.check_config),
                                "check the configuration file and exit (0 when valid)")(
      "daemon,d", po::bool_switch(&options.detach),
      "detach from the terminal and write [server] pid_file (default: stay in the foreground)")(
      "version", "print the version and exit")("help,h", "print this help and exit");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, described), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "maild: " << e.what() << "\n" << described;
    exit_code = exit_config;
    return std::nullopt;
  }
  if (vm.count("help")) {
    std::cout << described;
    exit_code = exit_ok;
    return std::nullopt;
  }
  if (vm.count("version")) {
    std::cout << "maild " << MAILD_VERSION << "\n";
    exit_code = exit_ok;
    return std::nullopt;
  }
  return options;
}

// Where the store is, for the log: the SQLite file, or the MySQL database and its endpoints.
std::string store_location(const config::Settings& settings) {
  if (settings.store.backend == config::StoreBackend::sqlite) return settings.store.path.string();
  std::string text = "mysql database " + settings.mysql.database + " on";
  for (const Endpoint& endpoint : settings.mysql.endpoints) text += " " + endpoint.to_string();
  return text;
}

// Opens the store; creates and migrates it when new, refuses an outdated one.
std::unique_ptr<store::Store> open_store(const config::Settings& settings) {
  auto opened = store::open_store(settings, store::OpenMode::create_if_missing);
  const int version = opened->schema_version();
  if (version == 0) {
    opened->migrate();
    spdlog::info("created the store at schema version {}", opened->schema_version());
  } else if (version < opened->latest_schema_version()) {
    throw store::StoreError(
        "the store is at schema version " + std::to_string(version) + ", this maild needs " +
        std::to_string(opened->latest_schema_version()) + ": run mailctl db migrate");
  }
  return opened;
}

// Everything a running maild holds, and the signal handling around it.
class Daemon {
 public:
  Daemon(Options options, config::Settings settings)
      : options_(std::move(options)),
        settings_(std::move(settings)),
        io_(static_cast<int>(settings_.server.threads)),
        tls_(settings_.tls.cert, settings_.tls.key),
        server_(io_, settings_, tls_),
        signals_(io_, SIGTERM, SIGINT, SIGHUP),
        grace_timer_(io_),
        smtp_auth_throttle_(settings_.smtp.max_auth_failures, limits::auth_failure_window),
        pop3_auth_throttle_(settings_.pop3.max_auth_failures, limits::auth_failure_window),
        credentials_(settings_.server.auth_cache_ttl),
        unknown_token_throttle_(settings_.reverse.max_unknown_tokens, limits::auth_failure_window) {
  }

  int run() {
    server_.bind();
    if (options_.detach) detach();
    if (options_.detach && !settings_.server.pid_file.empty())
      write_pid_file(settings_.server.pid_file);
    store::read_secrets(settings_);  // the password file may be root's alone
    drop_privileges(settings_.server.user);
    store_ = open_store(settings_);
    store_pool_.emplace(settings_.store.workers);  // threads start here, after detach()'s fork
    resolver_.emplace(settings_.dns, io_.get_executor());
    pickups_.emplace(store_->pickup_offers(), store_pool_->get_executor());
    courier_.emplace(settings_, *resolver_, io_.get_executor(), &*pickups_);
    queue_.emplace(settings_, store_->delivery_queue(), store_->policies(), store_->directory(),
                   store_pool_->get_executor(), *courier_, io_.get_executor());
    retriever_.emplace(settings_, store_->retrievals(), store_pool_->get_executor(), *resolver_,
                       io_.get_executor(), smtp_extensions_);
    pickup_keeper_.emplace(settings_, store_->pickup_keeping(), store_->directory(),
                           store_pool_->get_executor(), io_.get_executor(),
                           [this] { queue_->wake(); });
    parts_.emplace(net::ServerParts{settings_, tls_, store_->directory(), store_->mail(),
                                    store_->maildrops(), store_pool_->get_executor(),
                                    smtp_auth_throttle_, pop3_auth_throttle_, credentials_,
                                    [this] { queue_->wake(); }, &content_budget_});
    source_get_.emplace(settings_, store_->retrieval_intake(), store_->pickup_window(),
                        store_->policies(), unknown_token_throttle_, &*resolver_,
                        [this] { retriever_->wake(); });
    smtp_extensions_ = {&*source_get_};
    server_.start(*parts_, smtp_extensions_);
    queue_->start();
    retriever_->start();
    pickup_keeper_->start();
    wait_for_signal();
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < settings_.server.threads; ++i)
      threads.emplace_back([this] { io_.run(); });
    spdlog::info("maild ready: {} I/O threads, store {} ({} workers), {}", settings_.server.threads,
                 store_location(settings_), settings_.store.workers, tls_.describe());
    warn_about_certificate("");
    notify("READY=1\nSTATUS=accepting connections");
    report_ready();
    io_.run();
    for (auto& thread : threads) thread.join();
    store_pool_->join();
    store_->close();
    if (options_.detach && !settings_.server.pid_file.empty())
      remove_pid_file(settings_.server.pid_file);
    spdlog::info("maild stopped");
    return exit_ok;
  }

 private:
  void wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        reload();
        wait_for_signal();
      } else if (!stopping_) {
        stopping_ = true;
        begin_shutdown(signal);
        wait_for_signal();
      } else {
        spdlog::info("second stop signal: closing every session now");
        server_.sessions().close_all();
      }
    });
  }

  // Phase one: stop accepting, ask sessions to finish, give them the grace period.
  void begin_shutdown(int signal) {
    spdlog::info("signal {}: shutting down, {} sessions get up to {}s to finish", signal,
                 server_.sessions().size(), settings_.server.shutdown_grace.count());
    notify("STOPPING=1");
    server_.stop_accepting();
    server_.sessions().request_stop();
    queue_->stop();
    retriever_->stop();
    pickup_keeper_->stop();
    shutdown_deadline_ = std::chrono::steady_clock::now() + settings_.server.shutdown_grace;
    poll_sessions();
  }

  // Checks for the end of the sessions at a short interval until the deadline;
  // then closes what is left (phase two) and lets io_context run out.
  void poll_sessions() {
    if (server_.sessions().size() == 0 && queue_->idle() && retriever_->idle() &&
        pickup_keeper_->idle())
      return finish();
    const auto now = std::chrono::steady_clock::now();
    if (now >= shutdown_deadline_) {
      if (!forced_) {
        forced_ = true;
        spdlog::warn("grace period over: closing {} sessions", server_.sessions().size());
        server_.sessions().close_all();
        shutdown_deadline_ = now + limits::unwind_time;
      } else {
        spdlog::error("{} sessions did not end; stopping anyway", server_.sessions().size());
        return finish();
      }
    }
    grace_timer_.expires_after(std::chrono::milliseconds(20));
    grace_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) poll_sessions();
    });
  }

  void finish() {
    signals_.cancel();
    io_.stop();
  }

  void reload() {
    notify("RELOADING=1");
    try {
      auto fresh = config::load_file(options_.config_file);
      spdlog::set_level(to_spdlog(fresh.log.level));
      spdlog::info("SIGHUP: log level {}", spdlog::level::to_string_view(spdlog::get_level()));
    } catch (const config::ConfigError& e) {
      spdlog::error("SIGHUP: {} (keeping the running configuration)", e.what());
    }
    try {
      tls_.reload();
      spdlog::info("SIGHUP: certificate {}", tls_.describe());
      warn_about_certificate("SIGHUP: ");
    } catch (const std::exception& e) {
      spdlog::error("SIGHUP: {} (keeping the previous certificate)", e.what());
    }
    notify("READY=1");
  }

  void warn_about_certificate(std::string_view when) const {
    const auto warning = tls_.expiry_warning(std::chrono::system_clock::now());
    if (!warning.empty()) spdlog::warn("{}{}", when, warning);
  }

  Options options_;
  config::Settings settings_;
  asio::io_context io_;
  net::TlsContext tls_;
  Server server_;
  asio::signal_set signals_;
  asio::steady_timer grace_timer_;
  std::optional<asio::thread_pool> store_pool_;  // blocking store calls; never an I/O thread
  net::AuthThrottle smtp_auth_throttle_;
  net::AuthThrottle pop3_auth_throttle_;
  net::CredentialCache credentials_;
  net::ContentBudget content_budget_{settings_.server.content_memory.bytes};
  net::AuthThrottle unknown_token_throttle_;
  std::unique_ptr<store::Store> store_;
  std::optional<dns::Resolver> resolver_;  // before io_ in destruction: it cancels its lookups
  std::optional<reverse::StorePickupDesk> pickups_;  // SOURCE instead of DATA
  std::optional<delivery::Courier> courier_;
  std::optional<delivery::QueueManager> queue_;         // outbound delivery
  std::optional<reverse::Retriever> retriever_;         // GET for what SOURCE announced
  std::optional<reverse::PickupKeeper> pickup_keeper_;  // expiry and purge of pickups
  std::optional<net::ServerParts> parts_;
  std::optional<reverse::SourceGet> source_get_;  // SOURCE and GET in SMTP sessions
  smtp::SessionExtensions smtp_extensions_;
  bool stopping_ = false;
  bool forced_ = false;
  std::chrono::steady_clock::time_point shutdown_deadline_;
};

int run(int argc, char** argv) {
  int exit_code = exit_ok;
  auto options = parse_options(argc, argv, exit_code);
  if (!options) return exit_code;
  config::Settings settings;
  try {
    settings = config::load_file(options->config_file);
  } catch (const config::ConfigError& e) {
    std::cerr << "maild: " << e.what() << "\n";
    return exit_config;
  }
  config::resolve_machine_defaults(settings);
  if (options->check_config) {
    try {
      net::TlsContext tls(settings.tls.cert, settings.tls.key);
      const auto warning = tls.expiry_warning(std::chrono::system_clock::now());
      if (!warning.empty()) std::cerr << "maild: warning: " << warning << "\n";
    } catch (const std::exception& e) {
      std::cerr << "maild: " << options->config_file << ": " << e.what() << "\n";
      return exit_config;
    }
    std::cout << "maild: " << options->config_file << ": configuration is valid\n";
    return exit_ok;
  }
  try {
    setup_logging(settings.log);
  } catch (const std::exception& e) {
    std::cerr << "maild: log.file: " << e.what() << "\n";
    return exit_config;
  }
  const auto files = raise_file_limit();
  if (files < settings.server.max_connections + 64)
    spdlog::warn("open-files limit {} is below server.max_connections {} plus the store's needs",
                 files, settings.server.max_connections);
  try {
    Daemon daemon(std::move(*options), std::move(settings));
    return daemon.run();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return exit_failure;
  }
}

}  // namespace
}  // namespace maild::daemon

int main(int argc, char** argv) { return maild::daemon::run(argc, argv); }
