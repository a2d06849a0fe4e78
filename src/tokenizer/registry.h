#pragma once
/// @file
/// @brief The encodings Sluice ships (data/tokenizers/), by name, loaded
/// once per process and shared.
///
/// Each known encoding names its rank file, the pre-tokenizer it uses and
/// the SHA-256 OpenAI publishes for the file (tiktoken_ext/openai_public.py,
/// `expected_hash`; data/tokenizers/SHA256SUMS holds the same). The hash is
/// compiled in, so a rank file that was edited, truncated or swapped is
/// refused at load instead of counting wrong.
///
/// Where the files are, first match wins (as config/catalog.h finds
/// prices.yaml):
///  1. `$SLUICE_DATA_DIR/tokenizers/` when SLUICE_DATA_DIR is set (no
///     fallback then);
///  2. `<directory of the executable>/../share/sluice/tokenizers/` (installs);
///  3. `<SLUICE_DATA_DIR macro>/tokenizers/`, the source tree's data/ folder
///     baked in at build time, when it exists (developer builds).
///
/// Thread-safety: sharedEncoding() may be called from any thread; the first
/// call per encoding loads it (a fraction of a second, BENCHMARKS.md) while
/// other callers of the same name wait; the Encoding returned lives until the process exits.

#include <expected>
#include <span>
#include <string>
#include <string_view>

#include "tokenizer/encoding.h"

namespace sluice::tokenizer {

struct EncodingInfo {
  std::string_view name;    // o200k_base
  std::string_view file;    // o200k_base.tiktoken
  std::string_view sha256;  // of the file, as OpenAI publishes it
  Pattern pattern;
};

/// Every encoding Sluice can load.
[[nodiscard]] std::span<const EncodingInfo> knownEncodings();
/// The encoding called `name`, or nullptr.
[[nodiscard]] const EncodingInfo* findEncoding(std::string_view name);
/// "o200k_base, cl100k_base": for error messages.
[[nodiscard]] std::string knownEncodingNames();

/// The folder holding the rank files, or a sentence saying where it looked.
[[nodiscard]] std::expected<std::string, std::string> findTokenizerDir();

/// The shipped encoding `name`, loaded and checked on first use.
[[nodiscard]] std::expected<const Encoding*, std::string> sharedEncoding(std::string_view name);

}  // namespace sluice::tokenizer
