#include "config/loader.h"

#include <date/tz.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <set>

#include "config/catalog.h"
#include "config/yaml_walker.h"
#include "core/listen_address.h"
#include "tokenizer/registry.h"

namespace sluice::config {
namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kMax = INT64_MAX;

// A name used somewhere and where it was written, for cross-reference checks
// that can only run once the whole file has been read.
struct Ref {
  std::string name;
  YAML::Mark mark;
};

// A `models:` row as written, before it is merged with the catalog.
struct ModelRow {
  std::string name;
  YAML::Mark mark;
  std::optional<Ref> provider;
  std::optional<std::string> upstream_name;
  std::optional<core::MicroUsdPerMTok> input, cached_input, output;
  std::optional<bool> embedding;
  std::optional<int64_t> max_output_tokens;
  std::optional<std::string> encoding;
  bool had_errors = false;  // a field was wrong: don't pile "no price" on top
};

struct ProfileRefs {
  std::string name;
  std::vector<std::pair<Ref, Ref>> substitutions;           // from, to
  std::vector<std::pair<Ref, std::vector<Ref>>> fallbacks;  // served, chain
};

struct AgentRefs {
  std::string name;
  std::optional<Ref> tier;
  std::vector<Ref> models;
};

bool isEnvName(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Empty when fine, else why not.
std::string baseUrlProblem(std::string_view u) {
  size_t host_start = 0;
  if (u.starts_with("http://")) {
    host_start = 7;
  } else if (u.starts_with("https://")) {
    host_start = 8;
  } else {
    return "must start with http:// or https://";
  }
  for (char c : u) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return "must not contain spaces";
    if (c == '?' || c == '#') return "must not have a query or fragment";
  }
  const std::string_view rest = u.substr(host_start);
  const std::string_view host = rest.substr(0, rest.find('/'));
  if (host.empty() || host.starts_with(':')) return "has no host";
  return "";
}

bool isStateUrl(std::string_view s) {
  if (s == "memory") return true;
  if (s.starts_with("sqlite:")) return s.size() > 7;
  if (s.starts_with("redis://")) return s.size() > 8;
  if (s.starts_with("rediss://")) return s.size() > 9;
  return false;
}

bool isLedgerUrl(std::string_view s) {
  if (s.starts_with("sqlite:")) return s.size() > 7;
  if (s.starts_with("postgresql://")) return s.size() > 13;
  if (s.starts_with("postgres://")) return s.size() > 11;
  return false;
}

std::string sha256Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) return "";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

