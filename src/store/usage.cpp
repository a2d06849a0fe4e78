#include "store/usage.h"

#include "core/json_text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

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
    case Outcome::kRejectedOverload: return "rejected_overload";
  }
  return "unknown";
}

std::string_view toString(UsageSource s) {
  switch (s) {
    case UsageSource::kNone: return "none";
    case UsageSource::kProvider: return "provider";
    case UsageSource::kCounted: return "counted";
    case UsageSource::kEstimated: return "estimated";
    case UsageSource::kClamped: return "clamped";
  }
  return "none";
}

namespace {

// Why hand-written, and why in two passes: this runs once per proxied request
// (on the sink's writer thread) and showed up in the whole process's CPU
// profile under load when it went through std::string appends key by key.
// Here the field list is written once, as emitRecord(), and run twice:
//   1. SizeBound adds up an upper bound of the output size (constant
//      fragments exactly, every string at 6x its length, every integer at 20
//      characters), which the compiler folds to a constant plus the string
//      sizes;
//   2. RawWriter writes into the string through a raw char*, after one
//      resize_and_overwrite (no zero-fill, geometric growth kept), and the
//      string is cut to the real length.
// Each `,"key":` fragment, with the quotes around the neighbouring string
// values folded in, is a string literal copied with a fixed-size memcpy.

// "-9223372036854775808".
constexpr size_t kMaxInt64Chars = 20;

class SizeBound {
 public:
  template <size_t N>
  void lit(const char (&)[N]) {
    n_ += N - 1;
  }
  void plain(std::string_view s) { n_ += s.size(); }
  void body(std::string_view s) { n_ += core::maxJsonEscapedSize(s.size()); }
  void num(int64_t) { n_ += kMaxInt64Chars; }
  [[nodiscard]] size_t size() const { return n_; }

 private:
  size_t n_ = 0;
};

// True when one of the 8 bytes of `w` is >= 0x80, < 0x20, '"' or '\\'. SWAR:
// when no byte has its high bit set, `w - 0x2020..` sets a high bit exactly
// when some byte is < 0x20 (the lowest such byte borrows), and likewise
// `(w ^ 0x2222..) - 0x0101..` when some byte is '"'. When some byte has its
// high bit set the answer is yes whatever the other terms say. So the whole
// test is exact as a yes/no answer, in about ten instructions, no branch.
inline bool wordNeedsEscape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = kOnes * 0x80;
  const uint64_t below_space = w - kOnes * 0x20;
  const uint64_t quote = (w ^ (kOnes * '"')) - kOnes;
  const uint64_t backslash = (w ^ (kOnes * '\\')) - kOnes;
  return ((w | below_space | quote | backslash) & kHigh) != 0;
}

