#pragma once
/// @file
/// @brief Aligned text tables and CSV lines for the ledger commands.

#include <string>
#include <vector>

namespace sluice::cli {

/// Columns padded to their widest cell; the first `left` columns align
/// left (names), the rest right (numbers). Two spaces between columns.
class Table {
 public:
  void header(std::vector<std::string> cells, size_t left) {
    left_ = left;
    rows_.insert(rows_.begin(), std::move(cells));
    has_header_ = true;
  }
  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  /// A line of dashes before the next row (call after header()).
  void rule() { rules_.push_back(rows_.size()); }
  [[nodiscard]] std::string str() const;

 private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<size_t> rules_;
  size_t left_ = 0;
  bool has_header_ = false;
};

/// One CSV line (RFC 4180 quoting where needed), no newline.
[[nodiscard]] std::string csvLine(const std::vector<std::string>& cells);
[[nodiscard]] std::string csvField(std::string_view cell);
[[nodiscard]] std::string upper(std::string s);

}  // namespace sluice::cli
