#pragma once
/// @file
/// @brief A configuration problem at a place in a file: "file:line:column: message".

#include <string>
#include <vector>

namespace sluice::config {

/// One problem found while loading a configuration or a price catalog.
/// `line` and `column` are 1-based; both are 0 when the problem concerns the
/// whole file (e.g. it cannot be read). `message` is one plain sentence.
struct Diagnostic {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;

  /// "file:line:column: message", or "file: message" when line is 0.
  [[nodiscard]] std::string str() const;

  friend bool operator==(const Diagnostic&, const Diagnostic&) = default;
};

/// All diagnostics, one per line, each formatted with Diagnostic::str().
[[nodiscard]] std::string formatDiagnostics(const std::vector<Diagnostic>& diagnostics);

}  // namespace sluice::config
