// The stages before any shared counter, each driven directly: the target's
// route, authentication with a fake key verifier, inspection of bodies, the
// call plan and the models listing.

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "gateway/authenticate.h"
#include "gateway/call_plan.h"
#include "gateway/endpoints.h"
#include "gateway/inspection.h"
#include "gateway/models_endpoint.h"
#include "gateway/stage_fixture.h"
#include "gateway/upstream_request.h"
#include "tokenizer/registry.h"

namespace sluice::gateway {
namespace {

using core::ErrorCode;
using store::Outcome;

constexpr std::string_view kConfig = R"(
providers:
  demo: {kind: mock}
models:
  cheap: {provider: demo, input: 1, output: 2, max_output_tokens: 4096}
  dear: {provider: demo, input: 5, output: 3, cached_input: 2}
profiles:
  main:
    substitutions: {dear: {to: cheap, percent: 0}}
    fallbacks: {dear: [cheap]}
agents:
  bot: {}
  capped: {max_tokens_per_call: 100, models: [cheap]}
  other: {}
)";

// ---- routeTarget

TEST(RouteTarget, NamesTheEndpointOrRefuses) {
  struct Case {
    const char* method;
    const char* target;
    std::optional<ErrorCode> refusal;
    Route::Kind kind;
    proto::Endpoint endpoint;
  };
  using K = Route::Kind;
  using E = proto::Endpoint;
  const Case cases[] = {
      {"POST", "/v1/chat/completions", {}, K::kApi, E::kChatCompletions},
      {"POST", "/chat/completions?x=1", {}, K::kApi, E::kChatCompletions},
      {"POST", "/v1/completions", {}, K::kApi, E::kCompletions},
      {"POST", "/v1/embeddings", {}, K::kApi, E::kEmbeddings},
      {"GET", "/v1/models", {}, K::kModels, E::kChatCompletions},
      {"GET", "/v1/models/cheap", {}, K::kModels, E::kChatCompletions},
      {"GET", "/v1/chat/completions", ErrorCode::kMethodNotAllowed, K::kApi, E::kChatCompletions},
      {"POST", "/v1/models", ErrorCode::kMethodNotAllowed, K::kApi, E::kChatCompletions},
      {"POST", "/v1/responses", ErrorCode::kNotFound, K::kApi, E::kChatCompletions},
      {"POST", "/v2/chat/completions", ErrorCode::kNotFound, K::kApi, E::kChatCompletions},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    Route r;
    auto no = routeTarget(c.method, c.target, r);
    ASSERT_EQ(no.has_value(), c.refusal.has_value());
    if (no) {
      EXPECT_EQ(no->code, *c.refusal);
      EXPECT_EQ(no->outcome, Outcome::kRejectedInvalid);
      continue;
    }
    EXPECT_EQ(r.kind, c.kind);
    if (r.kind == K::kApi) {
      EXPECT_EQ(r.endpoint, c.endpoint);
    }
  }
  Route r;
  ASSERT_FALSE(routeTarget("GET", "/v1/models/cheap", r));
  EXPECT_EQ(r.model_id, "cheap");
  ASSERT_FALSE(routeTarget("POST", "/v1/embeddings?q", r));
  EXPECT_EQ(r.upstream_path, "/embeddings");
  EXPECT_EQ(routeTarget("DELETE", "/v1/files", r)->message, "Unknown request URL: DELETE /v1/files.");
}

// ---- authenticate

class FakeKeys final : public KeyVerifier {
 public:
  const store::KeyRecord* verifyKey(std::string_view presented) override {
    ++lookups;
    auto it = keys.find(std::string(presented));
    return it == keys.end() ? nullptr : &it->second;
  }
  std::map<std::string, store::KeyRecord> keys;
  int lookups = 0;
};

struct AuthCase {
  const char* name;
  Credentials credentials;
  std::optional<ErrorCode> refusal;
  std::string agent;  // as the record says, refused or not
  std::string key_id;
};

TEST(Authenticate, KnowsWhoIsCallingOrSaysWhyNot) {
  testing::StageFixture f(kConfig);
  ASSERT_TRUE(f.ok());
  FakeKeys keys;
  keys.keys["sk-sluice-bot"] = store::KeyRecord{.id = "k_bot", .agent = "bot"};
  keys.keys["sk-sluice-gone"] = store::KeyRecord{.id = "k_gone", .agent = "retired-agent"};
  keys.keys["sk-sluice-pipe"] =
      store::KeyRecord{.id = "k_pipe", .agent = "", .pipeline = true, .acts_for = {"bot", "capped"}};
  keys.keys["sk-sluice-pipe-default"] =
      store::KeyRecord{.id = "k_pd", .agent = "other", .pipeline = true, .acts_for = {"bot"}};
  const AuthCase cases[] = {
      {"no header", {}, ErrorCode::kInvalidApiKey, "", ""},
      {"not a bearer", {.authorization = "Basic abc"}, ErrorCode::kInvalidApiKey, "", ""},
      {"unknown key", {.authorization = "Bearer sk-sluice-nope"}, ErrorCode::kInvalidApiKey, "", ""},
      {"a key", {.authorization = "Bearer sk-sluice-bot"}, {}, "bot", "k_bot"},
      {"lowercase bearer, extra spaces", {.authorization = "bearer   sk-sluice-bot"}, {}, "bot", "k_bot"},
      {"agent no longer configured",
       {.authorization = "Bearer sk-sluice-gone"},
       ErrorCode::kInvalidApiKey,
       "retired-agent",
       "k_gone"},
      {"pipeline key acting for an allowed agent",
       {.authorization = "Bearer sk-sluice-pipe", .agent = "capped"},
       {},
       "capped",
       "k_pipe"},
      {"pipeline key acting for another",
       {.authorization = "Bearer sk-sluice-pipe", .agent = "other"},
       ErrorCode::kAgentNotAllowed,
       "other",
       "k_pipe"},
      {"pipeline key without an agent or a default",
       {.authorization = "Bearer sk-sluice-pipe"},
       ErrorCode::kAgentNotAllowed,
       "",
       "k_pipe"},
      {"pipeline key's default agent", {.authorization = "Bearer sk-sluice-pipe-default"}, {}, "other", "k_pd"},
      {"a plain key ignores X-Sluice-Agent",
       {.authorization = "Bearer sk-sluice-bot", .agent = "capped"},
       {},
       "bot",
       "k_bot"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Identity who;
    auto no = authenticate(c.credentials, keys, *f.config, who);
    ASSERT_EQ(no.has_value(), c.refusal.has_value());
    if (no) {
      EXPECT_EQ(no->code, *c.refusal);
      EXPECT_EQ(no->outcome, Outcome::kRejectedAuth);
      // Never echo what was presented.
      const std::string_view presented = presentedKey(c.credentials.authorization);
      if (!presented.empty()) {
        EXPECT_EQ(no->message.find(presented), std::string::npos);
      }
    } else {
      ASSERT_NE(who.runtime, nullptr);
    }
    EXPECT_EQ(who.agent, c.agent);
    EXPECT_EQ(who.key_id, c.key_id);
  }
}

TEST(Authenticate, TakesTheRunAndBoundsWhatTheCallerNames) {
  testing::StageFixture f(kConfig);
  ASSERT_TRUE(f.ok());
  FakeKeys keys;
  keys.keys["sk-sluice-pipe"] = store::KeyRecord{.id = "k_pipe", .pipeline = true, .acts_for = {"bot"}};
  const std::string long_name(300, 'x');
  const std::string long_run(1000, 'r');
  Identity who;
  auto no = authenticate({.authorization = "Bearer sk-sluice-pipe", .agent = long_name, .run = long_run}, keys,
                         *f.config, who);
  ASSERT_TRUE(no);
  EXPECT_EQ(who.agent.size(), 64u);
  Identity ok;
  ASSERT_FALSE(
      authenticate({.authorization = "Bearer sk-sluice-pipe", .agent = "bot", .run = long_run}, keys, *f.config, ok));
  EXPECT_EQ(ok.run_id.size(), 256u);
}

// ---- inspectRequest

TEST(Inspection, ReadsWhatMoneyDependsOn) {
  std::string chat = R"({"model":"cheap","messages":[{"role":"user","content":"hello there"}],"max_tokens":50,"n":3,)"
                     R"("stream":true,"stream_options":{"include_usage":true}})";
  Inspection c;
  ASSERT_FALSE(inspectRequest(proto::Endpoint::kChatCompletions, chat, c));
  EXPECT_EQ(c.model, "cheap");
  EXPECT_TRUE(c.stream);
  EXPECT_TRUE(c.client_wants_usage);
  EXPECT_EQ(c.client_cap, 50);
  EXPECT_EQ(c.choices, 3);
  EXPECT_TRUE(c.has_output);
  EXPECT_GT(c.prompt_bound, 2);

  std::string completion = R"({"model":"cheap","prompt":["a","b"],"n":2,"best_of":3,"max_tokens":7})";
  Inspection p;
  ASSERT_FALSE(inspectRequest(proto::Endpoint::kCompletions, completion, p));
  EXPECT_EQ(p.choices, 6);  // 2 prompts × max(n, best_of)
  EXPECT_EQ(p.client_cap, 7);

  std::string embedding = R"({"model":"cheap","input":[[1,2,3],[4,5]]})";
  Inspection e;
  ASSERT_FALSE(inspectRequest(proto::Endpoint::kEmbeddings, embedding, e));
  EXPECT_FALSE(e.has_output);
  EXPECT_EQ(e.prompt_bound, 5);
}

TEST(Inspection, RefusesWhatItCannotBound) {
  struct Case {
    proto::Endpoint endpoint;
    std::string body;
    std::string param;
  };
  const std::string many_prompts = [] {
    std::string s = R"({"model":"m","n":128,"best_of":128,"prompt":[)";
    for (int i = 0; i < 10'000; ++i) s += i ? ",\"x\"" : "\"x\"";
    return s + "]}";
  }();
  Case cases[] = {
      {proto::Endpoint::kChatCompletions, "not json", ""},
      {proto::Endpoint::kChatCompletions, R"({"messages":[{"role":"user","content":"x"}]})", "model"},
      {proto::Endpoint::kCompletions, many_prompts, "prompt"},
      {proto::Endpoint::kEmbeddings, R"({"model":"m"})", "input"},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.body.substr(0, 60));
    Inspection out;
    auto no = inspectRequest(c.endpoint, c.body, out);
    ASSERT_TRUE(no);
    EXPECT_EQ(no->outcome, Outcome::kRejectedInvalid);
    if (!c.param.empty()) {
      EXPECT_EQ(no->param, c.param);
    }
  }
}

TEST(Inspection, TheExactCountIsBelowTheBoundAndCountsOnlyText) {
  auto enc = tokenizer::sharedEncoding("o200k_base");
  ASSERT_TRUE(enc) << enc.error();
  std::string body =
      R"({"model":"cheap","messages":[{"role":"user","content":"The quick brown fox jumps over the lazy dog."}]})";
  Inspection in;
  ASSERT_FALSE(inspectRequest(proto::Endpoint::kChatCompletions, body, in));
  const int64_t exact = exactPromptTokens(proto::Endpoint::kChatCompletions, body, **enc, in.prompt_bound);
  // 3 per message + the role + the text's 10 tokens + 3 to prime the reply.
  EXPECT_EQ(exact, 3 + 1 + static_cast<int64_t>((*enc)->count("The quick brown fox jumps over the lazy dog.")) + 3);
  EXPECT_LE(exact, in.prompt_bound);
  std::string broken = "{";
  EXPECT_EQ(exactPromptTokens(proto::Endpoint::kChatCompletions, broken, **enc, 77), 77);
}

// ---- planCall

Inspection chatFor(std::string model, std::optional<int64_t> cap, int64_t n = 1) {
  Inspection i;
  i.model = std::move(model);
  i.client_cap = cap;
  i.choices = n;
  i.prompt_bound = 10;
  return i;
}

TEST(CallPlan, TheCapComesFromTheClientTheAgentOrTheModel) {
  testing::StageFixture f(kConfig);
  ASSERT_TRUE(f.ok());
  CallPlan p;
  ASSERT_FALSE(planCall(*f.config, f.agent("bot"), "bot", chatFor("cheap", 20), "req_1", p));
  EXPECT_EQ(p.cap, 20);
  CallPlan q;
  ASSERT_FALSE(planCall(*f.config, f.agent("capped"), "capped", chatFor("cheap", std::nullopt), "req_1", q));
  EXPECT_EQ(q.cap, 100);
  CallPlan m;
  ASSERT_FALSE(planCall(*f.config, f.agent("bot"), "bot", chatFor("cheap", std::nullopt), "req_1", m));
  EXPECT_EQ(m.cap, 4096);  // the model's own limit
  Inspection embed = chatFor("cheap", std::nullopt);
  embed.has_output = false;
  CallPlan e;
  ASSERT_FALSE(planCall(*f.config, f.agent("bot"), "bot", embed, "req_1", e));
  EXPECT_EQ(e.cap, 0);
}

TEST(CallPlan, ReservesAtTheDearestPriceOfThePlan) {
  testing::StageFixture f(kConfig);
  ASSERT_TRUE(f.ok());
  CallPlan p;
  ASSERT_FALSE(planCall(*f.config, f.agent("bot"), "bot", chatFor("dear", 20), "req_1", p));
  ASSERT_EQ(p.attempts.size(), 2u);  // dear, then its fallback
  EXPECT_EQ(p.attempts[0].model, "dear");
  EXPECT_EQ(p.attempts[1].model, "cheap");
  const auto dear = f.config->priceOf("dear");
  const auto cheap = f.config->priceOf("cheap");
  ASSERT_TRUE(dear && cheap);
  EXPECT_EQ(p.price.input, std::max(dear->input, cheap->input));
  EXPECT_EQ(p.price.output, std::max(dear->output, cheap->output));
  EXPECT_EQ(p.price.cached_input, std::max(dear->cached_input, cheap->cached_input));
}

TEST(CallPlan, RefusesWhatNoStaticRuleAllows) {
  testing::StageFixture f(kConfig);
  ASSERT_TRUE(f.ok());
  struct Case {
    const char* name;
    const char* agent;
    Inspection request;
    ErrorCode code;
    std::string param;
  };
  Inspection with_mct = chatFor("cheap", 500);
  with_mct.layout.max_completion_tokens = proto::ByteSpan{1, 2};
  const Case cases[] = {
      {"above the per-call limit", "capped", chatFor("cheap", 500), ErrorCode::kMaxTokensExceeded, "max_tokens"},
      {"above it, as max_completion_tokens", "capped", with_mct, ErrorCode::kMaxTokensExceeded,
       "max_completion_tokens"},
      {"a model the agent may not use", "capped", chatFor("dear", 5), ErrorCode::kModelNotAllowed, "model"},
      {"a model nobody serves", "bot", chatFor("nope", 5), ErrorCode::kModelNotFound, "model"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    CallPlan p;
    auto no = planCall(*f.config, f.agent(c.agent), c.agent, c.request, "req_1", p);
    ASSERT_TRUE(no);
    EXPECT_EQ(no->code, c.code);
    EXPECT_EQ(no->param, c.param);
    EXPECT_EQ(no->outcome, Outcome::kRejectedInvalid);
  }
}

// ---- the attempt's upstream request

TEST(UpstreamRequest, RewritesOnlyTheModelAndTheCapAndAsksAStreamForItsUsage) {
  std::string body = R"({"model":"dear","messages":[{"role":"user","content":"hi"}],"stream":true})";
  Inspection in;
  ASSERT_FALSE(inspectRequest(proto::Endpoint::kChatCompletions, body, in));
  config::ProviderConfig pc;
  pc.timeout_ms = 1234;
  pc.first_byte_timeout_ms = 55;
  const net::UpstreamRequest up = upstreamRequest("/chat/completions", in, body, "cheap-v2", 64, pc);
  EXPECT_EQ(up.path, "/chat/completions");
  EXPECT_NE(up.body.find(R"("model":"cheap-v2")"), std::string::npos);
  EXPECT_NE(up.body.find(R"("max_completion_tokens":64)"), std::string::npos);
  EXPECT_NE(up.body.find(R"("include_usage":true)"), std::string::npos);
  EXPECT_NE(up.body.find(R"("content":"hi")"), std::string::npos);
  EXPECT_EQ(up.first_byte_timeout, std::chrono::milliseconds(55));
  EXPECT_GT(up.total_timeout, std::chrono::minutes(10));  // streams run long; idle and first-token guard them
  std::string plain = R"({"model":"dear","prompt":"hi","max_tokens":500})";
  Inspection c;
  ASSERT_FALSE(inspectRequest(proto::Endpoint::kCompletions, plain, c));
  const net::UpstreamRequest q = upstreamRequest("/completions", c, plain, "dear", 100, pc);
  EXPECT_NE(q.body.find(R"("max_tokens":100)"), std::string::npos);
  EXPECT_EQ(q.total_timeout, std::chrono::milliseconds(1234));
}

// ---- models

TEST(ModelsEndpoint, ListsWhatTheAgentMayCall) {
  testing::StageFixture f(kConfig);
  ASSERT_TRUE(f.ok());
  std::string body;
  ASSERT_FALSE(modelsBody(*f.config, *f.agent("bot").config, "", 1700000000, body));
  // Served models and substitution sources, sorted.
  EXPECT_NE(body.find(R"({"id":"cheap","object":"model","created":1700000000,"owned_by":"demo"})"), std::string::npos);
  EXPECT_NE(body.find(R"("id":"dear")"), std::string::npos);
  EXPECT_LT(body.find(R"("id":"cheap")"), body.find(R"("id":"dear")"));
  ASSERT_FALSE(modelsBody(*f.config, *f.agent("capped").config, "", 1, body));
  EXPECT_EQ(body.find(R"("id":"dear")"), std::string::npos);
  ASSERT_FALSE(modelsBody(*f.config, *f.agent("bot").config, "dear", 1, body));
  EXPECT_TRUE(body.starts_with(R"({"id":"dear")"));
  auto no = modelsBody(*f.config, *f.agent("capped").config, "dear", 1, body);
  ASSERT_TRUE(no);
  EXPECT_EQ(no->code, ErrorCode::kModelNotFound);
}

}  // namespace
}  // namespace sluice::gateway
