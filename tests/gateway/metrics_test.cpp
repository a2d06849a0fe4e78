// /metrics driven through the pipeline: counters from real exchanges,
// labels from the config only, the exposition's shape, and the admin key.

#include "gateway/metrics.h"

#include <gtest/gtest.h>

#include <sstream>

#include "gateway/pipeline.h"

namespace sluice::gateway {
namespace {

constexpr std::string_view kConfig = R"(
providers:
  demo: {kind: mock}
models:
  m: {provider: demo, input: 1, output: 2}
agents:
  a: {usd_per_day: 1}
  b: {}
)";

constexpr std::string_view kChat = R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":20})";

std::shared_ptr<testing::FakeServerStream> get(testing::Pipeline& p, std::string_view auth) {
  auto stream = std::make_shared<testing::FakeServerStream>();
  net::Headers h;
  if (!auth.empty()) h.push_back({"authorization", std::string(auth)});
  p.gw->handler()(net::HttpRequest{"GET", "/metrics", std::move(h), ""}, stream, p.loop);
  p.loop.runReady();
  return stream;
}

// "name{k="v",...} number": std::regex would do, but GCC 12 warns inside it
// at -O1 (the sanitizer build), so by hand.
bool wellFormedSample(std::string_view line) {
  size_t i = 0;
  const auto nameChar = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
  while (i < line.size() && nameChar(line[i])) ++i;
  if (i == 0 || i == line.size()) return false;
  if (line[i] == '{') {
    ++i;
    while (true) {
      const size_t start = i;
      while (i < line.size() && nameChar(line[i])) ++i;
      if (i == start || line.substr(i, 2) != "=\"") return false;
      i += 2;
      while (i < line.size() && line[i] != '"') i += line[i] == '\\' ? 2 : 1;
      if (i >= line.size()) return false;
      ++i;
      if (i < line.size() && line[i] == ',') {
        ++i;
        continue;
      }
      if (i >= line.size() || line[i] != '}') return false;
      ++i;
      break;
    }
  }
  if (i >= line.size() || line[i] != ' ') return false;
  const std::string_view value = line.substr(i + 1);
  if (value == "+Inf") return true;
  if (value.empty()) return false;
  for (const char c : value) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == 'e' || c == '+')) return false;
  }
  return true;
}

TEST(Metrics, CountRequestsUnderConfigNamesOnly) {
  testing::Pipeline p;
  ASSERT_TRUE(p.start(kConfig, {"a", "b"}));
  p.setMock(R"({"completion_tokens": 5})");
  for (int i = 0; i < 2; ++i) EXPECT_EQ(p.send("a", std::string(kChat))->status(), 200);
  EXPECT_EQ(p.send("b", R"({"model":"not-configured","messages":[{"role":"user","content":"x"}]})")->status(), 404);
  p.loop.runReady();
  const std::string text = p.gw->renderMetrics();
  EXPECT_NE(text.find(R"(sluice_requests_total{agent="a",model="m",provider="demo",outcome="ok"} 2)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(sluice_requests_total{agent="b",model="",provider="",outcome="rejected_invalid"} 1)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(sluice_tokens_total{agent="a",model="m",kind="output"} 10)"), std::string::npos);
  EXPECT_NE(text.find(R"(sluice_upstream_attempts_total{provider="demo",model="m",result="ok"} 2)"), std::string::npos);
  EXPECT_NE(text.find("sluice_request_duration_seconds_count 3"), std::string::npos);
  EXPECT_NE(text.find(R"(sluice_budget_limit_usd{scope="agent:a",window="day"} 1.000000)"), std::string::npos);
  EXPECT_NE(text.find(R"(sluice_breaker_state{provider="demo",model="m"} 0)"), std::string::npos);
  EXPECT_EQ(text.find("not-configured"), std::string::npos);
  // Every line is a comment or a sample: a name, optional labels, a number.
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) continue;
    EXPECT_TRUE(wellFormedSample(line)) << line;
  }
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  LatencyHistogram h;
  h.observe(0.0005);
  h.observe(0.2);
  h.observe(1000);  // beyond every bound: only +Inf
  EXPECT_EQ(h.count, 3u);
  EXPECT_EQ(h.buckets[0], 1u);
  uint64_t total = 0;
  for (const uint64_t b : h.buckets) total += b;
  EXPECT_EQ(total, 2u);
}

TEST(Metrics, AreOffWithoutAnAdminKeyAndNeedItWithOne) {
  {
    testing::Pipeline p;
    p.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    ASSERT_TRUE(p.start(kConfig, {"a"}));
    EXPECT_EQ(get(p, "")->status(), 404);
    EXPECT_EQ(get(p, "Bearer " + p.secrets["a"])->status(), 404);
  }
  testing::Pipeline p;
  p.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "SLUICE_ADMIN_KEY") return "the-admin-key";
    return std::nullopt;
  };
  ASSERT_TRUE(p.start(kConfig, {"a"}));
  EXPECT_EQ(get(p, "")->status(), 401);
  EXPECT_EQ(get(p, "Bearer the-admin-ke")->status(), 401);
  EXPECT_EQ(get(p, "Bearer " + p.secrets["a"])->status(), 401);
  auto ok = get(p, "Bearer the-admin-key");
  EXPECT_EQ(ok->status(), 200);
  EXPECT_NE(ok->body().find("sluice_build_info"), std::string::npos);
}

TEST(Metrics, ArePublicWhenTheConfigSaysSo) {
  testing::Pipeline p;
  p.env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  ASSERT_TRUE(p.start(std::string(kConfig) + "server: {metrics_public: true}\n", {"a"}));
  EXPECT_EQ(get(p, "")->status(), 200);
}

}  // namespace
}  // namespace sluice::gateway