// Writes through a raw pointer into space sized by SizeBound.
class RawWriter {
 public:
  explicit RawWriter(char* p) : p_(p) {}
  template <size_t N>
  void lit(const char (&s)[N]) {
    std::memcpy(p_, s, N - 1);
    p_ += N - 1;
  }
  // A value known to need no escaping (the enum names of this file).
  void plain(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  // The inside of a JSON string literal (the quotes are in the fragments),
  // byte for byte what core::appendJsonString writes between its quotes.
  void body(std::string_view s) {
    const char* src = s.data();
    const size_t n = s.size();
    if (n < 8) {
      if (n >= 4) {  // two 4-byte words (overlapping when n < 8), checked as one
        uint32_t lo;
        uint32_t hi;
        std::memcpy(&lo, src, 4);
        std::memcpy(&hi, src + n - 4, 4);
        if (!wordNeedsEscape(static_cast<uint64_t>(hi) << 32 | lo)) {
          std::memcpy(p_, &lo, 4);
          std::memcpy(p_ + n - 4, &hi, 4);
          p_ += n;
          return;
        }
      }
      escapeFrom(s, 0);
      return;
    }
    // Most values (ids, model names) are plain: copy them 8 bytes at a time
    // while checking, and hand the rest to the escaper at the first word that
    // needs it. Words before it are ASCII, so no UTF-8 sequence is cut.
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, src + i, 8);
      if (wordNeedsEscape(w)) {
        escapeFrom(s, i);
        return;
      }
      std::memcpy(p_ + i, &w, 8);
    }
    if (i < n) {
      // The last 8 bytes (overlapping checked ones, rewritten identically).
      uint64_t w;
      std::memcpy(&w, src + n - 8, 8);
      if (wordNeedsEscape(w)) {
        escapeFrom(s, i);
        return;
      }
      std::memcpy(p_ + n - 8, &w, 8);
    }
    p_ += n;
  }
  // Same digits as std::to_chars, which was the largest single cost here
  // (22 integers per typical record).
  void num(int64_t v) {
    // |v| without overflow for INT64_MIN.
    uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    *p_ = '-';  // always written (inside the bound), kept only when negative
    p_ += v < 0;
    if (u < 10) {
      *p_++ = static_cast<char>('0' + u);
      return;
    }
    char* const end = p_ + decimalDigits(u);
    char* q = end;
    // Four digits per division of the 64-bit value, then two pairs.
    while (u >= 10000) {
      const uint64_t rest = u / 10000;
      const auto four = static_cast<uint32_t>(u - rest * 10000);
      const uint32_t hi = four / 100;
      q -= 4;
      std::memcpy(q, &kDigitPairs[2 * hi], 2);
      std::memcpy(q + 2, &kDigitPairs[2 * (four - hi * 100)], 2);
      u = rest;
    }
    if (u >= 100) {
      const uint64_t rest = u / 100;
      q -= 2;
      std::memcpy(q, &kDigitPairs[2 * (u - rest * 100)], 2);
      u = rest;
    }
    if (u >= 10) {
      std::memcpy(q - 2, &kDigitPairs[2 * u], 2);
    } else {
      q[-1] = static_cast<char>('0' + u);
    }
    p_ = end;
  }
  [[nodiscard]] char* end() const { return p_; }

 private:
  // Writes s[i..] from p_ + i: the caller has copied s[0..i) as it is.
  void escapeFrom(std::string_view s, size_t i) { p_ = core::writeJsonEscaped(p_ + i, s.substr(i)); }
  // "00" "01" ... "99".
  static constexpr std::array<char, 200> kDigitPairs = [] {
    std::array<char, 200> t{};
    for (int i = 0; i < 100; ++i) {
      t[2 * i] = static_cast<char>('0' + i / 10);
      t[2 * i + 1] = static_cast<char>('0' + i % 10);
    }
    return t;
  }();

  // Number of decimal digits of u >= 1: log10 estimated from the bit width
  // (1233 / 4096 ~ log10(2)), then corrected by one table compare.
  static int decimalDigits(uint64_t u) {
    static constexpr std::array<uint64_t, 20> kPow10 = [] {
      std::array<uint64_t, 20> t{};
      uint64_t p = 1;
      for (auto& x : t) {
        x = p;
        p *= 10;
      }
      return t;
    }();
    const int t = (std::bit_width(u) * 1233) >> 12;
    return t + 1 - (u < kPow10[static_cast<size_t>(t)]);
  }

  char* p_;
};

// The line's layout, the one place that defines the file format. A string
// value `x` is written as lit("...\"") body(x) lit("\"...").
template <class Out>
void emitUsage(Out& o, const core::TokenUsage& u, core::MicroUsd cost, UsageSource source) {
  o.lit(R"(,"input_tokens":)");
  o.num(u.input);
  o.lit(R"(,"cached_tokens":)");
  o.num(u.cached);
  o.lit(R"(,"output_tokens":)");
  o.num(u.output);
  o.lit(R"(,"reasoning_tokens":)");
  o.num(u.reasoning);
  o.lit(R"(,"cost_micro_usd":)");
  o.num(cost);
  o.lit(R"(,"usage_source":")");
  o.plain(toString(source));
}

