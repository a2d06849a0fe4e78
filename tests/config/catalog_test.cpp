// The shipped price catalog and the catalog parser.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <cstdlib>

#include <filesystem>
#include <fstream>

#include "config/catalog.h"
#include "config/loader.h"
#include "config/test_util.h"

namespace sluice::config {
namespace {

using ::testing::HasSubstr;
using testing::shippedCatalogPath;

std::string dumpCatalog(const CatalogResult& r) { return r.has_value() ? "(parsed)" : formatDiagnostics(r.error()); }

struct Row {
  const char* name;
  core::MicroUsdPerMTok input, cached, output;
  const char* hint;
  bool embedding;
  const char* encoding;
};

TEST(ShippedCatalogTest, HasTheListPricesExactly) {
  const auto cat = loadCatalogFile(shippedCatalogPath());
  ASSERT_TRUE(cat.has_value()) << dumpCatalog(cat);
  const Row rows[] = {
      {"gpt-4.1", 2'000'000, 500'000, 8'000'000, "openai", false, "o200k_base"},
      {"gpt-4.1-mini", 400'000, 100'000, 1'600'000, "openai", false, "o200k_base"},
      {"gpt-4o", 2'500'000, 1'250'000, 10'000'000, "openai", false, "o200k_base"},
      {"gpt-4o-mini", 150'000, 75'000, 600'000, "openai", false, "o200k_base"},
      {"o3", 2'000'000, 500'000, 8'000'000, "openai", false, "o200k_base"},
      {"o4-mini", 1'100'000, 275'000, 4'400'000, "openai", false, "o200k_base"},
      {"claude-sonnet-4.5", 3'000'000, 300'000, 15'000'000, "anthropic", false, ""},
      {"claude-haiku-4.5", 1'000'000, 100'000, 5'000'000, "anthropic", false, ""},
      {"gemini-2.5-flash", 300'000, 75'000, 2'500'000, "google", false, ""},
      {"gemini-2.5-pro", 1'250'000, 310'000, 10'000'000, "google", false, ""},
      {"deepseek-v3.2", 280'000, 28'000, 420'000, "deepseek", false, ""},
      {"text-embedding-3-small", 20'000, 0, 0, "openai", true, "cl100k_base"},
      {"text-embedding-3-large", 130'000, 0, 0, "openai", true, "cl100k_base"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    ASSERT_TRUE(cat->contains(row.name));
    const CatalogEntry& e = cat->at(row.name);
    EXPECT_EQ(e.price, (core::Price{row.input, row.cached, row.output}));
    EXPECT_EQ(e.provider_hint, row.hint);
    EXPECT_EQ(e.embedding, row.embedding);
    EXPECT_EQ(e.encoding, row.encoding);
  }
  for (const auto& [name, e] : *cat) {
    EXPECT_FALSE(e.source.empty()) << name;
    EXPECT_EQ(e.effective_date.size(), 10u) << name;
  }
}

TEST(CatalogParseTest, ReportsEveryBrokenRow) {
  const std::string text =
      "models:\n"
      "  a: {provider_hint: openai, input: 1, output: 2, source: s, effective_date: 2025-02-30}\n"
      "  b: {provider_hint: openai, input: 1, output: 2}\n"
      "  c: {provider_hint: openai, input: 1.5e2, output: 2, source: s, effective_date: 2025-01-01}\n"
      "  d: {provider_hint: openai, input: 1, ouput: 2, source: s, effective_date: 2025-01-01}\n";
  const auto r = parseCatalog(text, "cat.yaml");
  ASSERT_FALSE(r.has_value());
  const std::string all = formatDiagnostics(r.error());
  EXPECT_THAT(all,
              HasSubstr("cat.yaml:2:78: models.a.effective_date must be a date like 2025-06-01, got '2025-02-30'"));
  EXPECT_THAT(all, HasSubstr("cat.yaml:3:3: catalog model 'b' has no source"));
  EXPECT_THAT(all, HasSubstr("cat.yaml:3:3: catalog model 'b' has no effective_date"));
  EXPECT_THAT(all, HasSubstr("cat.yaml:4:37: models.c.input must be a USD amount"));
  EXPECT_THAT(all, HasSubstr("cat.yaml:5:40: unknown key 'ouput' in models.d; did you mean 'output'?"));
  EXPECT_THAT(all, HasSubstr("cat.yaml:5:3: catalog model 'd' has no output price"));
  EXPECT_EQ(r.error().size(), 6u) << all;
}

TEST(CatalogParseTest, EncodingIsOptionalAndMustBeAShippedOne) {
  const auto ok = parseCatalog(
      "models:\n"
      "  a: {provider_hint: openai, encoding: cl100k_base, input: 1, output: 2, source: s, effective_date: 2025-01-01}\n"
      "  b: {provider_hint: other, input: 1, output: 2, source: s, effective_date: 2025-01-01}\n",
      "cat.yaml");
  ASSERT_TRUE(ok.has_value()) << dumpCatalog(ok);
  EXPECT_EQ(ok->at("a").encoding, "cl100k_base");
  EXPECT_EQ(ok->at("b").encoding, "");
  const auto bad = parseCatalog(
      "models:\n"
      "  a: {provider_hint: openai, encoding: p50k_base, input: 1, output: 2, source: s, effective_date: 2025-01-01}\n",
      "cat.yaml");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(formatDiagnostics(bad.error()),
            "cat.yaml:2:40: models.a.encoding must be one of o200k_base, cl100k_base, got 'p50k_base'\n");
}

TEST(CatalogParseTest, EmptyCatalogIsAllowedButAnEmptyFileIsNot) {
  const auto empty = parseCatalog("models: {}\n", "cat.yaml");
  ASSERT_TRUE(empty.has_value()) << dumpCatalog(empty);
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(parseCatalog("", "cat.yaml").has_value());
}

// Restores SLUICE_DATA_DIR when a test changes it.
class DataDirEnv {
 public:
  DataDirEnv() {
    if (const char* v = ::getenv("SLUICE_DATA_DIR")) saved_ = v;
  }
  ~DataDirEnv() {
    if (saved_) {
      ::setenv("SLUICE_DATA_DIR", saved_->c_str(), 1);
    } else {
      ::unsetenv("SLUICE_DATA_DIR");
    }
  }

 private:
  std::optional<std::string> saved_;
};

TEST(CatalogPathTest, EnvironmentVariableWinsAndIsNotSilentlyIgnored) {
  DataDirEnv guard;
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("sluice_config_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "prices.yaml");
    out << "models:\n  only-model: {provider_hint: demo, input: 1, output: 1, source: t, effective_date: 2025-01-01}\n";
  }
  ::setenv("SLUICE_DATA_DIR", dir.c_str(), 1);
  auto path = findCatalogPath();
  ASSERT_TRUE(path.has_value()) << path.error();
  EXPECT_EQ(*path, (dir / "prices.yaml").string());
  // The default catalog of loadConfigString follows it.
  const auto r = loadConfigString("providers: {demo: {kind: mock}}\n", "t.yaml");
  ASSERT_TRUE(r.has_value()) << testing::dump(r);
  EXPECT_TRUE(r->models.contains("only-model"));

  ::setenv("SLUICE_DATA_DIR", (dir / "missing").c_str(), 1);
  path = findCatalogPath();
  ASSERT_FALSE(path.has_value());
  EXPECT_THAT(path.error(), HasSubstr("SLUICE_DATA_DIR is set"));
  const auto failed = loadConfigString("providers: {demo: {kind: mock}}\n", "t.yaml");
  ASSERT_EQ(testing::errorCount(failed), 1u);
  EXPECT_EQ(failed.error()[0].file, "t.yaml");
  fs::remove_all(dir);
}

TEST(CatalogPathTest, DefaultsToTheSourceTreeCatalog) {
  DataDirEnv guard;
  ::unsetenv("SLUICE_DATA_DIR");
  const auto path = findCatalogPath();
  ASSERT_TRUE(path.has_value()) << path.error();
  EXPECT_EQ(*path, shippedCatalogPath());
  const auto r = loadConfigString("providers: {anthropic: {base_url: \"https://api.anthropic.com/v1\"}}\n", "t.yaml");
  ASSERT_TRUE(r.has_value()) << testing::dump(r);
  EXPECT_EQ(r->models.at("claude-sonnet-4.5").price.output, 15'000'000);
}

}  // namespace
}  // namespace sluice::config
