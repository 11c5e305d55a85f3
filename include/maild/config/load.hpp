// Reading mail.conf into Settings, and the documents generated from the key table.
// Trust: the file is the administrator's, but every line is validated; nothing
// in it is executed or used unchecked.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "maild/config/settings.hpp"

namespace maild::config {

// A problem in a config file: where it is and why.
struct ConfigError : std::runtime_error {
  ConfigError(std::string file, unsigned line, std::string key, std::string reason);

  std::string file;
  unsigned line;    // 0 when the problem is not on one line (e.g. the file cannot be read)
  std::string key;  // "section.key", or empty when the line has no key
  std::string reason;
};

// Parses text as if read from `file_name` (relative paths resolve against
// `base_dir`). Throws ConfigError on the first problem.
Settings parse(std::string_view text, const std::string& file_name,
               const std::filesystem::path& base_dir);

// Reads and parses a file. Throws ConfigError (also when it cannot be read).
Settings load_file(const std::filesystem::path& file);

// Fills in what the file left to the machine: hostname, threads.
void resolve_machine_defaults(Settings& settings);

// "section.key" of every key whose value differs between the two, in the
// order of the key table (SIGHUP names the changes that need a restart).
std::vector<std::string> changed_keys(const Settings& running, const Settings& fresh);

// The commented sample config (config/mail.conf) generated from the key table.
std::string render_sample_config();

// The key reference (docs/configuration.md's table part) generated from the key table.
std::string render_reference_markdown();

}  // namespace maild::config