template <class Out>
void emitRecord(Out& o, const UsageRecord& r) {
  o.lit(R"({"request_id":")");
  o.body(r.request_id);
  o.lit(R"(","started_unix_ms":)");
  o.num(r.started_unix_ms);
  o.lit(R"(,"finished_unix_ms":)");
  o.num(r.finished_unix_ms);
  o.lit(R"(,"endpoint":")");
  o.body(r.endpoint);
  o.lit(R"(","agent":")");
  o.body(r.agent);
  o.lit(R"(","key_id":")");
  o.body(r.key_id);
  o.lit(R"(","run_id":")");
  o.body(r.run_id);
  o.lit(R"(","tier":")");
  o.body(r.tier);
  o.lit(R"(","requested_model":")");
  o.body(r.requested_model);
  o.lit(R"(","served_model":")");
  o.body(r.served_model);
  o.lit(R"(","provider":")");
  o.body(r.provider);
  o.lit(R"(","config_version":")");
  o.body(r.config_version);
  o.lit(R"(","attempts":[)");
  bool first = true;
  for (const Attempt& a : r.attempts) {
    if (!first) o.lit(",");
    first = false;
    o.lit(R"({"model":")");
    o.body(a.model);
    o.lit(R"(","provider":")");
    o.body(a.provider);
    o.lit(R"(","http_status":)");
    o.num(a.http_status);
    o.lit(R"(,"error":")");
    o.body(a.error);
    o.lit(R"(")");
    emitUsage(o, a.usage, a.cost_micro_usd, a.usage_source);
    o.lit(R"(","latency_us":)");
    o.num(a.latency_us);
    o.lit("}");
  }
  o.lit(R"(],"http_status":)");
  o.num(r.http_status);
  o.lit(R"(,"outcome":")");
  o.plain(toString(r.outcome));
  o.lit(R"(","error_code":")");
  o.body(r.error_code);
  o.lit(R"(")");
  emitUsage(o, r.usage, r.cost_micro_usd, r.usage_source);
  o.lit(R"(","latency_us":)");
  o.num(r.latency_us);
  o.lit(R"(,"ttft_us":)");
  o.num(r.ttft_us);
  o.lit(R"(,"gateway_us":)");
  o.num(r.gateway_us);
  o.lit(R"(,"stream":)");
  o.plain(r.stream ? "true" : "false");
  o.lit(R"(,"finish_reason":")");
  o.body(r.finish_reason);
  o.lit(R"(","client_retry_count":)");
  o.num(r.retry_count_header);
  o.lit("}");
}

}  // namespace

void appendJsonLine(std::string& out, const UsageRecord& r) {
  SizeBound bound;
  emitRecord(bound, r);
  const size_t old_size = out.size();
  out.resize_and_overwrite(old_size + bound.size(), [&](char* data, size_t) {
    RawWriter w(data + old_size);
    emitRecord(w, r);
    return static_cast<size_t>(w.end() - data);
  });
}

std::string toJsonLine(const UsageRecord& r) {
  std::string out;  // appendJsonLine allocates once, to its size bound
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
  for (size_t i = 0; i + 1 < sinks_.size(); ++i) sinks_[i]->submitCopy(record);
  if (!sinks_.empty()) sinks_.back()->submit(std::move(record));
}

void TeeUsageSink::flush() {
  for (auto& s : sinks_) s->flush();
}

core::Result<void> TeeUsageSink::reopen() {
  core::Result<void> result;
  for (auto& s : sinks_) {
    if (auto r = s->reopen(); !r && result) result = r;
  }
  return result;
}

UsageSinkStats TeeUsageSink::stats() const {
  UsageSinkStats sum;
  for (const auto& s : sinks_) {
    const UsageSinkStats one = s->stats();
    sum.backlog_bytes += one.backlog_bytes;
    sum.dropped += one.dropped;
  }
  return sum;
}

std::optional<std::string> TeeUsageSink::problem() const {
  for (const auto& s : sinks_) {
    if (auto p = s->problem()) return p;
  }
  return std::nullopt;
}

namespace {

int openLog(const std::string& path) { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666); }

// Keeps a log file's footprint in the page cache bounded (see openJsonlSink).
// Written by hand: a few lines of sync_file_range/posix_fadvise.
class CacheTrimmer {
 public:
  CacheTrimmer(int fd, uint64_t keep) : fd_(fd), keep_(keep) {
    struct stat st {};
    regular_ = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    // What the file held before this process is not ours to trim.
    if (regular_) started_ = dropped_ = static_cast<uint64_t>(st.st_size) & ~uint64_t{kPage - 1};
  }

  // After each batch is written (the file offset is then its end: O_APPEND).
  void afterWrite() {
    if (!regular_) return;
    const off_t end = ::lseek(fd_, 0, SEEK_CUR);
    if (end < 0) return;
    const auto e = static_cast<uint64_t>(end);
    if (e < started_) started_ = dropped_ = 0;  // truncated under us (copytruncate rotation)
    // Start the write-back of the new batch now (asynchronous): by the time
    // it falls out of the window below, it is on disk and can be dropped.
    if (e > started_) {
      (void)::sync_file_range(fd_, static_cast<off_t>(started_), static_cast<off_t>(e - started_),
                              SYNC_FILE_RANGE_WRITE);
      started_ = e;
    }
    if (e < keep_) return;
    const uint64_t to = (e - keep_) & ~uint64_t{kPage - 1};
    if (to < dropped_ + kMinDrop) return;
    // From a little before the last drop: a large folio (up to 2 MB) that
    // straddled its end was kept, as fadvise drops whole folios only.
    const uint64_t start = dropped_ > kMaxFolio ? dropped_ - kMaxFolio : 0;
    const auto from = static_cast<off_t>(start);
    const auto len = static_cast<off_t>(to - start);
    // Waits only for pages still under write-back (started a window ago);
    // dirty pages cannot be dropped.
    (void)::sync_file_range(fd_, from, len,
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    (void)::posix_fadvise(fd_, from, len, POSIX_FADV_DONTNEED);
    dropped_ = to;
  }

 private:
  static constexpr uint64_t kPage = 4096;
  static constexpr uint64_t kMinDrop = 1u << 20;  // one fadvise per MB at least
  static constexpr uint64_t kMaxFolio = 2u << 20;

  int fd_;
  uint64_t keep_;
  bool regular_ = false;
  uint64_t started_ = 0;  // write-back started up to here
  uint64_t dropped_ = 0;  // dropped from the cache up to here (page-aligned)
};

class JsonlSink final : public UsageSink {
 public:
  JsonlSink(int fd, std::string path, JsonlSinkOptions options)
      : fd_(fd),
        path_(std::move(path)),
        options_(std::move(options)),
        trimmer_(fd, options_.cached_bytes),
        writer_([this] { run(); }) {}
  ~JsonlSink() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    writer_.join();
    ::close(fd_);
    if (next_fd_ >= 0) ::close(next_fd_);
  }

