#include "store/import.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/time_text.h"

namespace sluice::store {
namespace {

using nlohmann::json;

std::string sha256Hex(std::string_view a, int64_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const std::string suffix = fmt::format("\n#{}", n);
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, a.data(), a.size());
  EVP_DigestUpdate(ctx, suffix.data(), suffix.size());
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::string out;
  for (unsigned i = 0; i < 12 && i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

const json* field(const json& j, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    auto it = j.find(n);
    if (it != j.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

// An integer field (a float is rounded); error text when it is not a number.
std::optional<int64_t> integer(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    return u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > 9e18) return std::nullopt;
    return static_cast<int64_t>(std::llround(d));
  }
  return std::nullopt;
}

std::string str(const json& j, std::initializer_list<const char*> names, std::string fallback = "") {
  const json* v = field(j, names);
  if (!v) return fallback;
  if (v->is_string()) return v->get<std::string>();
  return v->dump();
}

struct Reader {
  const json& j;
  std::string error;
  int64_t num(std::initializer_list<const char*> names, int64_t fallback = 0) {
    const json* v = field(j, names);
    if (!v) return fallback;
    auto n = integer(*v);
    if (!n) {
      if (error.empty()) error = fmt::format("'{}' is not a number", *names.begin());
      return fallback;
    }
    if (*n < 0 && error.empty()) error = fmt::format("'{}' is negative", *names.begin());
    return *n;
  }
};

std::optional<ImportRow> sluiceRecord(const json& j, std::string& error) {
  Reader rd{j, {}};
  ImportRow r;
  r.request_id = str(j, {"request_id"});
  r.started_unix_ms = rd.num({"started_unix_ms"});
  r.finished_unix_ms = rd.num({"finished_unix_ms"}, r.started_unix_ms);
  r.endpoint = str(j, {"endpoint"}, "chat.completions");
  r.agent = str(j, {"agent"});
  r.key_id = str(j, {"key_id"});
  r.run_id = str(j, {"run_id"});
  r.tier = str(j, {"tier"});
  r.requested_model = str(j, {"requested_model"});
  r.served_model = str(j, {"served_model"});
  r.provider = str(j, {"provider"});
  r.config_version = str(j, {"config_version"});
  r.http_status = rd.num({"http_status"});
  r.outcome = str(j, {"outcome"}, "ok");
  r.error_code = str(j, {"error_code"});
  r.usage = {.input = rd.num({"input_tokens"}),
             .cached = rd.num({"cached_tokens"}),
             .output = rd.num({"output_tokens"}),
             .reasoning = rd.num({"reasoning_tokens"})};
  r.cost_micro_usd = rd.num({"cost_micro_usd"});
  r.usage_source = str(j, {"usage_source"}, "none");
  r.latency_us = rd.num({"latency_us"});
  const json* ttft = field(j, {"ttft_us"});
  r.ttft_us = ttft && integer(*ttft) ? std::max<int64_t>(-1, *integer(*ttft)) : -1;
  r.gateway_us = rd.num({"gateway_us"});
  r.stream = j.contains("stream") && j["stream"].is_boolean() && j["stream"].get<bool>();
  r.finish_reason = str(j, {"finish_reason"});
  r.client_retry_count = field(j, {"client_retry_count"}) && integer(*field(j, {"client_retry_count"}))
                             ? *integer(*field(j, {"client_retry_count"}))
                             : -1;
  r.cost_source = "file";
  if (const json* at = field(j, {"attempts"}); at && at->is_array()) {
    for (const json& a : *at) {
      if (!a.is_object()) {
        error = "an attempt is not an object";
        return std::nullopt;
      }
      Reader ar{a, {}};
      r.attempts.push_back(ImportAttempt{.model = str(a, {"model"}),
                                         .provider = str(a, {"provider"}),
                                         .http_status = ar.num({"http_status"}),
                                         .error = str(a, {"error"}),
                                         .usage = {.input = ar.num({"input_tokens"}),
                                                   .cached = ar.num({"cached_tokens"}),
                                                   .output = ar.num({"output_tokens"}),
                                                   .reasoning = ar.num({"reasoning_tokens"})},
                                         .cost_micro_usd = ar.num({"cost_micro_usd"}),
                                         .usage_source = str(a, {"usage_source"}, "none"),
                                         .latency_us = ar.num({"latency_us"})});
      if (!ar.error.empty()) {
        error = "attempt: " + ar.error;
        return std::nullopt;
      }
    }
  }
  if (r.request_id.empty()) error = "request_id is empty";
  else if (r.started_unix_ms <= 0) error = "started_unix_ms is missing";
  else if (!rd.error.empty()) error = rd.error;
  if (!error.empty()) return std::nullopt;
  return r;
}

std::optional<int64_t> timestampOf(const json& v) {
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (auto t = core::parseIsoTimeMs(s)) return t;
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() && *end == '\0' && d > 0) return core::epochToMs(d);
    return std::nullopt;
  }
  if (v.is_number()) {
    const double d = v.get<double>();
    if (d > 0) return core::epochToMs(d);
  }
  return std::nullopt;
}

std::optional<ImportRow> genericRecord(const json& j, const PriceLookup& price, std::string& error) {
  ImportRow r;
  const json* ts = field(j, {"timestamp", "time", "created_at", "started_unix_ms", "ts"});
  if (!ts) {
    error = "no timestamp";
    return std::nullopt;
  }
  auto when = timestampOf(*ts);
  if (!when) {
    error = fmt::format("timestamp {} is neither ISO 8601 nor epoch seconds or milliseconds", ts->dump());
    return std::nullopt;
  }
  r.started_unix_ms = *when;
  r.requested_model = str(j, {"model", "requested_model"});
  if (r.requested_model.empty()) {
    error = "no model";
    return std::nullopt;
  }
  r.served_model = str(j, {"served_model"}, r.requested_model);
  r.agent = str(j, {"agent_name", "agent"});
  r.provider = str(j, {"provider"});
  r.run_id = str(j, {"run_id"});
  r.tier = str(j, {"tier"});
  r.endpoint = str(j, {"endpoint"}, "chat.completions");
  r.finish_reason = str(j, {"finish_reason"});
  const json* usage_obj = field(j, {"usage"});
  const json& u = usage_obj && usage_obj->is_object() ? *usage_obj : j;
  Reader rd{u, {}};
  const json* in = field(u, {"input_tokens", "prompt_tokens"});
  const json* out = field(u, {"output_tokens", "completion_tokens"});
  const int64_t total = rd.num({"total_tokens"}, -1);
  r.usage.input = rd.num({"input_tokens", "prompt_tokens"});
  r.usage.output = rd.num({"output_tokens", "completion_tokens"});
  if (!in && !out && total < 0) {
    error = "no token counts (input_tokens, output_tokens or total_tokens)";
    return std::nullopt;
  }
  // Only a total, or one side and the total: the other side is the rest.
  if (!in && total >= 0) r.usage.input = std::max<int64_t>(0, total - r.usage.output);
  if (in && !out && total >= 0) r.usage.output = std::max<int64_t>(0, total - r.usage.input);
  r.usage.cached = rd.num({"cached_tokens"});
  if (const json* details = field(u, {"prompt_tokens_details"}); details && details->is_object()) {
    Reader dr{*details, {}};
    r.usage.cached = dr.num({"cached_tokens"}, r.usage.cached);
  }
  r.usage.reasoning = rd.num({"reasoning_tokens"});
  Reader top{j, {}};
  const int64_t latency_ms = top.num({"latency_ms"});
  r.latency_us = core::mulSaturating(latency_ms, 1000);
  r.finished_unix_ms = r.started_unix_ms + latency_ms;
  if (!rd.error.empty() || !top.error.empty()) {
    error = rd.error.empty() ? top.error : rd.error;
    return std::nullopt;
  }
  if (const json* c = field(j, {"cost_micro_usd"})) {
    auto v = integer(*c);
    if (!v || *v < 0) {
      error = "cost_micro_usd is not a non-negative number";
      return std::nullopt;
    }
    r.cost_micro_usd = *v;
    r.cost_source = "file";
  } else if (const json* c = field(j, {"cost_usd", "cost"})) {
    if (!c->is_number() || c->get<double>() < 0 || !std::isfinite(c->get<double>())) {
      error = "cost is not a non-negative number (USD)";
      return std::nullopt;
    }
    r.cost_micro_usd = static_cast<int64_t>(std::llround(c->get<double>() * 1e6));
    r.cost_source = "file";
  } else if (auto p = price(r.served_model)) {
    r.cost_micro_usd = core::costOf(*p, r.usage);
    r.cost_source = "catalog";
  } else {
    r.cost_source = "unpriced";
  }
  const std::string status = str(j, {"status", "outcome"});
  if (r.finish_reason == "error" || status == "error" || status == "failed") {
    r.outcome = "upstream_error";
    r.http_status = 0;
  }
  r.usage_source = "imported";
  r.attempts.push_back(ImportAttempt{.model = r.served_model,
                                     .provider = r.provider,
                                     .http_status = r.http_status,
                                     .usage = r.usage,
                                     .cost_micro_usd = r.cost_micro_usd,
                                     .usage_source = "imported",
                                     .latency_us = r.latency_us});
  return r;
}

bool isSluiceRecord(const json& j) {
  return j.contains("request_id") && j.contains("started_unix_ms") && j.contains("attempts") && j.contains("outcome");
}

void addFormat(std::string& all, std::string_view one) {
  if (all.find(one) != std::string::npos) return;
  all += all.empty() ? std::string(one) : "+" + std::string(one);
}

std::optional<ImportRow> one(const json& j, std::string_view text, int64_t n, const PriceLookup& price,
                             std::string& format, std::string& error) {
  if (!j.is_object()) {
    error = "not a JSON object";
    return std::nullopt;
  }
  if (isSluiceRecord(j)) {
    addFormat(format, "sluice-jsonl");
    return sluiceRecord(j, error);
  }
  auto r = genericRecord(j, price, error);
  if (r) r->request_id = "imp_" + sha256Hex(text, n);
  return r;
}

}  // namespace