template <typename Map>
std::vector<std::string> keysOf(const Map& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

class Loader {
 public:
  Loader(std::string file, const Catalog& catalog, std::vector<Diagnostic>* diags)
      : w_(std::move(file), diags), catalog_(catalog) {}

  void load(const YAML::Node& root);
  Config take() { return std::move(cfg_); }

 private:
  using Field = Walker::Field;

  template <typename T>
  Field intField(std::string_view key, T& target, int64_t min, int64_t max) {
    return {key, [this, &target, min, max](const Entry& f) {
              // T is also std::optional<int64_t>, where the cast is a no-op.
              // NOLINTNEXTLINE(bugprone-optional-value-conversion)
              if (auto v = w_.integer(f, min, max)) target = static_cast<T>(*v);
            }};
  }
  Field stringField(std::string_view key, std::string& target) {
    return {key, [this, &target](const Entry& f) {
              if (auto v = w_.string(f)) target = *v;
            }};
  }
  Field envField(std::string_view key, std::string& target) {
    return {key, [this, &target](const Entry& f) {
              auto v = w_.string(f);
              if (!v) return;
              if (!v->empty() && !isEnvName(*v)) {
                w_.error(f, fmt::format("{} must name an environment variable (letters, digits, _), "
                                        "got '{}'",
                                        f.what(), *v));
                return;
              }
              target = *v;
            }};
  }
  Field refField(std::string_view key, std::optional<Ref>& target) {
    return {key, [this, &target](const Entry& f) {
              if (auto v = w_.string(f)) target = Ref{*v, f.mark()};
            }};
  }
  void addLimitFields(std::vector<Field>& fields, Limits& l) {
    const auto usd = [this](std::string_view key, std::optional<core::MicroUsd>& t) {
      return Field{key, [this, &t](const Entry& f) {
                     if (auto v = w_.usd(f, true)) t = v;
                   }};
    };
    fields.push_back(usd("usd_per_call", l.usd_per_call));
    fields.push_back(usd("usd_per_minute", l.usd_per_minute));
    fields.push_back(usd("usd_per_day", l.usd_per_day));
    fields.push_back(usd("usd_per_month", l.usd_per_month));
    fields.push_back(intField("tokens_per_call", l.tokens_per_call, 1, kMax));
    fields.push_back(intField("tokens_per_minute", l.tokens_per_minute, 1, kMax));
    fields.push_back(intField("tokens_per_day", l.tokens_per_day, 1, kMax));
    fields.push_back(intField("tokens_per_month", l.tokens_per_month, 1, kMax));
    fields.push_back(intField("calls_per_minute", l.calls_per_minute, 1, kMax));
    fields.push_back(intField("calls_per_day", l.calls_per_day, 1, kMax));
    fields.push_back(intField("calls_per_month", l.calls_per_month, 1, kMax));
  }

  void readServer(const Entry& e);
  void readStorage(const Entry& e);
  void readProviders(const Entry& e);
  void readModels(const Entry& e);
  void readProfiles(const Entry& e);
  void readResilience(const Entry& e);
  void readBudgets(const Entry& e);
  void readAgents(const Entry& e);
  void readUnknownModelPrice(const Entry& e);

  void resolveModels();
  void checkModelRef(const Ref& ref, const std::string& context);
  void checkProfiles();
  void checkFallbackCycles(const ProfileRefs& refs);
  void checkAgents();
  void checkReservationTtl();

  Walker w_;
  const Catalog& catalog_;
  Config cfg_;

  // Cross-references, checked after the whole file is read.
  YAML::Mark root_mark_;
  std::optional<YAML::Mark> providers_mark_;
  std::optional<YAML::Mark> budgets_mark_;
  bool providers_written_ = false;  // the providers: mapping has at least one entry
  std::optional<YAML::Mark> profiles_mark_;
  std::vector<ModelRow> model_rows_;
  std::set<std::string> broken_models_;  // rows with errors: references to them are not re-reported
  std::vector<ProfileRefs> profile_refs_;
  std::optional<Ref> active_profile_;
  std::vector<AgentRefs> agent_refs_;
};

void Loader::load(const YAML::Node& root) {
  root_mark_ = root.Mark();
  const Entry top{"", "", root.Mark(), root};
  if (root.IsNull()) {
    w_.error(YAML::Mark{}, "the configuration is empty; it needs at least a providers: section");
    return;
  }
  const bool is_map = w_.readFields(top,
                                    {
                                        {"server", [this](const Entry& e) { readServer(e); }},
                                        {"storage", [this](const Entry& e) { readStorage(e); }},
                                        {"providers", [this](const Entry& e) { readProviders(e); }},
                                        {"models", [this](const Entry& e) { readModels(e); }},
                                        {"profiles", [this](const Entry& e) { readProfiles(e); }},
                                        refField("active_profile", active_profile_),
                                        {"resilience", [this](const Entry& e) { readResilience(e); }},
                                        {"budgets", [this](const Entry& e) { readBudgets(e); }},
                                        {"agents", [this](const Entry& e) { readAgents(e); }},
                                        {"unknown_model_price", [this](const Entry& e) { readUnknownModelPrice(e); }},
                                    });
  if (!is_map) return;
  if (cfg_.providers.empty() && !providers_written_) {
    w_.error(providers_mark_.value_or(YAML::Mark{}),
             "no providers are configured; add one under providers: (kind: mock works offline)");
  }
  resolveModels();
  checkProfiles();
  checkAgents();
  checkReservationTtl();
}

// A call renews its reservation whenever it makes progress (an attempt
// starts, headers or bytes arrive); the TTL only reclaims reservations a bug
// leaked. So the TTL must outlast the longest wait without progress that a
// provider's timeouts allow, or a slow but healthy call would lose its
// reservation and let others spend what it is about to bill. (A backoff
// wait between attempts may outlast it: the next attempt reserves again.)
void Loader::checkReservationTtl() {
  const int64_t ttl_ms = cfg_.budgets.reservation_ttl_s * 1000;
  std::string worst;
  int64_t worst_ms = 0;
  for (const auto& [name, p] : cfg_.providers) {
    const int64_t gap = std::max(p.connect_timeout_ms + p.first_byte_timeout_ms, p.idle_timeout_ms);
    if (gap > worst_ms) {
      worst_ms = gap;
      worst = name;
    }
  }
  // A call renews at most every TTL/16 (core::BudgetEngine::renew, called
  // from the gateway), so its reservation is good for 15/16 of the TTL after
  // its last progress.
  if (ttl_ms - ttl_ms / 16 > worst_ms) return;
  w_.error(budgets_mark_.value_or(root_mark_),
           fmt::format("budgets.reservation_ttl_s is {} s, but {} can wait {} ms without progress; a running call "
                       "would lose its reservation. Raise reservation_ttl_s to at least {} s",
                       cfg_.budgets.reservation_ttl_s, fmt::format("provider '{}'", worst), worst_ms,
                       (worst_ms * 16 / 15) / 1000 + 1));
}

void Loader::readServer(const Entry& e) {
  auto& s = cfg_.server;
  std::optional<YAML::Mark> buffered;  // where max_buffered_body_bytes was set
  w_.readFields(e, {
                       {"listen",
                        [this, &s](const Entry& f) {
                          auto v = w_.string(f);
                          if (!v) return;
                          if (!core::parseListenAddress(*v)) {
                            w_.error(f,
                                     fmt::format("{} must be host:port, like 127.0.0.1:4000, got '{}'", f.what(), *v));
                            return;
                          }
                          s.listen = *v;
                        }},
                       intField("max_body_bytes", s.max_body_bytes, 1, int64_t{1} << 30),
                       envField("admin_key_env", s.admin_key_env),
                       intField("header_timeout_ms", s.header_timeout_ms, 1, kHourMs),
                       intField("idle_timeout_ms", s.idle_timeout_ms, 1, kDayMs),
                       intField("threads", s.threads, 0, 1024),
                       intField("max_connections", s.max_connections, 0, 10'000'000),
                       {"max_buffered_body_bytes",
                        [this, &s, &buffered](const Entry& f) {
                          if (auto v = w_.integer(f, 0, int64_t{1} << 40)) {
                            s.max_buffered_body_bytes = *v;
                            buffered = f.mark();
                          }
                        }},
                       stringField("usage_log", s.usage_log),
                       {"metrics_public",
                        [this, &s](const Entry& f) {
                          if (auto v = w_.boolean(f)) s.metrics_public = *v;
                        }},
                   });
  // A body the size limit allows must fit under the cap, or it is never
  // served: the default grows with max_body_bytes, a value set must cover it.
  if (!buffered && s.max_buffered_body_bytes < s.max_body_bytes) s.max_buffered_body_bytes = s.max_body_bytes;
  if (buffered && s.max_buffered_body_bytes != 0 && s.max_buffered_body_bytes < s.max_body_bytes) {
    w_.error(*buffered, fmt::format("server.max_buffered_body_bytes ({}) must be at least server.max_body_bytes ({}), "
                                    "or 0 for no cap",
                                    s.max_buffered_body_bytes, s.max_body_bytes));
  }
}

void Loader::readStorage(const Entry& e) {
  auto& s = cfg_.storage;
  const auto url = [this](std::string_view key, std::string& target, bool (*valid)(std::string_view),
                          std::string_view expected) {
    return Field{key, [this, &target, valid, expected](const Entry& f) {
                   auto v = w_.string(f);
                   if (!v) return;
                   if (!valid(*v)) {
                     w_.error(f, fmt::format("{} must be {}, got '{}'", f.what(), expected, *v));
                     return;
                   }
                   target = *v;
                 }};
  };
  w_.readFields(e, {
                       url("state", s.state, isStateUrl, "memory, sqlite:PATH or redis://HOST:PORT"),
                       url("ledger", s.ledger, isLedgerUrl, "sqlite:PATH or postgresql://..."),
                       intField("ledger_retention_days", s.ledger_retention_days, 0, 36'500),
                   });
}

void Loader::readProviders(const Entry& e) {
  providers_mark_ = e.key_mark;
  providers_written_ = !e.value.IsNull() && !(e.value.IsMap() && e.value.size() == 0);
  w_.readNamed(e, "provider name", [this](const Entry& p) {
    ProviderConfig pc;
    pc.name = p.key;
    std::optional<Ref> kind, base_url;
    const bool is_map = w_.readFields(p, {
                                             refField("kind", kind),
                                             refField("base_url", base_url),
                                             envField("api_key_env", pc.api_key_env),
                                             intField("timeout_ms", pc.timeout_ms, 1, kHourMs),
                                             intField("connect_timeout_ms", pc.connect_timeout_ms, 1, kHourMs),
                                             intField("first_byte_timeout_ms", pc.first_byte_timeout_ms, 1, kHourMs),
                                             intField("idle_timeout_ms", pc.idle_timeout_ms, 1, kHourMs),
                                             intField("max_connections", pc.max_connections, 1, 10'000),
                                             {"verify_tls",
                                              [this, &pc](const Entry& f) {
                                                if (auto v = w_.boolean(f)) pc.verify_tls = *v;
                                              }},
                                         });
    // Registered even when broken, so models naming it don't add noise.
    cfg_.providers[p.key] = pc;
    if (!is_map) return;
    auto& stored = cfg_.providers[p.key];
    if (kind) {
      if (kind->name == "openai") {
        stored.kind = ProviderKind::kOpenAI;
      } else if (kind->name == "mock") {
        stored.kind = ProviderKind::kMock;
      } else {
        w_.error(kind->mark,
                 fmt::format("provider '{}' has unknown kind '{}'; expected openai or mock", p.key, kind->name));
      }
    }
    if (base_url) {
      if (const std::string problem = baseUrlProblem(base_url->name); !problem.empty()) {
        w_.error(base_url->mark, fmt::format("provider '{}' base_url {}, got '{}'", p.key, problem, base_url->name));
      } else {
        std::string u = base_url->name;
        // Paths are appended as "/chat/completions": keep exactly one slash.
        while (u.size() > 1 && u.back() == '/') u.pop_back();
        stored.base_url = u;
      }
    } else if (stored.kind == ProviderKind::kOpenAI && (!kind || kind->name == "openai")) {
      w_.error(p.key_mark, fmt::format("provider '{}' needs a base_url, like https://api.openai.com/v1 "
                                       "(or kind: mock for the offline provider)",
                                       p.key));
    }
  });
}

void Loader::readModels(const Entry& e) {
  w_.readNamed(e, "model name", [this](const Entry& m) {
    ModelRow row{m.key, m.key_mark};
    const size_t before = w_.errorCount();
    const auto price = [this](std::string_view key, std::optional<core::MicroUsdPerMTok>& t) {
      return Field{key, [this, &t](const Entry& f) { t = w_.usd(f, false); }};
    };
    w_.readFields(m, {
                         refField("provider", row.provider),
                         {"upstream_name",
                          [this, &row](const Entry& f) {
                            auto v = w_.string(f);
                            if (v && v->empty()) {
                              w_.error(f, fmt::format("{} must not be empty", f.what()));
                            } else if (v) {
                              row.upstream_name = *v;
                            }
                          }},
                         price("input", row.input),
                         price("cached_input", row.cached_input),
                         price("output", row.output),
                         {"embedding", [this, &row](const Entry& f) { row.embedding = w_.boolean(f); }},
                         intField("max_output_tokens", row.max_output_tokens, 1, 10'000'000),
                         {"encoding",
                          [this, &row](const Entry& f) {
                            auto v = w_.string(f);
                            if (!v) return;
                            if (!v->empty() && tokenizer::findEncoding(*v) == nullptr) {
                              w_.error(f, fmt::format("{} must be one of {} (or \"\" for none), got '{}'", f.what(),
                                                      tokenizer::knownEncodingNames(), *v));
                              return;
                            }
                            row.encoding = *v;
                          }},
                     });
    row.had_errors = w_.errorCount() != before;
    model_rows_.push_back(std::move(row));
  });
}

void Loader::resolveModels() {
  const std::vector<std::string> provider_names = keysOf(cfg_.providers);
  std::set<std::string> from_config;
  for (const ModelRow& row : model_rows_) {
    from_config.insert(row.name);
    const auto cat_it = catalog_.find(row.name);
    const CatalogEntry* cat = cat_it == catalog_.end() ? nullptr : &cat_it->second;
    bool ok = !row.had_errors;

    ModelConfig mc;
    mc.name = row.name;
    if (row.provider) {
      if (cfg_.providers.contains(row.provider->name)) {
        mc.provider = row.provider->name;
      } else {
        w_.error(row.provider->mark, fmt::format("model '{}' uses provider '{}', which is not configured{}", row.name,
                                                 row.provider->name, didYouMean(row.provider->name, provider_names)));
        ok = false;
      }
    } else if (cat != nullptr && cfg_.providers.contains(cat->provider_hint)) {
      mc.provider = cat->provider_hint;
    } else {
      std::string why = cat == nullptr ? ""
                                       : fmt::format(" (the price catalog routes it to '{}', which is not configured)",
                                                     cat->provider_hint);
      w_.error(row.mark, fmt::format("model '{}' has no provider{}; set provider: to one of {}", row.name, why,
                                     provider_names.empty() ? "a configured provider" : joinOr(provider_names)));
      ok = false;
    }

    mc.embedding = row.embedding.value_or(cat != nullptr && cat->embedding);
    if (cat == nullptr && !row.had_errors) {
      std::vector<std::string> missing;
      if (!row.input) missing.emplace_back("input");
      if (!row.output && !mc.embedding) missing.emplace_back("output");
      if (!missing.empty()) {
        w_.error(row.mark, fmt::format("model '{}' has no {} price and is not in the price catalog; set "
                                       "{} in USD per 1M tokens",
                                       row.name, fmt::join(missing, " or "), fmt::join(missing, " and ")));
        ok = false;
      }
    }
    const bool priced_here = row.input || row.cached_input || row.output;
    // Field by field: what the row sets wins, the rest comes from the catalog.
    mc.price.input = row.input ? *row.input : (cat ? cat->price.input : 0);
    mc.price.cached_input = row.cached_input ? *row.cached_input : (cat ? cat->price.cached_input : mc.price.input);
    mc.price.output = row.output ? *row.output : (cat ? cat->price.output : 0);
    mc.price_source = priced_here ? "config" : "catalog";
    mc.effective_date = (!priced_here && cat) ? cat->effective_date : "";
    mc.upstream_name = row.upstream_name.value_or(row.name);
    if (row.max_output_tokens) mc.max_output_tokens = *row.max_output_tokens;
    mc.encoding = row.encoding.value_or(cat ? cat->encoding : "");

    if (ok) {
      cfg_.models[row.name] = std::move(mc);
    } else {
      broken_models_.insert(row.name);
    }
  }
  // Catalog models become routable through the provider their hint names.
  for (const auto& [name, cat] : catalog_) {
    if (from_config.contains(name) || !cfg_.providers.contains(cat.provider_hint)) continue;
    ModelConfig mc;
    mc.name = name;
    mc.provider = cat.provider_hint;
    mc.upstream_name = name;
    mc.price = cat.price;
    mc.price_source = "catalog";
    mc.effective_date = cat.effective_date;
    mc.embedding = cat.embedding;
    mc.encoding = cat.encoding;
    cfg_.models[name] = std::move(mc);
  }
}

void Loader::checkModelRef(const Ref& ref, const std::string& context) {
  if (cfg_.models.contains(ref.name) || broken_models_.contains(ref.name)) return;
  std::string detail;
  if (auto it = catalog_.find(ref.name); it != catalog_.end()) {
    detail = fmt::format(
        "; the price catalog routes it to provider '{}', which is not configured, "
        "so add it under models: with a provider",
        it->second.provider_hint);
  } else {
    detail = didYouMean(ref.name, keysOf(cfg_.models));
  }
  w_.error(ref.mark, fmt::format("{} '{}', which is not a configured model{}", context, ref.name, detail));
}

void Loader::readProfiles(const Entry& e) {
  profiles_mark_ = e.key_mark;
  w_.readNamed(e, "profile name", [this](const Entry& p) {
    ProfileConfig pc;
    pc.name = p.key;
    ProfileRefs refs{p.key, {}, {}};
    w_.readFields(
        p,
        {
            {"substitutions",
             [&](const Entry& s) {
               w_.readNamed(s, "model name", [&](const Entry& one) {
                 if (one.value.IsScalar() || one.value.IsSequence()) {
                   w_.error(one, fmt::format("the substitution of '{}' in profile '{}' must be a mapping like "
                                             "{{to: MODEL, percent: 100}}",
                                             one.key, p.key));
                   return;
                 }
                 Substitution sub;
                 std::optional<Ref> to;
                 const bool is_map = w_.readFields(one, {refField("to", to), intField("percent", sub.percent, 0, 100)});
                 if (!is_map) return;
                 if (!to) {
                   w_.error(one.key_mark,
                            fmt::format("the substitution of '{}' in profile '{}' needs to: MODEL", one.key, p.key));
                   return;
                 }
                 if (to->name == one.key) {
                   w_.error(to->mark, fmt::format("profile '{}' substitutes '{}' with itself", p.key, one.key));
                   return;
                 }
                 sub.to = to->name;
                 pc.substitutions[one.key] = sub;
                 refs.substitutions.emplace_back(Ref{one.key, one.key_mark}, *to);
               });
             }},
            {"fallbacks",
             [&](const Entry& f) {
               w_.readNamed(f, "model name", [&](const Entry& one) {
                 auto items = w_.stringList(one);
                 if (!items) return;
                 std::vector<std::string> chain;
                 std::vector<Ref> chain_refs;
                 for (const auto& item : *items) {
                   if (std::find(chain.begin(), chain.end(), item.value) != chain.end()) {
                     w_.error(item.mark, fmt::format("profile '{}' lists fallback '{}' twice for '{}'", p.key,
                                                     item.value, one.key));
                     continue;
                   }
                   chain.push_back(item.value);
                   chain_refs.push_back(Ref{item.value, item.mark});
                 }
                 pc.fallbacks[one.key] = std::move(chain);
                 refs.fallbacks.emplace_back(Ref{one.key, one.key_mark}, std::move(chain_refs));
               });
             }},
        });
    cfg_.profiles[p.key] = std::move(pc);
    profile_refs_.push_back(std::move(refs));
  });
}

void Loader::checkProfiles() {
  for (const ProfileRefs& refs : profile_refs_) {
    const std::string prefix = fmt::format("profile '{}'", refs.name);
    for (const auto& [from, to] : refs.substitutions) {
      checkModelRef(from, prefix + " substitutes");
      checkModelRef(to, fmt::format("{} substitutes {} with", prefix, from.name));
    }
    for (const auto& [served, chain] : refs.fallbacks) {
      checkModelRef(served, prefix + " has fallbacks for");
      for (const Ref& r : chain) checkModelRef(r, fmt::format("{} falls back from {} to", prefix, served.name));
    }
    checkFallbackCycles(refs);
  }

  const std::vector<std::string> names = keysOf(cfg_.profiles);
  if (active_profile_) {
    if (cfg_.profiles.contains(active_profile_->name)) {
      cfg_.active_profile = active_profile_->name;
    } else if (names.empty()) {
      w_.error(active_profile_->mark, fmt::format("active_profile '{}' is not a profile; no profiles are "
                                                  "defined under profiles:",
                                                  active_profile_->name));
    } else {
      std::string hint = didYouMean(active_profile_->name, names);
      if (hint.empty()) hint = fmt::format(" (profiles are {})", joinOr(names));
      w_.error(active_profile_->mark,
               fmt::format("active_profile '{}' is not a profile{}", active_profile_->name, hint));
    }
  } else if (names.size() == 1) {
    cfg_.active_profile = names.front();
  } else if (names.size() > 1) {
    w_.error(profiles_mark_.value_or(YAML::Mark{}),
             fmt::format("active_profile is missing; set it to one of {}", joinOr(names)));
  }
}

void Loader::checkFallbackCycles(const ProfileRefs& refs) {
  // Where each edge served -> next was written, to point at the edge that closes a cycle.
  std::map<std::string, std::vector<const Ref*>> edges;
  for (const auto& [served, chain] : refs.fallbacks) {
    for (const Ref& r : chain) edges[served.name].push_back(&r);
  }
  enum class Color { kWhite, kGray, kBlack };
  std::map<std::string, Color> color;
  std::vector<std::string> stack;
  std::function<void(const std::string&)> visit = [&](const std::string& node) {
    color[node] = Color::kGray;
    stack.push_back(node);
    if (auto it = edges.find(node); it != edges.end()) {
      for (const Ref* next : it->second) {
        const Color c = color[next->name];
        if (c == Color::kGray) {
          const auto start = std::find(stack.begin(), stack.end(), next->name);
          std::string cycle;
          for (auto s = start; s != stack.end(); ++s) cycle += *s + " -> ";
          cycle += next->name;
          w_.error(next->mark, fmt::format("profile '{}' has a fallback cycle: {}", refs.name, cycle));
        } else if (c == Color::kWhite) {
          visit(next->name);
        }
      }
    }
    stack.pop_back();
    color[node] = Color::kBlack;
  };
  for (const auto& [served, chain] : refs.fallbacks) {
    if (color[served.name] == Color::kWhite) visit(served.name);
  }
}

void Loader::readResilience(const Entry& e) {
  auto& r = cfg_.resilience;
  w_.readFields(e, {
                       {"retries",
                        [this, &r](const Entry& f) {
                          std::optional<YAML::Mark> max_ms_mark;
                          w_.readFields(f, {
                                               intField("max", r.retries.max, 0, 10),
                                               intField("base_ms", r.retries.base_ms, 1, 60'000),
                                               {"max_ms",
                                                [this, &r, &max_ms_mark](const Entry& g) {
                                                  if (auto v = w_.integer(g, 1, 600'000)) {
                                                    r.retries.max_ms = *v;
                                                    max_ms_mark = g.mark();
                                                  }
                                                }},
                                           });
                          if (r.retries.max_ms < r.retries.base_ms) {
                            w_.error(max_ms_mark.value_or(f.key_mark),
                                     fmt::format("resilience.retries.max_ms ({}) must be at least base_ms ({})",
                                                 r.retries.max_ms, r.retries.base_ms));
                          }
                        }},
                       {"breaker",
                        [this, &r](const Entry& f) {
                          w_.readFields(f, {
                                               intField("failures", r.breaker.failures, 1, 1'000),
                                               intField("open_ms", r.breaker.open_ms, 1, kDayMs),
                                               intField("half_open_probes", r.breaker.half_open_probes, 1, 1'000),
                                           });
                        }},
                   });
}

void Loader::readBudgets(const Entry& e) {
  budgets_mark_ = e.key_mark;
  auto& b = cfg_.budgets;
  w_.readFields(e,
                {
                    {"global",
                     [this, &b](const Entry& f) {
                       std::vector<Field> fields;
                       addLimitFields(fields, b.global);
                       w_.readFields(f, fields);
                     }},
                    {"tiers",
                     [this, &b](const Entry& f) {
                       w_.readNamed(f, "tier name", [this, &b](const Entry& t) {
                         TierConfig tc;
                         tc.name = t.key;
                         std::vector<Field> fields{{"share", [this, &tc](const Entry& g) {
                                                      if (auto v = w_.fractionPpm(g)) tc.share_ppm = *v;
                                                    }}};
                         addLimitFields(fields, tc.limits);
                         w_.readFields(t, fields);
                         b.tiers[t.key] = std::move(tc);
                       });
                       int64_t total = 0;
                       std::vector<std::string> parts;
                       for (const auto& [name, tier] : b.tiers) {
                         total += tier.share_ppm;
                         if (tier.share_ppm > 0)
                           parts.push_back(fmt::format("{} {}", name, formatDecimal6(tier.share_ppm)));
                       }
                       if (total > 1'000'000) {
                         w_.error(f.key_mark, fmt::format("tier shares add up to {}, more than 1.0 ({})",
                                                          formatDecimal6(total), fmt::join(parts, ", ")));
                       }
                     }},
                    {"run",
                     [this, &b](const Entry& f) {
                       RunBudgetConfig run;
                       const bool is_map =
                           w_.readFields(f, {
                                                {"usd", [this, &run](const Entry& g) { run.usd = w_.usd(g, true); }},
                                                intField("calls", run.calls, 1, kMax),
                                                intField("ttl_s", run.ttl_s, 1, 604'800),
                                            });
                       if (is_map) b.run = run;
                     }},
                    {"on_short_budget",
                     [this, &b](const Entry& f) {
                       auto v = w_.string(f);
                       if (!v) return;
                       if (*v == "clamp") {
                         b.on_short_budget = ShortBudgetPolicy::kClamp;
                       } else if (*v == "reject") {
                         b.on_short_budget = ShortBudgetPolicy::kReject;
                       } else {
                         w_.error(f, fmt::format("budgets.on_short_budget must be clamp or reject, got '{}'", *v));
                       }
                     }},
                    {"time_zone",
                     [this, &b](const Entry& f) {
                       auto v = w_.string(f);
                       if (!v) return;
                       try {
                         (void)date::locate_zone(*v);
                         b.time_zone = *v;
                       } catch (const std::exception&) {
                         // date reports an unknown zone by exception; startup only.
                         std::string hint;
                         try {
                           std::vector<std::string> zones;
                           for (const auto& z : date::get_tzdb().zones) zones.emplace_back(z.name());
                           hint = didYouMean(*v, zones);
                         } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): no tz list, no hint
                         }
                         if (hint.empty()) hint = "; use an IANA name like UTC or Europe/Paris";
                         w_.error(f, fmt::format("budgets.time_zone '{}' is not a known time zone{}", *v, hint));
                       }
                     }},
                    intField("reservation_ttl_s", b.reservation_ttl_s, 1, 86'400),
                },
                "budgets holds global, tiers, run, on_short_budget, time_zone and reservation_ttl_s; "
                "per-agent limits go under agents.NAME");
}

void Loader::readAgents(const Entry& e) {
  w_.readNamed(e, "agent name", [this](const Entry& a) {
    AgentConfig ac;
    ac.name = a.key;
    AgentRefs refs{a.key, std::nullopt, {}};
    std::vector<Field> fields{
        refField("tier", refs.tier),
        intField("max_tokens_per_call", ac.max_tokens_per_call, 1, kMax),
        intField("rpm", ac.rpm, 1, kMax),
        intField("tpm", ac.tpm, 1, kMax),
        {"models",
         [&](const Entry& f) {
           auto items = w_.stringList(f);
           if (!items) return;
           for (const auto& item : *items) {
             if (std::find(ac.models.begin(), ac.models.end(), item.value) != ac.models.end()) {
               w_.error(item.mark, fmt::format("agent '{}' lists model '{}' twice", a.key, item.value));
               continue;
             }
             ac.models.push_back(item.value);
             refs.models.push_back(Ref{item.value, item.mark});
           }
         }},
    };
    addLimitFields(fields, ac.limits);
    w_.readFields(a, fields);
    cfg_.agents[a.key] = std::move(ac);
    agent_refs_.push_back(std::move(refs));
  });
}

void Loader::checkAgents() {
  const std::vector<std::string> tiers = keysOf(cfg_.budgets.tiers);
  for (const AgentRefs& refs : agent_refs_) {
    if (refs.tier) {
      if (cfg_.budgets.tiers.contains(refs.tier->name)) {
        cfg_.agents[refs.name].tier = refs.tier->name;
      } else {
        std::string hint = tiers.empty() ? " (no tiers are defined)" : didYouMean(refs.tier->name, tiers);
        if (hint.empty()) hint = fmt::format(" (tiers are {})", joinOr(tiers));
        w_.error(refs.tier->mark, fmt::format("agent '{}' is in tier '{}', which is not defined under "
                                              "budgets.tiers{}",
                                              refs.name, refs.tier->name, hint));
      }
    }
    for (const Ref& m : refs.models) checkModelRef(m, fmt::format("agent '{}' allows", refs.name));
  }
}

void Loader::readUnknownModelPrice(const Entry& e) {
  std::optional<core::MicroUsdPerMTok> input, cached, output;
  const size_t before = w_.errorCount();
  const bool is_map = w_.readFields(e, {
                                           {"input", [&](const Entry& f) { input = w_.usd(f, false); }},
                                           {"cached_input", [&](const Entry& f) { cached = w_.usd(f, false); }},
                                           {"output", [&](const Entry& f) { output = w_.usd(f, false); }},
                                       });
  if (!is_map || w_.errorCount() != before) return;
  if (!input || !output) {
    w_.error(e.key_mark, "unknown_model_price needs input and output, in USD per 1M tokens");
    return;
  }
  cfg_.unknown_model_price = core::Price{*input, cached.value_or(*input), *output};
}

LoadResult loadWith(std::string_view yaml, std::string_view name, const Catalog& catalog) {
  std::vector<Diagnostic> diags;
  Loader loader{std::string(name), catalog, &diags};
  {
    Walker parser{std::string(name), &diags};
    if (auto root = parser.parse(yaml)) loader.load(*root);
  }
  if (!diags.empty()) {
    sortByPosition(diags);
    return std::unexpected(std::move(diags));
  }
  Config cfg = loader.take();
  cfg.source_path = std::string(name);
  cfg.hash = sha256Hex(yaml);
  return cfg;
}

CatalogResult shippedCatalog(std::string_view config_name) {
  auto path = findCatalogPath();
  if (!path) return std::unexpected(std::vector<Diagnostic>{{std::string(config_name), 0, 0, path.error()}});
  return loadCatalogFile(*path);
}

}  // namespace

LoadResult loadConfigString(std::string_view yaml, std::string_view name, std::string_view catalog_yaml) {
  const CatalogResult catalog = catalog_yaml.empty() ? shippedCatalog(name) : parseCatalog(catalog_yaml, "prices.yaml");
  // A broken catalog would make every price look missing: report it alone.
  if (!catalog) return std::unexpected(catalog.error());
  return loadWith(yaml, name, *catalog);
}

LoadResult loadConfigFile(const std::string& path, const std::string& catalog_path) {
  auto bytes = readSmallFile(path, kMaxConfigBytes);
  if (!bytes) return std::unexpected(std::vector<Diagnostic>{{path, 0, 0, bytes.error()}});
  const CatalogResult catalog = catalog_path.empty() ? shippedCatalog(path) : loadCatalogFile(catalog_path);
  if (!catalog) return std::unexpected(catalog.error());
  return loadWith(*bytes, path, *catalog);
}

}  // namespace sluice::config
