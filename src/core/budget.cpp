#include "core/budget.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "core/time_text.h"

namespace sluice::core {
namespace {

__extension__ using Int128 = __int128;

constexpr uint32_t kNone = UINT32_MAX;
constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// Inputs are client-controlled: bound them so every counter sum stays far from
// int64 overflow (1e12 tokens, 1e6 choices, 1e15 µUSD = USD 1e9 per request):
// prompt + choices × output ≤ 1e18 < INT64_MAX. Choices are n × prompts for a
// /v1/completions call with an array of prompts, so they can pass 128.
constexpr int64_t kMaxTokensIn = 1'000'000'000'000;
constexpr int64_t kMaxChoices = 1'000'000;
constexpr int64_t kMaxAmount = 1'000'000'000'000'000;

constexpr size_t kTok = 0;
constexpr size_t kUsd = 1;
constexpr size_t kCalls = 2;
constexpr size_t kMinute = 0;
constexpr size_t kDay = 1;
constexpr size_t kMonth = 2;
constexpr size_t kTotal = 3;
constexpr size_t kNumWindows = 4;
constexpr BudgetWindow kWindowOf[kNumWindows] = {BudgetWindow::kMinute, BudgetWindow::kDay, BudgetWindow::kMonth,
                                                 BudgetWindow::kTotal};
constexpr BudgetMetric kMetricOf[3] = {BudgetMetric::kTokens, BudgetMetric::kUsd, BudgetMetric::kCalls};

// The rolling minute: 1-second buckets; a bucket stays in the window for 61
// head positions so that any 60 s interval is fully covered (see budget.h).
constexpr int64_t kRingSpan = 61;
constexpr size_t kRingSlots = 64;
constexpr int64_t kNsPerSec = 1'000'000'000;

using Tally = std::array<int64_t, 3>;

size_t slotOf(int64_t sec) { return static_cast<size_t>(sec) & (kRingSlots - 1); }

int64_t clampAmount(int64_t v) { return std::clamp<int64_t>(v, 0, kMaxAmount); }

// Subtracts at most what is there: counters never go negative even if a
// window was rebuilt (limits added, restore) while reservations were in flight.
int64_t take(int64_t& from, int64_t amount) {
  const int64_t d = std::min(from, amount);
  from -= d;
  return d;
}

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

std::string_view windowName(BudgetWindow w) {
  switch (w) {
    case BudgetWindow::kPerCall: return "per call";
    case BudgetWindow::kMinute: return "per minute";
    case BudgetWindow::kDay: return "per day";
    case BudgetWindow::kMonth: return "per month";
    case BudgetWindow::kTotal: return "in total";
  }
  return "?";
}

std::string_view metricName(BudgetMetric m) {
  switch (m) {
    case BudgetMetric::kTokens: return "tokens";
    case BudgetMetric::kUsd: return "usd";
    case BudgetMetric::kCalls: return "calls";
  }
  return "?";
}

// ---------------------------------------------------------------- internals

struct BudgetEngine::Now {
  WallTime wall{};
  MonoTime mono{};
  CalendarPeriod period{};
  int64_t sec = 0;        // monotonic second
  bool has_wall = false;  // wall and period were read
};

namespace {
struct Ring {
  int64_t head = std::numeric_limits<int64_t>::min();  // newest second covered
  std::array<Tally, kRingSlots> spent{};
  std::array<Tally, kRingSlots> reserved{};
  [[nodiscard]] bool inWindow(int64_t sec) const {
    return head != std::numeric_limits<int64_t>::min() && sec <= head && head - sec < kRingSpan;
  }
};
}  // namespace

struct BudgetEngine::Scope {
  std::string name;
  uint32_t generation = 0;
  bool live = false;
  bool is_run = false;
  std::string run_owner;  // runs: the agent whose request created it ("" when restored)
  ScopeLimits limits;
  std::array<int64_t, 2> per_call{kUnlimited, kUnlimited};  // tokens, usd
  std::array<Tally, kNumWindows> lim{};                     // [window][metric]
  std::array<bool, kNumWindows> limited{};
  int64_t day_key = std::numeric_limits<int64_t>::min();
  int64_t month_key = std::numeric_limits<int64_t>::min();
  // [kMinute] holds the ring's sums; [kDay]/[kMonth] the current windows.
  std::array<Tally, kNumWindows> spent{};
  std::array<Tally, kNumWindows> reserved{};
  std::unique_ptr<Ring> ring;  // only for scopes with a minute limit
  MonoTime last_used{};
  uint32_t outstanding = 0;
  uint32_t lru_prev = kNone;
  uint32_t lru_next = kNone;

  void setLimits(const ScopeLimits& l) {
    limits = l;
    per_call = {l.tokens_per_call.value_or(kUnlimited), l.usd_per_call.value_or(kUnlimited)};
    const WindowLimits* w[kNumWindows] = {&l.minute, &l.day, &l.month, &l.total};
    for (size_t i = 0; i < kNumWindows; ++i) {
      lim[i] = {w[i]->tokens.value_or(kUnlimited), w[i]->usd.value_or(kUnlimited), w[i]->calls.value_or(kUnlimited)};
      limited[i] = lim[i][kTok] != kUnlimited || lim[i][kUsd] != kUnlimited || lim[i][kCalls] != kUnlimited;
    }
    if (limited[kMinute] && !ring) ring = std::make_unique<Ring>();
  }

