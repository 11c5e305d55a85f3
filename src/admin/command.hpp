// What every mailctl verb is given (its arguments, the opened store, the
// output) and what it may throw. Trust: arguments come from the command line
// of an administrator but are validated by each verb before the store sees them.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "maild/config/settings.hpp"
#include "maild/store/store.hpp"

namespace maild::admin {

class Output;

// Wrong words or options on the command line: exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A well-formed request that cannot be done (bad address, unknown id): exit status 1.
struct RequestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// How a verb needs the store opened before its handler runs.
enum class StoreAccess {
  existing,  // the store must exist and be migrated
  create,    // db migrate: create the store if missing
  none,      // db replicate, failover, status: the handler opens what it needs itself
};

struct Request {
  std::vector<std::string> args;                            // words after GROUP VERB
  std::map<std::string, std::string, std::less<>> options;  // defaults filled in
  Output& out;
  store::Store* store = nullptr;               // opened as the verb's StoreAccess asks
  const config::Settings* settings = nullptr;  // mail.conf, loaded and validated

  store::AdminStore& admin() const { return store->admin(); }
  const std::string& option(std::string_view name) const { return options.find(name)->second; }
};

using Handler = void (*)(Request&);

struct VerbOption {
  std::string_view name;
  std::string_view value_name;     // empty for a flag
  std::string_view default_value;  // empty: the option is optional with no default
  std::string_view help;
  bool flag = false;  // takes no value: Request::option() is "yes" when given, else ""
};

struct Verb {
  std::string_view group;
  std::string_view name;
  std::string_view synopsis;  // positional arguments as shown in help, e.g. "ADDRESS [DOMAIN]"
  std::size_t min_args = 0;
  std::size_t max_args = 0;
  std::vector<VerbOption> options;
  StoreAccess access = StoreAccess::existing;
  Handler handler = nullptr;
  std::string_view summary;
  bool hidden = false;  // left out of help (mail inject, queue inject)
};

// The global options that come before GROUP VERB.
struct GlobalOptions {
  std::string config_file;
  bool json = false;
  bool help = false;
};

// Prints help, or parses the verb's own words, opens the store as it asks and runs it.
// Returns 0; throws UsageError (exit 2) or anything else (exit 1) on errors.
int dispatch(const std::vector<Verb>& verbs, const GlobalOptions& global,
             const std::vector<std::string>& words);

// The handlers, one file per group.
void db_migrate(Request&);
void db_status(Request&);
void db_replicate(Request&);
void db_failover(Request&);
void domain_add(Request&);
void domain_del(Request&);
void domain_list(Request&);
void user_add(Request&);
void user_del(Request&);
void user_passwd(Request&);
void user_list(Request&);
void alias_add(Request&);
void alias_del(Request&);
void alias_list(Request&);
void mail_list(Request&);
void mail_show(Request&);
void mail_export(Request&);
void mail_inject(Request&);
void queue_list(Request&);
void queue_show(Request&);
void queue_retry(Request&);
void queue_delete(Request&);
void queue_bounce(Request&);
void queue_inject(Request&);

void policy_set(Request&);
void policy_list(Request&);
void policy_show(Request&);
void stats(Request&);
void retrieval_list(Request&);
void pickup_inject(Request&);

// A positive decimal number (an id, a count), or nothing.
std::optional<std::int64_t> positive_number(std::string_view text);

}  // namespace maild::admin
