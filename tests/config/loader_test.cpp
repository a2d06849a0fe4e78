// Loading: the shipped examples, defaults, money without floats, catalog merge, hash, summary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.h"
#include "config/test_util.h"

namespace sluice::config {
namespace {

using testing::dump;
using testing::examplePath;
using testing::hasError;
using ::testing::HasSubstr;
using testing::loadText;
using testing::shippedCatalogPath;
using ::testing::UnorderedElementsAre;

TEST(ExamplesTest, QuickstartLoadsWithZeroErrors) {
  const auto r = loadConfigFile(examplePath("quickstart.yaml"), shippedCatalogPath());
  ASSERT_TRUE(r.has_value()) << dump(r);
  const Config& c = *r;
  EXPECT_EQ(c.server.listen, "127.0.0.1:4000");
  EXPECT_EQ(c.server.usage_log, "sluice-usage.jsonl");
  EXPECT_EQ(c.storage.state, "sqlite:sluice.db");
  EXPECT_EQ(c.storage.ledger, "sqlite:sluice-ledger.db");
  EXPECT_EQ(c.storage.ledger_retention_days, 0) << "keep everything";
  ASSERT_EQ(c.providers.size(), 1u);
  EXPECT_EQ(c.providers.at("demo").kind, ProviderKind::kMock);
  EXPECT_EQ(c.models.size(), 13u);
  for (const auto& [name, m] : c.models) {
    EXPECT_EQ(m.provider, "demo") << name;
    EXPECT_EQ(m.price_source, "catalog") << name;
  }
  EXPECT_THAT(c.agents, ::testing::SizeIs(4));
  EXPECT_EQ(c.agents.at("intent_classifier").tier, "fast");
  EXPECT_THAT(c.agents.at("retriever").tier, ::testing::AnyOf("fast", "standard"));
  EXPECT_EQ(c.agents.at("drafter").tier, "premium");
  EXPECT_EQ(c.agents.at("reviewer").tier, "standard");
  EXPECT_EQ(c.budgets.tiers.size(), 3u);
  ASSERT_TRUE(c.budgets.run.has_value());
  EXPECT_EQ(c.budgets.run->usd, 500'000);
  EXPECT_EQ(c.budgets.run->calls, 40);
  EXPECT_EQ(c.agents.at("drafter").limits.usd_per_call, 100'000);
  ASSERT_TRUE(c.unknown_model_price.has_value());
  EXPECT_EQ(*c.unknown_model_price, (core::Price{8'000'000, 8'000'000, 8'000'000}));
}

TEST(ExamplesTest, MigrationLoadsWithZeroErrors) {
  const auto r = loadConfigFile(examplePath("migration.yaml"), shippedCatalogPath());
  ASSERT_TRUE(r.has_value()) << dump(r);
  const Config& c = *r;
  EXPECT_EQ(c.providers.at("relay").api_key_env, "RELAY_API_KEY");
  EXPECT_EQ(c.providers.at("openai").base_url, "https://api.openai.com/v1");
  EXPECT_EQ(c.active_profile, "canary");
  EXPECT_THAT(c.profiles, ::testing::SizeIs(4));
  EXPECT_TRUE(c.profiles.at("observe").substitutions.empty());
  EXPECT_TRUE(c.profiles.at("original").substitutions.empty());
  const Substitution& canary = c.profiles.at("canary").substitutions.at("gpt-4.1");
  EXPECT_EQ(canary.to, "deepseek-v3.2");
  EXPECT_EQ(canary.percent, 10);
  EXPECT_EQ(c.profiles.at("migrated").substitutions.at("gpt-4.1").percent, 100);
  EXPECT_EQ(c.profiles.at("migrated").fallbacks.at("deepseek-v3.2"),
            (std::vector<std::string>{"gemini-2.5-flash", "gpt-4.1"}));
  // deepseek priced in the file, gemini routed to the relay at catalog price,
  // OpenAI models routable through the provider named "openai".
  EXPECT_EQ(c.models.at("deepseek-v3.2").price, (core::Price{280'000, 28'000, 420'000}));
  EXPECT_EQ(c.models.at("deepseek-v3.2").price_source, "config");
  EXPECT_EQ(c.models.at("gemini-2.5-flash").provider, "relay");
  EXPECT_EQ(c.models.at("gemini-2.5-flash").price_source, "catalog");
  EXPECT_EQ(c.models.at("gpt-4.1").provider, "openai");
  EXPECT_FALSE(c.models.contains("claude-sonnet-4.5"));  // no anthropic provider: not routable
  EXPECT_EQ(c.hash.size(), 64u);
}

TEST(LoaderTest, DefaultsComeFromTheDataModel) {
  const auto r = loadText("providers: {demo: {kind: mock}}\n");
  ASSERT_TRUE(r.has_value()) << dump(r);
  const Config& c = *r;
  const Config defaults;
  EXPECT_EQ(c.server.listen, defaults.server.listen);
  EXPECT_EQ(c.server.max_body_bytes, defaults.server.max_body_bytes);
  EXPECT_EQ(c.server.max_buffered_body_bytes, defaults.server.max_buffered_body_bytes);
  EXPECT_EQ(c.resilience.retries.max, defaults.resilience.retries.max);
  EXPECT_EQ(c.resilience.breaker.open_ms, defaults.resilience.breaker.open_ms);
  EXPECT_EQ(c.budgets.time_zone, "UTC");
  EXPECT_EQ(c.budgets.on_short_budget, ShortBudgetPolicy::kClamp);
  EXPECT_FALSE(c.budgets.run.has_value());
  EXPECT_FALSE(c.unknown_model_price.has_value());
  EXPECT_TRUE(c.models.empty());  // no provider matches any catalog hint
  EXPECT_EQ(c.source_path, "test.yaml");
}

TEST(LoaderTest, EveryFieldIsRead) {
  const auto r = loadText(
      "server: {listen: \"0.0.0.0:8080\", max_body_bytes: 1024, admin_key_env: ADMIN, header_timeout_ms: 5,\n"
      "         idle_timeout_ms: 6, threads: 3, max_connections: 13, max_buffered_body_bytes: 4096,\n"
      "         usage_log: u.jsonl}\n"
      "storage: {state: \"redis://localhost:6379\", ledger: \"postgresql://db/sluice\", ledger_retention_days: 90}\n"
      "providers:\n"
      "  p: {kind: openai, base_url: \"http://localhost:9000/v1/\", api_key_env: K, timeout_ms: 7,\n"
      "      connect_timeout_ms: 8, first_byte_timeout_ms: 9, idle_timeout_ms: 10, max_connections: 11,\n"
      "      verify_tls: false}\n"
      "models:\n"
      "  m: {provider: p, upstream_name: vendor/m, input: 1, cached_input: 0.5, output: 2, embedding: false,\n"
      "      max_output_tokens: 1000}\n"
      "resilience: {retries: {max: 3, base_ms: 50, max_ms: 500}, breaker: {failures: 2, open_ms: 1000,\n"
      "             half_open_probes: 2}}\n"
      "budgets:\n"
      "  global: {usd_per_call: 1, usd_per_minute: 2, usd_per_day: 3, usd_per_month: 4, tokens_per_call: 5,\n"
      "           tokens_per_minute: 6, tokens_per_day: 7, tokens_per_month: 8, calls_per_minute: 9,\n"
      "           calls_per_day: 10, calls_per_month: 11}\n"
      "  tiers: {t: {share: 0.25, usd_per_day: 1.5}}\n"
      "  run: {usd: 0.5, calls: 4, ttl_s: 60}\n"
      "  on_short_budget: reject\n"
      "  time_zone: America/New_York\n"
      "  reservation_ttl_s: 60\n"
      "agents:\n"
      "  a: {tier: t, max_tokens_per_call: 100, rpm: 5, tpm: 600, models: [m], calls_per_day: 12}\n"
      "unknown_model_price: {input: 3, output: 4}\n");
  ASSERT_TRUE(r.has_value()) << dump(r);
  const Config& c = *r;
  EXPECT_EQ(c.server.listen, "0.0.0.0:8080");
  EXPECT_EQ(c.server.max_body_bytes, 1024);
  EXPECT_EQ(c.server.admin_key_env, "ADMIN");
  EXPECT_EQ(c.server.header_timeout_ms, 5);
  EXPECT_EQ(c.server.idle_timeout_ms, 6);
  EXPECT_EQ(c.server.threads, 3);
  EXPECT_EQ(c.server.max_connections, 13);
  EXPECT_EQ(c.server.max_buffered_body_bytes, 4096);
  EXPECT_EQ(c.server.usage_log, "u.jsonl");
  EXPECT_EQ(c.storage.state, "redis://localhost:6379");
  EXPECT_EQ(c.storage.ledger, "postgresql://db/sluice");
  EXPECT_EQ(c.storage.ledger_retention_days, 90);
  const ProviderConfig& p = c.providers.at("p");
  EXPECT_EQ(p.name, "p");
  EXPECT_EQ(p.base_url, "http://localhost:9000/v1");  // trailing slash dropped
  EXPECT_EQ(p.api_key_env, "K");
  EXPECT_EQ(p.timeout_ms, 7);
  EXPECT_EQ(p.connect_timeout_ms, 8);
  EXPECT_EQ(p.first_byte_timeout_ms, 9);
  EXPECT_EQ(p.idle_timeout_ms, 10);
  EXPECT_EQ(p.max_connections, 11);
  EXPECT_FALSE(p.verify_tls);
  const ModelConfig& m = c.models.at("m");
  EXPECT_EQ(m.upstream_name, "vendor/m");
  EXPECT_EQ(m.price, (core::Price{1'000'000, 500'000, 2'000'000}));
  EXPECT_EQ(m.max_output_tokens, 1000);
  EXPECT_EQ(c.resilience.retries.max, 3);
  EXPECT_EQ(c.resilience.retries.base_ms, 50);
  EXPECT_EQ(c.resilience.retries.max_ms, 500);
  EXPECT_EQ(c.resilience.breaker.failures, 2);
  EXPECT_EQ(c.resilience.breaker.open_ms, 1000);
  EXPECT_EQ(c.resilience.breaker.half_open_probes, 2);
  const Limits& g = c.budgets.global;
  EXPECT_EQ(g.usd_per_call, 1'000'000);
  EXPECT_EQ(g.usd_per_minute, 2'000'000);
  EXPECT_EQ(g.usd_per_day, 3'000'000);
  EXPECT_EQ(g.usd_per_month, 4'000'000);
  EXPECT_EQ(g.tokens_per_call, 5);
  EXPECT_EQ(g.tokens_per_minute, 6);
  EXPECT_EQ(g.tokens_per_day, 7);
  EXPECT_EQ(g.tokens_per_month, 8);
  EXPECT_EQ(g.calls_per_minute, 9);
  EXPECT_EQ(g.calls_per_day, 10);
  EXPECT_EQ(g.calls_per_month, 11);
  EXPECT_EQ(c.budgets.tiers.at("t").share_ppm, 250'000);
  EXPECT_EQ(c.budgets.tiers.at("t").limits.usd_per_day, 1'500'000);
  EXPECT_EQ(c.budgets.run->ttl_s, 60);
  EXPECT_EQ(c.budgets.on_short_budget, ShortBudgetPolicy::kReject);
  EXPECT_EQ(c.budgets.time_zone, "America/New_York");
  EXPECT_EQ(c.budgets.reservation_ttl_s, 60);
  const AgentConfig& a = c.agents.at("a");
  EXPECT_EQ(a.tier, "t");
  EXPECT_EQ(a.max_tokens_per_call, 100);
  EXPECT_EQ(a.rpm, 5);
  EXPECT_EQ(a.tpm, 600);
  EXPECT_EQ(a.models, std::vector<std::string>{"m"});
  EXPECT_EQ(a.limits.calls_per_day, 12);
  EXPECT_FALSE(a.limits.usd_per_day.has_value());
  EXPECT_EQ(c.unknown_model_price->cached_input, 3'000'000);  // defaults to input
}

TEST(MoneyTest, PricesAreParsedExactlyWithoutFloatingPoint) {
  const auto r = loadText(
      "providers: {demo: {kind: mock}}\n"
      "models:\n"
      "  a: {provider: demo, input: 0.028, output: 12}\n"
      "  b: {provider: demo, input: \"0.5\", cached_input: 0.000001, output: 0.1}\n"
      "  c: {provider: demo, input: 0.3, output: 100000}\n");
  ASSERT_TRUE(r.has_value()) << dump(r);
  EXPECT_EQ(r->models.at("a").price.input, 28'000);
  EXPECT_EQ(r->models.at("a").price.cached_input, 28'000);  // not in catalog: defaults to input
  EXPECT_EQ(r->models.at("a").price.output, 12'000'000);
  EXPECT_EQ(r->models.at("b").price.input, 500'000);
  EXPECT_EQ(r->models.at("b").price.cached_input, 1);
  EXPECT_EQ(r->models.at("b").price.output, 100'000);  // 0.1 has no exact double; we don't care
  EXPECT_EQ(r->models.at("c").price.input, 300'000);
  EXPECT_EQ(r->models.at("c").price.output, 100'000'000'000);
}

TEST(MoneyTest, NonDecimalAndTooPreciseAmountsAreRejected) {
  const std::string text =
      "providers: {demo: {kind: mock}}\n"
      "models:\n"
      "  a: {provider: demo, input: 1e-3, output: 1}\n"
      "  b: {provider: demo, input: 0.0000001, output: 1}\n"
      "  c: {provider: demo, input: -0.5, output: 1}\n"
      "  d: {provider: demo, input: .inf, output: 1}\n";
  const auto r = loadText(text);
  EXPECT_TRUE(
      hasError(r, text, "1e-3", "models.a.input must be a USD amount with at most 6 decimals, like 0.28, got '1e-3'"));
  EXPECT_TRUE(hasError(r, text, "0.0000001", "models.b.input must be a USD amount with at most 6 decimals"));
  EXPECT_TRUE(hasError(r, text, "-0.5", "models.c.input must not be negative, got -0.5"));
  EXPECT_TRUE(hasError(r, text, ".inf", "models.d.input must be a USD amount"));
  EXPECT_EQ(testing::errorCount(r), 4u) << dump(r);  // no "no price" noise on top
}

TEST(MoneyTest, TierSharesAreExactPartsPerMillion) {
  const auto r = loadText(
      "providers: {demo: {kind: mock}}\n"
      "budgets:\n"
      "  tiers: {a: {share: 0.1}, b: {share: 0.2}, c: {share: 0.7}, d: {usd_per_day: 1}}\n");
  ASSERT_TRUE(r.has_value()) << dump(r);  // 0.1 + 0.2 + 0.7 is exactly 1.0 here, unlike in doubles
  EXPECT_EQ(r->budgets.tiers.at("a").share_ppm, 100'000);
  EXPECT_EQ(r->budgets.tiers.at("b").share_ppm, 200'000);
  EXPECT_EQ(r->budgets.tiers.at("c").share_ppm, 700'000);
  EXPECT_EQ(r->budgets.tiers.at("d").share_ppm, 0);  // no share: explicit limits only
  const std::string over =
      "providers: {demo: {kind: mock}}\nbudgets:\n  tiers: {a: {share: 0.5}, b: {share: 0.500001}}\n";
  EXPECT_TRUE(hasError(loadText(over), over, "tiers:", "tier shares add up to 1.000001, more than 1.0"));
  const std::string zero = "providers: {demo: {kind: mock}}\nbudgets:\n  tiers: {a: {share: 0}}\n";
  EXPECT_TRUE(hasError(loadText(zero), zero, "0}", "budgets.tiers.a.share must be a decimal above 0 and at most 1"));
}

TEST(CatalogMergeTest, CatalogRowsFollowTheProviderNamedByTheirHint) {
  const auto r = loadText("providers: {openai: {base_url: \"https://api.openai.com/v1\"}}\n");
  ASSERT_TRUE(r.has_value()) << dump(r);
  std::vector<std::string> names;
  for (const auto& [name, m] : r->models) names.push_back(name);
  EXPECT_THAT(names, UnorderedElementsAre("gpt-4.1", "gpt-4.1-mini", "text-embedding-3-small"));
  const ModelConfig& m = r->models.at("gpt-4.1");
  EXPECT_EQ(m.provider, "openai");
  EXPECT_EQ(m.upstream_name, "gpt-4.1");
  EXPECT_EQ(m.price, (core::Price{2'000'000, 500'000, 8'000'000}));
  EXPECT_EQ(m.price_source, "catalog");
  EXPECT_EQ(m.effective_date, "2025-04-14");
  EXPECT_TRUE(r->models.at("text-embedding-3-small").embedding);
  EXPECT_EQ(r->models.at("text-embedding-3-small").price,
            (core::Price{20'000, 20'000, 0}));  // cached defaults to input in the catalog
}

TEST(CatalogMergeTest, ConfigRowsOverrideTheCatalogFieldByField) {
  const auto r = loadText(
      "providers:\n"
      "  openai: {base_url: \"https://api.openai.com/v1\"}\n"
      "  relay: {base_url: \"https://relay.example/v1\"}\n"
      "models:\n"
      "  gpt-4.1: {provider: relay, output: 6.5}\n"
      "  gpt-4.1-mini: {max_output_tokens: 2048}\n"
      "  deepseek-v3.2: {provider: relay}\n"
      "  my-embed: {provider: relay, input: 0.01, embedding: true}\n");
  ASSERT_TRUE(r.has_value()) << dump(r);
  const ModelConfig& g = r->models.at("gpt-4.1");
  EXPECT_EQ(g.provider, "relay");
  EXPECT_EQ(g.price, (core::Price{2'000'000, 500'000, 6'500'000}));
  EXPECT_EQ(g.price_source, "config");
  EXPECT_EQ(g.effective_date, "");
  const ModelConfig& mini = r->models.at("gpt-4.1-mini");
  EXPECT_EQ(mini.provider, "openai");  // provider omitted: the catalog hint names a configured provider
  EXPECT_EQ(mini.max_output_tokens, 2048);
  EXPECT_EQ(mini.price_source, "catalog");
  EXPECT_EQ(r->models.at("deepseek-v3.2").price, (core::Price{280'000, 28'000, 420'000}));
  EXPECT_EQ(r->models.at("deepseek-v3.2").provider, "relay");
  EXPECT_FALSE(r->models.contains("gemini-2.5-flash"));
  EXPECT_TRUE(r->models.at("my-embed").embedding);
  EXPECT_EQ(r->models.at("my-embed").price.output, 0);
}

TEST(CatalogMergeTest, ModelsTakeTheCatalogsEncodingUnlessTheirRowSetsOne) {
  const auto r = loadText(
      "providers:\n"
      "  openai: {base_url: \"https://api.openai.com/v1\"}\n"
      "  relay: {base_url: \"https://relay.example/v1\"}\n"
      "models:\n"
      "  gpt-4.1: {provider: relay}\n"
      "  gpt-4.1-mini: {encoding: \"\"}\n"
      "  house-model: {provider: relay, input: 1, output: 2, encoding: cl100k_base}\n"
      "  other: {provider: relay, input: 1, output: 2}\n");
  ASSERT_TRUE(r.has_value()) << dump(r);
  EXPECT_EQ(r->models.at("gpt-4.1").encoding, "o200k_base");       // from the catalog
  EXPECT_EQ(r->models.at("gpt-4.1-mini").encoding, "");            // the row says none
  EXPECT_EQ(r->models.at("house-model").encoding, "cl100k_base");  // the row's own
  EXPECT_EQ(r->models.at("other").encoding, "");                   // unknown: the bound counts it
  EXPECT_EQ(r->models.at("text-embedding-3-small").encoding, "cl100k_base");
  const std::string bad_text =
      "providers: {relay: {base_url: \"https://relay.example/v1\"}}\n"
      "models: {m: {provider: relay, input: 1, output: 2, encoding: p50k_base}}\n";
  EXPECT_TRUE(hasError(loadText(bad_text), bad_text, "p50k_base", "must be one of o200k_base, cl100k_base"));
}

TEST(LoaderTest, HashIsSha256OfTheBytes) {
  const auto r = loadText("providers: {demo: {kind: mock}}\n");
  ASSERT_TRUE(r.has_value()) << dump(r);
  EXPECT_EQ(r->hash, "1ff39f757ebf96ca24bb1ebc799c31b0abbd6cc020fb4eea19bef22dccb768bd");
  const auto other = loadText("providers: {demo: {kind: mock}}  # same config, other bytes\n");
  ASSERT_TRUE(other.has_value()) << dump(other);
  EXPECT_NE(other->hash, r->hash);
}

TEST(LoaderTest, FileAndStringLoadAgree) {
  const std::string path = examplePath("migration.yaml");
  const auto from_file = loadConfigFile(path, shippedCatalogPath());
  const auto from_string = loadConfigString(testing::readText(path), path, testing::readText(shippedCatalogPath()));
  ASSERT_TRUE(from_file.has_value()) << dump(from_file);
  ASSERT_TRUE(from_string.has_value()) << dump(from_string);
  EXPECT_EQ(from_file->hash, from_string->hash);
  EXPECT_EQ(from_file->models.size(), from_string->models.size());
  EXPECT_EQ(from_file->source_path, path);
}

TEST(LoaderTest, BrokenCatalogIsReportedAgainstTheCatalog) {
  const auto r = loadConfigString("providers: {demo: {kind: mock}}\n", "test.yaml",
                                  "models:\n  x: {provider_hint: demo, input: cheap, output: 1, source: s, "
                                  "effective_date: 2025-01-01}\n");
  ASSERT_EQ(testing::errorCount(r), 1u) << dump(r);
  EXPECT_EQ(r.error()[0].file, "prices.yaml");
  EXPECT_EQ(r.error()[0].line, 2);
  EXPECT_THAT(r.error()[0].message, HasSubstr("models.x.input must be a USD amount"));
}

TEST(SummaryTest, SummarizesProvidersProfilesAgentsAndBudgets) {
  const auto r = loadConfigFile(examplePath("migration.yaml"), shippedCatalogPath());
  ASSERT_TRUE(r.has_value()) << dump(r);
  const std::string s = summarize(*r);
  EXPECT_THAT(s, HasSubstr("config " + examplePath("migration.yaml") + " (version " + r->hash.substr(0, 12)));
  EXPECT_THAT(s, HasSubstr("providers (2): openai (https://api.openai.com/v1), relay (https://relay.example/v1)"));
  EXPECT_THAT(s, HasSubstr("profiles: canary (active), migrated, observe, original"));
  EXPECT_THAT(s, HasSubstr("  planner: tier premium, rpm 60, tpm 200000, max 4000 tokens/call, $30.00/day, "
                           "models gpt-4.1 deepseek-v3.2"));
  EXPECT_THAT(s, HasSubstr("  router: tier fast, rpm 300, tpm 100000, max 200 tokens/call, $5.00/day, "
                           "2000000 tokens/day, any model"));
  EXPECT_THAT(s, HasSubstr("budgets: global $100.00/day"));
  EXPECT_THAT(s, HasSubstr("  tier standard: share 0.5"));
  EXPECT_THAT(s, HasSubstr("  run: $0.50, 40 calls, ttl 3600s"));
  EXPECT_THAT(s, HasSubstr("unknown models: priced at $8.00 in, $8.00 out per 1M tokens"));
  EXPECT_THAT(s, HasSubstr("models: " + std::to_string(r->models.size()) + " routable"));
}

}  // namespace
}  // namespace sluice::config
