// Each validation rule: reported at the right line:column with a clear sentence.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.h"
#include "config/test_util.h"

namespace sluice::config {
namespace {

using testing::fixturePath;
using testing::hasError;
using ::testing::HasSubstr;
using testing::loadFixture;
using testing::loadText;
using testing::readText;

class FixtureTest : public ::testing::Test {
 protected:
  LoadResult load(std::string_view name) {
    text_ = readText(fixturePath(name));
    return loadFixture(name);
  }
  std::string text_;
};

TEST_F(FixtureTest, UnknownKeysSuggestTheNearestKey) {
  const auto r = load("unknown_keys.yaml");
  EXPECT_TRUE(hasError(r, text_, "listn", "unknown key 'listn' in server; did you mean 'listen'?"));
  EXPECT_TRUE(hasError(r, text_, "api_key_envv",
                       "unknown key 'api_key_envv' in providers.openai; did you mean 'api_key_env'?"));
  EXPECT_TRUE(hasError(r, text_, "budget:", "unknown key 'budget' in the configuration; did you mean 'budgets'?"));
  // Nothing close: the valid keys are listed instead.
  EXPECT_TRUE(hasError(r, text_, "frobnicate",
                       "unknown key 'frobnicate' in resilience.retries (expected max, base_ms or max_ms)"));
  EXPECT_EQ(testing::errorCount(r), 4u) << testing::dump(r);
}

TEST_F(FixtureTest, PositionsAreOneBasedLineAndColumn) {
  const auto r = load("unknown_keys.yaml");
  ASSERT_FALSE(r.has_value());
  const Diagnostic& first = r.error().front();  // sorted in file order
  EXPECT_EQ(first.file, fixturePath("unknown_keys.yaml"));
  EXPECT_EQ(first.line, 2);
  EXPECT_EQ(first.column, 3);
  EXPECT_EQ(first.str(),
            fixturePath("unknown_keys.yaml") + ":2:3: unknown key 'listn' in server; did you mean 'listen'?");
}

TEST_F(FixtureTest, WrongTypesAreNamed) {
  const auto r = load("wrong_types.yaml");
  EXPECT_TRUE(hasError(r, text_, "lots", "server.max_body_bytes must be a whole number, got 'lots'"));
  EXPECT_TRUE(hasError(r, text_, "[1, 2]", "server.threads must be a whole number, got a list"));
  EXPECT_TRUE(hasError(r, text_, "maybe", "providers.openai.verify_tls must be true or false, got 'maybe'"));
  EXPECT_TRUE(hasError(r, text_, "1.5", "providers.openai.timeout_ms must be a whole number, got '1.5'"));
  EXPECT_TRUE(hasError(r, text_, "sixty", "agents.bot.rpm must be a whole number, got 'sixty'"));
  EXPECT_TRUE(hasError(r, text_, "gpt-4.1", "agents.bot.models must be a list like [a, b], got 'gpt-4.1'"));
  EXPECT_TRUE(
      hasError(r, text_, "{amount: 5}", "agents.bot.usd_per_day must be a USD amount like 0.28, got a mapping"));
  EXPECT_EQ(testing::errorCount(r), 7u) << testing::dump(r);
}

TEST_F(FixtureTest, ZeroAndNegativeLimitsAreRejected) {
  const auto r = load("limits.yaml");
  EXPECT_TRUE(hasError(r, text_, "0,", "budgets.global.usd_per_day must be greater than zero, got 0"));
  EXPECT_TRUE(hasError(r, text_, "-5}", "budgets.global.calls_per_minute must be greater than zero, got -5"));
  EXPECT_TRUE(hasError(r, text_, "-1,", "budgets.run.usd must be greater than zero, got -1"));
  EXPECT_TRUE(hasError(r, text_, "0}", "budgets.run.calls must be greater than zero, got 0"));
  EXPECT_TRUE(hasError(r, text_, "0", "agents.bot.rpm must be greater than zero, got 0"));
  EXPECT_TRUE(hasError(r, text_, "-10", "agents.bot.tpm must be greater than zero, got -10"));
  EXPECT_TRUE(hasError(r, text_, "0", "agents.bot.max_tokens_per_call must be greater than zero"));
  EXPECT_TRUE(hasError(r, text_, "0.0", "agents.bot.usd_per_call must be greater than zero, got 0.0"));
  EXPECT_EQ(testing::errorCount(r), 8u) << testing::dump(r);
}

TEST_F(FixtureTest, ModelsNeedAPriceAndAKnownProvider) {
  const auto r = load("models.yaml");
  EXPECT_TRUE(hasError(r, text_, "my-model",
                       "model 'my-model' has no input or output price and is not in the price catalog; "
                       "set input and output in USD per 1M tokens"));
  EXPECT_TRUE(hasError(r, text_, "rely,",
                       "model 'other-model' uses provider 'rely', which is not configured; "
                       "did you mean 'relay'?"));
  EXPECT_TRUE(hasError(r, text_, "deepseek-v3.2",
                       "model 'deepseek-v3.2' has no provider (the price catalog routes it to 'deepseek', "
                       "which is not configured); set provider: to one of openai or relay"));
  EXPECT_TRUE(hasError(r, text_, "half-priced", "model 'half-priced' has no output price"));
  EXPECT_EQ(testing::errorCount(r), 4u) << testing::dump(r);
}

TEST_F(FixtureTest, ProviderKindAndBaseUrlAreChecked) {
  const auto r = load("providers.yaml");
  EXPECT_TRUE(
      hasError(r, text_, "anthropic,", "provider 'anthro' has unknown kind 'anthropic'; expected openai or mock"));
  EXPECT_TRUE(hasError(r, text_, "\"ftp://",
                       "provider 'ftp' base_url must start with http:// or https://, got 'ftp://files.example/v1'"));
  EXPECT_TRUE(hasError(r, text_, "nourl:", "provider 'nourl' needs a base_url"));
  EXPECT_TRUE(hasError(r, text_, "\"https://bad host", "provider 'spaced' base_url must not contain spaces"));
  EXPECT_TRUE(hasError(r, text_, "\"1-BAD KEY\"", "providers.badenv.api_key_env must name an environment variable"));
  EXPECT_EQ(testing::errorCount(r), 5u) << testing::dump(r);  // demo (mock) needs no base_url
}

TEST_F(FixtureTest, FallbackCyclesAreSpelledOut) {
  const auto r = load("fallback_cycle.yaml");
  // Reported at the edge that closes the cycle.
  EXPECT_TRUE(
      hasError(r, text_, "gpt-4.1]", "profile 'loop' has a fallback cycle: gpt-4.1 -> deepseek-v3.2 -> gpt-4.1"));
  EXPECT_TRUE(hasError(r, text_, "gpt-4.1]", "profile 'selfish' has a fallback cycle: gpt-4.1 -> gpt-4.1"));
  EXPECT_EQ(testing::errorCount(r), 2u) << testing::dump(r);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].line, 10);
  EXPECT_EQ(r.error()[1].line, 13);
}

