// The MariaDB server the MySQL store tests run against: the one a ctest fixture started for the
// whole run (its coordinates in the file MAILD_TEST_MARIADB names), or, when the binary runs by
// hand, one it starts itself with tests/integration/mariadb_fixture.py. Each test makes its own
// databases (maild_t...), dropped when the test binary ends.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "maild/config/settings.hpp"
#include "store/mysql/connection.hpp"

namespace maild::store::testing {

struct MariadbServer {
  std::string host;
  std::uint16_t port = 0;
  std::string user;
  std::string password;
};

// The server of this run; starts it first when needed (a GoogleTest failure if that fails).
const MariadbServer& mariadb();

// Settings for maild's store in `database` on that server ([mysql] semi_sync off: the test
// server has no standby).
config::Settings mysql_settings(const std::string& database);

// A database name no other test (or test run on this server) uses; dropped at exit.
std::string fresh_database();

// A connection as the maild user (no default database), for what a test does behind the store.
std::unique_ptr<mysql::Connection> admin_connection(const std::string& database = "");

}  // namespace maild::store::testing
