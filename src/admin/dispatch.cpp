// Turns GROUP VERB [ARGS] into a handler call: verb options, mail.conf, the store.
// Trust: the command line is checked word by word; the config loader validates the file.
#include <algorithm>
#include <boost/program_options.hpp>
#include <charconv>
#include <filesystem>
#include <iostream>

#include "command.hpp"
#include "maild/config/load.hpp"
#include "output.hpp"
#include "replication.hpp"

namespace maild::admin {

namespace po = boost::program_options;

namespace {

constexpr std::string_view usage_line = "usage: mailctl [--config FILE] [--json] GROUP VERB [ARGS]";

// "group verb", or "group" for a verb that is its group alone.
std::string verb_synopsis_head(const Verb& verb) {
  return verb.name.empty() ? std::string(verb.group)
                           : std::string(verb.group) + " " + std::string(verb.name);
}

std::string verb_synopsis(const Verb& verb) {
  std::string out = verb_synopsis_head(verb);
  if (!verb.synopsis.empty()) out += " " + std::string(verb.synopsis);
  for (const VerbOption& option : verb.options) {
    out += " [--" + std::string(option.name);
    if (!option.flag) out += " " + std::string(option.value_name);
    out += "]";
  }
  return out;
}

void print_help(const std::vector<Verb>& verbs, std::string_view group) {
  std::cout
      << usage_line << "\n\n"
      << "  --config FILE  mail.conf to use (default $MAILD_CONFIG, else /etc/maild/mail.conf)\n"
      << "  --json         machine-readable output: one JSON document on stdout\n"
      << "  --help         this text; GROUP --help or GROUP VERB --help for one group or verb\n\n"
      << "commands:\n";
  // Each command's synopsis, then what it does on a line of its own: synopses vary
  // too much in length for one column.
  for (const Verb& verb : verbs) {
    if (verb.hidden || (!group.empty() && verb.group != group)) continue;
    std::cout << "  " << verb_synopsis(verb) << "\n      " << verb.summary << "\n";
  }
}

void print_verb_help(const Verb& verb) {
  std::cout << "usage: mailctl [--config FILE] [--json] " << verb_synopsis(verb) << "\n\n  "
            << verb.summary << "\n";
  std::size_t width = 0;
  for (const VerbOption& option : verb.options)
    width = std::max(width, option.name.size() + option.value_name.size());
  if (!verb.options.empty()) std::cout << "\n";
  for (const VerbOption& option : verb.options) {
    std::cout << "  --" << option.name << " " << option.value_name
              << std::string(width - option.name.size() - option.value_name.size() + 2, ' ')
              << option.help;
    if (!option.default_value.empty()) std::cout << " (default " << option.default_value << ")";
    std::cout << "\n";
  }
}

bool has_group(const std::vector<Verb>& verbs, std::string_view group) {
  for (const Verb& verb : verbs) {
    if (verb.group == group) return true;
  }
  return false;
}

std::string verbs_of(const std::vector<Verb>& verbs, std::string_view group) {
  std::string out;
  for (const Verb& verb : verbs) {
    if (verb.group != group || verb.hidden) continue;
    out += (out.empty() ? "" : ", ") + std::string(verb.name);
  }
  return out;
}

// The verb's words after GROUP VERB: its options (defaults filled in) and positional arguments.
void parse_verb_words(const Verb& verb, const std::vector<std::string>& words, Request& request) {
  po::options_description description;
  for (const VerbOption& option : verb.options) {
    if (option.flag) {
      description.add_options()(std::string(option.name).c_str(), po::bool_switch(), "");
    } else {
      description.add_options()(std::string(option.name).c_str(), po::value<std::string>(), "");
    }
  }
  description.add_options()("args", po::value<std::vector<std::string>>(), "");
  po::positional_options_description positional;
  positional.add("args", -1);
  po::variables_map values;
  // No guessing of abbreviations: a script keeps working when a verb gains an option.
  const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
  po::store(
      po::command_line_parser(words).options(description).positional(positional).style(style).run(),
      values);
  if (values.count("args") != 0) request.args = values["args"].as<std::vector<std::string>>();
  for (const VerbOption& option : verb.options) {
    const std::string name(option.name);
    if (option.flag) {
      request.options[name] = values[name].as<bool>() ? "yes" : "";
    } else if (values.count(name) != 0) {
      request.options[name] = values[name].as<std::string>();
    } else {
      request.options[name] = std::string(option.default_value);
    }
  }
  if (request.args.size() < verb.min_args || request.args.size() > verb.max_args) {
    throw UsageError("usage: mailctl " + verb_synopsis(verb));
  }
}

std::string store_location(const config::Settings& settings) {
  if (settings.store.backend == config::StoreBackend::sqlite) return settings.store.path.string();
  std::string out = "mysql database " + settings.mysql.database + " on";
  for (const Endpoint& endpoint : settings.mysql.endpoints) out += " " + endpoint.to_string();
  return out;
}

std::unique_ptr<store::Store> open_for(StoreAccess access, const config::Settings& settings) {
  if (access == StoreAccess::none) return nullptr;
  if (access == StoreAccess::create)
    return store::open_store(settings, store::OpenMode::create_if_missing);
  // Said here rather than left to the backend so that the remedy is always named.
  if (settings.store.backend == config::StoreBackend::sqlite &&
      !std::filesystem::exists(settings.store.path)) {
    throw RequestError("no store at " + store_location(settings) +
                       ": run mailctl db migrate to create it");
  }
  auto store = store::open_store(settings, store::OpenMode::existing);
  if (store->schema_version() < store->latest_schema_version()) {
    throw RequestError("the store at " + store_location(settings) +
                       " needs migration: run mailctl db migrate");
  }
  return store;
}

}  // namespace

std::unique_ptr<store::Store> open_existing_store(const config::Settings& settings) {
  return open_for(StoreAccess::existing, settings);
}

std::optional<std::int64_t> positive_number(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value <= 0) return std::nullopt;
  return value;
}

