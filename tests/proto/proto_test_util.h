#pragma once
// Helpers shared by the proto tests.

#include <simdjson.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "proto/sse.h"

namespace sluice::proto::testing {

inline std::string readData(const std::string& name) {
  std::ifstream in(std::string(SLUICE_TEST_DATA_DIR) + "/proto/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct OwnedEvent {
  std::string type;
  std::string data;
  std::string id;
  friend bool operator==(const OwnedEvent&, const OwnedEvent&) = default;
};

/// Parses a complete SSE byte string in one put().
inline std::vector<OwnedEvent> parseAll(std::string_view bytes, bool* ok = nullptr) {
  std::vector<OwnedEvent> events;
  SseParser parser;
  auto r = parser.put(bytes, [&](const SseEvent& e) {
    events.push_back({std::string(e.type), std::string(e.data), std::string(e.id)});
  });
  if (ok != nullptr) *ok = r.has_value() && !parser.midEvent();
  return events;
}

/// Parses JSON text with simdjson (DOM, validating); returns false if invalid.
inline bool parseJson(simdjson::dom::parser& parser, const std::string& text, simdjson::dom::element& out) {
  simdjson::padded_string padded(text);
  return !parser.parse(padded).get(out);
}

/// Number of times `key` occurs among the members of `obj`.
inline int keyCount(simdjson::dom::object obj, std::string_view key) {
  int n = 0;
  for (auto kv : obj) n += kv.key == key;
  return n;
}

}  // namespace sluice::proto::testing
