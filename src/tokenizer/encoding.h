#pragma once
/// @file
/// @brief An OpenAI BPE encoding (o200k_base, cl100k_base): exact token ids
/// and counts of text, as tiktoken's `encode_ordinary` gives them.
///
/// Why exact: budgets and TPM limits reserve before a call and settle to
/// what the provider bills; core/token_estimate.h errs high because it has
/// no vocabulary. With the published ranks the prompt of an OpenAI model can
/// be counted as the provider counts it (chat.h adds the message framing).
///
/// How (tiktoken's algorithm, src/lib.rs of github.com/openai/tiktoken):
///  1. The text is cut into pieces by the encoding's pre-tokenizer
///     (pretokenize.h).
///  2. A piece that is itself a token is that token (most pieces are).
///  3. Else byte-pair merging: start from single bytes; repeatedly merge the
///     adjacent pair whose concatenation is the token of lowest rank
///     (leftmost on ties), until no adjacent pair is a token. Pieces under
///     kHeapMergeMinBytes use tiktoken's rank scan (O(n·m), fastest for
///     short pieces); longer ones a heap over a linked list (O(n log n)), so
///     a megabyte without a split point (one long "word", a run of one
///     character) costs milliseconds, not minutes. Both give the same merges.
///
/// Special tokens: none. `<|endoftext|>` and the like in the text are counted
/// as the ordinary text they are (tiktoken's encode_ordinary): the gateway
/// sees them as plain message content, and OpenAI's API tokenizes user
/// content the same way rather than honouring control tokens in it.
///
/// The rank file: OpenAI's format, one `<base64 of the token bytes> <rank>`
/// line per token in rank order (ranks 0..N-1). load() refuses a file whose
/// SHA-256 is not the expected one, so a truncated or edited vocabulary can
/// never count silently wrong.
///
/// Thread-safety: immutable after load(); every const member may be called
/// from any number of threads at once. count() and encode() keep their
/// working memory in thread_local buffers, so a warmed-up thread counts
/// without allocating.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/pretokenize.h"

namespace sluice::tokenizer {

/// Pieces of at least this many bytes are merged with the heap variant.
inline constexpr size_t kHeapMergeMinBytes = 128;

/// SHA-256 of `bytes`, as 64 lower-case hex digits.
[[nodiscard]] std::string sha256Hex(std::string_view bytes);

class Encoding {
 public:
  /// Parses a rank file's bytes after checking that they hash to
  /// `expected_sha256` (hex; empty skips the check, for tests only).
  /// `name` names the encoding in errors.
  [[nodiscard]] static std::expected<Encoding, std::string> load(std::string_view name, std::string_view bytes,
                                                                 std::string_view expected_sha256, Pattern pattern);
  /// Reads `path` (at most 64 MiB) and load()s it.
  [[nodiscard]] static std::expected<Encoding, std::string> loadFile(std::string_view name, const std::string& path,
                                                                     std::string_view expected_sha256, Pattern pattern);

  /// Number of tokens of `text`: encode(text).size() without the ids.
  /// Pieces counted before on this thread are remembered (a small cache of
  /// the most recent, checked byte for byte).
  [[nodiscard]] size_t count(std::string_view text) const;
  /// Empties this thread's cache of piece counts (benchmarks: a cold count).
  static void forgetCachedCounts();
  /// Appends the token ids of `text` to `out`.
  void encode(std::string_view text, std::vector<uint32_t>& out) const;
  /// The bytes of `ids`, concatenated; an id outside the vocabulary is an error.
  [[nodiscard]] std::expected<std::string, std::string> decode(std::span<const uint32_t> ids) const;

  /// count()/encode() with the PCRE2 reference pre-tokenizer instead of the
  /// hand-written one (for tests and the differential check; slower).
  [[nodiscard]] std::expected<size_t, std::string> countWithPcre2(std::string_view text) const;
  [[nodiscard]] std::expected<void, std::string> encodeWithPcre2(std::string_view text,
                                                                 std::vector<uint32_t>& out) const;

  /// Token ids of one piece by byte-pair merging (no pre-tokenization);
  /// `heap` picks the merge variant regardless of the piece's size (tests).
  void mergePiece(std::string_view piece, bool heap, std::vector<uint32_t>& out) const;

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] Pattern pattern() const { return pattern_; }
  /// Number of ordinary tokens (ranks 0..size-1).
  [[nodiscard]] size_t vocabularySize() const { return offsets_.size() - 1; }
  /// The bytes of token `rank` (< vocabularySize()).
  [[nodiscard]] std::string_view tokenBytes(uint32_t rank) const {
    return {arena_.data() + offsets_[rank], offsets_[rank + 1] - offsets_[rank]};
  }
  /// The rank of the token whose bytes are `bytes`, or kNoRank.
  static constexpr uint32_t kNoRank = UINT32_MAX;
  [[nodiscard]] uint32_t rankOf(std::string_view bytes) const { return lookup(bytes.data(), bytes.size()); }

 private:
  Encoding() = default;
  uint32_t lookup(const char* p, size_t n) const;
  uint32_t lookupHashed(const char* p, size_t n, uint64_t hash) const;
  template <typename Emit>
  void mergeShort(std::string_view piece, Emit&& emit) const;
  template <typename Emit>
  void mergeLong(std::string_view piece, Emit&& emit) const;
  size_t countPiece(std::string_view piece) const;
  void encodePiece(std::string_view piece, std::vector<uint32_t>& out) const;
  template <Pattern P>
  size_t countAll(std::string_view text) const;

  std::string name_;
  Pattern pattern_ = Pattern::kO200k;
  std::string arena_;              // every token's bytes, by rank
  std::vector<uint32_t> offsets_;  // token r is arena_[offsets_[r], offsets_[r+1])
  // Open addressing, linear probing, at most 40% full. A token of up to 8
  // bytes is kept in its slot (zero-padded), so most lookups touch one
  // cache line; longer ones compare against arena_.
  struct Slot {
    uint64_t bytes;  // len <= 8: the bytes; else the offset into arena_
    uint32_t rank;
    uint16_t len;  // 0: empty
    uint16_t tag;  // hash bits not used for the index
  };
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  std::vector<uint32_t> pair_ranks_;  // rank of every 2-byte token, by (b0 << 8 | b1); kNoRank if none
  Pcre2Splitter reference_;
};

}  // namespace sluice::tokenizer
