#pragma once
/// @file
/// @brief One usage record per request (rejected ones included), and the
/// sink that takes them off the request path.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/money.h"
#include "core/pricing.h"

namespace sluice::store {

/// kRejectedOverload: refused for the gateway's own state, not the request's
/// (over max_connections or max_buffered_body_bytes, shutting down).
enum class Outcome : uint8_t {
  kOk,
  kRejectedBudget,
  kRejectedRate,
  kRejectedAuth,
  kRejectedInvalid,
  kUpstreamError,
  kClientAbort,
  kRejectedOverload,  ///< the gateway is at a capacity limit (503 server_overloaded)
};
/// Where a record's token counts come from: the provider's report; Sluice's
/// own exact count with the model's tokenizer (the provider sent none, the
/// model's encoding is known: text counted exactly, images, audio and files
/// by their bounds); Sluice's own estimate (no known encoding: the bound,
/// which errs high); or the provider's report cut down to what the request
/// made possible (a count above the output cap sent, cached above prompt,
/// prompt above what the request's bytes allow). Ordered from most to least
/// trustworthy after kNone: a record of several attempts takes the greatest
/// of theirs.
enum class UsageSource : uint8_t { kNone, kProvider, kCounted, kEstimated, kClamped };

[[nodiscard]] std::string_view toString(Outcome o);
[[nodiscard]] std::string_view toString(UsageSource s);

/// One upstream attempt. Each is billed: a failed attempt that streamed
/// tokens before failing costs money too.
struct Attempt {
  std::string model;
  std::string provider;
  int http_status = 0;  // 0 = no response
  std::string error;    // empty on success; e.g. "connect", "first_byte_timeout", "http_503"
  core::TokenUsage usage;
  core::MicroUsd cost_micro_usd = 0;
  UsageSource usage_source = UsageSource::kNone;
  int64_t latency_us = 0;
};

struct UsageRecord {
  std::string request_id;
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  std::string endpoint;  // "chat.completions", "embeddings", "completions"
  std::string agent;
  std::string key_id;
  std::string run_id;
  std::string tier;
  std::string requested_model;
  std::string served_model;
  std::string provider;
  std::string config_version;
  std::vector<Attempt> attempts;
  int http_status = 0;
  Outcome outcome = Outcome::kOk;
  std::string error_code;                         // OpenAI error code when not ok
  core::TokenUsage usage;                         // sum over attempts
  core::MicroUsd cost_micro_usd = 0;              // sum over attempts
  UsageSource usage_source = UsageSource::kNone;  // estimated if any attempt was
  int64_t latency_us = 0;
  int64_t ttft_us = -1;    // -1 = not a stream / no token
  int64_t gateway_us = 0;  // time spent in the gateway itself (not upstream)
  bool stream = false;
  std::string finish_reason;
  int retry_count_header = -1;  // X-Stainless-Retry-Count from the client, -1 if absent
};

/// Serializes a record as one JSON line (no trailing newline).
[[nodiscard]] std::string toJsonLine(const UsageRecord& r);
/// Appends the JSON line of `r` to `out` (no trailing newline).
void appendJsonLine(std::string& out, const UsageRecord& r);

/// Takes records off the request path. submit() never blocks on I/O.
/// What a usage writer holds and has refused (for /metrics).
struct UsageSinkStats {
  uint64_t backlog_bytes = 0;  ///< encoded records not yet written
  uint64_t dropped = 0;        ///< records refused because the backlog was full
};

class UsageSink {
 public:
  virtual ~UsageSink() = default;
  virtual void submit(UsageRecord&& record) = 0;
  /// The same from a record the caller keeps (a fan-out to several sinks):
  /// sinks that encode the record on the caller's thread override this and
  /// skip the copy.
  virtual void submitCopy(const UsageRecord& record) {
    UsageRecord copy = record;
    submit(std::move(copy));
  }
  /// Blocks until every record submitted so far is written, or a write of
  /// them failed (then problem() says why).
  virtual void flush() = 0;
  /// Why records are not being written right now (a full disk, an I/O
  /// error), or nullopt while they are. `/readyz` answers 503 meanwhile.
  /// Thread-safe.
  [[nodiscard]] virtual std::optional<std::string> problem() const { return std::nullopt; }
  /// Opens the log file again by its path (after logrotate renamed it):
  /// what was submitted before goes to the old file, what comes after to
  /// the new one. An error leaves the old file in use. Thread-safe.
  virtual core::Result<void> reopen() { return {}; }
  /// The backlog and the drops so far. Thread-safe.
  [[nodiscard]] virtual UsageSinkStats stats() const { return {}; }
};

/// How much of a usage log stays in the page cache: the log is written and
/// not read back by the gateway, and at 50k requests/s it grows by ~40 MB/s.
inline constexpr uint64_t kUsageLogCachedBytes = 16ull << 20;

struct JsonlSinkOptions {
  /// See openJsonlSink: how much of the log's end stays in the page cache.
  uint64_t cached_bytes = kUsageLogCachedBytes;
  /// While the log cannot be written, lines wait in memory up to this many
  /// bytes (~300k records); records beyond it are dropped and counted.
  uint64_t max_backlog_bytes = 256ull << 20;
  /// Called on the writer thread when writing starts failing (failing =
  /// true), about every 10 s while it fails, when it recovers (false), and
  /// at exit if records were lost. `sluice serve` logs these.
  std::function<void(bool failing, const std::string& message)> report;
};

/// Appends JSON lines to PATH from a background thread, in batches (submit()
/// formats the line on the caller's thread; only bytes are queued). The loss
/// window on a hard kill is what was queued but not yet written: at most one
/// batch interval (50 ms) of records. close()/destruction drains the queue.
///
/// A failed write (disk full, I/O error) loses nothing at first: the unwritten
/// bytes are retried every batch interval, in order, from the exact byte
/// where the write stopped; problem() is set until they are written.
///
/// When PATH is a regular file, the writer starts the write-back of each
/// batch as it writes it, and drops from the page cache what lies more than
/// `cached_bytes` behind the end of the file (once it is on disk), so a busy
/// gateway's ledger does not fill the machine's memory with pages nobody
/// reads; a log shipper that keeps up still reads from the cache.
[[nodiscard]] core::Result<std::unique_ptr<UsageSink>> openJsonlSink(const std::string& path,
                                                                     JsonlSinkOptions options = {});

/// Keeps every record in memory, without bound: for tests. `sluice serve`
/// with no usage log uses DiscardUsageSink instead.
class MemoryUsageSink final : public UsageSink {
 public:
  void submit(UsageRecord&& record) override;
  void flush() override {}
  [[nodiscard]] std::vector<UsageRecord> records() const;

