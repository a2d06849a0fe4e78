// Byte-offset scanning (proto/json_scan.h): the block-at-a-time string end
// against a byte-at-a-time reference, on strings built to put quotes,
// backslash runs of every length and escaped quotes on and around the
// 64-byte block edges.
#include "proto/json_scan.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace sluice::proto::scan {
namespace {

size_t referenceStringEnd(std::string_view text, size_t i) {
  bool escaped = false;
  for (size_t j = i + 1; j < text.size(); ++j) {
    if (escaped) {
      escaped = false;
    } else if (text[j] == '\\') {
      escaped = true;
    } else if (text[j] == '"') {
      return j + 1;
    }
  }
  return kNpos;
}

TEST(JsonScan, StringEndOnSimpleStrings) {
  EXPECT_EQ(stringEnd(R"("")", 0), 2U);
  EXPECT_EQ(stringEnd(R"("abc",1)", 0), 5U);
  EXPECT_EQ(stringEnd(R"("a\"b")", 0), 6U);
  EXPECT_EQ(stringEnd(R"("a\\"b")", 0), 5U);
  EXPECT_EQ(stringEnd(R"("a\\\"b")", 0), 8U);
  EXPECT_EQ(stringEnd(R"("unterminated)", 0), kNpos);
  EXPECT_EQ(stringEnd(R"("ends in an escape\")", 0), kNpos);
}

TEST(JsonScan, StringEndAgreesWithTheReferenceAcrossBlockEdges) {
  uint64_t state = 0x9E3779B97F4A7C15ULL;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int checked = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string s = "\"";
    const size_t len = next() % 300;
    while (s.size() < len) {
      switch (next() % 8) {
        case 0: s.append(next() % 5, '\\'); break;  // a run of 0-4 backslashes
        case 1: s += "\\\""; break;
        case 2: s += "\\n"; break;
        case 3: s += '"'; break;  // may end the string (if not escaped)
        default: s.append(1 + next() % 40, static_cast<char>('a' + next() % 26)); break;
      }
    }
    if (next() % 2 == 0) s += '"';
    s.append(next() % 70, 'x');
    ASSERT_EQ(stringEnd(s, 0), referenceStringEnd(s, 0)) << s;
    ++checked;
  }
  EXPECT_EQ(checked, 20000);
}

TEST(JsonScan, StringEndOfALongStringWithManyEscapes) {
  std::string s = "\"";
  for (int i = 0; i < 4000; ++i) s += "say \\\"hi\\\" \\\\ \\n";
  const size_t close = s.size();
  s += "\",\"next\":1";
  EXPECT_EQ(stringEnd(s, 0), close + 1);
  EXPECT_EQ(valueEnd(s, 0), close + 1);
}

}  // namespace
}  // namespace sluice::proto::scan
