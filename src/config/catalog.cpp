#include "config/catalog.h"

#include <date/date.h>
#include <fmt/format.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "config/yaml_walker.h"

namespace sluice::config {
namespace {

constexpr size_t kMaxCatalogBytes = 4 * 1024 * 1024;

// YYYY-MM-DD naming a real calendar day.
bool validDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  int y = 0, m = 0, d = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 4 || i == 7) continue;
    if (s[i] < '0' || s[i] > '9') return false;
    int& part = i < 4 ? y : (i < 7 ? m : d);
    part = part * 10 + (s[i] - '0');
  }
  return date::year_month_day{date::year{y}, date::month{static_cast<unsigned>(m)}, date::day{static_cast<unsigned>(d)}}
      .ok();
}

void readEntry(Walker& w, const Entry& e, Catalog& out) {
  CatalogEntry c;
  c.name = e.key;
  std::optional<core::MicroUsdPerMTok> input, cached, output;
  // Keys written at all, valid or not: a wrong value is reported once, not
  // again as "missing".
  std::set<std::string> present;
  const auto mark = [&](const Entry& f) { present.insert(f.key); };
  const bool is_map =
      w.readFields(e, {
                          {"provider_hint",
                           [&](const Entry& f) {
                             mark(f);
                             if (auto s = w.string(f)) c.provider_hint = *s;
                           }},
                          {"input",
                           [&](const Entry& f) {
                             mark(f);
                             input = w.usd(f, false);
                           }},
                          {"cached_input", [&](const Entry& f) { cached = w.usd(f, false); }},
                          {"output",
                           [&](const Entry& f) {
                             mark(f);
                             output = w.usd(f, false);
                           }},
                          {"embedding", [&](const Entry& f) { c.embedding = w.boolean(f).value_or(false); }},
                          {"encoding",
                           [&](const Entry& f) {
                             auto s = w.string(f);
                             if (!s) return;
                             if (tokenizer::findEncoding(*s) == nullptr) {
                               w.error(f, fmt::format("{} must be one of {}, got '{}'", f.what(),
                                                      tokenizer::knownEncodingNames(), *s));
                               return;
                             }
                             c.encoding = *s;
                           }},
                          {"source",
                           [&](const Entry& f) {
                             mark(f);
                             if (auto s = w.string(f)) c.source = *s;
                           }},
                          {"effective_date",
                           [&](const Entry& f) {
                             mark(f);
                             auto s = w.string(f);
                             if (!s) return;
                             if (!validDate(*s)) {
                               w.error(f, fmt::format("{} must be a date like 2025-06-01, got '{}'", f.what(), *s));
                               return;
                             }
                             c.effective_date = *s;
                           }},
                      });
  if (!is_map) return;
  const auto require = [&](const std::string& key, std::string_view what) {
    if (!present.contains(key)) {
      w.error(e.key_mark, fmt::format("catalog model '{}' has no {}", e.key, what));
    }
  };
  require("provider_hint", "provider_hint");
  require("source", "source");
  require("effective_date", "effective_date");
  require("input", "input price");
  if (!c.embedding) require("output", "output price");
  c.price.input = input.value_or(0);
  // A missing cached price defaults to the full input price: never under-bill.
  c.price.cached_input = cached.value_or(c.price.input);
  c.price.output = output.value_or(0);
  out.emplace(c.name, std::move(c));
}

}  // namespace

CatalogResult parseCatalog(std::string_view yaml, std::string_view name) {
  std::vector<Diagnostic> diags;
  Walker w{std::string(name), &diags};
  Catalog catalog;
  if (auto root = w.parse(yaml)) {
    const Entry top{"", "", root->Mark(), *root};
    if (root->IsNull()) {
      w.error(YAML::Mark{}, "the price catalog is empty; it needs a models: mapping");
    }
    w.readFields(top, {{"models", [&](const Entry& e) {
                          w.readNamed(e, "model name", [&](const Entry& m) { readEntry(w, m, catalog); });
                        }}});
  }
  if (!diags.empty()) {
    sortByPosition(diags);
    return std::unexpected(std::move(diags));
  }
  return catalog;
}

CatalogResult loadCatalogFile(const std::string& path) {
  auto bytes = readSmallFile(path, kMaxCatalogBytes);
  if (!bytes) return std::unexpected(std::vector<Diagnostic>{{path, 0, 0, bytes.error()}});
  return parseCatalog(*bytes, path);
}

std::expected<std::string, std::string> findCatalogPath() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (const char* env = std::getenv("SLUICE_DATA_DIR"); env != nullptr && *env != '\0') {
    const fs::path p = fs::path(env) / "prices.yaml";
    if (fs::is_regular_file(p, ec)) return p.string();
    return std::unexpected(
        fmt::format("the price catalog {} does not exist (SLUICE_DATA_DIR is set to '{}')", p.string(), env));
  }
  std::vector<fs::path> tried;
  // Next to the binary first (an installed one: bin/../share/sluice), then
  // the source tree it was built from (a build tree's binary).
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    tried.push_back(fs::path(exe).parent_path() / ".." / "share" / "sluice" / "prices.yaml");
    if (fs::is_regular_file(tried.back(), ec)) return tried.back().lexically_normal().string();
  }
#ifdef SLUICE_DATA_DIR
  tried.push_back(fs::path(SLUICE_DATA_DIR) / "prices.yaml");
  if (fs::is_regular_file(tried.back(), ec)) return tried.back().string();
#endif
  std::string where;
  for (const auto& p : tried) where += (where.empty() ? "" : ", ") + p.lexically_normal().string();
  return std::unexpected(
      fmt::format("the price catalog prices.yaml was not found (looked at {}); set SLUICE_DATA_DIR to its folder",
                  where.empty() ? "nothing" : where));
}

}  // namespace sluice::config
