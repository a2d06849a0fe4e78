#pragma once
// Helpers shared by the libFuzzer targets: property checks that abort (so
// libFuzzer saves the input as a crash), and split points / options derived
// from the input itself, so every corpus file is a plain message, stream or
// document and a mutation that changes its bytes also explores new splits.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::fuzz {

[[noreturn]] inline void propertyFailed(const char* what, const char* file, int line, const std::string& detail) {
  std::fprintf(stderr, "\n==== property violated: %s\n     at %s:%d\n", what, file, line);
  if (!detail.empty()) std::fprintf(stderr, "     %s\n", detail.c_str());
  std::fflush(stderr);
  std::abort();
}

/// Checks a property of the code under test; on failure prints it and
/// aborts, which libFuzzer reports as a crash and saves the input for.
#define FUZZ_CHECK(cond, ...)                                                                         \
  do {                                                                                                \
    if (!(cond)) ::sluice::fuzz::propertyFailed(#cond, __FILE__, __LINE__, std::string{__VA_ARGS__}); \
  } while (0)

/// Printable form of bytes for a failure message (\r, \n, \xNN), cut at `max`.
inline std::string printable(std::string_view s, size_t max = 600) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (s[i] == '\r') {
      out += "\\r";
    } else if (s[i] == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u >= 0x7F || s[i] == '\\') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += s[i];
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

/// Deterministic pseudo-random numbers seeded from the input (FNV-1a, then
/// SplitMix64): the same input always takes the same splits and options.
class InputRng {
 public:
  explicit InputRng(std::string_view input) {
    uint64_t h = 1469598103934665603ULL;
    for (const char c : input) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    state_ = h;
  }
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform-ish in [0, n); 0 when n == 0.
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
  bool coin() { return (next() & 1) != 0; }

 private:
  uint64_t state_;
};

/// Ascending cut positions in (0, n): the ways a stream of `n` bytes is fed in
/// pieces. Several sets: one cut, a few, many; and every byte for short inputs.
inline std::vector<std::vector<size_t>> cutSets(size_t n, InputRng& rng, size_t byte_by_byte_max = 512) {
  std::vector<std::vector<size_t>> sets;
  if (n < 2) return sets;
  for (const size_t count : {size_t{1}, size_t{3}, size_t{16}}) {
    std::vector<size_t> cuts;
    size_t pos = 0;
    for (size_t i = 0; i < count && pos + 1 < n; ++i) {
      // Spread the cuts, with some very short pieces.
      const size_t room = n - 1 - pos;
      const size_t step = 1 + (rng.coin() ? rng.below(4) : rng.below(room));
      pos += step;
      if (pos >= n) break;
      cuts.push_back(pos);
    }
    sets.push_back(std::move(cuts));
  }
  if (n <= byte_by_byte_max) {
    std::vector<size_t> every;
    for (size_t i = 1; i < n; ++i) every.push_back(i);
    sets.push_back(std::move(every));
  }
  return sets;
}

/// Splits `input` at `cuts` (ascending positions) into pieces.
inline std::vector<std::string_view> pieces(std::string_view input, const std::vector<size_t>& cuts) {
  std::vector<std::string_view> out;
  size_t from = 0;
  for (const size_t c : cuts) {
    if (c <= from || c >= input.size()) continue;
    out.push_back(input.substr(from, c - from));
    from = c;
  }
  out.push_back(input.substr(from));
  return out;
}

}  // namespace sluice::fuzz
