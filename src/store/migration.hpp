// One schema migration as embedded in the binary at build time (see embed_migrations.cmake).
// Trust: the SQL is ours, compiled in from sql/<backend>/NNNN_description.sql.
#pragma once

#include <span>
#include <string_view>

namespace maild::store {

struct Migration {
  int version;            // NNNN from the file name; versions run 1, 2, 3, ... without gaps
  std::string_view name;  // the file name's description part
  std::string_view sql;
};

namespace sqlite {
// Generated from sql/sqlite/*.sql, in version order.
std::span<const Migration> embedded_migrations();
}  // namespace sqlite

namespace mysql {
// Generated from sql/mysql/*.sql, in version order.
std::span<const Migration> embedded_migrations();
}  // namespace mysql

}  // namespace maild::store
