#include "tokenizer/encoding.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <utility>

namespace sluice::tokenizer {
namespace {

constexpr size_t kMaxRankFileBytes = 64u << 20;

uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
uint32_t load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

uint16_t load16(const char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// The first min(n, 8) bytes of p, zero-padded, without reading past p + n.
uint64_t shortKey(const char* p, size_t n) {
  if (n >= 8) return load64(p);
  if (n >= 4) return load32(p) | (static_cast<uint64_t>(load32(p + n - 4)) << ((n - 4) * 8));
  if (n >= 2) {
    return load16(p) | (static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << ((n - 1) * 8));
  }
  return n == 1 ? static_cast<unsigned char>(p[0]) : 0;
}

// A fast mix of the bytes and their length (collisions only cost a compare).
uint64_t hashBytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
  if (n <= 8) {
    h = (h ^ shortKey(p, n)) * 0xBF58476D1CE4E5B9ull;
  } else {
    while (n >= 8) {
      h = (h ^ load64(p)) * 0xBF58476D1CE4E5B9ull;
      h ^= h >> 29;
      p += 8;
      n -= 8;
    }
    h = (h ^ shortKey(p, n)) * 0x94D049BB133111EBull;
  }
  h ^= h >> 31;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 32);
}

// Strict base64 (RFC 4648, with padding), as the rank files use.
bool decodeBase64(std::string_view in, std::string& out) {
  static constexpr auto kValues = [] {
    std::array<int8_t, 256> v{};
    v.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) v[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    return v;
  }();
  if (in.empty() || in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return false;                      // data after padding
      v[k] = kValues[static_cast<unsigned char>(c)];  // NOLINT(bugprone-signed-char-misuse): -1 = not base64
      if (v[k] < 0) return false;
    }
    const uint32_t bits = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                          (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    out += static_cast<char>(bits >> 16);
    if (pad < 2) out += static_cast<char>((bits >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(bits & 0xFF);
  }
  return true;
}

// Working memory of the merges, per thread, kept between calls.
struct Scratch {
  std::vector<std::pair<uint32_t, uint32_t>> parts;  // rank scan: (start, rank of the pair starting here)
  std::vector<uint32_t> next, prev, rank;            // heap variant: linked list of parts
  std::vector<std::pair<uint32_t, uint32_t>> heap;   // (rank, start), min-heap
};
thread_local Scratch tl_scratch;

// The counts of pieces counted before, per thread. Text repeats its words
// (natural language is Zipf-distributed, and so are the identifiers of
// code), so most pieces have been merged before: a hit costs one hash and
// one cache line instead of a lookup in the multi-megabyte rank table per
// merge step. Direct-mapped; the piece's bytes are kept and compared, so a
// hit is never another piece's count. Pieces of up to 43 bytes (longer ones
// are rare and merged as before).
struct PieceCacheEntry {
  uint64_t hash = 0;
  const void* owner = nullptr;  // the Encoding: o200k and cl100k count differently
  uint32_t count = 0;
  uint8_t len = 0;
  char bytes[43] = {};
};
static_assert(sizeof(PieceCacheEntry) == 64);
constexpr size_t kPieceCacheEntries = 4096;  // 256 KiB: stays in L2
constexpr size_t kMaxCachedPiece = sizeof(PieceCacheEntry::bytes);
thread_local std::unique_ptr<PieceCacheEntry[]> tl_piece_cache;

}  // namespace

std::string sha256Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xF];
  }
  return out;
}