TEST_F(FixtureTest, TierSharesAndAgentTiers) {
  const auto r = load("tiers.yaml");
  EXPECT_TRUE(
      hasError(r, text_, "tiers:", "tier shares add up to 1.1, more than 1.0 (fast 0.3, premium 0.4, standard 0.4)"));
  EXPECT_TRUE(hasError(r, text_, "premum}",
                       "agent 'a1' is in tier 'premum', which is not defined under budgets.tiers; did you mean "
                       "'premium'?"));
  EXPECT_TRUE(hasError(r, text_, "gold}",
                       "agent 'a2' is in tier 'gold', which is not defined under budgets.tiers "
                       "(tiers are fast, premium or standard)"));
  EXPECT_EQ(testing::errorCount(r), 3u) << testing::dump(r);
}

TEST_F(FixtureTest, ProfileSubstitutionsAndActiveProfile) {
  const auto r = load("profiles.yaml");
  EXPECT_TRUE(hasError(r, text_, "deepseek-v3.3,",
                       "profile 'canary' substitutes gpt-4.1 with 'deepseek-v3.3', which is not a configured model"));
  EXPECT_TRUE(hasError(r, text_, "150}",
                       "profiles.canary.substitutions.gpt-4.1-mini.percent must be between 0 "
                       "and 100, got 150"));
  EXPECT_TRUE(hasError(r, text_, "gtp-4.1:",
                       "profile 'canary' substitutes 'gtp-4.1', which is not a configured "
                       "model; did you mean 'gpt-4.1'?"));
  EXPECT_TRUE(hasError(r, text_, "canry", "active_profile 'canry' is not a profile; did you mean 'canary'?"));
  EXPECT_EQ(testing::errorCount(r), 4u) << testing::dump(r);
}

