#include "store/usage.h"

#include "core/json_text.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace sluice::store {
namespace {

UsageRecord sample(int i) {
  UsageRecord r;
  r.request_id = "req_" + std::to_string(i);
  r.agent = "drafter";
  r.outcome = i % 2 ? Outcome::kRejectedBudget : Outcome::kOk;
  r.usage = {.input = 10, .cached = 2, .output = 5, .reasoning = 1};
  r.cost_micro_usd = 123;
  r.usage_source = UsageSource::kEstimated;
  r.attempts.push_back(Attempt{.model = "m", .provider = "p", .http_status = 200});
  return r;
}

TEST(Usage, JsonLineHasLedgerFields) {
  auto j = nlohmann::json::parse(toJsonLine(sample(1)));
  EXPECT_EQ(j["request_id"], "req_1");
  EXPECT_EQ(j["outcome"], "rejected_budget");
  EXPECT_EQ(j["input_tokens"], 10);
  EXPECT_EQ(j["cached_tokens"], 2);
  EXPECT_EQ(j["output_tokens"], 5);
  EXPECT_EQ(j["reasoning_tokens"], 1);
  EXPECT_EQ(j["cost_micro_usd"], 123);
  EXPECT_EQ(j["usage_source"], "estimated");
  EXPECT_EQ(j["attempts"].size(), 1u);
}

TEST(Usage, InvalidUtf8FromClientsDoesNotThrow) {
  auto r = sample(0);
  r.requested_model = std::string("bad\xff\xfe", 5);
  EXPECT_NO_THROW({ auto line = toJsonLine(r); EXPECT_FALSE(line.empty()); });
}

// Every string field goes through the same writer; the plain-ASCII fast path
// must agree byte for byte with core::appendJsonString, wherever in an 8-byte
// word the special byte sits.
TEST(Usage, StringFieldsAreEscapedLikeJsonString) {
  const std::string specials[] = {"\"", "\\", "\n", std::string(1, '\0'), "\x1f", "\x7f", "\xc3\xa9", "\xff", " ", "~"};
  for (const auto& sp : specials) {
    for (size_t pos = 0; pos <= 17; ++pos) {
      auto r = sample(0);
      r.run_id = std::string(pos, 'a') + sp + std::string(17 - pos, 'b');
      const std::string line = toJsonLine(r);
      std::string expected = R"("run_id":)";
      core::appendJsonString(expected, r.run_id);
      EXPECT_NE(line.find(expected + ","), std::string::npos) << "pos " << pos << " in " << line;
      if (sp != "\xff") {
        EXPECT_EQ(nlohmann::json::parse(line)["run_id"], r.run_id);
      }
    }
  }
  auto r = sample(0);
  r.run_id = "";
  EXPECT_NE(toJsonLine(r).find(R"("run_id":"",)"), std::string::npos);
}

TEST(Usage, JsonlSinkWritesEveryRecordOnFlushAndClose) {
  auto path = std::filesystem::temp_directory_path() / ("sluice_usage_" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(path);
  {
    auto sink = openJsonlSink(path.string());
    ASSERT_TRUE(sink);
    for (int i = 0; i < 500; ++i) (*sink)->submit(sample(i));
    (*sink)->flush();
    std::ifstream in(path);
    int lines = 0;
    for (std::string l; std::getline(in, l);) ++lines;
    EXPECT_EQ(lines, 500);
    for (int i = 500; i < 700; ++i) (*sink)->submit(sample(i));
  }  // destruction drains
  std::ifstream in(path);
  int lines = 0;
  for (std::string l; std::getline(in, l);) {
    auto j = nlohmann::json::parse(l);
    EXPECT_EQ(j["request_id"], "req_" + std::to_string(lines));
    ++lines;
  }
  EXPECT_EQ(lines, 700);
  std::filesystem::remove(path);
}

TEST(Usage, TeeDeliversToAll) {
  auto a = std::make_shared<MemoryUsageSink>();
  auto b = std::make_shared<MemoryUsageSink>();
  TeeUsageSink tee({a, b});
  tee.submit(sample(3));
  EXPECT_EQ(a->records().size(), 1u);
  EXPECT_EQ(b->records().size(), 1u);
  EXPECT_EQ(b->records()[0].request_id, "req_3");
}

}  // namespace
}  // namespace sluice::store
