#pragma once
// Helpers shared by the mock tests: SSE splitting and plan draining.

#include <simdjson.h>

#include <string>
#include <string_view>
#include <vector>

#include "mock/generator.h"

namespace sluice::mock::testing {

/// The `data:` payloads of an SSE byte stream, in order (events split on a blank line).
inline std::vector<std::string> ssePayloads(std::string_view bytes) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find("\n\n", pos);
    if (end == std::string_view::npos) end = bytes.size();
    std::string_view ev = bytes.substr(pos, end - pos);
    if (ev.starts_with("data: ")) out.emplace_back(ev.substr(6));
    pos = end + 2;
  }
  return out;
}

/// Every event of a stream plan, concatenated (faults are the player's job, not applied here).
inline std::string drainStream(MockPlan& plan) {
  std::string all;
  while (auto ev = plan.events->next()) all += ev->bytes;
  return all;
}

inline std::vector<StreamEvent> streamEvents(MockPlan& plan) {
  std::vector<StreamEvent> out;
  while (auto ev = plan.events->next()) out.push_back(std::move(*ev));
  return out;
}

inline size_t countWords(std::string_view text) {
  size_t n = 0;
  bool in_word = false;
  for (char c : text) {
    if (c == ' ') {
      in_word = false;
    } else if (!in_word) {
      in_word = true;
      ++n;
    }
  }
  return n;
}

inline std::vector<uint8_t> decodeBase64(std::string_view s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    int v = val(c);
    if (v < 0) return {};
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

}  // namespace sluice::mock::testing