std::expected<Encoding, std::string> Encoding::load(std::string_view name, std::string_view bytes,
                                                    std::string_view expected_sha256, Pattern pattern) {
  const auto fail = [&](const std::string& what) { return std::unexpected(std::string(name) + ": " + what); };
  if (!expected_sha256.empty()) {
    const std::string got = sha256Hex(bytes);
    if (got != expected_sha256) {
      return fail("the rank file's SHA-256 is " + got + ", expected " + std::string(expected_sha256) +
                  " (a damaged or different file; restore it from the Sluice release or regenerate it with "
                  "tools/tokenizers/extract.mjs)");
    }
  }
  Encoding e;
  e.name_ = name;
  e.pattern_ = pattern;
  e.offsets_.push_back(0);
  size_t line_no = 0;
  for (size_t pos = 0; pos < bytes.size();) {
    ++line_no;
    size_t eol = bytes.find('\n', pos);
    if (eol == std::string_view::npos) eol = bytes.size();
    const std::string_view line = bytes.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return fail("line " + std::to_string(line_no) + " has no rank");
    uint64_t rank = 0;
    const std::string_view digits = line.substr(sp + 1);
    if (digits.empty() || digits.size() > 9) return fail("line " + std::to_string(line_no) + " has a bad rank");
    for (const char c : digits) {
      if (c < '0' || c > '9') return fail("line " + std::to_string(line_no) + " has a bad rank");
      rank = rank * 10 + static_cast<uint64_t>(c - '0');
    }
    // Ranks are token ids and merge priorities; the published files list
    // them in order from 0 without gaps, which the id-by-offset layout needs.
    if (rank != e.offsets_.size() - 1) {
      return fail("line " + std::to_string(line_no) + " has rank " + std::to_string(rank) + ", expected " +
                  std::to_string(e.offsets_.size() - 1));
    }
    const size_t before = e.arena_.size();
    if (!decodeBase64(line.substr(0, sp), e.arena_) || e.arena_.size() == before) {
      return fail("line " + std::to_string(line_no) + " has a bad base64 token");
    }
    e.offsets_.push_back(static_cast<uint32_t>(e.arena_.size()));
  }
  const size_t n = e.offsets_.size() - 1;
  if (n < 256) return fail("the rank file has " + std::to_string(n) + " tokens; a byte-level BPE needs all 256 bytes");
  const size_t slots = std::bit_ceil(n * 5 / 2);
  e.slots_.assign(slots, Slot{0, 0, 0, 0});
  e.mask_ = slots - 1;
  for (uint32_t r = 0; r < n; ++r) {
    const std::string_view tok = e.tokenBytes(r);
    if (tok.size() > UINT16_MAX) return fail("token " + std::to_string(r) + " is longer than 64 KiB");
    if (e.lookup(tok.data(), tok.size()) != kNoRank) return fail("token " + std::to_string(r) + " is listed twice");
    const uint64_t h = hashBytes(tok.data(), tok.size());
    uint64_t i = h & e.mask_;
    while (e.slots_[i].len != 0) i = (i + 1) & e.mask_;
    e.slots_[i] = Slot{tok.size() <= 8 ? shortKey(tok.data(), tok.size()) : e.offsets_[r], r,
                       static_cast<uint16_t>(tok.size()), static_cast<uint16_t>(h >> 48)};
  }
  e.pair_ranks_.assign(65536, kNoRank);
  for (uint32_t r = 0; r < n; ++r) {
    const std::string_view tok = e.tokenBytes(r);
    if (tok.size() == 2) {
      e.pair_ranks_[(static_cast<unsigned char>(tok[0]) << 8) | static_cast<unsigned char>(tok[1])] = r;
    }
  }
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    if (e.lookup(&c, 1) == kNoRank) return fail("byte " + std::to_string(b) + " is not a token");
  }
  auto reference = Pcre2Splitter::create(pattern);
  if (!reference) return fail(reference.error());
  e.reference_ = std::move(*reference);
  return e;
}

std::expected<Encoding, std::string> Encoding::loadFile(std::string_view name, const std::string& path,
                                                        std::string_view expected_sha256, Pattern pattern) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(std::string(name) + ": cannot open the rank file " + path);
  std::string bytes;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.append(buf, static_cast<size_t>(in.gcount()));
    if (bytes.size() > kMaxRankFileBytes) {
      return std::unexpected(std::string(name) + ": the rank file " + path + " is larger than 64 MiB");
    }
  }
  if (in.bad()) return std::unexpected(std::string(name) + ": cannot read the rank file " + path);
  auto e = load(name, bytes, expected_sha256, pattern);
  if (!e) return std::unexpected(e.error() + " (" + path + ")");
  return e;
}

uint32_t Encoding::lookup(const char* p, size_t n) const { return lookupHashed(p, n, hashBytes(p, n)); }

