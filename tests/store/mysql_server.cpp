// The test MariaDB server's coordinates, and databases made and dropped per test binary.
#include "mysql_server.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace maild::store::testing {
namespace {

// The value of "key" in the fixture's flat JSON object: a string without escapes, or a number.
std::string json_value(const std::string& text, const std::string& key) {
  const auto at = text.find("\"" + key + "\"");
  if (at == std::string::npos) throw std::runtime_error("no " + key + " in the MariaDB state");
  auto start = text.find_first_not_of(" :", at + key.size() + 2);
  if (text[start] == '"') {
    const auto end = text.find('"', start + 1);
    return text.substr(start + 1, end - start - 1);
  }
  const auto end = text.find_first_of(",}", start);
  return text.substr(start, end - start);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A server this binary started itself (run by hand, outside ctest): stopped at exit.
std::filesystem::path own_state;

void stop_own_server() {
  if (own_state.empty()) return;
  const std::string command = "python3 '" MAILD_SOURCE_DIR
                              "/tests/integration/mariadb_fixture.py' stop '" +
                              own_state.string() + "' >/dev/null";
  if (std::system(command.c_str()) != 0) std::cerr << "could not stop " << own_state << "\n";
}

MariadbServer load() {
  std::filesystem::path state;
  if (const char* named = std::getenv("MAILD_TEST_MARIADB"); named != nullptr && *named != 0) {
    state = named;
  } else {
    own_state = std::filesystem::temp_directory_path() /
                ("maild-mariadb-" + std::to_string(getpid()) + ".json");
    const std::string command = "cd '" MAILD_SOURCE_DIR
                                "/tests/integration' && python3 "
                                "mariadb_fixture.py start '" +
                                own_state.string() + "'";
    if (std::system(command.c_str()) != 0) {
      throw std::runtime_error("could not start a MariaDB server with: " + command);
    }
    std::atexit(stop_own_server);
    state = own_state;
  }
  const std::string text = read_file(state);
  MariadbServer server;
  server.host = json_value(text, "host");
  server.port = static_cast<std::uint16_t>(std::stoi(json_value(text, "port")));
  server.user = json_value(text, "user");
  server.password = json_value(text, "password");
  return server;
}

std::mutex databases_mutex;
std::vector<std::string> databases;  // made by this process, dropped at the end

// Drops this binary's databases once every test ran (the server is shared by the whole run).
class DropDatabases : public ::testing::Environment {
 public:
  void TearDown() override {
    std::lock_guard lock(databases_mutex);
    if (databases.empty()) return;
    try {
      auto connection = admin_connection();
      for (const auto& name : databases) connection->exec("DROP DATABASE IF EXISTS `" + name + "`");
    } catch (const std::exception& error) {
      std::cerr << "could not drop the test databases: " << error.what() << "\n";
    }
    databases.clear();
  }
};

[[maybe_unused]] ::testing::Environment* const drop_databases =
    ::testing::AddGlobalTestEnvironment(new DropDatabases);

}  // namespace

const MariadbServer& mariadb() {
  static const MariadbServer server = load();
  return server;
}

namespace {

pid_t state_owner = 0;

// maild's state folder ([store] path's) for this process, where it keeps its GTID position;
// removed when the process that made it exits (not a forked child).
std::filesystem::path state_folder() {
  static const std::filesystem::path folder = [] {
    state_owner = getpid();
    auto made = std::filesystem::temp_directory_path() /
                ("maild-store-state-" + std::to_string(state_owner));
    std::filesystem::create_directories(made);
    std::atexit([] {
      std::error_code ignored;
      if (getpid() == state_owner) std::filesystem::remove_all(state_folder(), ignored);
    });
    return made;
  }();
  return folder;
}

}  // namespace

config::Settings mysql_settings(const std::string& database) {
  const MariadbServer& server = mariadb();
  config::Settings settings;
  settings.store.backend = config::StoreBackend::mysql;
  settings.store.path = state_folder() / "mail.db";
  settings.store.workers = 4;
  settings.mysql.endpoints = {{server.host, server.port}};
  settings.mysql.user = server.user;
  settings.mysql.password = server.password;
  settings.mysql.database = database;
  settings.mysql.semi_sync = false;
  return settings;
}

std::string fresh_database() {
  static std::mutex mutex;
  static std::mt19937_64 random{std::random_device{}()};
  std::string name;
  {
    std::lock_guard lock(mutex);
    std::ostringstream hex;
    hex << std::hex << random();
    name = "maild_t" + hex.str();
  }
  std::lock_guard lock(databases_mutex);
  databases.push_back(name);
  return name;
}

std::unique_ptr<mysql::Connection> admin_connection(const std::string& database) {
  const MariadbServer& server = mariadb();
  mysql::ConnectionSettings settings;
  settings.user = server.user;
  settings.password = server.password;
  settings.database = database;
  return std::make_unique<mysql::Connection>(Endpoint{server.host, server.port}, settings,
                                             !database.empty());
}

}  // namespace maild::store::testing
