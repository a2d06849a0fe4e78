#include "store/usage.h"

#include "core/json_text.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string_view>
#include <vector>

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

// ---------------------------------------------------------------------------
// Reference serializer: a verbatim copy of appendJsonLine as it was before the
// two-pass raw-buffer rewrite (std::string appends, key by key). The current
// one must produce the same bytes for every record: the ledger file format
// must not change.

class RefLineWriter {
 public:
  explicit RefLineWriter(std::string& out) : out_(out) { out_ += '{'; }
  RefLineWriter& str(std::string_view key, std::string_view value) {
    if (plainAscii(value)) {
      this->key(key, '"');
      out_.append(value);
      out_ += '"';
    } else {
      this->key(key);
      core::appendJsonString(out_, value);
    }
    return *this;
  }
  RefLineWriter& num(std::string_view key, int64_t value) {
    this->key(key);
    core::appendInt(out_, value);
    return *this;
  }
  RefLineWriter& boolean(std::string_view key, bool value) {
    this->key(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  RefLineWriter& usage(const core::TokenUsage& u) {
    return num("input_tokens", u.input)
        .num("cached_tokens", u.cached)
        .num("output_tokens", u.output)
        .num("reasoning_tokens", u.reasoning);
  }
  std::string& raw(std::string_view key) {
    this->key(key);
    return out_;
  }
  void close() { out_ += '}'; }

 private:
  static bool plainAscii(std::string_view s) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    auto has_zero = [](uint64_t v) { return ((v - kOnes) & ~v & kHigh) != 0; };
    const char* p = s.data();
    size_t n = s.size();
    for (; n >= 8; p += 8, n -= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if ((w & kHigh) != 0 || ((w - kOnes * 0x20) & ~w & kHigh) != 0 || has_zero(w ^ (kOnes * '"')) ||
          has_zero(w ^ (kOnes * '\\'))) {
        return false;
      }
    }
    for (; n > 0; ++p, --n) {
      const auto c = static_cast<unsigned char>(*p);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return false;
    }
    return true;
  }
  void key(std::string_view k, char open = 0) {
    char buf[48];
    size_t n = 0;
    if (!first_) buf[n++] = ',';
    first_ = false;
    buf[n++] = '"';
    k = k.substr(0, sizeof buf - 5);
    std::memcpy(buf + n, k.data(), k.size());
    n += k.size();
    buf[n++] = '"';
    buf[n++] = ':';
    if (open != 0) buf[n++] = open;
    out_.append(buf, n);
  }
  std::string& out_;
  bool first_ = true;
};

void referenceAppendJsonLine(std::string& out, const UsageRecord& r) {
  RefLineWriter w(out);
  w.str("request_id", r.request_id)
      .num("started_unix_ms", r.started_unix_ms)
      .num("finished_unix_ms", r.finished_unix_ms);
  w.str("endpoint", r.endpoint)
      .str("agent", r.agent)
      .str("key_id", r.key_id)
      .str("run_id", r.run_id)
      .str("tier", r.tier);
  w.str("requested_model", r.requested_model).str("served_model", r.served_model).str("provider", r.provider);
  w.str("config_version", r.config_version);
  std::string& a = w.raw("attempts");
  a += '[';
  for (size_t i = 0; i < r.attempts.size(); ++i) {
    const Attempt& at = r.attempts[i];
    if (i) a += ',';
    RefLineWriter aw(a);
    aw.str("model", at.model).str("provider", at.provider).num("http_status", at.http_status).str("error", at.error);
    aw.usage(at.usage).num("cost_micro_usd", at.cost_micro_usd).str("usage_source", toString(at.usage_source));
    aw.num("latency_us", at.latency_us).close();
  }
  a += ']';
  w.num("http_status", r.http_status).str("outcome", toString(r.outcome)).str("error_code", r.error_code);
  w.usage(r.usage).num("cost_micro_usd", r.cost_micro_usd).str("usage_source", toString(r.usage_source));
  w.num("latency_us", r.latency_us).num("ttft_us", r.ttft_us).num("gateway_us", r.gateway_us);
  w.boolean("stream", r.stream).str("finish_reason", r.finish_reason).num("client_retry_count", r.retry_count_header);
  w.close();
}

std::string referenceJsonLine(const UsageRecord& r) {
  std::string out;
  referenceAppendJsonLine(out, r);
  return out;
}

bool isValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t len = core::utf8SequenceLength(s.substr(i));
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// Byte-identical to the reference, valid JSON, and (where the input strings
// are valid UTF-8) the strings and numbers read back as they were.
void expectSameLine(const UsageRecord& r) {
  const std::string want = referenceJsonLine(r);
  const std::string got = toJsonLine(r);
  ASSERT_EQ(got, want);
  // appendJsonLine appends, whatever is already in the buffer.
  std::string buf = "prefix\n";
  appendJsonLine(buf, r);
  ASSERT_EQ(buf, "prefix\n" + want);

  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(got)) << got;
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 28u);  // top-level keys
  EXPECT_EQ(j["started_unix_ms"].get<int64_t>(), r.started_unix_ms);
  EXPECT_EQ(j["cost_micro_usd"].get<int64_t>(), r.cost_micro_usd);
  EXPECT_EQ(j["ttft_us"].get<int64_t>(), r.ttft_us);
  EXPECT_EQ(j["client_retry_count"].get<int64_t>(), r.retry_count_header);
  EXPECT_EQ(j["stream"].get<bool>(), r.stream);
  ASSERT_EQ(j["attempts"].size(), r.attempts.size());
  for (size_t i = 0; i < r.attempts.size(); ++i) {
    EXPECT_EQ(j["attempts"][i]["latency_us"].get<int64_t>(), r.attempts[i].latency_us);
    EXPECT_EQ(j["attempts"][i]["http_status"].get<int64_t>(), r.attempts[i].http_status);
    if (isValidUtf8(r.attempts[i].error)) {
      EXPECT_EQ(j["attempts"][i]["error"], r.attempts[i].error);
    }
  }
  if (isValidUtf8(r.request_id)) {
    EXPECT_EQ(j["request_id"], r.request_id);
  }
  if (isValidUtf8(r.run_id)) {
    EXPECT_EQ(j["run_id"], r.run_id);
  }
  if (isValidUtf8(r.finish_reason)) {
    EXPECT_EQ(j["finish_reason"], r.finish_reason);
  }
}

