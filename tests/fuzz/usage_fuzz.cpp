// libFuzzer target: usage extraction from response bodies (proto/usage.h, the
// simdjson On-Demand walk) and the DOM usage reader the stream filter shares.
//
// Properties, besides no crash, leak or undefined behaviour:
//  - Usage never goes negative: no token count, no total and no cost derived
//    from a summary (or from the same body relayed as a stream event) is
//    below zero, whatever the body says.
//  - For every body simdjson accepts, summarizeResponse() equals the DOM
//    reference it replaced (tests/proto/usage_reference.h), parsed in place
//    with any padding bytes or from a copy; for other bodies the summary, if
//    any, is plausible (never larger than the body). extractUsage() is the
//    summary's usage. The DOM usageFrom() equals the reference's.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "core/pricing.h"
#include "fuzz_util.h"
#include "proto/json_dom.h"
#include "proto/stream_filter.h"
#include "proto/usage.h"
#include "proto/usage_reference.h"

namespace sluice::fuzz {
namespace {

namespace ref = proto::usage_reference;
using core::TokenUsage;

std::string str(const std::optional<TokenUsage>& u) {
  if (!u) return "none";
  return std::to_string(u->input) + "/" + std::to_string(u->cached) + "/" + std::to_string(u->output) + "/" +
         std::to_string(u->reasoning);
}

void checkNonNegative(const std::optional<TokenUsage>& u, std::string_view where, std::string_view body) {
  if (!u) return;
  const std::string why = std::string(where) + ": usage " + str(u) + "\n     body: " + printable(body);
  FUZZ_CHECK(u->input >= 0 && u->cached >= 0 && u->output >= 0 && u->reasoning >= 0, "negative count, " + why);
  FUZZ_CHECK(u->total() >= 0, "negative total, " + why);
  // Costs at a usual price, a price with cached tokens at zero, and the dearest.
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  for (const core::Price& price : {core::Price{2'500'000, 1'250'000, 10'000'000}, core::Price{150'000, 0, 600'000},
                                   core::Price{kMax, kMax, kMax}}) {
    FUZZ_CHECK(core::costOf(price, *u) >= 0, "negative cost, " + why);
  }
  for (const int64_t tokens : {u->input, u->output, u->total()}) {
    FUZZ_CHECK(core::costOfTokens(10'000'000, tokens) >= 0, "negative reservation, " + why);
  }
  TokenUsage sum = *u;
  sum += *u;  // a request's attempts added up
  FUZZ_CHECK(sum.input >= 0 && sum.cached >= 0 && sum.output >= 0 && sum.reasoning >= 0 && sum.total() >= 0,
             "negative sum of attempts, " + why);
}

void checkSummary(const core::Result<proto::ResponseSummary>& r, std::string_view where, std::string_view body) {
  if (!r) return;
  checkNonNegative(r->usage, where, body);
  FUZZ_CHECK(r->output_text_bytes >= 0 && r->output_non_ascii >= 0 && r->choices >= 0,
             std::string(where) + ": negative count: " + ref::describe(r) + "\n     body: " + printable(body));
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::fuzz;
  namespace proto = sluice::proto;
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  const auto expected = ref::referenceSummarize(body);
  const auto copied = proto::summarizeResponse(body, 0);
  checkSummary(copied, "summary", body);
  const auto usage = proto::extractUsage(body);
  FUZZ_CHECK(usage == (copied ? copied->usage : std::nullopt),
             "extractUsage " + str(usage) + " vs summary " + ref::describe(copied));
  for (const char fill : {'\0', '}', ',', '"'}) {
    const auto padded = ref::summarizePadded(body, fill);
    checkSummary(padded, "summary in place", body);
    if (expected) {
      FUZZ_CHECK(ref::sameResult(expected, padded), "in place (padding '" + printable(std::string(1, fill)) +
                                                        "'):\n     expected " + ref::describe(expected) +
                                                        "\n     got      " + ref::describe(padded) +
                                                        "\n     body: " + printable(body));
    } else {
      FUZZ_CHECK(ref::plausible(padded, body), "implausible summary of an invalid body: " + ref::describe(padded) +
                                                   "\n     body: " + printable(body));
    }
  }
  if (expected) {
    FUZZ_CHECK(ref::sameResult(expected, copied), "copied:\n     expected " + ref::describe(expected) +
                                                      "\n     got      " + ref::describe(copied) +
                                                      "\n     body: " + printable(body));
    // The DOM reader (the stream filter's) on every top-level "usage" member.
    proto::detail::JsonDocument doc;
    simdjson::dom::object obj;
    FUZZ_CHECK(!doc.parse(body) && !doc.root().get_object().get(obj), "the reference accepted it");
    for (const auto kv : obj) {
      if (kv.key != "usage") continue;
      const auto dom = proto::detail::usageFrom(kv.value);
      checkNonNegative(dom, "DOM usageFrom", body);
      FUZZ_CHECK(dom == ref::referenceUsageFrom(kv.value),
                 "DOM usageFrom " + str(dom) + " vs reference " + str(ref::referenceUsageFrom(kv.value)));
    }
  } else {
    FUZZ_CHECK(ref::plausible(copied, body),
               "implausible summary of an invalid body: " + ref::describe(copied) + "\n     body: " + printable(body));
  }

  // The same body as one stream event (its lines as data lines).
  if (body.find('\r') == std::string_view::npos) {
    std::string event;
    size_t pos = 0;
    for (;;) {
      const size_t nl = body.find('\n', pos);
      event += "data: ";
      event.append(body.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
      event += '\n';
      if (nl == std::string_view::npos) break;
      pos = nl + 1;
    }
    event += '\n';
    proto::StreamFilter filter({.client_wants_usage = false});
    std::string out;
    (void)filter.put(event, out);
    checkNonNegative(filter.accounting().usage, "stream event", body);
  }
  return 0;
}