TEST_F(FixtureTest, AgentAllowedModelsMustExist) {
  const auto r = load("agent_models.yaml");
  EXPECT_TRUE(hasError(r, text_, "gpt-4.2,",
                       "agent 'drafter' allows 'gpt-4.2', which is not a configured model; did you mean 'gpt-4.1'?"));
  // Known to the catalog, but its provider is not configured: say so.
  EXPECT_TRUE(hasError(r, text_, "gemini-2.5-flash]",
                       "agent 'drafter' allows 'gemini-2.5-flash', which is not a configured model; the price "
                       "catalog routes it to provider 'google', which is not configured"));
  EXPECT_EQ(testing::errorCount(r), 2u) << testing::dump(r);
}

TEST_F(FixtureTest, TimeZoneAndShortBudgetPolicy) {
  const auto r = load("time_zone.yaml");
  EXPECT_TRUE(hasError(r, text_, "Europe/Pars",
                       "budgets.time_zone 'Europe/Pars' is not a known time zone; did you mean 'Europe/Paris'?"));
  EXPECT_TRUE(hasError(r, text_, "maybe", "budgets.on_short_budget must be clamp or reject, got 'maybe'"));
  EXPECT_TRUE(hasError(r, text_, "0", "budgets.reservation_ttl_s must be greater than zero, got 0"));
  EXPECT_EQ(testing::errorCount(r), 3u) << testing::dump(r);
}

TEST_F(FixtureTest, ResilienceRanges) {
  const auto r = load("resilience.yaml");
  EXPECT_TRUE(hasError(r, text_, "50,", "resilience.retries.max must be between 0 and 10, got 50"));
  EXPECT_TRUE(hasError(r, text_, "100}", "resilience.retries.max_ms (100) must be at least base_ms (500)"));
  EXPECT_TRUE(hasError(r, text_, "0,", "resilience.breaker.failures must be greater than zero, got 0"));
  EXPECT_TRUE(
      hasError(r, text_, "100000000,", "resilience.breaker.open_ms must be between 1 and 86400000, got 100000000"));
  EXPECT_TRUE(hasError(r, text_, "-1}", "resilience.breaker.half_open_probes must be greater than zero, got -1"));
  EXPECT_EQ(testing::errorCount(r), 5u) << testing::dump(r);
}

TEST_F(FixtureTest, AllErrorsAreCollectedInFileOrder) {
  const auto r = load("many_errors.yaml");
  EXPECT_TRUE(hasError(r, text_, "\"localhost\"", "server.listen must be host:port, like 127.0.0.1:4000"));
  EXPECT_TRUE(hasError(r, text_, "0}", "server.max_body_bytes must be greater than zero, got 0"));
  EXPECT_TRUE(hasError(r, text_, "\"mysql://db\"", "storage.state must be memory, sqlite:PATH or redis://"));
  EXPECT_TRUE(hasError(r, text_, "1.5}", "budgets.tiers.fast.share must be a decimal above 0 and at most 1"));
  EXPECT_TRUE(hasError(r, text_, "paid-model]", "agent 'bot' allows 'paid-model', which is not a configured model"));
  EXPECT_TRUE(hasError(r, text_, "0}", "agents.bot.rpm must be greater than zero, got 0"));
  EXPECT_TRUE(
      hasError(r, text_, "unknown_model_price", "unknown_model_price needs input and output, in USD per 1M tokens"));
  ASSERT_EQ(testing::errorCount(r), 7u) << testing::dump(r);
  for (size_t i = 1; i < r.error().size(); ++i) {
    const auto& a = r.error()[i - 1];
    const auto& b = r.error()[i];
    EXPECT_TRUE(a.line < b.line || (a.line == b.line && a.column <= b.column)) << testing::dump(r);
  }
}