  // Opened here, so the caller learns of an error; the writer switches to it
  // after writing what it had taken to the old file.
  core::Result<void> reopen() override {
    const int fd = openLog(path_);
    if (fd < 0) {
      return core::fail(core::ErrorCode::kConfig, "cannot reopen usage log '" + path_ + "': " + std::strerror(errno));
    }
    {
      std::lock_guard lock(mu_);
      if (next_fd_ >= 0) ::close(next_fd_);  // two reopens in a row: the latest wins
      next_fd_ = fd;
      reopen_at_ = pending_.size();
      flush_requested_ = true;
    }
    cv_.notify_all();
    return {};
  }

  // The line is formatted here, on the caller's thread, and only its bytes
  // cross to the writer: the record's strings are freed by the thread that
  // allocated them (freeing them on the writer thread made every request's
  // allocations travel between the allocator's per-thread caches), and the
  // lock covers one append instead of moving a 500-byte record.
  void submit(UsageRecord&& record) override { submitCopy(record); }
  void submitCopy(const UsageRecord& record) override {
    thread_local std::string line;
    line.clear();
    appendJsonLine(line, record);
    line += '\n';
    bool wake;
    {
      std::lock_guard lock(mu_);
      if (pending_.size() + unwritten_bytes_ + line.size() > options_.max_backlog_bytes) {
        // The log cannot keep up (failing, or stuck in I/O) and the backlog
        // is full. Said at once: the writer may be the one that is stuck.
        ++dropped_;
        if (!problem_) problem_ = "the usage log is not keeping up: its backlog is full and records are dropped";
        return;
      }
      pending_.append(line);
      wake = pending_.size() >= kWakeAtBytes;
    }
    // The writer wakes by itself every batch interval; waking it per record
    // would cost a context switch per request. A large backlog wakes it early.
    if (wake) cv_.notify_one();
  }

  // Waits for one write attempt that covers everything submitted before the
  // call: it returns when that is written, or when writing it failed (then
  // problem() says why and the lines stay queued for the next attempt).
  void flush() override {
    std::unique_lock lock(mu_);
    const uint64_t want = cycles_started_ + 1;
    flush_requested_ = true;
    cv_.notify_all();
    done_cv_.wait(lock, [&] { return cycles_done_ >= want; });
  }

  [[nodiscard]] std::optional<std::string> problem() const override {
    std::lock_guard lock(mu_);
    return problem_;
  }

  [[nodiscard]] UsageSinkStats stats() const override {
    std::lock_guard lock(mu_);
    return {.backlog_bytes = pending_.size() + unwritten_bytes_, .dropped = dropped_};
  }

