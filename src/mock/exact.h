#pragma once
/// @file
/// @brief Exact token counting for the mock provider: a model whose price
/// catalog entry names an encoding (data/prices.yaml `encoding:`) is counted
/// with that tokenizer, as the real provider counts it; any other model keeps
/// the byte rule of generator.h.
///
/// Resolution: the catalog (config::findCatalogPath, as the gateway and
/// `sluice tokens` find it) is read once per process, at the first lookup;
/// each encoding is loaded once (tokenizer::sharedEncoding) at the first
/// request for one of its models (a load of a noticeable fraction of a
/// second, BENCHMARKS.md; warmExactCounting() does it ahead). A catalog or
/// tokenizer that cannot be loaded leaves every model on the byte rule (with
/// one warning in the log).
///
/// Generated words: the mock's output is words of kWords (words.h), each
/// written as [" "]word["."] (capitalised at a sentence start). The
/// pre-tokenizers of o200k_base and cl100k_base split before the space of
/// " word" and before the ".", so the tokens of a text are the sum of the
/// tokens of its written words; wordCost() holds that per form.
///
/// Thread-safety: every function may be called from any thread; an
/// ExactCounter is immutable and lives until the process exits.

#include <array>
#include <cstdint>
#include <string_view>

#include "mock/words.h"
#include "tokenizer/chat.h"
#include "tokenizer/encoding.h"

namespace sluice::mock {

class ExactCounter {
 public:
  ExactCounter(const tokenizer::Encoding& encoding, tokenizer::ChatFraming framing);

  [[nodiscard]] const tokenizer::Encoding& encoding() const { return *encoding_; }
  [[nodiscard]] const tokenizer::ChatFraming& framing() const { return framing_; }
  /// Exact tokens of `text`. Texts of kCacheMinBytes or more are remembered
  /// per thread (the last few, compared byte for byte), so a load test that
  /// repeats one large prompt tokenizes it once per thread: a long text
  /// without a split point is the tokenizer's slowest case (BENCHMARKS.md).
  [[nodiscard]] uint64_t count(std::string_view text) const {
    return text.size() < kCacheMinBytes ? encoding_->count(text) : countCached(text);
  }
  static constexpr size_t kCacheMinBytes = 16 * 1024;
  static constexpr size_t kCacheMaxBytes = 8 * 1024 * 1024;

  /// Tokens of kWords[word] written capitalised or not, after a space or
  /// not, with a final "." or not.
  [[nodiscard]] uint32_t wordCost(size_t word, bool capital, bool space, bool dot) const {
    return costs_[word * 8 + (capital ? 4 : 0) + (space ? 2 : 0) + (dot ? 1 : 0)];
  }
  /// True when, for every capital/space form, some word without a "." is
  /// one token, so any budget can be filled exactly (true for the shipped
  /// encodings; an encoding without is not used for the mock).
  [[nodiscard]] bool canFillExactly() const { return can_fill_; }

 private:
  [[nodiscard]] uint64_t countCached(std::string_view text) const;

  const tokenizer::Encoding* encoding_;
  tokenizer::ChatFraming framing_;
  std::array<uint8_t, kWords.size() * 8> costs_{};
  bool can_fill_ = false;
};

/// The exact counter of `model`, or nullptr (not in the catalog, no
/// `encoding:`, or the catalog/tokenizer could not be loaded).
[[nodiscard]] const ExactCounter* exactCounterFor(std::string_view model);

/// Loads the catalog and the encodings the catalog uses, so the first
/// request does not pay for them (the mock-upstream command calls it).
void warmExactCounting();

}  // namespace sluice::mock
