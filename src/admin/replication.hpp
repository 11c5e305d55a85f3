// What db status shares with db replicate and db failover: the administrator's account for the
// MySQL endpoints, and the endpoints table. Trust: as replication.cpp.
#pragma once

#include <vector>

#include "command.hpp"
#include "maild/store/replication.hpp"
#include "output.hpp"

namespace maild::admin {

// --admin-user and --admin-password-file, else the [mysql] user and password.
store::replication::Credentials admin_credentials(const Request& request);
std::vector<store::replication::EndpointStatus> survey_endpoints(const Request& request);
Table endpoints_table(const std::vector<store::replication::EndpointStatus>& states);

// Opens the store as mailctl's other verbs do (dispatch.cpp).
std::unique_ptr<store::Store> open_existing_store(const config::Settings& settings);

}  // namespace maild::admin