// Every string field of the record (attempts included) set to `s`.
UsageRecord allStrings(const std::string& s, size_t attempts) {
  UsageRecord r;
  for (std::string* f : {&r.request_id, &r.endpoint, &r.agent, &r.key_id, &r.run_id, &r.tier, &r.requested_model,
                         &r.served_model, &r.provider, &r.config_version, &r.error_code, &r.finish_reason}) {
    *f = s;
  }
  for (size_t i = 0; i < attempts; ++i) r.attempts.push_back(Attempt{.model = s, .provider = s, .error = s});
  return r;
}

// Every integer field set to `v` (the int ones to v truncated to int).
void allNumbers(UsageRecord& r, int64_t v) {
  const auto small = static_cast<int>(std::clamp<int64_t>(v, INT_MIN, INT_MAX));
  r.started_unix_ms = r.finished_unix_ms = v;
  r.http_status = small;
  r.usage = {.input = v, .cached = v, .output = v, .reasoning = v};
  r.cost_micro_usd = r.latency_us = r.ttft_us = r.gateway_us = v;
  r.retry_count_header = small;
  for (auto& a : r.attempts) {
    a.http_status = small;
    a.usage = r.usage;
    a.cost_micro_usd = a.latency_us = v;
  }
}

TEST(UsageJsonLine, EmptyRecordMatchesReference) {
  expectSameLine(UsageRecord{});
  UsageRecord r;
  r.stream = true;
  expectSameLine(r);
}

