#pragma once
// Helpers for the config tests: load fixtures and check diagnostics point at
// the right token (the text found at the reported line:column must start with it).

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "config/loader.h"

namespace sluice::config::testing {

inline std::string fixturePath(std::string_view name) {
  return std::string(SLUICE_TEST_DATA_DIR) + "/config/" + std::string(name);
}
inline std::string testCatalogPath() { return fixturePath("prices_test.yaml"); }
inline std::string shippedCatalogPath() { return std::string(SLUICE_DATA_DIR) + "/prices.yaml"; }
inline std::string examplePath(std::string_view name) {
  return std::string(SLUICE_DATA_DIR) + "/../examples/" + std::string(name);
}

inline std::string readText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string testCatalog() { return readText(testCatalogPath()); }

/// Loads a YAML text against the test catalog.
inline LoadResult loadText(std::string_view yaml) { return loadConfigString(yaml, "test.yaml", testCatalog()); }

/// Loads a fixture file against the test catalog.
inline LoadResult loadFixture(std::string_view name) { return loadConfigFile(fixturePath(name), testCatalogPath()); }

/// The rest of the line starting at 1-based line:column of `text`.
inline std::string textAt(const std::string& text, int line, int column) {
  size_t pos = 0;
  for (int l = 1; l < line; ++l) {
    pos = text.find('\n', pos);
    if (pos == std::string::npos) return "<no such line>";
    ++pos;
  }
  const size_t end = text.find('\n', pos);
  const std::string row = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
  if (column < 1 || static_cast<size_t>(column - 1) > row.size()) return "<no such column>";
  return row.substr(static_cast<size_t>(column - 1));
}

inline std::string dump(const LoadResult& r) {
  if (r.has_value()) return "(loaded without errors)";
  return formatDiagnostics(r.error());
}

/// True when `r` failed with a diagnostic whose message contains `message`
/// and whose position in `text` starts with `token`.
inline ::testing::AssertionResult hasError(const LoadResult& r, const std::string& text, std::string_view token,
                                           std::string_view message) {
  if (r.has_value()) return ::testing::AssertionFailure() << "expected errors, but the config loaded";
  for (const auto& d : r.error()) {
    if (d.message.find(message) == std::string::npos) continue;
    const std::string at = textAt(text, d.line, d.column);
    if (at.starts_with(token)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "'" << message << "' reported at " << d.line << ":" << d.column
                                         << " which reads '" << at << "', expected '" << token << "'\n"
                                         << dump(r);
  }
  return ::testing::AssertionFailure() << "no diagnostic contains '" << message << "':\n" << dump(r);
}

inline size_t errorCount(const LoadResult& r) { return r.has_value() ? 0 : r.error().size(); }

}  // namespace sluice::config::testing
