#pragma once
/// @file
/// @brief Internal to sluice_config: reads a yaml-cpp tree against a schema and
/// collects every problem as a Diagnostic instead of stopping at the first.
///
/// Used by the config loader and the price catalog parser. Not thread-safe:
/// one Walker per load. Startup-only code (it allocates freely).

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"
#include "core/money.h"

namespace sluice::config {

/// Optimal-string-alignment edit distance (insert, delete, substitute, swap of
/// two neighbours), ASCII case-insensitive.
[[nodiscard]] size_t editDistance(std::string_view a, std::string_view b);

/// The candidate closest to `word` when it is close enough to be a typo of it
/// (distance <= max(1, len/3), at most 3); the first one on ties.
[[nodiscard]] std::optional<std::string> closestMatch(std::string_view word,
                                                      const std::vector<std::string>& candidates);

/// "; did you mean 'x'?" when a close candidate exists, else "".
[[nodiscard]] std::string didYouMean(std::string_view word, const std::vector<std::string>& candidates);

/// "a, b or c" (names sorted as given).
[[nodiscard]] std::string joinOr(const std::vector<std::string>& names);

/// A ppm / micro amount as a short decimal: 200000 -> "0.2", 1100000 -> "1.1", 5 -> "0.000005".
[[nodiscard]] std::string formatDecimal6(int64_t micros);

/// Reads a whole file of at most `max_bytes`; an error sentence otherwise.
[[nodiscard]] std::expected<std::string, std::string> readSmallFile(const std::string& path, size_t max_bytes);

/// Stable sort by (line, column): diagnostics found by later cross-reference
/// passes then read in file order. Meant for diagnostics of one file.
void sortByPosition(std::vector<Diagnostic>& diagnostics);

/// One value being read, with where it came from.
struct Entry {
  std::string key;   // last path component ("" for the document root)
  std::string path;  // dotted path for messages, e.g. "providers.relay.base_url"
  YAML::Mark key_mark;
  YAML::Node value;

  /// Where to point at a problem with the value: the value itself, or its key
  /// when the value is empty (yaml-cpp marks an empty value on the next line).
  [[nodiscard]] YAML::Mark mark() const;
  /// The path for use in a sentence ("server.listen", or "the configuration").
  [[nodiscard]] std::string what() const;
};

class Walker {
 public:
  Walker(std::string file, std::vector<Diagnostic>* out);

  [[nodiscard]] const std::string& file() const { return file_; }
  [[nodiscard]] size_t errorCount() const { return out_->size() - first_; }

  void error(const YAML::Mark& mark, std::string message);
  void error(const Entry& at, std::string message) { error(at.mark(), std::move(message)); }

  /// Parses YAML text (one document). A syntax error becomes a diagnostic at
  /// its position and nullopt. An empty document is a Null node.
  std::optional<YAML::Node> parse(std::string_view text);

  struct Field {
    std::string_view key;
    std::function<void(const Entry&)> read;
  };

  /// Reads a mapping with a fixed set of keys: calls the matching field's
  /// reader for each key; reports unknown keys (with a suggestion), duplicate
  /// keys and non-mapping values. An empty value counts as an empty mapping.
  /// Returns false when the value is not a mapping.
  bool readFields(const Entry& at, const std::vector<Field>& fields, std::string_view hint = {});

  /// Reads a mapping of user-chosen names (providers, models, agents, ...):
  /// calls `read` for each entry whose key is a valid name; reports duplicate
  /// and malformed names. `what` names one key in messages ("provider name").
  bool readNamed(const Entry& at, std::string_view what, const std::function<void(const Entry&)>& read);

  /// Scalars. Each reports a plain sentence and returns nullopt on a wrong
  /// type or value; numbers may be quoted or not.
  std::optional<std::string> string(const Entry& e);
  /// Integer in [min, max]. "must be greater than zero" when min is 1.
  std::optional<int64_t> integer(const Entry& e, int64_t min, int64_t max);
  std::optional<bool> boolean(const Entry& e);
  /// Decimal USD amount into micro-USD (core::parseUsd, never floating point).
  /// `positive`: zero is refused too (limits); else zero is fine (prices).
  std::optional<core::MicroUsd> usd(const Entry& e, bool positive);
  /// Decimal fraction in (0, 1] into parts per million ("0.2" -> 200000).
  std::optional<int64_t> fractionPpm(const Entry& e);

  struct Item {
    std::string value;
    YAML::Mark mark;
  };
  /// A list of strings (a single string is not accepted). Empty value = [].
  std::optional<std::vector<Item>> stringList(const Entry& e);

 private:
  std::string file_;
  std::vector<Diagnostic>* out_;
  size_t first_;
};

}  // namespace sluice::config
