// config/mail.conf and docs/configuration.md's reference must be what the key table renders today.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "maild/config/load.hpp"

namespace maild::config {
namespace {

// tests/unit/<this file> -> the project root.
const std::filesystem::path project_root =
    std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();

constexpr std::string_view begin_marker = "<!-- BEGIN GENERATED REFERENCE -->\n";
constexpr std::string_view end_marker = "<!-- END GENERATED REFERENCE -->";
constexpr std::string_view how_to_fix =
    "regenerate with: maild-config-render sample > config/mail.conf, and put the output of "
    "maild-config-render reference between the markers in docs/configuration.md";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(GeneratedFiles, SampleConfigIsUpToDate) {
  EXPECT_EQ(read_file(project_root / "config" / "mail.conf"), render_sample_config()) << how_to_fix;
}

TEST(GeneratedFiles, ReferenceInTheDocsIsUpToDate) {
  const auto docs = read_file(project_root / "docs" / "configuration.md");
  const auto begin = docs.find(begin_marker);
  const auto end = docs.find(end_marker);
  ASSERT_NE(begin, std::string::npos) << "no " << begin_marker;
  ASSERT_NE(end, std::string::npos) << "no " << end_marker;
  ASSERT_LT(begin, end);
  const auto generated =
      docs.substr(begin + begin_marker.size(), end - begin - begin_marker.size());
  EXPECT_EQ(generated, render_reference_markdown()) << how_to_fix;
}

}  // namespace
}  // namespace maild::config