ParsedAuditFile parseAuditFile(std::string_view content, const PriceLookup& price) {
  ParsedAuditFile out;
  const size_t first = content.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return out;
  // The whole-file form: one JSON object with an "entries" array.
  if (content[first] == '{') {
    json doc = json::parse(content, nullptr, false);
    if (!doc.is_discarded() && doc.is_object() && doc.contains("entries")) {
      out.format = "entries";
      if (!doc["entries"].is_array()) {
        out.problems.push_back({0, "\"entries\" is not an array"});
        return out;
      }
      int64_t n = 0;
      for (const json& e : doc["entries"]) {
        ++n;
        std::string error;
        const std::string text = e.dump();
        auto r = e.is_object() ? genericRecord(e, price, error) : std::nullopt;
        if (!e.is_object()) error = "not a JSON object";
        if (r) {
          r->line = n;
          r->request_id = "imp_" + sha256Hex(text, n);
          out.rows.push_back(std::move(*r));
        } else {
          out.problems.push_back({n, "entry " + std::to_string(n) + ": " + error});
        }
      }
      return out;
    }
  }
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos <= content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    ++line_no;
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      if (end == content.size()) break;
      continue;
    }
    json j = json::parse(line, nullptr, false);
    std::string error;
    if (j.is_discarded()) {
      out.problems.push_back({line_no, fmt::format("line {}: not valid JSON", line_no)});
    } else if (auto r = one(j, line, line_no, price, out.format, error)) {
      if (r->usage_source == "imported") addFormat(out.format, "jsonl");
      r->line = line_no;
      out.rows.push_back(std::move(*r));
    } else {
      out.problems.push_back({line_no, fmt::format("line {}: {}", line_no, error)});
    }
    if (end == content.size()) break;
  }
  return out;
}