TEST(ValidationTest, SyntaxErrorIsReportedWithItsPosition) {
  const auto r = loadText("providers:\n  demo: {kind: mock\nagents: {}\n");
  ASSERT_EQ(testing::errorCount(r), 1u) << testing::dump(r);
  EXPECT_EQ(r.error()[0].file, "test.yaml");
  EXPECT_GE(r.error()[0].line, 2);
  EXPECT_THAT(r.error()[0].message, HasSubstr("not valid YAML"));
}

TEST(ValidationTest, EmptyConfigAndNoProvidersAreErrors) {
  EXPECT_THAT(testing::dump(loadText("")), HasSubstr("the configuration is empty"));
  EXPECT_THAT(testing::dump(loadText("# only a comment\n")), HasSubstr("the configuration is empty"));
  const std::string text = "server: {listen: \"127.0.0.1:0\"}\nproviders: {}\n";
  EXPECT_TRUE(hasError(loadText(text), text, "providers:", "no providers are configured"));
  EXPECT_THAT(testing::dump(loadText("server: {listen: \"127.0.0.1:0\"}\n")), HasSubstr("no providers are configured"));
  EXPECT_THAT(testing::dump(loadText("- a\n- b\n")), HasSubstr("the configuration must be a mapping"));
}

TEST(ValidationTest, MissingFileIsOneDiagnosticWithoutPosition) {
  const auto r = loadConfigFile(fixturePath("does_not_exist.yaml"), testing::testCatalogPath());
  ASSERT_EQ(testing::errorCount(r), 1u);
  EXPECT_EQ(r.error()[0].line, 0);
  EXPECT_EQ(r.error()[0].str(),
            fixturePath("does_not_exist.yaml") + ": cannot open the file: No such file or directory");
}

TEST(ValidationTest, DuplicateKeysAndNamesAreErrors) {
  const std::string text =
      "providers:\n"
      "  demo: {kind: mock}\n"
      "  demo: {kind: mock}\n"
      "server: {threads: 1, threads: 2}\n";
  const auto r = loadText(text);
  EXPECT_TRUE(hasError(r, text, "demo: {kind: mock}", "provider name 'demo' appears twice in providers"));
  EXPECT_TRUE(hasError(r, text, "threads: 2", "key 'threads' appears twice in server"));
  EXPECT_EQ(testing::errorCount(r), 2u) << testing::dump(r);
}

// The cap on buffered request bodies must leave room for one body of the
// largest size allowed (else such a body could never be served), or be 0.
TEST(ValidationTest, BufferedBodyCapCoversTheLargestBody) {
  const std::string text =
      "providers: {demo: {kind: mock}}\nserver: {max_body_bytes: 2048, max_buffered_body_bytes: 1024}\n";
  const auto r = loadText(text);
  EXPECT_TRUE(hasError(r, text, "1024}",
                       "server.max_buffered_body_bytes (1024) must be at least server.max_body_bytes (2048), or 0 for "
                       "no cap"));
  EXPECT_EQ(testing::errorCount(r), 1u) << testing::dump(r);
  const std::string negative = "providers: {demo: {kind: mock}}\nserver: {max_buffered_body_bytes: -1}\n";
  EXPECT_TRUE(
      hasError(loadText(negative), negative, "-1}", "server.max_buffered_body_bytes must not be negative, got -1"));
  auto ok = loadText(
      "providers: {demo: {kind: mock}}\nserver: {max_body_bytes: 2048, max_buffered_body_bytes: 2048}\n");
  ASSERT_TRUE(ok.has_value()) << testing::dump(ok);
  EXPECT_EQ(ok->server.max_buffered_body_bytes, 2048);
  ok = loadText("providers: {demo: {kind: mock}}\nserver: {max_buffered_body_bytes: 0}\n");
  ASSERT_TRUE(ok.has_value()) << testing::dump(ok);
  EXPECT_EQ(ok->server.max_buffered_body_bytes, 0);
  // Not set: 256 MiB, raised to max_body_bytes when that is larger.
  ok = loadText("providers: {demo: {kind: mock}}\n");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->server.max_buffered_body_bytes, 256 * 1024 * 1024);
  ok = loadText("providers: {demo: {kind: mock}}\nserver: {max_body_bytes: 1073741824}\n");
  ASSERT_TRUE(ok.has_value()) << testing::dump(ok);
  EXPECT_EQ(ok->server.max_buffered_body_bytes, 1073741824);
}