  void advanceMinute(int64_t sec) {
    Ring* r = ring.get();
    if (r == nullptr || sec <= r->head) return;
    if (r->head == std::numeric_limits<int64_t>::min() || sec - r->head >= kRingSpan) {
      r->spent = {};
      r->reserved = {};
      spent[kMinute] = {};
      reserved[kMinute] = {};
    } else {
      // Seconds head−60 … sec−61 leave the window.
      for (int64_t x = r->head - (kRingSpan - 1); x <= sec - kRingSpan; ++x) {
        Tally& s = r->spent[slotOf(x)];
        Tally& q = r->reserved[slotOf(x)];
        for (size_t m = 0; m < 3; ++m) {
          spent[kMinute][m] -= s[m];
          reserved[kMinute][m] -= q[m];
        }
        s = {};
        q = {};
      }
    }
    r->head = sec;
  }

  void reset() {
    spent = {};
    reserved = {};
    day_key = month_key = std::numeric_limits<int64_t>::min();
    if (ring) *ring = Ring{};
    outstanding = 0;
    lru_prev = lru_next = kNone;
  }
};

struct BudgetEngine::Record {
  uint32_t generation = 0;
  bool active = false;
  uint8_t scope_count = 0;
  std::array<ScopeId, Reservation::kMaxScopes> scopes{};
  int64_t tokens = 0;
  int64_t usd = 0;
  int64_t day_key = 0;
  int64_t month_key = 0;
  int64_t minute_sec = 0;
  MonoTime deadline{};
  uint32_t prev = kNone;
  uint32_t next = kNone;
};

// ---------------------------------------------------------------- Reservation

Reservation::Reservation(Reservation&& other) noexcept { *this = std::move(other); }

Reservation& Reservation::operator=(Reservation&& other) noexcept {
  if (this == &other) return *this;
  if (active_ && engine_ != nullptr) engine_->release(*this);
  engine_ = other.engine_;
  active_ = other.active_;
  clamped_ = other.clamped_;
  scope_count_ = other.scope_count_;
  slot_ = other.slot_;
  generation_ = other.generation_;
  scopes_ = other.scopes_;
  day_key_ = other.day_key_;
  month_key_ = other.month_key_;
  minute_sec_ = other.minute_sec_;
  tokens_ = other.tokens_;
  usd_ = other.usd_;
  max_output_ = other.max_output_;
  other.active_ = false;
  other.engine_ = nullptr;
  return *this;
}

Reservation::~Reservation() {
  if (active_ && engine_ != nullptr) engine_->release(*this);
}

// ---------------------------------------------------------------- Rejection

std::string BudgetRejection::message() const {
  switch (kind) {
    case Kind::kInvalidScope: return fmt::format("Budget scope is not defined: {}", scope);
    case Kind::kOverloaded: return "The gateway has too many requests in flight; retry shortly.";
    case Kind::kExhausted: break;
  }
  std::string who = scope;
  if (auto colon = who.find(':'); colon != std::string::npos) who[colon] = ' ';
  if (request_too_large) {
    if (window == BudgetWindow::kPerCall) {
      return fmt::format("Request exceeds the per-call budget for {} ({} per call)", who, metricName(metric));
    }
    return fmt::format("Request exceeds the budget for {} ({} {})", who, metricName(metric), windowName(window));
  }
  if (resets_at) {
    return fmt::format("Budget exhausted for {} ({} {}); resets at {}", who, metricName(metric), windowName(window),
                       formatIsoUtc(*resets_at));
  }
  return fmt::format("Budget exhausted for {} ({} {})", who, metricName(metric), windowName(window));
}

Error BudgetRejection::toError() const {
  switch (kind) {
    case Kind::kExhausted: return Error{ErrorCode::kBudgetExhausted, message()};
    case Kind::kOverloaded: return Error{ErrorCode::kServerOverloaded, message()};
    case Kind::kInvalidScope: break;
  }
  return Error{ErrorCode::kInternal, message()};
}

// ---------------------------------------------------------------- engine

BudgetEngine::BudgetEngine(const Clock& clock, Calendar calendar)
    : BudgetEngine(clock, std::move(calendar), Options{}) {}

BudgetEngine::BudgetEngine(const Clock& clock, Calendar calendar, Options options)
    : clock_(clock), calendar_(std::move(calendar)), options_(options) {
  options_.min_clamp_output_tokens = std::max<int64_t>(options_.min_clamp_output_tokens, 1);
  // Room for typical concurrency without growing on the hot path.
  records_.reserve(1024);
  free_records_.reserve(1024);
}

BudgetEngine::~BudgetEngine() = default;

BudgetEngine::Now BudgetEngine::readNow() const {
  Now n = readMono();
  n.wall = clock_.wallNow();
  n.period = calendar_.period(n.wall);
  n.has_wall = true;
  return n;
}

BudgetEngine::Now BudgetEngine::readMono() const {
  Now n;
  n.mono = clock_.monotonicNow();
  n.sec = floorDiv(n.mono.time_since_epoch().count(), kNsPerSec);
  return n;
}

void BudgetEngine::advanceLocked(const Now& now) {
  // Time only moves forward here: callers read the clock before taking the
  // lock, and a wall clock stepped back must not reopen a closed day.
  if (now.has_wall && (!have_period_ || now.period.day_key > period_.day_key)) {
    period_ = now.period;
    have_period_ = true;
  }
  minute_sec_ = std::max(minute_sec_, now.sec);
}

BudgetEngine::Scope* BudgetEngine::liveScope(ScopeId id) {
  if (id.index >= scopes_.size()) return nullptr;
  Scope& s = scopes_[id.index];
  return s.live && s.generation == id.generation ? &s : nullptr;
}

const BudgetEngine::Scope* BudgetEngine::liveScope(ScopeId id) const {
  if (id.index >= scopes_.size()) return nullptr;
  const Scope& s = scopes_[id.index];
  return s.live && s.generation == id.generation ? &s : nullptr;
}

void BudgetEngine::rollLocked(Scope& s) {
  if (s.day_key != period_.day_key) {
    s.day_key = period_.day_key;
    s.spent[kDay] = {};
    s.reserved[kDay] = {};
  }
  if (s.month_key != period_.month_key) {
    s.month_key = period_.month_key;
    s.spent[kMonth] = {};
    s.reserved[kMonth] = {};
  }
  s.advanceMinute(minute_sec_);
}

uint32_t BudgetEngine::allocScopeLocked(std::string name, const ScopeLimits& limits, bool is_run, const Now& now) {
  uint32_t index;
  if (!free_scopes_.empty()) {
    index = free_scopes_.back();
    free_scopes_.pop_back();
  } else {
    index = static_cast<uint32_t>(scopes_.size());
    scopes_.emplace_back();
  }
  Scope& s = scopes_[index];
  s.reset();
  s.name = std::move(name);
  s.live = true;
  s.is_run = is_run;
  s.setLimits(limits);
  s.last_used = now.mono;
  return index;
}

void BudgetEngine::freeScopeLocked(uint32_t index) {
  Scope& s = scopes_[index];
  if (s.is_run) {
    runUnlinkLocked(index);
    if (auto it = runs_.find(std::string_view(s.name).substr(4)); it != runs_.end()) runs_.erase(it);
    if (auto it = runs_per_owner_.find(s.run_owner); it != runs_per_owner_.end() && --it->second == 0) {
      runs_per_owner_.erase(it);
    }
    s.run_owner.clear();
  } else if (auto it = by_name_.find(s.name); it != by_name_.end()) {
    by_name_.erase(it);
  }
  s.live = false;
  ++s.generation;  // every outstanding ScopeId becomes stale
  s.reset();
  s.name.clear();
  free_scopes_.push_back(index);
}

Result<ScopeId> BudgetEngine::defineScope(std::string_view name, const ScopeLimits& limits) {
  if (name.empty()) return fail(ErrorCode::kConfig, "budget scope name is empty");
  if (name.starts_with("run:")) return fail(ErrorCode::kConfig, "scope names 'run:*' are reserved for run budgets");
  const Now now = readNow();
  std::lock_guard lock(mu_);
  advanceLocked(now);
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    Scope& s = scopes_[it->second];
    s.setLimits(limits);
    return ScopeId{it->second, s.generation};
  }
  const uint32_t index = allocScopeLocked(std::string(name), limits, false, now);
  by_name_.emplace(std::string(name), index);
  return ScopeId{index, scopes_[index].generation};
}

bool BudgetEngine::updateLimits(ScopeId id, const ScopeLimits& limits) {
  std::lock_guard lock(mu_);
  Scope* s = liveScope(id);
  if (s == nullptr) return false;
  s->setLimits(limits);
  return true;
}

bool BudgetEngine::removeScope(ScopeId id) {
  std::lock_guard lock(mu_);
  if (liveScope(id) == nullptr) return false;
  freeScopeLocked(id.index);
  return true;
}

std::optional<ScopeId> BudgetEngine::findScope(std::string_view name) const {
  std::lock_guard lock(mu_);
  const NameMap& map = name.starts_with("run:") ? runs_ : by_name_;
  if (name.starts_with("run:")) name.remove_prefix(4);
  auto it = map.find(name);
  if (it == map.end()) return std::nullopt;
  return ScopeId{it->second, scopes_[it->second].generation};
}

// ---------------------------------------------------------------- runs

void BudgetEngine::runUnlinkLocked(uint32_t index) {
  Scope& s = scopes_[index];
  if (s.lru_prev != kNone) scopes_[s.lru_prev].lru_next = s.lru_next;
  else if (run_head_ == index) run_head_ = s.lru_next;
  if (s.lru_next != kNone) scopes_[s.lru_next].lru_prev = s.lru_prev;
  else if (run_tail_ == index) run_tail_ = s.lru_prev;
  s.lru_prev = s.lru_next = kNone;
}

void BudgetEngine::runLinkTailLocked(uint32_t index) {
  Scope& s = scopes_[index];
  s.lru_prev = run_tail_;
  s.lru_next = kNone;
  if (run_tail_ != kNone) scopes_[run_tail_].lru_next = index;
  else run_head_ = index;
  run_tail_ = index;
}

void BudgetEngine::runTouchLocked(uint32_t index, const Now& now) {
  Scope& s = scopes_[index];
  s.last_used = std::max(s.last_used, now.mono);
  if (s.is_run && run_tail_ != index) {
    runUnlinkLocked(index);
    runLinkTailLocked(index);
  }
}

void BudgetEngine::dropIdleRunsLocked(const Now& now) {
  // The list is in last-use order. A run with a reservation in flight stops the
  // sweep; that reservation settles or expires within reservation_ttl.
  while (run_head_ != kNone) {
    const Scope& s = scopes_[run_head_];
    if (s.outstanding > 0 || now.mono - s.last_used < options_.run_ttl) break;
    freeScopeLocked(run_head_);
  }
}

std::optional<ScopeId> BudgetEngine::ensureRunLocked(std::string_view run_id, std::string_view owner, const Now& now,
                                                     Error* error) {
  if (auto it = runs_.find(run_id); it != runs_.end()) {
    runTouchLocked(it->second, now);
    return ScopeId{it->second, scopes_[it->second].generation};
  }
  if (options_.run_limits.empty()) {
    *error = Error{ErrorCode::kNotFound, "run budgets are not configured"};
    return std::nullopt;
  }
  // One agent minting fresh run ids must not fill the table for everyone:
  // each owner has its share, and only the one over it is refused.
  auto owned = runs_per_owner_.find(owner);
  if (!owner.empty() && options_.max_runs_per_owner > 0 && owned != runs_per_owner_.end() &&
      owned->second >= options_.max_runs_per_owner) {
    *error = Error{ErrorCode::kBudgetExhausted,
                   fmt::format("Agent '{}' has {} active runs, its share of the run table; reuse a run id, or retry "
                               "once its runs have been idle for the run ttl",
                               owner, owned->second)};
    return std::nullopt;
  }
  if (runs_.size() >= options_.max_run_scopes) {
    *error = Error{ErrorCode::kBudgetExhausted, "Too many active runs; try again later"};
    return std::nullopt;
  }
  const uint32_t index = allocScopeLocked(fmt::format("run:{}", run_id), options_.run_limits, true, now);
  scopes_[index].run_owner = std::string(owner);
  if (owned != runs_per_owner_.end()) ++owned->second;
  else runs_per_owner_.emplace(std::string(owner), 1);
  runs_.emplace(std::string(run_id), index);
  runLinkTailLocked(index);
  return ScopeId{index, scopes_[index].generation};
}

Result<ScopeId> BudgetEngine::runScope(std::string_view run_id, std::string_view owner) {
  if (run_id.empty() || run_id.size() > options_.max_run_id_bytes) {
    return fail(ErrorCode::kInvalidRequest,
                fmt::format("X-Sluice-Run must be 1 to {} bytes", options_.max_run_id_bytes));
  }
  const Now now = readMono();  // run lifetimes are monotonic
  std::lock_guard lock(mu_);
  advanceLocked(now);
  dropIdleRunsLocked(now);
  Error error;
  if (auto id = ensureRunLocked(run_id, owner, now, &error)) return *id;
  return std::unexpected(std::move(error));
}

void BudgetEngine::configureRuns(const ScopeLimits& limits, Nanos ttl, size_t owners) {
  std::lock_guard lock(mu_);
  options_.run_limits = limits;
  options_.run_ttl = ttl;
  options_.max_runs_per_owner = std::max<size_t>(options_.max_run_scopes / std::max<size_t>(owners, 1), 1);
  for (uint32_t i = run_head_; i != kNone; i = scopes_[i].lru_next) scopes_[i].setLimits(limits);
}

size_t BudgetEngine::runScopeCount() const {
  std::lock_guard lock(mu_);
  return runs_.size();
}

// ---------------------------------------------------------------- reserve

namespace {

struct AskFacts {
  int64_t prompt;
  int64_t max_out;
  int64_t n;
  Price price;
  int64_t tokens;  // prompt + n × max_out
  int64_t usd;     // cost of that
  Tally prior;     // spent by the request's earlier attempts (per-call limits), calls unused
};

int64_t askTokens(const AskFacts& a, int64_t out) { return a.prompt + a.n * out; }
int64_t askUsd(const AskFacts& a, int64_t out) {
  return clampAmount(costOf(a.price, TokenUsage{.input = a.prompt, .output = a.n * out}));
}

// Largest output cap that fits `remaining` of `metric`; −1 if not even 0 fits.
int64_t capFor(const AskFacts& a, size_t metric, int64_t remaining) {
  switch (metric) {
    case kTok: return remaining < a.prompt ? -1 : (remaining - a.prompt) / a.n;
    case kUsd: {
      // ceil((P·pin + n·out·pout) / 1e6) ≤ R  ⟺  n·out·pout ≤ R·1e6 − P·pin.
      const Int128 room = static_cast<Int128>(remaining) * 1'000'000 - static_cast<Int128>(a.prompt) * a.price.input;
      if (room < 0) return -1;
      if (a.price.output <= 0) return kNever;
      const Int128 cap = room / (static_cast<Int128>(a.n) * a.price.output);
      return cap > kNever ? kNever : static_cast<int64_t>(cap);
    }
    default: return remaining >= 1 ? kNever : -1;
  }
}

// Amount of `metric` the ask needs with output cap `out`.
int64_t needFor(const AskFacts& a, size_t metric, int64_t out) {
  switch (metric) {
    case kTok: return askTokens(a, out);
    case kUsd: return askUsd(a, out);
    default: return 1;
  }
}

}  // namespace

ReserveResult BudgetEngine::reserve(std::span<const ScopeId> scopes, const Ask& ask) {
  // Everything that needs no shared state happens before the lock.
  std::array<ScopeId, Reservation::kMaxScopes> ids{};
  size_t count = 0;
  for (ScopeId id : scopes) {
    if (std::find(ids.begin(), ids.begin() + count, id) != ids.begin() + count) continue;
    if (count == ids.size()) {
      return std::unexpected(
          BudgetRejection{.kind = BudgetRejection::Kind::kInvalidScope, .scope = "(too many scopes)"});
    }
    ids[count++] = id;
  }
  AskFacts a{};
  a.prompt = std::clamp<int64_t>(ask.prompt_tokens, 0, kMaxTokensIn);
  a.max_out = std::clamp<int64_t>(ask.max_output_tokens, 0, kMaxTokensIn);
  a.n = std::clamp<int64_t>(ask.n, 1, kMaxChoices);
  // A negative price is a config error; never let it make a request cheaper.
  a.price = Price{std::max<int64_t>(ask.price.input, 0), std::max<int64_t>(ask.price.cached_input, 0),
                  std::max<int64_t>(ask.price.output, 0)};
  a.tokens = askTokens(a, a.max_out);
  a.usd = askUsd(a, a.max_out);
  a.prior = {clampAmount(ask.prior_tokens), clampAmount(ask.prior_usd), 0};
  const Tally need_full{a.tokens, a.usd, 1};
  const Now now = readNow();

  std::array<Scope*, Reservation::kMaxScopes> sp{};
  int64_t granted = a.max_out;
  Tally need = need_full;
  {
    std::lock_guard lock(mu_);
    advanceLocked(now);
    if (expiry_head_ != kNone && records_[expiry_head_].deadline <= now.mono) expireLocked(now);

    bool fits = true;
    for (size_t i = 0; i < count; ++i) {
      sp[i] = liveScope(ids[i]);
      if (sp[i] == nullptr) {
        return std::unexpected(
            BudgetRejection{.kind = BudgetRejection::Kind::kInvalidScope, .scope = fmt::format("#{}", ids[i].index)});
      }
      Scope& s = *sp[i];
      rollLocked(s);
      // A per-call limit covers the request as a whole: its earlier
      // attempts' spend counts against it too.
      fits = fits && need_full[kTok] <= s.per_call[kTok] - a.prior[kTok] &&
             need_full[kUsd] <= s.per_call[kUsd] - a.prior[kUsd];
      for (size_t w = 0; w < kNumWindows; ++w) {
        if (!s.limited[w]) continue;
        for (size_t m = 0; m < 3; ++m) {
          fits = fits && need_full[m] <= s.lim[w][m] - s.spent[w][m] - s.reserved[w][m];
        }
      }
    }

    if (!fits) {
      // Slow path: find the largest output cap every window admits, and the
      // window(s) that bind.
      int64_t cap = a.max_out;
      for (size_t i = 0; i < count; ++i) {
        const Scope& s = *sp[i];
        cap = std::min({cap, capFor(a, kTok, s.per_call[kTok] - a.prior[kTok]),
                        capFor(a, kUsd, s.per_call[kUsd] - a.prior[kUsd])});
        for (size_t w = 0; w < kNumWindows; ++w) {
          if (!s.limited[w]) continue;
          for (size_t m = 0; m < 3; ++m) {
            if (s.lim[w][m] == kUnlimited) continue;
            cap = std::min(cap, capFor(a, m, s.lim[w][m] - s.spent[w][m] - s.reserved[w][m]));
          }
        }
      }
      const int64_t floor_out = ask.policy == ShortBudgetPolicy::kClamp
                                    ? std::min(options_.min_clamp_output_tokens, a.max_out)
                                    : a.max_out;
      if (cap >= a.max_out) {
        // Only the µUSD saturation at kMaxAmount can get here; the ask fits.
      } else if (ask.policy == ShortBudgetPolicy::kClamp && cap >= options_.min_clamp_output_tokens) {
        granted = cap;
        need = {askTokens(a, granted), askUsd(a, granted), 1};
      } else {
        // Reject. Of the windows that cannot admit even `floor_out`, report
        // the one a retry waits for longest: one that never admits it first,
        // then the latest reset.
        BudgetRejection best;
        int best_rank = -1;  // 3 too large, 2 per call/total, 1 timed
        WallTime best_reset{};
        auto consider = [&](const Scope& s, BudgetWindow window, size_t m, int64_t limit, int64_t used) {
          if (limit == kUnlimited || capFor(a, m, limit - used) >= floor_out) return;
          BudgetRejection r;
          r.scope = s.name;
          r.window = window;
          r.metric = kMetricOf[m];
          const int64_t want = needFor(a, m, floor_out);
          r.request_too_large = window == BudgetWindow::kPerCall || want > limit;
          int rank = r.request_too_large ? 3 : 1;
          if (!r.request_too_large) {
            switch (window) {
              case BudgetWindow::kDay: r.resets_at = period_.next_day; break;
              case BudgetWindow::kMonth: r.resets_at = period_.next_month; break;
              case BudgetWindow::kMinute: {
                // When will enough leave the window? Buckets leave oldest first.
                const Ring& ring = *s.ring;
                const int64_t excess = used + want - limit;
                int64_t freed = 0;
                int64_t leave_sec = ring.head + kRingSpan;
                for (int64_t x = ring.head - (kRingSpan - 1); x <= ring.head; ++x) {
                  freed += ring.spent[slotOf(x)][m] + ring.reserved[slotOf(x)][m];
                  if (freed >= excess) {
                    leave_sec = x + kRingSpan;
                    break;
                  }
                }
                const Nanos wait = std::max(Nanos{0}, Nanos{leave_sec * kNsPerSec} - now.mono.time_since_epoch());
                r.resets_at = now.wall + wait;
                break;
              }
              default: rank = 2; break;  // total: never resets
            }
          }
          const WallTime reset = r.resets_at.value_or(WallTime{});
          if (rank > best_rank || (rank == best_rank && rank == 1 && reset > best_reset)) {
            best_rank = rank;
            best_reset = reset;
            best = std::move(r);
          }
        };
        for (size_t i = 0; i < count; ++i) {
          const Scope& s = *sp[i];
          consider(s, BudgetWindow::kPerCall, kTok, s.per_call[kTok], a.prior[kTok]);
          consider(s, BudgetWindow::kPerCall, kUsd, s.per_call[kUsd], a.prior[kUsd]);
          for (size_t w = 0; w < kNumWindows; ++w) {
            if (!s.limited[w]) continue;
            for (size_t m = 0; m < 3; ++m) consider(s, kWindowOf[w], m, s.lim[w][m], s.spent[w][m] + s.reserved[w][m]);
          }
        }
        if (best.resets_at) best.retry_after = std::max(Nanos{0}, *best.resets_at - now.wall);
        return std::unexpected(std::move(best));
      }
    }

    // Admit: take a record, then charge every window of every scope.
    uint32_t slot = 0;
    if (!free_records_.empty()) {
      slot = free_records_.back();
      free_records_.pop_back();
    } else if (records_.size() < options_.max_reservations) {
      slot = static_cast<uint32_t>(records_.size());
      records_.emplace_back();
    } else {
      return std::unexpected(BudgetRejection{.kind = BudgetRejection::Kind::kOverloaded});
    }
    for (size_t i = 0; i < count; ++i) {
      Scope& s = *sp[i];
      for (size_t w = kDay; w < kNumWindows; ++w) {
        for (size_t m = 0; m < 3; ++m) s.reserved[w][m] += need[m];
      }
      if (s.ring) {
        Tally& b = s.ring->reserved[slotOf(minute_sec_)];
        for (size_t m = 0; m < 3; ++m) {
          b[m] += need[m];
          s.reserved[kMinute][m] += need[m];
        }
      }
      ++s.outstanding;
      if (s.is_run) runTouchLocked(ids[i].index, now);
    }
    Record& rec = records_[slot];
    rec.active = true;
    rec.scope_count = static_cast<uint8_t>(count);
    rec.scopes = ids;
    rec.tokens = need[kTok];
    rec.usd = need[kUsd];
    rec.day_key = period_.day_key;
    rec.month_key = period_.month_key;
    rec.minute_sec = minute_sec_;
    rec.deadline = now.mono + options_.reservation_ttl;
    rec.prev = expiry_tail_;
    rec.next = kNone;
    if (expiry_tail_ != kNone) records_[expiry_tail_].next = slot;
    else expiry_head_ = slot;
    expiry_tail_ = slot;
    ++outstanding_;
    const uint32_t generation = rec.generation;

    Reservation r;
    r.engine_ = this;
    r.active_ = true;
    r.clamped_ = granted < a.max_out;
    r.scope_count_ = static_cast<uint8_t>(count);
    r.slot_ = slot;
    r.generation_ = generation;
    r.scopes_ = ids;
    r.day_key_ = rec.day_key;
    r.month_key_ = rec.month_key;
    r.minute_sec_ = rec.minute_sec;
    r.tokens_ = need[kTok];
    r.usd_ = need[kUsd];
    r.max_output_ = granted;
    return r;
  }
}

// ---------------------------------------------------------------- settle

void BudgetEngine::unchargeLocked(const Record& rec) {
  const Tally amount{rec.tokens, rec.usd, 1};
  for (size_t i = 0; i < rec.scope_count; ++i) {
    Scope* s = liveScope(rec.scopes[i]);
    if (s == nullptr) continue;  // removed or expired meanwhile
    // A window that rolled over already dropped this estimate.
    if (s->day_key == rec.day_key) {
      for (size_t m = 0; m < 3; ++m) take(s->reserved[kDay][m], amount[m]);
    }
    if (s->month_key == rec.month_key) {
      for (size_t m = 0; m < 3; ++m) take(s->reserved[kMonth][m], amount[m]);
    }
    for (size_t m = 0; m < 3; ++m) take(s->reserved[kTotal][m], amount[m]);
    if (s->ring && s->ring->inWindow(rec.minute_sec)) {
      Tally& b = s->ring->reserved[slotOf(rec.minute_sec)];
      for (size_t m = 0; m < 3; ++m) s->reserved[kMinute][m] -= take(b[m], amount[m]);
    }
    if (s->outstanding > 0) --s->outstanding;
  }
}

size_t BudgetEngine::expireLocked(const Now& now) {
  size_t expired = 0;
  while (expiry_head_ != kNone && records_[expiry_head_].deadline <= now.mono) {
    const uint32_t slot = expiry_head_;
    Record& rec = records_[slot];
    unchargeLocked(rec);
    expiry_head_ = rec.next;
    if (expiry_head_ != kNone) records_[expiry_head_].prev = kNone;
    else expiry_tail_ = kNone;
    rec.active = false;
    ++rec.generation;
    free_records_.push_back(slot);
    --outstanding_;
    ++expired;
  }
  return expired;
}

size_t BudgetEngine::expireStale() {
  const Now now = readNow();
  std::lock_guard lock(mu_);
  advanceLocked(now);
  const size_t n = expireLocked(now);
  dropIdleRunsLocked(now);
  return n;
}

SettleOutcome BudgetEngine::finish(Reservation& r, int64_t tokens, MicroUsd usd, int64_t calls) {
  if (!r.active_ || r.engine_ != this) return SettleOutcome::kIgnored;
  r.active_ = false;
  // Settle needs no calendar: the actual goes to the windows recorded in the
  // reservation. Only the minute ring needs the (monotonic) time.
  const Now now = readMono();
  const Tally actual{clampAmount(tokens), clampAmount(usd), calls};

  std::lock_guard lock(mu_);
  advanceLocked(now);
  bool present = false;
  if (r.slot_ < records_.size()) {
    Record& rec = records_[r.slot_];
    if (rec.active && rec.generation == r.generation_) {
      present = true;
      unchargeLocked(rec);
      if (rec.prev != kNone) records_[rec.prev].next = rec.next;
      else expiry_head_ = rec.next;
      if (rec.next != kNone) records_[rec.next].prev = rec.prev;
      else expiry_tail_ = rec.prev;
      rec.active = false;
      ++rec.generation;
      free_records_.push_back(r.slot_);
      --outstanding_;
    }
  }
  for (size_t i = 0; i < r.scope_count_; ++i) {
    Scope* s = liveScope(r.scopes_[i]);
    if (s == nullptr) continue;
    // The actual belongs to the windows the reservation was charged in.
    if (s->day_key == r.day_key_) {
      for (size_t m = 0; m < 3; ++m) s->spent[kDay][m] += actual[m];
    }
    if (s->month_key == r.month_key_) {
      for (size_t m = 0; m < 3; ++m) s->spent[kMonth][m] += actual[m];
    }
    for (size_t m = 0; m < 3; ++m) s->spent[kTotal][m] += actual[m];
    if (s->ring) {
      s->advanceMinute(minute_sec_);
      const int64_t sec = s->ring->inWindow(r.minute_sec_) ? r.minute_sec_ : s->ring->head;
      Tally& b = s->ring->spent[slotOf(sec)];
      for (size_t m = 0; m < 3; ++m) {
        b[m] += actual[m];
        s->spent[kMinute][m] += actual[m];
      }
    }
    if (s->is_run) runTouchLocked(r.scopes_[i].index, now);
  }
  return present ? SettleOutcome::kSettled : SettleOutcome::kSettledAfterExpiry;
}

bool BudgetEngine::renew(Reservation& r) {
  if (!r.active_ || r.engine_ != this) return false;
  const Now now = readMono();
  std::lock_guard lock(mu_);
  if (r.slot_ >= records_.size()) return false;
  Record& rec = records_[r.slot_];
  if (!rec.active || rec.generation != r.generation_) return false;  // expired meanwhile
  rec.deadline = now.mono + options_.reservation_ttl;
  if (expiry_tail_ == r.slot_) return true;
  // The list stays ordered by deadline: the renewed record moves to its tail.
  if (rec.prev != kNone) records_[rec.prev].next = rec.next;
  else expiry_head_ = rec.next;
  records_[rec.next].prev = rec.prev;  // not the tail, so next exists
  rec.prev = expiry_tail_;
  rec.next = kNone;
  records_[expiry_tail_].next = r.slot_;
  expiry_tail_ = r.slot_;
  return true;
}

SettleOutcome BudgetEngine::settle(Reservation& r, const TokenUsage& actual, MicroUsd actual_cost) {
  return finish(r, clampAmount(actual.input) + clampAmount(actual.output), actual_cost, 1);
}

SettleOutcome BudgetEngine::release(Reservation& r) { return finish(r, 0, 0, 0); }

size_t BudgetEngine::outstandingReservations() const {
  std::lock_guard lock(mu_);
  return outstanding_;
}

// ---------------------------------------------------------------- reporting

Result<ScopeUsage> BudgetEngine::usage(ScopeId id) const {
  const Now now = readNow();
  std::lock_guard lock(mu_);
  const Scope* s = liveScope(id);
  if (s == nullptr) return fail(ErrorCode::kNotFound, "budget scope not found");
  const CalendarPeriod& p = have_period_ && period_.day_key >= now.period.day_key ? period_ : now.period;
  const int64_t sec = std::max(minute_sec_, now.sec);

  std::array<Tally, kNumWindows> spent{};
  std::array<Tally, kNumWindows> reserved{};
  if (s->ring && s->ring->head != std::numeric_limits<int64_t>::min()) {
    for (int64_t x = std::max(sec - (kRingSpan - 1), s->ring->head - (kRingSpan - 1)); x <= s->ring->head; ++x) {
      for (size_t m = 0; m < 3; ++m) {
        spent[kMinute][m] += s->ring->spent[slotOf(x)][m];
        reserved[kMinute][m] += s->ring->reserved[slotOf(x)][m];
      }
    }
  }
  if (s->day_key == p.day_key) {
    spent[kDay] = s->spent[kDay];
    reserved[kDay] = s->reserved[kDay];
  }
  if (s->month_key == p.month_key) {
    spent[kMonth] = s->spent[kMonth];
    reserved[kMonth] = s->reserved[kMonth];
  }
  spent[kTotal] = s->spent[kTotal];
  reserved[kTotal] = s->reserved[kTotal];

  ScopeUsage u;
  u.name = s->name;
  u.limits = s->limits;
  u.outstanding_reservations = s->outstanding;
  WindowUsage* out[kNumWindows] = {&u.minute, &u.day, &u.month, &u.total};
  for (size_t w = 0; w < kNumWindows; ++w) {
    MetricUsage* mu[3] = {&out[w]->tokens, &out[w]->usd, &out[w]->calls};
    for (size_t m = 0; m < 3; ++m) {
      mu[m]->spent = spent[w][m];
      mu[m]->reserved = reserved[w][m];
      if (s->lim[w][m] != kUnlimited) {
        mu[m]->limit = s->lim[w][m];
        mu[m]->remaining = std::max<int64_t>(0, s->lim[w][m] - spent[w][m] - reserved[w][m]);
      }
    }
  }
  u.day.resets_at = p.next_day;
  u.month.resets_at = p.next_month;
  return u;
}

std::vector<SavedCounter> BudgetEngine::savedCounters() const {
  const Now now = readNow();
  std::lock_guard lock(mu_);
  const CalendarPeriod& p = have_period_ && period_.day_key >= now.period.day_key ? period_ : now.period;
  std::vector<SavedCounter> out;
  auto add = [&](const Scope& s, BudgetWindow w, int64_t key, size_t wi) {
    Tally t;
    for (size_t m = 0; m < 3; ++m) t[m] = s.spent[wi][m] + s.reserved[wi][m];
    if (t == Tally{}) return;
    out.push_back(SavedCounter{s.name, w, key, t[kTok], t[kUsd], t[kCalls]});
  };
  // Minute buckets are kept by monotonic second, which a restart does not
  // share: they are saved by the wall-clock second they stand for.
  const int64_t wall_sec = std::chrono::floor<std::chrono::seconds>(now.wall).time_since_epoch().count();
  const int64_t mono_sec = std::max(minute_sec_, now.sec);
  for (const Scope& s : scopes_) {
    if (!s.live) continue;
    if (s.day_key == p.day_key) add(s, BudgetWindow::kDay, s.day_key, kDay);
    if (s.month_key == p.month_key) add(s, BudgetWindow::kMonth, s.month_key, kMonth);
    add(s, BudgetWindow::kTotal, 0, kTotal);
    if (!s.ring) continue;
    for (int64_t x = mono_sec - (kRingSpan - 1); x <= mono_sec; ++x) {
      if (!s.ring->inWindow(x)) continue;
      Tally t;
      for (size_t m = 0; m < 3; ++m) t[m] = s.ring->spent[slotOf(x)][m] + s.ring->reserved[slotOf(x)][m];
      if (t == Tally{}) continue;
      out.push_back(
          SavedCounter{s.name, BudgetWindow::kMinute, wall_sec - (mono_sec - x), t[kTok], t[kUsd], t[kCalls]});
    }
  }
  return out;
}

size_t BudgetEngine::restore(std::span<const SavedCounter> counters) { return restoreImpl(counters, false); }

size_t BudgetEngine::restoreAtLeast(std::span<const SavedCounter> counters) { return restoreImpl(counters, true); }

size_t BudgetEngine::restoreImpl(std::span<const SavedCounter> counters, bool at_least) {
  const Now now = readNow();
  std::lock_guard lock(mu_);
  advanceLocked(now);
  size_t applied = 0;
  for (const SavedCounter& c : counters) {
    std::optional<ScopeId> id;
    std::string_view name = c.scope;
    if (name.starts_with("run:")) {
      Error ignored;
      id = ensureRunLocked(name.substr(4), {}, now, &ignored);
    } else if (auto it = by_name_.find(name); it != by_name_.end()) {
      id = ScopeId{it->second, scopes_[it->second].generation};
    }
    Scope* s = id ? liveScope(*id) : nullptr;
    if (s == nullptr) continue;
    rollLocked(*s);
    size_t w;
    switch (c.window) {
      case BudgetWindow::kDay:
        if (c.key != period_.day_key) continue;
        w = kDay;
        break;
      case BudgetWindow::kMonth:
        if (c.key != period_.month_key) continue;
        w = kMonth;
        break;
      case BudgetWindow::kTotal: w = kTotal; break;
      case BudgetWindow::kMinute: {
        // A bucket saved by wall-clock second goes back to the monotonic
        // second as old as it is now; older than the window, it is gone.
        if (!s->ring || !now.has_wall) continue;
        const int64_t wall_sec = std::chrono::floor<std::chrono::seconds>(now.wall).time_since_epoch().count();
        const int64_t age = std::max<int64_t>(wall_sec - c.key, 0);  // a clock stepped back: count it as now
        if (age >= kRingSpan) continue;
        const int64_t x = s->ring->head - age;
        const Tally add{clampAmount(c.tokens), clampAmount(c.usd), clampAmount(c.calls)};
        for (size_t m = 0; m < 3; ++m) {  // max, not +=: restoring twice changes nothing
          int64_t& bucket = s->ring->spent[slotOf(x)][m];
          const int64_t grow = std::max<int64_t>(add[m] - bucket, 0);
          bucket += grow;
          s->spent[kMinute][m] += grow;
        }
        ++applied;
        continue;
      }
      default: continue;
    }
    const Tally value{clampAmount(c.tokens), clampAmount(c.usd), clampAmount(c.calls)};
    if (at_least) {
      for (size_t m = 0; m < 3; ++m) s->spent[w][m] = std::max(s->spent[w][m], value[m]);
    } else {
      s->spent[w] = value;
    }
    ++applied;
  }
  return applied;
}

}  // namespace sluice::core