uint32_t Encoding::lookupHashed(const char* p, size_t n, uint64_t h) const {
  const auto tag = static_cast<uint16_t>(h >> 48);
  const uint64_t key = n <= 8 ? shortKey(p, n) : 0;
  for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.len == 0) return kNoRank;
    if (s.len != n || s.tag != tag) continue;
    if (n <= 8 ? s.bytes == key : std::memcmp(arena_.data() + s.bytes, p, n) == 0) return s.rank;
  }
}

// tiktoken's _byte_pair_merge: parts[i] = (start, rank of parts i..i+1
// merged); merge the lowest, leftmost on ties; recompute its neighbours.
template <typename Emit>
void Encoding::mergeShort(std::string_view piece, Emit&& emit) const {
  auto& parts = tl_scratch.parts;
  parts.clear();
  const char* p = piece.data();
  const auto n = static_cast<uint32_t>(piece.size());
  uint32_t min_rank = kNoRank;
  size_t min_i = 0;
  for (uint32_t i = 0; i + 1 < n; ++i) {
    const uint32_t r = pair_ranks_[(static_cast<unsigned char>(p[i]) << 8) | static_cast<unsigned char>(p[i + 1])];
    if (r < min_rank) {
      min_rank = r;
      min_i = i;
    }
    parts.emplace_back(i, r);
  }
  parts.emplace_back(n - 1, kNoRank);
  parts.emplace_back(n, kNoRank);
  const auto rank_at = [&](size_t i) {
    return i + 3 < parts.size() ? lookup(p + parts[i].first, parts[i + 3].first - parts[i].first) : kNoRank;
  };
  while (min_rank != kNoRank) {
    const size_t i = min_i;
    if (i > 0) parts[i - 1].second = rank_at(i - 1);
    parts[i].second = rank_at(i);
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    min_rank = kNoRank;
    for (size_t k = 0; k + 1 < parts.size(); ++k) {
      if (parts[k].second < min_rank) {
        min_rank = parts[k].second;
        min_i = k;
      }
    }
  }
  // The last entry is the end sentinel (n): part k is [start k, start k+1).
  for (size_t k = 0; k + 1 < parts.size(); ++k) emit(parts[k].first, parts[k + 1].first);
}

// The same merges with a min-heap of (rank, start) over a linked list of
// parts: stale heap entries (a part merged away or re-ranked) are skipped.
template <typename Emit>
void Encoding::mergeLong(std::string_view piece, Emit&& emit) const {
  auto& next = tl_scratch.next;
  auto& prev = tl_scratch.prev;
  auto& rank = tl_scratch.rank;
  auto& heap = tl_scratch.heap;
  const char* p = piece.data();
  const auto n = static_cast<uint32_t>(piece.size());
  next.resize(n);
  prev.resize(n);
  rank.resize(n);
  heap.clear();
  for (uint32_t i = 0; i < n; ++i) {
    next[i] = i + 1;
    prev[i] = i - 1;  // UINT32_MAX for the first
  }
  const auto pair_rank = [&](uint32_t i) {
    const uint32_t j = next[i];
    if (j >= n) return kNoRank;
    return lookup(p + i, next[j] - i);
  };
  const auto cmp = std::greater<>();
  for (uint32_t i = 0; i < n; ++i) {
    rank[i] = pair_rank(i);
    if (rank[i] != kNoRank) heap.emplace_back(rank[i], i);
  }
  std::make_heap(heap.begin(), heap.end(), cmp);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), cmp);
    const auto [r, i] = heap.back();
    heap.pop_back();
    if (rank[i] != r) continue;  // stale: re-ranked, or merged into its left neighbour
    const uint32_t j = next[i];
    next[i] = next[j];
    if (next[j] < n) prev[next[j]] = i;
    rank[j] = kNoRank;
    rank[i] = pair_rank(i);
    if (rank[i] != kNoRank) {
      heap.emplace_back(rank[i], i);
      std::push_heap(heap.begin(), heap.end(), cmp);
    }
    if (const uint32_t h = prev[i]; h != UINT32_MAX) {
      rank[h] = pair_rank(h);
      if (rank[h] != kNoRank) {
        heap.emplace_back(rank[h], h);
        std::push_heap(heap.begin(), heap.end(), cmp);
      }
    }
  }
  for (uint32_t i = 0; i < n; i = next[i]) emit(i, next[i]);
}