int dispatch(const std::vector<Verb>& verbs, const GlobalOptions& global,
             const std::vector<std::string>& words) {
  // "help [GROUP [VERB]]" is the same as "[GROUP [VERB]] --help".
  const bool help = global.help || (!words.empty() && words[0] == "help");
  const std::vector<std::string> command(
      words.begin() + (words.empty() || words[0] != "help" ? 0 : 1), words.end());
  if (command.empty()) {
    if (!help) throw UsageError("missing GROUP VERB (see mailctl --help)");
    print_help(verbs, {});
    return 0;
  }
  const std::string& group = command[0];
  if (group.starts_with('-'))
    throw UsageError("unknown option '" + group + "' (see mailctl --help)");
  if (!has_group(verbs, group))
    throw UsageError("unknown command group '" + group + "' (see mailctl --help)");
  // A verb without a name is its group alone (mailctl stats): every word after
  // the group is its own.
  const Verb* verb = nullptr;
  std::size_t verb_words = 2;
  for (const Verb& candidate : verbs) {
    if (candidate.group != group) continue;
    if (candidate.name.empty()) {
      verb = &candidate;
      verb_words = 1;
      break;
    }
    if (command.size() > 1 && candidate.name == command[1]) verb = &candidate;
  }
  if (help) {
    verb != nullptr ? print_verb_help(*verb) : print_help(verbs, group);
    return 0;
  }
  if (command.size() < verb_words)
    throw UsageError("missing verb: mailctl " + group + " {" + verbs_of(verbs, group) + "}");
  if (verb == nullptr) {
    throw UsageError("unknown verb '" + command[1] + "'; " + group + " has " +
                     verbs_of(verbs, group));
  }

  Output out(std::cout, global.json);
  Request request{{}, {}, out};
  try {
    parse_verb_words(
        *verb, {command.begin() + static_cast<std::ptrdiff_t>(verb_words), command.end()}, request);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see mailctl " + verb_synopsis_head(*verb) +
                     " --help)");
  }
  const config::Settings settings = config::load_file(global.config_file);
  request.settings = &settings;
  const std::unique_ptr<store::Store> store = open_for(verb->access, settings);
  request.store = store.get();
  verb->handler(request);
  std::cout.flush();
  if (store) store->close();
  return 0;
}

}  // namespace maild::admin