TEST(UsageJsonLine, TypicalRecordMatchesReference) {
  UsageRecord r;
  r.request_id = "req_3f9c2a7b1d4e5f60a1b2c3d4";
  r.started_unix_ms = 1'767'225'600'123;
  r.finished_unix_ms = 1'767'225'601'456;
  r.endpoint = "chat.completions";
  r.agent = "drafter";
  r.key_id = "k_9f3a2c7b1d";
  r.requested_model = r.served_model = "gpt-4o-mini";
  r.provider = "openai";
  r.config_version = "3f9c2a7b1d4e5f60";
  r.attempts.push_back(Attempt{.model = "gpt-4o-mini",
                               .provider = "openai",
                               .http_status = 200,
                               .usage = {.input = 1234, .cached = 512, .output = 321},
                               .cost_micro_usd = 379,
                               .usage_source = UsageSource::kProvider,
                               .latency_us = 1'287'345});
  r.http_status = 200;
  r.usage = r.attempts[0].usage;
  r.cost_micro_usd = 379;
  r.usage_source = UsageSource::kProvider;
  r.latency_us = 1'333'012;
  r.ttft_us = 412'877;
  r.gateway_us = 45'667;
  r.stream = true;
  r.finish_reason = "stop";
  r.retry_count_header = 0;
  expectSameLine(r);
  // The format itself, spelled out once.
  EXPECT_EQ(
      toJsonLine(r),
      R"({"request_id":"req_3f9c2a7b1d4e5f60a1b2c3d4","started_unix_ms":1767225600123,"finished_unix_ms":1767225601456,)"
      R"("endpoint":"chat.completions","agent":"drafter","key_id":"k_9f3a2c7b1d","run_id":"","tier":"",)"
      R"("requested_model":"gpt-4o-mini","served_model":"gpt-4o-mini","provider":"openai","config_version":"3f9c2a7b1d4e5f60",)"
      R"("attempts":[{"model":"gpt-4o-mini","provider":"openai","http_status":200,"error":"","input_tokens":1234,)"
      R"("cached_tokens":512,"output_tokens":321,"reasoning_tokens":0,"cost_micro_usd":379,"usage_source":"provider",)"
      R"("latency_us":1287345}],"http_status":200,"outcome":"ok","error_code":"","input_tokens":1234,"cached_tokens":512,)"
      R"("output_tokens":321,"reasoning_tokens":0,"cost_micro_usd":379,"usage_source":"provider","latency_us":1333012,)"
      R"("ttft_us":412877,"gateway_us":45667,"stream":true,"finish_reason":"stop","client_retry_count":0})");
}

TEST(UsageJsonLine, IntegerEdgesMatchReference) {
  std::vector<int64_t> values = {0,
                                 1,
                                 -1,
                                 9,
                                 10,
                                 -10,
                                 99,
                                 100,
                                 std::numeric_limits<int64_t>::max(),
                                 std::numeric_limits<int64_t>::min(),
                                 std::numeric_limits<int64_t>::min() + 1,
                                 INT_MAX,
                                 INT_MIN,
                                 int64_t{INT_MAX} + 1,
                                 int64_t{INT_MIN} - 1};
  // Each side of every power of ten (digit-count boundaries).
  for (int64_t p = 1; p <= std::numeric_limits<int64_t>::max() / 10; p *= 10) {
    for (int64_t v : {p - 1, p, p + 1, 10 * p - 1, 10 * p}) {
      values.push_back(v);
      values.push_back(-v);
    }
  }
  // Powers of two (bit-width boundaries).
  for (int b = 0; b < 63; ++b) {
    const int64_t v = int64_t{1} << b;
    for (int64_t x : {v - 1, v, v + 1}) {
      values.push_back(x);
      values.push_back(-x);
    }
  }
  for (int64_t v : values) {
    UsageRecord r = allStrings("x", 2);
    allNumbers(r, v);
    SCOPED_TRACE(v);
    expectSameLine(r);
    EXPECT_NE(toJsonLine(r).find("\"cost_micro_usd\":" + std::to_string(v) + ","), std::string::npos);
  }
}

