#include "gateway/wire.h"

#include <fmt/format.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <chrono>

namespace sluice::gateway {

std::string goDuration(core::Nanos d) {
  if (d <= core::Nanos::zero()) return "0s";
  const int64_t ms = (d.count() + 999'999) / 1'000'000;  // round up: never promise a reset too early
  if (ms < 1000) {  // the common case (per-minute limits far from empty): no fmt on the hot path
    char buf[8];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, ms);
    std::string out(buf, end);
    out += "ms";
    return out;
  }
  const int64_t h = ms / 3'600'000, m = (ms / 60'000) % 60, s = (ms / 1000) % 60, frac = ms % 1000;
  std::string sec = frac ? fmt::format("{}.{:03}", s, frac) : fmt::format("{}", s);
  while (frac && sec.back() == '0') sec.pop_back();
  if (h) return fmt::format("{}h{}m{}s", h, m, sec);
  if (m) return fmt::format("{}m{}s", m, sec);
  return sec + "s";
}

void addRateHeaders(net::HeaderLines& h, const core::RateDecision& rate) {
  if (rate.requests.limit > 0) {
    h.add("x-ratelimit-limit-requests", static_cast<int64_t>(rate.requests.limit));
    h.add("x-ratelimit-remaining-requests", static_cast<int64_t>(rate.requests.remaining));
    h.add("x-ratelimit-reset-requests", goDuration(rate.requests.reset));
  }
  if (rate.tokens.limit > 0) {
    h.add("x-ratelimit-limit-tokens", static_cast<int64_t>(rate.tokens.limit));
    h.add("x-ratelimit-remaining-tokens", static_cast<int64_t>(rate.tokens.remaining));
    h.add("x-ratelimit-reset-tokens", goDuration(rate.tokens.reset));
  }
}

std::string formatServerTiming(core::Nanos total, core::Nanos upstream) {
  const core::Nanos gateway = std::max(total - upstream, core::Nanos::zero());
  std::string out = "gateway;dur=";
  appendMillis(out, gateway);
  out += ", upstream;dur=";
  appendMillis(out, upstream);
  return out;
}

void appendMillis(std::string& out, core::Nanos d) {
  const int64_t us = std::max<int64_t>(d.count() / 1000, 0);
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, us / 1000);
  out.append(buf, end);
  const int64_t frac = us % 1000;
  const char digits[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                          static_cast<char>('0' + frac % 10)};
  out.append(digits, 4);
}

int64_t ceilSeconds(core::Nanos d) {
  if (d <= core::Nanos::zero()) return 0;
  return (d.count() + 999'999'999) / 1'000'000'000;
}

RequestIdGenerator::RequestIdGenerator() {
  unsigned char b[8];
  if (RAND_bytes(b, sizeof b) != 1) std::abort();
  prefix_ = 0;
  for (unsigned char c : b) prefix_ = (prefix_ << 8) | c;
}

std::string RequestIdGenerator::next() {
  // The prefix keeps ids unique across replicas and restarts; the counter
  // within one loop. Mixing the counter through a multiply keeps successive
  // ids visually distinct.
  static constexpr char kHex[] = "0123456789abcdef";
  const uint64_t c = ++counter_;
  const uint64_t hi = prefix_ ^ (c * 0x9E3779B97F4A7C15ull);
  const auto lo = static_cast<uint32_t>(c);
  std::string id(28, '0');
  id[0] = 'r', id[1] = 'e', id[2] = 'q', id[3] = '_';
  for (int i = 0; i < 16; ++i) id[4 + i] = kHex[(hi >> (60 - 4 * i)) & 15];
  for (int i = 0; i < 8; ++i) id[20 + i] = kHex[(lo >> (28 - 4 * i)) & 15];
  return id;
}

}  // namespace sluice::gateway