TEST(ValidationTest, ActiveProfileRules) {
  // One profile: it is active even when not named.
  auto r = loadText("providers: {demo: {kind: mock}}\nprofiles: {only: {}}\n");
  ASSERT_TRUE(r.has_value()) << testing::dump(r);
  EXPECT_EQ(r->active_profile, "only");
  // Several profiles: active_profile is required.
  std::string text = "providers: {demo: {kind: mock}}\nprofiles: {a: {}, b: {}}\n";
  EXPECT_TRUE(hasError(loadText(text), text, "profiles:", "active_profile is missing; set it to one of a or b"));
  // Naming a profile when there are none.
  text = "providers: {demo: {kind: mock}}\nactive_profile: x\n";
  EXPECT_TRUE(hasError(loadText(text), text, "x", "active_profile 'x' is not a profile; no profiles are defined"));
  // No profiles at all: nothing active.
  r = loadText("providers: {demo: {kind: mock}}\n");
  ASSERT_TRUE(r.has_value()) << testing::dump(r);
  EXPECT_EQ(r->active_profile, "");
}

TEST(ValidationTest, SubstitutionShapeAndSelfSubstitution) {
  const std::string text =
      "providers: {openai: {base_url: \"https://api.openai.com/v1\"}}\n"
      "profiles:\n"
      "  p:\n"
      "    substitutions:\n"
      "      gpt-4.1: gpt-4.1-mini\n"
      "      gpt-4.1-mini: {to: gpt-4.1-mini}\n"
      "      text-embedding-3-small: {percent: 5}\n"
      "    fallbacks: {gpt-4.1: [gpt-4.1-mini, gpt-4.1-mini]}\n";
  const auto r = loadText(text);
  EXPECT_TRUE(
      hasError(r, text, "gpt-4.1-mini",
               "the substitution of 'gpt-4.1' in profile 'p' must be a mapping like {to: MODEL, percent: 100}"));
  EXPECT_TRUE(hasError(r, text, "gpt-4.1-mini}", "profile 'p' substitutes 'gpt-4.1-mini' with itself"));
  EXPECT_TRUE(hasError(r, text, "text-embedding-3-small:",
                       "the substitution of 'text-embedding-3-small' in profile 'p' needs to: MODEL"));
  EXPECT_TRUE(hasError(r, text, "gpt-4.1-mini]", "profile 'p' lists fallback 'gpt-4.1-mini' twice for 'gpt-4.1'"));
  EXPECT_EQ(testing::errorCount(r), 4u) << testing::dump(r);
}