TEST(UsageJsonLine, StringEscapesMatchReference) {
  std::vector<std::string> values = {
      "",
      "\"",
      "\\",
      "a\"b\\c",
      std::string("\0", 1),
      std::string("nul\0in the middle of a longer value", 35),
      "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f",
      "caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac 100 \xf0\x9f\x98\x80!",  // 2-, 3- and 4-byte UTF-8
      "\xff",
      "\xfe\xff\xc0\xaf",                      // invalid bytes, overlong '/'
      "\xed\xa0\x80",                          // a surrogate: invalid
      "\xf4\x90\x80\x80",                      // above U+10FFFF: invalid
      "\xe2\x82",                              // truncated sequence at the end
      "abcdefg\xe2\x82",                       // truncated, after a plain word
      "abcdefgh\xc3\xa9",                      // multi-byte in the tail word
      "12345678\xc3",                          // lone lead byte at the very end
      "\x80\x80\x80\x80\x80\x80\x80\x80\x80",  // lone continuation bytes
      "tab\there\r\nnew\bline\fform",
  };
  std::string controls;
  for (int c = 0; c < 0x20; ++c) controls += static_cast<char>(c);
  values.push_back(controls);
  values.push_back(controls + controls + "\x7f");
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes += static_cast<char>(c);
  values.push_back(all_bytes);
  // Each special byte at every position of lengths 1..24, around the 4- and
  // 8-byte word paths.
  for (const char* sp : {"\"", "\\", "\n", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xff", " ", "~", "!", "#", "[", "]"}) {
    for (size_t len = 0; len <= 24; ++len) {
      for (size_t pos = 0; pos <= len; ++pos) {
        values.push_back(std::string(pos, 'a') + sp + std::string(len - pos, 'b'));
      }
    }
  }
  // The worst cases of the size bound: long runs of 6-byte and 3-byte escapes.
  values.emplace_back(5000, '\x01');
  values.emplace_back(5000, '\xff');
  values.emplace_back(5000, 'z');
  for (const auto& v : values) {
    SCOPED_TRACE(testing::PrintToString(v));
    UsageRecord r = allStrings(v, 1);
    expectSameLine(r);
    // Also one field at a time, next to plain neighbours.
    UsageRecord one = allStrings("plain", 1);
    one.agent = v;
    one.attempts[0].error = v;
    expectSameLine(one);
  }
  UsageRecord worst = allStrings(std::string(3000, '\x02'), 8);
  allNumbers(worst, std::numeric_limits<int64_t>::min());
  expectSameLine(worst);
}

TEST(UsageJsonLine, AttemptCountsAndEnumsMatchReference) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{17}, size_t{200}}) {
    UsageRecord r = allStrings("model-x", n);
    allNumbers(r, 12345);
    for (size_t i = 0; i < n; ++i) r.attempts[i].usage_source = static_cast<UsageSource>(i % 3);
    SCOPED_TRACE(n);
    expectSameLine(r);
  }
  for (int o = 0; o <= 8; ++o) {  // 8 is out of range: written as "unknown"
    for (int s = 0; s <= 3; ++s) {
      UsageRecord r;
      r.outcome = static_cast<Outcome>(o);
      r.usage_source = static_cast<UsageSource>(s);
      r.attempts.push_back(Attempt{.usage_source = static_cast<UsageSource>(3 - s)});
      expectSameLine(r);
    }
  }
}

// Pseudo-random records (fixed seed, so deterministic): random lengths 0-300,
// random bytes (plain ASCII, any byte, or valid UTF-8 mixed with specials),
// random integers across the whole range.
class RandomRecords {
 public:
  explicit RandomRecords(uint64_t seed) : rng_(seed) {}

  UsageRecord next() {
    UsageRecord r;
    r.request_id = str();
    r.started_unix_ms = num();
    r.finished_unix_ms = num();
    r.endpoint = str();
    r.agent = str();
    r.key_id = str();
    r.run_id = str();
    r.tier = str();
    r.requested_model = str();
    r.served_model = str();
    r.provider = str();
    r.config_version = str();
    const size_t attempts = below(8) == 0 ? below(12) : below(3);
    for (size_t i = 0; i < attempts; ++i) {
      Attempt a;
      a.model = str();
      a.provider = str();
      a.http_status = smallNum();
      a.error = str();
      a.usage = usage();
      a.cost_micro_usd = num();
      a.usage_source = static_cast<UsageSource>(below(4));
      a.latency_us = num();
      r.attempts.push_back(std::move(a));
    }
    r.http_status = smallNum();
    r.outcome = static_cast<Outcome>(below(9));
    r.error_code = str();
    r.usage = usage();
    r.cost_micro_usd = num();
    r.usage_source = static_cast<UsageSource>(below(4));
    r.latency_us = num();
    r.ttft_us = num();
    r.gateway_us = num();
    r.stream = below(2) == 1;
    r.finish_reason = str();
    r.retry_count_header = smallNum();
    return r;
  }

 private:
  size_t below(size_t n) { return static_cast<size_t>(rng_() % n); }

