// The stream relay driven with SSE bytes: when the answer becomes the
// client's, what fails an attempt before that, and the output cap.

#include "gateway/stream_relay.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::gateway {
namespace {

using Step = StreamRelay::Step;

std::string chunk(std::string_view content) {
  return R"(data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":")" +
         std::string(content) + "\"},\"finish_reason\":null}]}\n\n";
}
const std::string kRole =
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
    "\"assistant\"},\"finish_reason\":null}]}\n\n";
const std::string kFinish =
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},"
    "\"finish_reason\":\"stop\"}]}\n\n";
const std::string kUsage =
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
    "\"completion_tokens\":2,\"total_tokens\":7}}\n\n";

TEST(StreamRelay, HoldsUntilTheFirstTokenThenCommitsOnce) {
  StreamRelay r({.cap = 100});
  EXPECT_EQ(r.put(kRole), Step::kHold);
  EXPECT_FALSE(r.committed());
  EXPECT_FALSE(r.takeCommit());
  EXPECT_EQ(r.put(chunk("Hel")), Step::kSend);
  EXPECT_TRUE(r.committed());
  EXPECT_TRUE(r.takeCommit());
  EXPECT_FALSE(r.takeCommit());
  // The role chunk held back goes out with the first token.
  EXPECT_NE(r.out().find("assistant"), std::string::npos);
  EXPECT_NE(r.out().find("Hel"), std::string::npos);
  r.out().clear();
  EXPECT_EQ(r.put(chunk("lo") + kFinish + kUsage + "data: [DONE]\n\n"), Step::kSend);
  EXPECT_FALSE(r.takeCommit());
  EXPECT_TRUE(r.complete());
  // Usage the client did not ask for is counted, not relayed.
  ASSERT_TRUE(r.accounting().usage);
  EXPECT_EQ(r.accounting().usage->output, 2);
  EXPECT_EQ(r.out().find("completion_tokens"), std::string::npos);
}

TEST(StreamRelay, AnErrorBeforeAnyTokenFailsTheAttemptUnseen) {
  StreamRelay r({.cap = 100});
  EXPECT_EQ(r.put("data: {\"error\":{\"message\":\"overloaded\"}}\n\n"), Step::kFail);
  EXPECT_EQ(r.failure().error, AttemptError::kStreamError);
  EXPECT_FALSE(r.committed());
}

TEST(StreamRelay, BytesThatAreNotSSEFailTheAttempt) {
  StreamRelay r({.cap = 100});
  const std::string huge = "data: " + std::string(size_t{20} << 20, 'x');  // an event over the size limit
  EXPECT_EQ(r.put(huge), Step::kFail);
  EXPECT_EQ(r.failure().error, AttemptError::kMalformedStream);
}

TEST(StreamRelay, AProviderThatIgnoresTheCapIsCaught) {
  StreamRelay r({.cap = 3});
  EXPECT_EQ(r.put(kRole), Step::kHold);
  Step last = Step::kHold;
  int chunks = 0;
  while (last != Step::kCapExceeded && chunks < 20) {
    last = r.put(chunk("x"));
    ++chunks;
  }
  EXPECT_EQ(last, Step::kCapExceeded);
  // Never before the cap could honestly have been reached: one token a chunk.
  EXPECT_GT(chunks, 3);
  r.cut("The provider exceeded the output cap.", true);
  EXPECT_NE(r.out().find("exceeded the output cap"), std::string::npos);
  EXPECT_TRUE(r.out().ends_with("data: [DONE]\n\n"));
}

TEST(StreamRelay, EmbeddingsHaveNoCapToExceed) {
  StreamRelay r({.has_output = false, .cap = 0});
  EXPECT_EQ(r.put(chunk("a") + chunk("b")), Step::kSend);
}

TEST(StreamRelay, DrainingCountsButNeverRelays) {
  StreamRelay r({.cap = 100});
  EXPECT_EQ(r.put(chunk("a")), Step::kSend);
  r.out().clear();
  r.account(chunk("bcd") + kUsage);
  EXPECT_TRUE(r.out().empty());
  EXPECT_EQ(r.accounting().output_text_bytes, 4);
  ASSERT_TRUE(r.accounting().usage);
}

TEST(StreamRelay, AStreamCutMidEventIsNotComplete) {
  StreamRelay r({.cap = 100});
  EXPECT_EQ(r.put(chunk("a")), Step::kSend);
  EXPECT_TRUE(r.complete());
  (void)r.put("data: {\"id\":");
  EXPECT_FALSE(r.complete());
}

}  // namespace
}  // namespace sluice::gateway
