#pragma once
/// @file
/// @brief The shipped price catalog (data/prices.yaml): list prices per model
/// as data, with where each price came from and since when it applies.
///
/// Format (all prices USD per 1M tokens, decimal, at most 6 decimals):
///
///     models:
///       gpt-4.1:
///         provider_hint: openai        # provider name this model is routed to by default
///         input: 2.00
///         cached_input: 0.50           # optional; defaults to input (never under-bills)
///         output: 8.00                 # optional for embedding models (default 0)
///         embedding: false             # optional
///         encoding: o200k_base         # optional: the tokenizer that counts its tokens exactly
///         source: https://openai.com/api/pricing/
///         effective_date: 2025-04-14   # YYYY-MM-DD
///
/// Pure functions; thread-safe.

#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"
#include "core/pricing.h"
#include "tokenizer/registry.h"

namespace sluice::config {

struct CatalogEntry {
  std::string name;
  std::string provider_hint;  // e.g. openai, anthropic, google, deepseek
  core::Price price;          // micro-USD per 1M tokens
  bool embedding = false;
  std::string source;          // URL or document name
  std::string effective_date;  // YYYY-MM-DD
  /// OpenAI BPE encoding of the model's tokens (tokenizer/registry.h:
  /// o200k_base, cl100k_base); empty for models without a published one.
  std::string encoding;
};

using Catalog = std::map<std::string, CatalogEntry>;
using CatalogResult = std::expected<Catalog, std::vector<Diagnostic>>;

/// Parses catalog YAML text; `name` is the file name used in diagnostics.
/// Collects every problem rather than stopping at the first.
[[nodiscard]] CatalogResult parseCatalog(std::string_view yaml, std::string_view name);

/// Reads and parses a catalog file.
[[nodiscard]] CatalogResult loadCatalogFile(const std::string& path);

/// Where the shipped catalog is, first match wins:
///  1. `$SLUICE_DATA_DIR/prices.yaml` when the SLUICE_DATA_DIR environment
///     variable is set (no fallback then: an explicit setting must not be
///     silently ignored);
///  2. `<directory of the executable>/../share/sluice/prices.yaml` (an
///     installed binary: its own catalog, not a source tree's);
///  3. `<SLUICE_DATA_DIR macro>/prices.yaml`, the source tree's data/ folder
///     baked in at build time, when that file exists (developer builds).
/// Returns the path, or a sentence saying where it looked.
[[nodiscard]] std::expected<std::string, std::string> findCatalogPath();

}  // namespace sluice::config