 private:
  mutable std::mutex mu_;
  std::vector<UsageRecord> records_;
};

/// Drops records, counting them: `sluice serve` with no `server.usage_log`
/// (the operator chose not to keep a ledger). Memory stays constant however
/// long the gateway runs. Thread-safe.
class DiscardUsageSink final : public UsageSink {
 public:
  void submit(UsageRecord&&) override { dropped_.fetch_add(1, std::memory_order_relaxed); }
  void submitCopy(const UsageRecord&) override { dropped_.fetch_add(1, std::memory_order_relaxed); }
  void flush() override {}
  [[nodiscard]] UsageSinkStats stats() const override { return {.dropped = dropped()}; }
  [[nodiscard]] uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> dropped_{0};
};

/// Fans records out to several sinks (`storage.ledger` and the JSON-lines
/// mirror `server.usage_log`): each but the last gets submitCopy().
class TeeUsageSink final : public UsageSink {
 public:
  explicit TeeUsageSink(std::vector<std::shared_ptr<UsageSink>> sinks) : sinks_(std::move(sinks)) {}
  void submit(UsageRecord&& record) override;
  void flush() override;
  [[nodiscard]] std::optional<std::string> problem() const override;  // the first sink's that has one
  core::Result<void> reopen() override;                               // every sink's; the first error
  [[nodiscard]] UsageSinkStats stats() const override;                // the sums

 private:
  std::vector<std::shared_ptr<UsageSink>> sinks_;
};

}  // namespace sluice::store
