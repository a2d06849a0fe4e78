#include "core/redact.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::core {
namespace {

TEST(RedactTest, RemovesEveryOccurrenceOfEverySecret) {
  const std::vector<std::string> keys{"sk-live-AAAA", "sk-other-BB"};
  std::string body =
      R"({"error":{"message":"Incorrect API key provided: sk-live-AAAA (sk-live-AAAA); try sk-other-BB"}})";
  EXPECT_EQ(redactSecrets(body, keys), 3U);
  EXPECT_EQ(body, R"({"error":{"message":"Incorrect API key provided: [redacted] ([redacted]); try [redacted]"}})");
}

TEST(RedactTest, LeavesTextWithoutSecretsAlone) {
  const std::vector<std::string> keys{"sk-live-AAAA", ""};
  std::string body = "data: {\"choices\":[{\"delta\":{\"content\":\"sk-live-AAA\"}}]}\n\n";
  const std::string before = body;
  EXPECT_EQ(redactSecrets(body, keys), 0U);
  EXPECT_EQ(body, before);
  std::string empty;
  EXPECT_EQ(redactSecrets(empty, keys), 0U);
}

TEST(RedactTest, ASecretThatContainsTheReplacementDoesNotLoop) {
  const std::vector<std::string> keys{"[redacted]x"};
  std::string body = "[redacted]x[redacted]x";
  EXPECT_EQ(redactSecrets(body, keys), 2U);
  EXPECT_EQ(body, "[redacted][redacted]");
}

}  // namespace
}  // namespace sluice::core