  std::string str() {
    const size_t len = below(4) == 0 ? below(301) : below(40);
    std::string s;
    s.reserve(len + 4);
    switch (below(4)) {
      case 0:  // any byte
        while (s.size() < len) s += static_cast<char>(rng_() & 0xFF);
        break;
      case 1:  // mostly printable ASCII with specials, UTF-8 and bad bytes mixed in
        while (s.size() < len) {
          switch (below(16)) {
            case 0: s += static_cast<char>(below(0x20)); break;
            case 1: s += below(2) ? '"' : '\\'; break;
            case 2: s += "\xc3\xa9"; break;
            case 3: s += "\xe2\x82\xac"; break;
            case 4: s += "\xf0\x9f\x98\x80"; break;
            case 5: s += static_cast<char>(0x80 + below(0x80)); break;
            case 6: s += '\x7f'; break;
            default: s += static_cast<char>(0x20 + below(0x5F)); break;
          }
        }
        break;
      default:  // plain printable ASCII (the common case)
        while (s.size() < len) {
          char c = static_cast<char>(0x20 + below(0x5F));
          if (c == '"' || c == '\\') c = '_';
          s += c;
        }
        break;
    }
    return s;
  }

  int64_t num() {
    switch (below(5)) {
      case 0: return static_cast<int64_t>(rng_());  // the whole range, both signs
      case 1: return static_cast<int64_t>(below(10));
      case 2: return -static_cast<int64_t>(below(1000));
      case 3: return 1'700'000'000'000 + static_cast<int64_t>(below(100'000'000'000));  // unix ms
      default: return static_cast<int64_t>(rng_() >> below(64));                        // every magnitude
    }
  }

  int smallNum() {
    switch (below(4)) {
      case 0: return static_cast<int>(static_cast<uint32_t>(rng_()));
      case 1: return -1;
      default: return static_cast<int>(below(600));
    }
  }

  core::TokenUsage usage() { return {.input = num(), .cached = num(), .output = num(), .reasoning = num()}; }

  std::mt19937_64 rng_;
};

TEST(UsageJsonLine, RandomRecordsMatchReference) {
  RandomRecords gen(0x5eed'1a7e'5eed'1a7eULL);
  std::string batch;
  std::string ref_batch;
  for (int i = 0; i < 4000; ++i) {
    const UsageRecord r = gen.next();
    SCOPED_TRACE(i);
    expectSameLine(r);
    if (HasFatalFailure() || HasNonfatalFailure()) return;
    // The writer thread's pattern: many records appended to one buffer.
    appendJsonLine(batch, r);
    batch += '\n';
    referenceAppendJsonLine(ref_batch, r);
    ref_batch += '\n';
  }
  EXPECT_EQ(batch, ref_batch);
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

TEST(Usage, OutcomesHaveTheirLedgerNames) {
  const std::vector<std::pair<Outcome, std::string>> names = {
      {Outcome::kOk, "ok"},
      {Outcome::kRejectedBudget, "rejected_budget"},
      {Outcome::kRejectedRate, "rejected_rate"},
      {Outcome::kRejectedAuth, "rejected_auth"},
      {Outcome::kRejectedInvalid, "rejected_invalid"},
      {Outcome::kRejectedOverload, "rejected_overload"},
      {Outcome::kUpstreamError, "upstream_error"},
      {Outcome::kClientAbort, "client_abort"},
  };
  for (const auto& [o, name] : names) {
    UsageRecord r;
    r.outcome = o;
    EXPECT_EQ(nlohmann::json::parse(toJsonLine(r))["outcome"], name);
  }
}

TEST(Usage, InvalidUtf8FromClientsDoesNotThrow) {
  auto r = sample(0);
  r.requested_model = std::string("bad\xff\xfe", 5);
  EXPECT_NO_THROW({
    auto line = toJsonLine(r);
    EXPECT_FALSE(line.empty());
  });
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

TEST(Usage, JsonlSinkKeepsOnlyTheTailOfTheLogInThePageCache) {
  auto path = std::filesystem::temp_directory_path() / ("sluice_usage_cache_" + std::to_string(::getpid()) + ".jsonl");
  struct statfs fs {};
  ASSERT_EQ(::statfs(path.parent_path().c_str(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC) GTEST_SKIP() << "tmpfs pages live only in memory: nothing to trim";
  std::filesystem::remove(path);
  constexpr uint64_t kKeep = 1 << 20;
  constexpr int kRecords = 20000;
  {
    auto sink = openJsonlSink(path.string(), {.cached_bytes = kKeep});
    ASSERT_TRUE(sink);
    for (int i = 0; i < kRecords; ++i) {
      (*sink)->submit(sample(i));
      if (i % 1000 == 999) (*sink)->flush();  // one batch per thousand records
    }
    (*sink)->flush();
  }
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 8 * kKeep) << "enough log to trim";
  // Which of the file's pages are in the page cache (mincore on a mapping
  // reads residency without faulting anything in).
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((size + page - 1) / page);
  ASSERT_EQ(::mincore(map, size, resident.data()), 0);
  ::munmap(map, size);
  ::close(fd);
  const size_t head_pages = (size - 3 * kKeep) / page;  // all but the last window and the last drop step
  size_t cached_head = 0;
  for (size_t i = 0; i < head_pages; ++i) cached_head += resident[i] & 1;
  std::string ranges;
  for (size_t i = 0; i < resident.size(); ++i)
    if ((resident[i] & 1) && (i == 0 || !(resident[i - 1] & 1))) {
      size_t j = i;
      while (j + 1 < resident.size() && (resident[j + 1] & 1)) ++j;
      ranges += " [" + std::to_string(i) + "," + std::to_string(j) + "]";
    }
  EXPECT_LE(cached_head, head_pages / 20) << cached_head << " of the log's first " << head_pages
                                          << " pages are cached; cached pages:" << ranges << " of " << resident.size();
  size_t cached_tail = 0;
  for (size_t i = resident.size() - kKeep / page / 2; i < resident.size(); ++i) cached_tail += resident[i] & 1;
  EXPECT_GT(cached_tail, 0U) << "the newest lines stay cached for readers that keep up";

  // Trimming the cache never loses a line.
  std::ifstream in(path);
  int lines = 0;
  for (std::string l; std::getline(in, l);) {
    ASSERT_EQ(nlohmann::json::parse(l)["request_id"], "req_" + std::to_string(lines));
    ++lines;
  }
  EXPECT_EQ(lines, kRecords);
  std::filesystem::remove(path);
}

// Reports from the writer thread, collected for the test.
struct Reports {
  std::mutex mu;
  std::vector<std::pair<bool, std::string>> got;
  std::function<void(bool, const std::string&)> fn() {
    return [this](bool failing, const std::string& m) {
      std::lock_guard lk(mu);
      got.emplace_back(failing, m);
    };
  }
  std::vector<std::pair<bool, std::string>> all() {
    std::lock_guard lk(mu);
    return got;
  }
};

TEST(Usage, JsonlSinkOnAFullDiskSaysSoAndNeverHangs) {
  Reports reports;
  {
    auto sink = openJsonlSink("/dev/full", {.report = reports.fn()});
    ASSERT_TRUE(sink);
    EXPECT_FALSE((*sink)->problem());
    for (int i = 0; i < 10; ++i) (*sink)->submit(sample(i));
    (*sink)->flush();  // returns after the failed attempt
    auto p = (*sink)->problem();
    ASSERT_TRUE(p);
    EXPECT_NE(p->find("No space left on device"), std::string::npos) << *p;
    (*sink)->flush();  // a retry fails the same way; still no hang
  }                    // destruction: one last attempt, then the loss is reported
  const auto r = reports.all();
  ASSERT_GE(r.size(), 2U);
  EXPECT_TRUE(r.front().first);
  EXPECT_NE(r.front().second.find("/dev/full"), std::string::npos) << r.front().second;
  EXPECT_NE(r.back().second.find("10 record(s) could not be written"), std::string::npos) << r.back().second;
}

TEST(Usage, JsonlSinkBoundsItsBacklogWhileTheLogFails) {
  Reports reports;
  auto sink = openJsonlSink("/dev/full", {.max_backlog_bytes = 16 * 1024, .report = reports.fn()});
  ASSERT_TRUE(sink);
  for (int i = 0; i < 200; ++i) (*sink)->submit(sample(i));  // ~150 KB of lines
  ASSERT_TRUE((*sink)->problem()) << "dropping is a problem at once, before the writer notices";
  (*sink)->flush();
  sink->reset();
  const auto r = reports.all();
  ASSERT_FALSE(r.empty());
  // At most 16 KB of lines were kept (about 20); the rest were dropped.
  EXPECT_NE(r.back().second.find("dropped"), std::string::npos) << r.back().second;
  unsigned lost = 0, dropped = 0;
  ASSERT_EQ(std::sscanf(r.back().second.c_str(),
                        "usage log /dev/full: %u record(s) could not be written before exit, %u dropped", &lost,
                        &dropped),
            2)
      << r.back().second;
  EXPECT_EQ(lost + dropped, 200U);
  EXPECT_LE(lost, 30U);
  EXPECT_GE(dropped, 170U);
}

// The file-size limit stands in for a full disk that frees up: writes past
// it fail (EFBIG), and raising it is the space coming back.
TEST(Usage, JsonlSinkRetriesAFailedWriteFromTheExactByteAndLosesNothing) {
  auto path = std::filesystem::temp_directory_path() / ("sluice_usage_full_" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(path);
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  Reports reports;
  {
    auto sink = openJsonlSink(path.string(), {.report = reports.fn()});
    ASSERT_TRUE(sink);
    struct rlimit small = saved;
    small.rlim_cur = 10000;  // ends mid-line
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    for (int i = 0; i < 100; ++i) (*sink)->submit(sample(i));
    (*sink)->flush();
    EXPECT_EQ(std::filesystem::file_size(path), 10000U) << "written up to the limit, then refused";
    auto p = (*sink)->problem();
    ASSERT_TRUE(p);
    EXPECT_NE(p->find("too large"), std::string::npos) << *p;
    for (int i = 100; i < 150; ++i) (*sink)->submit(sample(i));  // more arrive meanwhile
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);             // space again
    (*sink)->flush();
    EXPECT_FALSE((*sink)->problem());
  }
  std::signal(SIGXFSZ, old_handler);
  std::ifstream in(path);
  int lines = 0;
  for (std::string l; std::getline(in, l);) {
    ASSERT_EQ(nlohmann::json::parse(l)["request_id"], "req_" + std::to_string(lines)) << "line " << lines;
    ++lines;
  }
  EXPECT_EQ(lines, 150) << "every record, in order, none cut or repeated";
  const auto r = reports.all();
  ASSERT_EQ(r.size(), 2U);
  EXPECT_TRUE(r[0].first);
  EXPECT_FALSE(r[1].first);
  EXPECT_NE(r[1].second.find("written again; 0 record(s) were dropped"), std::string::npos) << r[1].second;
  std::filesystem::remove(path);
}

TEST(Usage, JsonlSinkReopensItsPathAfterARename) {
  const auto dir = std::filesystem::temp_directory_path() / ("sluice_rotate_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto path = dir / "usage.jsonl";
  auto sink = openJsonlSink(path.string());
  ASSERT_TRUE(sink);
  for (int i = 0; i < 10; ++i) (*sink)->submit(sample(i));
  (*sink)->flush();
  std::filesystem::rename(path, dir / "usage.jsonl.1");      // logrotate, "create" mode
  for (int i = 10; i < 15; ++i) (*sink)->submit(sample(i));  // before the signal: the old file
  ASSERT_TRUE((*sink)->reopen());
  for (int i = 15; i < 30; ++i) (*sink)->submit(sample(i));
  (*sink)->flush();
  auto ids = [](const std::filesystem::path& p) {
    std::vector<std::string> out;
    std::ifstream in(p);
    for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l)["request_id"]);
    return out;
  };
  const auto old_ids = ids(dir / "usage.jsonl.1");
  const auto new_ids = ids(path);
  ASSERT_EQ(old_ids.size(), 15U) << "what came before the reopen goes to the renamed file, what came after to the new";
  std::vector<std::string> all = old_ids;
  all.insert(all.end(), new_ids.begin(), new_ids.end());
  ASSERT_EQ(all.size(), 30U);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(all[static_cast<size_t>(i)], "req_" + std::to_string(i));

  // A path that cannot be opened: an error, and the current file stays in use.
  std::filesystem::remove_all(dir);
  auto failed = (*sink)->reopen();
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("cannot reopen usage log"), std::string::npos);
  (*sink)->submit(sample(30));
  (*sink)->flush();
  EXPECT_FALSE((*sink)->problem()) << "writes go on to the open (now unlinked) file";
  sink->reset();
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

TEST(Usage, DiscardSinkCountsAndKeepsNothing) {
  DiscardUsageSink sink;
  for (int i = 0; i < 1000; ++i) sink.submit(sample(i));
  sink.flush();
  EXPECT_EQ(sink.dropped(), 1000u);
}

}  // namespace
}  // namespace sluice::store