TEST(ValidationTest, ServerStorageAndEnvNames) {
  const std::string text =
      "server: {listen: \"127.0.0.1:99999\", admin_key_env: \"my key\", idle_timeout_ms: 0}\n"
      "storage: {state: memory, ledger: \"mongodb://x\", ledger_retention_days: -1}\n"
      "providers: {demo: {kind: mock}}\n";
  const auto r = loadText(text);
  EXPECT_TRUE(hasError(r, text, "\"127.0.0.1:99999\"", "server.listen must be host:port"));
  EXPECT_TRUE(hasError(r, text, "\"my key\"", "server.admin_key_env must name an environment variable"));
  EXPECT_TRUE(hasError(r, text, "0}", "server.idle_timeout_ms must be greater than zero"));
  EXPECT_TRUE(hasError(r, text, "\"mongodb://x\"", "storage.ledger must be sqlite:PATH or postgresql://..."));
  EXPECT_TRUE(hasError(r, text, "-1}", "storage.ledger_retention_days"));
  EXPECT_EQ(testing::errorCount(r), 5u) << testing::dump(r);
}

TEST(ValidationTest, ReservationTtlOutlastsEveryWaitWithoutProgress) {
  // A running call renews its reservation on progress; a TTL shorter than a
  // provider's longest silent wait would let a healthy call lose it.
  const std::string text =
      "providers: {slow: {kind: mock, connect_timeout_ms: 5000, first_byte_timeout_ms: 120000}}\n"
      "budgets:\n  reservation_ttl_s: 60\n";
  const auto r = loadText(text);
  EXPECT_TRUE(hasError(r, text, "budgets",
                       "budgets.reservation_ttl_s is 60 s, but provider 'slow' can wait 125000 ms without progress"));
  EXPECT_EQ(testing::errorCount(r), 1u) << testing::dump(r);
  EXPECT_TRUE(loadText("providers: {slow: {kind: mock, connect_timeout_ms: 300, first_byte_timeout_ms: 500, "
                       "idle_timeout_ms: 800}}\nbudgets: {reservation_ttl_s: 1}\n")
                  .has_value());
}

TEST(ValidationTest, BudgetsAgentsKeyPointsToAgents) {
  const std::string text = "providers: {demo: {kind: mock}}\nbudgets:\n  agents: {bot: {usd_per_day: 1}}\n";
  EXPECT_TRUE(hasError(loadText(text), text, "agents:",
                       "unknown key 'agents' in budgets; budgets holds global, tiers, run, on_short_budget, "
                       "time_zone and reservation_ttl_s; per-agent limits go under agents.NAME"));
}

TEST(ValidationTest, MalformedNamesAreRejected) {
  const std::string text = "providers:\n  \"my provider\": {kind: mock}\n  demo: {kind: mock}\n";
  EXPECT_TRUE(hasError(loadText(text), text, "\"my provider\"",
                       "provider name 'my provider' in providers must be a non-empty word without spaces"));
}

TEST(ValidationTest, NullValuesAreReportedAtTheirKey) {
  const std::string text = "providers: {demo: {kind: mock}}\nagents:\n  bot:\n    rpm:\n    tier: fast\n";
  const auto r = loadText(text);
  EXPECT_TRUE(hasError(r, text, "rpm:", "agents.bot.rpm must be a whole number, got nothing"));
}

// Found by tests/fuzz/config_fuzz: a control character quoted from the file
// (a key with an escaped line break, yaml-cpp's "unknown escape character")
// broke the one-line file:line:column format, so a crafted key could forge
// another diagnostic line in `sluice check`.
TEST(DiagnosticTextTest, ControlCharactersFromTheFileAreEscaped) {
  const std::string key_yaml = "server:\n  \"a\\nfuzz.yaml:9:9: forged\": 1\n";
  const auto r = loadText(key_yaml);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(hasError(r, key_yaml, "\"a", "unknown key 'a\\nfuzz.yaml:9:9: forged' in server")) << testing::dump(r);
  for (const std::string& yaml : {key_yaml, std::string("x: \"\\\x01\"\n"), std::string("a: \"\\\x7f\"\n"),
                                  std::string("\"\\t\\r\\x1b\": 1\n")}) {
    const auto bad = loadText(yaml);
    ASSERT_FALSE(bad.has_value()) << yaml;
    for (const Diagnostic& d : bad.error()) {
      for (const char c : d.message) {
        EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f) << testing::dump(bad);
      }
    }
  }
}

}  // namespace
}  // namespace sluice::config
