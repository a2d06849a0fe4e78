#include "store/usage.h"

#include <condition_variable>
#include <cstdio>
#include <nlohmann/json.hpp>
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

nlohmann::json usageJson(const core::TokenUsage& u) {
  return {{"input_tokens", u.input}, {"cached_tokens", u.cached}, {"output_tokens", u.output}, {"reasoning_tokens", u.reasoning}};
}

}  // namespace

std::string toJsonLine(const UsageRecord& r) {
  nlohmann::json attempts = nlohmann::json::array();
  for (const auto& a : r.attempts) {
    nlohmann::json j = {{"model", a.model}, {"provider", a.provider}, {"http_status", a.http_status},
                        {"error", a.error}, {"cost_micro_usd", a.cost_micro_usd},
                        {"usage_source", toString(a.usage_source)}, {"latency_us", a.latency_us}};
    j.update(usageJson(a.usage));
    attempts.push_back(std::move(j));
  }
  nlohmann::json j = {
      {"request_id", r.request_id}, {"started_unix_ms", r.started_unix_ms}, {"finished_unix_ms", r.finished_unix_ms},
      {"endpoint", r.endpoint}, {"agent", r.agent}, {"key_id", r.key_id}, {"run_id", r.run_id}, {"tier", r.tier},
      {"requested_model", r.requested_model}, {"served_model", r.served_model}, {"provider", r.provider},
      {"config_version", r.config_version}, {"attempts", std::move(attempts)}, {"http_status", r.http_status},
      {"outcome", toString(r.outcome)}, {"error_code", r.error_code}, {"cost_micro_usd", r.cost_micro_usd},
      {"usage_source", toString(r.usage_source)}, {"latency_us", r.latency_us}, {"ttft_us", r.ttft_us},
      {"gateway_us", r.gateway_us}, {"stream", r.stream}, {"finish_reason", r.finish_reason},
      {"client_retry_count", r.retry_count_header}};
  j.update(usageJson(r.usage));
  // Replace invalid UTF-8 from hostile input instead of throwing.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(record));
      ++submitted_;
    }
    cv_.notify_one();
  }

  void flush() override {
    std::unique_lock lock(mu_);
    const uint64_t target = submitted_;
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
      cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping_ || !queue_.empty(); });
      batch.swap(queue_);
      const bool stop = stopping_;
      lock.unlock();
      buf.clear();
      for (const auto& r : batch) {
        buf += toJsonLine(r);
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

  std::FILE* file_;
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
