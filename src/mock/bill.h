#pragma once
/// @file
/// @brief What the mock provider served and would charge: the ground truth
/// the gateway's ledger is compared with.
///
/// Billing rule (what a real provider does, made exact):
/// - A request is billed (requests += 1, prompt_tokens += its prompt count)
///   when its 200 response headers are sent. A request cancelled or cut
///   before the headers costs nothing; it only counts in `requests_total`.
/// - Non-stream: the whole completion is billed with the headers (the
///   provider generated all of it before the first byte), also when the body
///   is then cut by an injected reset or stall.
/// - Stream: completion tokens are billed per SSE event as the transport
///   takes it (the socket accepted its bytes; events still queued in the
///   mock's own buffer behind a slow reader are not billed until they go).
///   A stream cut by a reset, a stall, a timeout or a client that disconnects
///   is billed for the tokens of the events sent before the cut, not for the
///   ones never generated or never sent. When the answer is complete, the
///   events still queued are billed with it.
/// - Error answers (400/404 and injected 429/500/503) cost nothing; they count
///   in `errors` by status and, when the model is known, in the model's
///   `errors`.
///
/// Thread-safe: one Bill is shared by every loop of a server and by every
/// in-process client.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace sluice::mock {

struct ModelBill {
  uint64_t requests = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t errors = 0;
  [[nodiscard]] uint64_t totalTokens() const { return prompt_tokens + completion_tokens; }
  friend bool operator==(const ModelBill&, const ModelBill&) = default;
};

struct BillSnapshot {
  std::map<std::string, ModelBill, std::less<>> models;
  ModelBill totals;
  uint64_t requests_total = 0;     // every API request received, answered or not
  std::map<int, uint64_t> errors;  // by HTTP status
};

class Bill {
 public:
  /// Distinct model names tracked; further names are folded into kOverflowModel
  /// so hostile traffic cannot grow the map without bound.
  static constexpr size_t kMaxModels = 4096;
  static constexpr std::string_view kOverflowModel = "(other)";

  void recordReceived();
  void recordServed(std::string_view model, uint64_t prompt_tokens, uint64_t completion_tokens);
  void addCompletion(std::string_view model, uint64_t completion_tokens);
  /// `model` may be empty when the request never named a valid one.
  void recordError(int status, std::string_view model);
  void reset();

  [[nodiscard]] BillSnapshot snapshot() const;
  /// {"models":{"m":{"requests","prompt_tokens","completion_tokens","total_tokens","errors"}},
  ///  "totals":{same keys},"requests_total":N,"errors":{"429":N,...}}
  [[nodiscard]] std::string toJson() const;

 private:
  ModelBill& modelLocked(std::string_view model);

  mutable std::mutex mu_;
  BillSnapshot data_;
};

}  // namespace sluice::mock
