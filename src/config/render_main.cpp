// maild-config-render: prints the sample mail.conf or the Markdown key reference to stdout.
// Trust: takes one word on the command line; reads nothing else.
#include <cstdlib>
#include <iostream>
#include <string_view>

#include "maild/config/load.hpp"

int main(int argc, char** argv) {
  const std::string_view what = argc == 2 ? std::string_view(argv[1]) : std::string_view();
  if (what == "sample") {
    std::cout << maild::config::render_sample_config();
  } else if (what == "reference") {
    std::cout << maild::config::render_reference_markdown();
  } else {
    std::cerr << "usage: maild-config-render sample|reference\n";
    return 2;
  }
  std::cout.flush();
  // A full disk or closed pipe must not leave a truncated file that looks complete.
  return std::cout ? EXIT_SUCCESS : EXIT_FAILURE;
}