void Encoding::mergePiece(std::string_view piece, bool heap, std::vector<uint32_t>& out) const {
  if (piece.empty()) return;
  if (piece.size() == 1) {
    out.push_back(lookup(piece.data(), 1));
    return;
  }
  const auto emit = [&](uint32_t b, uint32_t e) { out.push_back(lookup(piece.data() + b, e - b)); };
  if (heap) {
    mergeLong(piece, emit);
  } else {
    mergeShort(piece, emit);
  }
}

void Encoding::forgetCachedCounts() { tl_piece_cache.reset(); }

size_t Encoding::countPiece(std::string_view piece) const {
  if (piece.size() == 1) return 1;
  const uint64_t h = hashBytes(piece.data(), piece.size());
  PieceCacheEntry* entry = nullptr;
  if (piece.size() <= kMaxCachedPiece) {
    if (!tl_piece_cache) tl_piece_cache = std::make_unique<PieceCacheEntry[]>(kPieceCacheEntries);
    entry = &tl_piece_cache[(h >> 17) & (kPieceCacheEntries - 1)];
    if (entry->hash == h && entry->owner == this && entry->len == piece.size() &&
        std::memcmp(entry->bytes, piece.data(), piece.size()) == 0) {
      return entry->count;
    }
  }
  size_t n = 0;
  if (lookupHashed(piece.data(), piece.size(), h) != kNoRank) {
    n = 1;
  } else {
    const auto emit = [&](uint32_t, uint32_t) { ++n; };
    if (piece.size() < kHeapMergeMinBytes) {
      mergeShort(piece, emit);
    } else {
      mergeLong(piece, emit);
    }
  }
  if (entry != nullptr) {
    entry->hash = h;
    entry->owner = this;
    entry->count = static_cast<uint32_t>(n);
    entry->len = static_cast<uint8_t>(piece.size());
    std::memcpy(entry->bytes, piece.data(), piece.size());
  }
  return n;
}

void Encoding::encodePiece(std::string_view piece, std::vector<uint32_t>& out) const {
  if (const uint32_t r = lookup(piece.data(), piece.size()); r != kNoRank) {
    out.push_back(r);
    return;
  }
  mergePiece(piece, piece.size() >= kHeapMergeMinBytes, out);
}

template <Pattern P>
size_t Encoding::countAll(std::string_view text) const {
  const PieceSplitter splitter(P, text);
  size_t total = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = P == Pattern::kO200k ? splitter.nextO200k(pos) : splitter.nextCl100k(pos);
    total += countPiece(text.substr(pos, end - pos));
    pos = end;
  }
  return total;
}

size_t Encoding::count(std::string_view text) const {
  return pattern_ == Pattern::kO200k ? countAll<Pattern::kO200k>(text) : countAll<Pattern::kCl100k>(text);
}

void Encoding::encode(std::string_view text, std::vector<uint32_t>& out) const {
  PieceSplitter splitter(pattern_, text);
  std::string_view piece;
  while (splitter.next(piece)) encodePiece(piece, out);
}

std::expected<std::string, std::string> Encoding::decode(std::span<const uint32_t> ids) const {
  std::string out;
  for (const uint32_t id : ids) {
    if (id >= vocabularySize()) return std::unexpected("token id " + std::to_string(id) + " is not in " + name_);
    out += tokenBytes(id);
  }
  return out;
}

std::expected<size_t, std::string> Encoding::countWithPcre2(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (auto r = reference_.split(text, pieces); !r) return std::unexpected(r.error());
  size_t total = 0;
  for (const auto piece : pieces) total += countPiece(piece);
  return total;
}

std::expected<void, std::string> Encoding::encodeWithPcre2(std::string_view text, std::vector<uint32_t>& out) const {
  std::vector<std::string_view> pieces;
  if (auto r = reference_.split(text, pieces); !r) return std::unexpected(r.error());
  for (const auto piece : pieces) encodePiece(piece, out);
  return {};
}

}  // namespace sluice::tokenizer