 private:
  // write() until all of `data` is written or an error; returns the bytes
  // written and sets `err` (0 = none).
  size_t writeAll(std::string_view data, int& err) const {
    size_t done = 0;
    err = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        err = n < 0 ? errno : EIO;
        break;
      }
    }
    return done;
  }

  void report(bool failing, const std::string& message) const {
    if (options_.report) options_.report(failing, message);
  }

  void run() {
    std::string out;  // taken from pending_, not written yet (kept across failed attempts)
    uint64_t failing_cycles = 0;
    uint64_t dropped_at_failure = 0;
    std::unique_lock lock(mu_);
    while (true) {
      // Batches: wake when lines arrive, but let them accumulate briefly.
      // While writing fails, this is also the retry interval.
      cv_.wait_for(lock, kBatchInterval,
                   [&] { return stopping_ || flush_requested_ || pending_.size() >= kWakeAtBytes; });
      flush_requested_ = false;
      const uint64_t cycle = ++cycles_started_;
      // With a reopen pending, what was queued before it goes to the old file.
      const size_t old_part = next_fd_ >= 0 ? out.size() + reopen_at_ : SIZE_MAX;
      if (out.empty()) {
        out.swap(pending_);  // the usual case: two buffers circulate, each keeping its capacity
      } else {
        out.append(pending_);
        pending_.clear();
      }
      const bool stop = stopping_;
      const uint64_t dropped = dropped_;
      const int switch_to = std::exchange(next_fd_, -1);
      lock.unlock();

      int err = 0;
      const std::string_view first = std::string_view(out).substr(0, old_part);
      size_t written = first.empty() ? 0 : writeAll(first, err);
      if (written > 0) trimmer_.afterWrite();
      if (switch_to >= 0) {
        // The rest, and anything the old file refused, goes to the new one.
        ::close(fd_);
        fd_ = switch_to;
        trimmer_ = CacheTrimmer(fd_, options_.cached_bytes);
        err = 0;
        const size_t more = written < out.size() ? writeAll(std::string_view(out).substr(written), err) : 0;
        written += more;
        if (more > 0) trimmer_.afterWrite();
      }
      if (written == out.size()) {
        out.clear();
      } else {
        out.erase(0, written);  // a short write: the rest goes first next time
      }
      if (err != 0) {
        if (failing_cycles++ == 0) {
          dropped_at_failure = dropped;
          report(true,
                 fmt::format("usage log {}: write failed: {}; records are kept in memory (up to {} MB) and "
                             "retried every {} ms",
                             path_, std::strerror(err), options_.max_backlog_bytes >> 20, kBatchInterval.count()));
        } else if (failing_cycles % kReportEveryCycles == 0) {
          report(true, fmt::format("usage log {}: still failing ({}): {} KB waiting, {} record(s) dropped", path_,
                                   std::strerror(err), out.size() >> 10, dropped - dropped_at_failure));
        }
      } else if (failing_cycles > 0 && out.empty()) {
        failing_cycles = 0;
        report(false, fmt::format("usage log {}: written again; {} record(s) were dropped while it failed", path_,
                                  dropped - dropped_at_failure));
      }

      lock.lock();
      unwritten_bytes_ = out.size();
      if (err != 0) {
        problem_ = fmt::format("writing the usage log failed: {}", std::strerror(err));
      } else if (out.empty()) {
        problem_.reset();
      }
      cycles_done_ = cycle;
      done_cv_.notify_all();
      if (stop && (pending_.empty() || err != 0)) {
        // Exiting: one last attempt was made. What it could not write is lost.
        const auto lost = std::count(out.begin(), out.end(), '\n') + std::count(pending_.begin(), pending_.end(), '\n');
        if (lost > 0 || dropped_ > 0) {
          report(true, fmt::format("usage log {}: {} record(s) could not be written before exit, {} dropped", path_,
                                   lost, dropped_));
        }
        return;
      }
    }
  }

  static constexpr size_t kWakeAtBytes = 1 << 20;
  static constexpr std::chrono::milliseconds kBatchInterval{50};
  static constexpr uint64_t kReportEveryCycles = 200;  // ~10 s of failed retries

  int fd_;
  std::string path_;
  JsonlSinkOptions options_;
  CacheTrimmer trimmer_;  // writer thread only
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::string pending_;           // formatted lines not yet taken by the writer
  uint64_t unwritten_bytes_ = 0;  // taken by the writer, not yet written (a failing log)
  uint64_t dropped_ = 0;          // records refused: backlog full
  int next_fd_ = -1;              // reopen(): the file the writer switches to
  size_t reopen_at_ = 0;          // pending_ bytes queued before the reopen (for the old file)
  uint64_t cycles_started_ = 0;
  uint64_t cycles_done_ = 0;
  std::optional<std::string> problem_;
  bool flush_requested_ = false;
  bool stopping_ = false;
  std::thread writer_;  // last: starts after the members it uses exist
};

}  // namespace

core::Result<std::unique_ptr<UsageSink>> openJsonlSink(const std::string& path, JsonlSinkOptions options) {
  const int fd = openLog(path);
  if (fd < 0) {
    return core::fail(core::ErrorCode::kConfig,
                      "cannot open usage log '" + path + "' for appending: " + std::strerror(errno));
  }
  return std::unique_ptr<UsageSink>(std::make_unique<JsonlSink>(fd, path, std::move(options)));
}

}  // namespace sluice::store
