#include "store/usage.h"

#include "core/json_text.h"

#include <condition_variable>
#include <cstring>
#include <cstdio>
#include <thread>

namespace sluice::store {

std::string_view toString(Outcome o) {
  switch (o) {
    case Outcome::kOk: return "ok";
    case Outcome::kRejectedBudget: return "rejected_budget";
    case Outcome::kRejectedRate: return "rejected_rate";
    case Outcome::kRejectedAuth: return "rejected_auth";
    case Outcome::kRejectedInvalid: return "rejected_invalid";
    case Outcome::kUpstreamError: return "upstream_error";
    case Outcome::kClientAbort: return "client_abort";
  }
  return "unknown";
}

std::string_view toString(UsageSource s) {
  switch (s) {
    case UsageSource::kNone: return "none";
    case UsageSource::kProvider: return "provider";
    case UsageSource::kEstimated: return "estimated";
  }
  return "none";
}

namespace {

// A hand-written serializer: this runs once per request, and building a DOM
// (nlohmann::json) first cost more than the rest of the request path.
class LineWriter {
 public:
  explicit LineWriter(std::string& out) : out_(out) { out_ += '{'; }
  LineWriter& str(std::string_view key, std::string_view value) {
    if (plainAscii(value)) {
      // Most values (ids, model names, enums) need no escaping: the key, the
      // quotes and the value go out in two appends instead of a byte-wise
      // escaper walk.
      this->key(key, '"');
      out_.append(value);
      out_ += '"';
    } else {
      this->key(key);
      core::appendJsonString(out_, value);
    }
    return *this;
  }
  LineWriter& num(std::string_view key, int64_t value) {
    this->key(key);
    core::appendInt(out_, value);
    return *this;
  }
  LineWriter& boolean(std::string_view key, bool value) {
    this->key(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  LineWriter& usage(const core::TokenUsage& u) {
    return num("input_tokens", u.input).num("cached_tokens", u.cached).num("output_tokens", u.output).num("reasoning_tokens", u.reasoning);
  }
  /// Starts a raw value (caller appends it).
  std::string& raw(std::string_view key) {
    this->key(key);
    return out_;
  }
  void close() { out_ += '}'; }

 private:
  // True when `s` is printable ASCII without '"' or '\\' (so its JSON form is
  // itself). Eight bytes per step with the "has a byte less than n" bit trick.
  static bool plainAscii(std::string_view s) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    auto has_zero = [](uint64_t v) { return ((v - kOnes) & ~v & kHigh) != 0; };
    const char* p = s.data();
    size_t n = s.size();
    for (; n >= 8; p += 8, n -= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      // Any byte >= 0x80, < 0x20, == '"' or == '\\'.
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

  // `,"k":` plus an optional opening quote of the value, in one append: keys
  // are short constants of this file (no escaping).
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

}  // namespace

void appendJsonLine(std::string& out, const UsageRecord& r) {
  LineWriter w(out);
  w.str("request_id", r.request_id).num("started_unix_ms", r.started_unix_ms).num("finished_unix_ms", r.finished_unix_ms);
  w.str("endpoint", r.endpoint).str("agent", r.agent).str("key_id", r.key_id).str("run_id", r.run_id).str("tier", r.tier);
  w.str("requested_model", r.requested_model).str("served_model", r.served_model).str("provider", r.provider);
  w.str("config_version", r.config_version);
  std::string& a = w.raw("attempts");
  a += '[';
  for (size_t i = 0; i < r.attempts.size(); ++i) {
    const Attempt& at = r.attempts[i];
    if (i) a += ',';
    LineWriter aw(a);
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

std::string toJsonLine(const UsageRecord& r) {
  std::string out;
  out.reserve(512);
  appendJsonLine(out, r);
  return out;
}

void MemoryUsageSink::submit(UsageRecord&& record) {
  std::lock_guard lock(mu_);
  records_.push_back(std::move(record));
}

std::vector<UsageRecord> MemoryUsageSink::records() const {
  std::lock_guard lock(mu_);
  return records_;
}

void TeeUsageSink::submit(UsageRecord&& record) {
  for (size_t i = 0; i + 1 < sinks_.size(); ++i) {
    UsageRecord copy = record;
    sinks_[i]->submit(std::move(copy));
  }
  if (!sinks_.empty()) sinks_.back()->submit(std::move(record));
}

void TeeUsageSink::flush() {
  for (auto& s : sinks_) s->flush();
}

namespace {

class JsonlSink final : public UsageSink {
 public:
  explicit JsonlSink(std::FILE* f) : file_(f), writer_([this] { run(); }) {}
  ~JsonlSink() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    writer_.join();
    std::fclose(file_);
  }

  void submit(UsageRecord&& record) override {
    bool wake;
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(record));
      ++submitted_;
      wake = queue_.size() == kWakeAt;
    }
    // The writer wakes by itself every batch interval; waking it per record
    // would cost a context switch per request. A large backlog wakes it early.
    if (wake) cv_.notify_one();
  }

  void flush() override {
    std::unique_lock lock(mu_);
    const uint64_t target = submitted_;
    flush_requested_ = true;
    cv_.notify_all();
    done_cv_.wait(lock, [&] { return written_ >= target; });
  }

 private:
  void run() {
    std::vector<UsageRecord> batch;
    std::string buf;
    std::unique_lock lock(mu_);
    while (true) {
      // Batches: wake when records arrive, but let them accumulate briefly.
      cv_.wait_for(lock, kBatchInterval, [&] { return stopping_ || flush_requested_ || queue_.size() >= kWakeAt; });
      flush_requested_ = false;
      batch.swap(queue_);
      const bool stop = stopping_;
      lock.unlock();
      buf.clear();
      for (const auto& r : batch) {
        appendJsonLine(buf, r);
        buf += '\n';
      }
      if (!buf.empty()) {
        std::fwrite(buf.data(), 1, buf.size(), file_);
        std::fflush(file_);
      }
      const size_t n = batch.size();
      batch.clear();
      lock.lock();
      written_ += n;
      done_cv_.notify_all();
      if (stop && queue_.empty()) return;
    }
  }

  static constexpr size_t kWakeAt = 1024;
  static constexpr std::chrono::milliseconds kBatchInterval{50};

  std::FILE* file_;
  bool flush_requested_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::vector<UsageRecord> queue_;
  uint64_t submitted_ = 0;
  uint64_t written_ = 0;
  bool stopping_ = false;
  std::thread writer_;  // last: starts after the members it uses exist
};

}  // namespace

core::Result<std::unique_ptr<UsageSink>> openJsonlSink(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (!f) return core::fail(core::ErrorCode::kConfig, "cannot open usage log '" + path + "' for appending");
  return std::unique_ptr<UsageSink>(std::make_unique<JsonlSink>(f));
}

}  // namespace sluice::store