core::Result<ImportCounts> importRows(SqliteDb& db, const std::vector<ImportRow>& rows, const std::string& source,
                                      const std::function<std::string(std::string_view)>& tier_of, bool dry_run) {
  auto fail = [&](const core::Error& e) -> core::Result<ImportCounts> {
    if (sqlite3_get_autocommit(db.raw()) == 0) (void)db.exec("ROLLBACK");
    return std::unexpected(e);
  };
  if (auto r = db.exec("BEGIN IMMEDIATE"); !r) return std::unexpected(r.error());
  auto rq = db.prepare(
      "INSERT OR IGNORE INTO requests (request_id, started_unix_ms, finished_unix_ms, endpoint, agent, key_id,"
      " run_id, tier, requested_model, served_model, provider, config_version, http_status, outcome, error_code,"
      " input_tokens, cached_tokens, output_tokens, reasoning_tokens, cost_micro_usd, usage_source, billed_attempts,"
      " latency_us, ttft_us, gateway_us, stream, finish_reason, client_retry_count, source, cost_source)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,"
      " ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)");
  if (!rq) return fail(rq.error());
  auto at = db.prepare(
      "INSERT INTO attempts (request, attempt, model, provider, http_status, error, input_tokens, cached_tokens,"
      " output_tokens, reasoning_tokens, cost_micro_usd, usage_source, latency_us)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
  if (!at) return fail(at.error());
  auto sp = db.prepare(
      "INSERT INTO spend_by_minute (minute, agent, tier, tokens, cost_micro_usd, calls, requests)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1) ON CONFLICT (minute, agent, tier) DO UPDATE SET"
      " tokens = tokens + excluded.tokens, cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd,"
      " calls = calls + excluded.calls, requests = requests + 1");
  if (!sp) return fail(sp.error());
  // A Sluice record may already be in this ledger as the gateway wrote it
  // (the JSON-lines mirror of the same gateway, an export of this ledger):
  // found by its start time (indexed) and request id.
  auto seen = db.prepare("SELECT 1 FROM requests WHERE started_unix_ms = ?1 AND request_id = ?2 LIMIT 1");
  if (!seen) return fail(seen.error());
  ImportCounts counts;
  for (const ImportRow& r : rows) {
    if (!r.request_id.starts_with("imp_")) {
      seen->bind(1, r.started_unix_ms).bind(2, std::string_view(r.request_id));
      auto found = seen->step();
      if (!found) return fail(found.error());
      seen->reset();
      if (*found) {
        ++counts.already;
        continue;
      }
    }
    const std::string tier = !r.tier.empty() || !tier_of ? r.tier : tier_of(r.agent);
    int64_t billed = 0;
    for (const auto& a : r.attempts) billed += (a.cost_micro_usd > 0 || a.usage.total() > 0) ? 1 : 0;
    rq->bind(1, std::string_view(r.request_id)).bind(2, r.started_unix_ms).bind(3, r.finished_unix_ms);
    int i = 4;
    for (const std::string* s : {&r.endpoint, &r.agent, &r.key_id, &r.run_id, &tier, &r.requested_model,
                                 &r.served_model, &r.provider, &r.config_version}) {
      rq->bind(i++, std::string_view(*s));
    }
    rq->bind(13, r.http_status).bind(14, std::string_view(r.outcome)).bind(15, std::string_view(r.error_code));
    rq->bind(16, r.usage.input).bind(17, r.usage.cached).bind(18, r.usage.output).bind(19, r.usage.reasoning);
    rq->bind(20, r.cost_micro_usd).bind(21, std::string_view(r.usage_source)).bind(22, billed);
    rq->bind(23, r.latency_us).bind(24, r.ttft_us).bind(25, r.gateway_us).bind(26, int64_t{r.stream ? 1 : 0});
    rq->bind(27, std::string_view(r.finish_reason)).bind(28, r.client_retry_count);
    rq->bind(29, std::string_view(source)).bind(30, std::string_view(r.cost_source));
    if (auto ok = rq->run(); !ok) return fail(ok.error());
    if (sqlite3_changes(db.raw()) == 0) {
      ++counts.already;
      continue;
    }
    ++counts.added;
    counts.added_cost_micro_usd = core::addSaturating(counts.added_cost_micro_usd, r.cost_micro_usd);
    const int64_t id = sqlite3_last_insert_rowid(db.raw());
    int64_t k = 0;
    for (const ImportAttempt& a : r.attempts) {
      at->bind(1, id).bind(2, k++).bind(3, std::string_view(a.model)).bind(4, std::string_view(a.provider));
      at->bind(5, a.http_status).bind(6, std::string_view(a.error));
      at->bind(7, a.usage.input).bind(8, a.usage.cached).bind(9, a.usage.output).bind(10, a.usage.reasoning);
      at->bind(11, a.cost_micro_usd).bind(12, std::string_view(a.usage_source)).bind(13, a.latency_us);
      if (auto ok = at->run(); !ok) return fail(ok.error());
    }
    sp->bind(1, r.started_unix_ms / 60'000).bind(2, std::string_view(r.agent)).bind(3, std::string_view(tier));
    sp->bind(4, r.usage.total()).bind(5, r.cost_micro_usd).bind(6, billed);
    if (auto ok = sp->run(); !ok) return fail(ok.error());
  }
  if (auto r = db.exec(dry_run ? "ROLLBACK" : "COMMIT"); !r) return fail(r.error());
  return counts;
}

}  // namespace sluice::store
