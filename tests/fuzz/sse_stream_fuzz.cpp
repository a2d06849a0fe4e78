// libFuzzer target: the SSE parser (proto/sse.h) and the stream filter
// (proto/stream_filter.h) on upstream stream bytes, in both modes (the client
// asked for usage, or the gateway strips it).
//
// Properties, besides no crash, leak or undefined behaviour:
//  - Incremental: the bytes fed whole or in pieces split anywhere give the
//    same events (parser) and the same client bytes and accounting (filter).
//  - The client bytes are well-formed SSE: only complete events, each made of
//    an optional `event: ` line and `data: ` lines, ended by an empty line;
//    nothing after `data: [DONE]`; still so after cut().
//  - They are a fixed point: the client bytes through a second filter in the
//    same mode, or one that forwards usage, come out unchanged (the filter
//    re-frames canonically and has nothing left to strip); with usage
//    forwarded both times, the second filter's accounting is the first's.
//  - Accounting never goes negative, and its parts add up (reasoning and tool
//    call bytes are parts of the output text; non-ASCII code points are
//    fewer than bytes; malformed and dropped events are counted events).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "proto/sse.h"
#include "proto/stream_filter.h"

namespace sluice::fuzz {
namespace {

using proto::SseEvent;
using proto::SseParser;
using proto::StreamAccounting;
using proto::StreamFilter;

struct OwnedEvent {
  std::string type;
  std::string data;
  std::string id;
  friend bool operator==(const OwnedEvent&, const OwnedEvent&) = default;
};

struct ParserRun {
  std::vector<OwnedEvent> events;
  bool failed = false;
  bool mid_event = false;
  friend bool operator==(const ParserRun&, const ParserRun&) = default;
};

ParserRun parse(const std::vector<std::string_view>& parts, size_t max_event_bytes) {
  ParserRun run;
  SseParser parser(max_event_bytes);
  for (const std::string_view part : parts) {
    auto r = parser.put(part, [&](const SseEvent& e) {
      run.events.push_back({std::string(e.type), std::string(e.data), std::string(e.id)});
    });
    if (!r) {
      run.failed = true;
      FUZZ_CHECK(parser.failed() && parser.bufferedBytes() == 0, "a failed parser keeps its buffers");
      break;
    }
    FUZZ_CHECK(parser.bufferedBytes() <= 4 * max_event_bytes + 64, "parser holds more than its limit");
  }
  run.mid_event = parser.midEvent();
  return run;
}

struct FilterRun {
  std::string out;
  StreamAccounting acc;
  bool failed = false;
  bool finished = false;
  bool mid_event = false;
};

bool sameAccounting(const StreamAccounting& a, const StreamAccounting& b) {
  return a.usage == b.usage && a.output_text_bytes == b.output_text_bytes && a.output_non_ascii == b.output_non_ascii &&
         a.reasoning_bytes == b.reasoning_bytes && a.tool_call_bytes == b.tool_call_bytes &&
         a.finish_reason == b.finish_reason && a.model == b.model && a.events == b.events &&
         a.malformed_events == b.malformed_events && a.dropped_events == b.dropped_events && a.done == b.done &&
         a.upstream_error == b.upstream_error && a.upstream_error_message == b.upstream_error_message;
}

std::string describe(const FilterRun& r) {
  const StreamAccounting& a = r.acc;
  return "failed=" + std::to_string(r.failed) + " finished=" + std::to_string(r.finished) +
         " events=" + std::to_string(a.events) + " malformed=" + std::to_string(a.malformed_events) +
         " dropped=" + std::to_string(a.dropped_events) + " text=" + std::to_string(a.output_text_bytes) +
         " usage=" + (a.usage ? std::to_string(a.usage->input) + "/" + std::to_string(a.usage->output) : "none") +
         " model=" + printable(a.model, 80) + " finish=" + printable(a.finish_reason, 80) +
         "\n       out: " + printable(r.out);
}

FilterRun filter(const std::vector<std::string_view>& parts, StreamFilter::Options options) {
  FilterRun run;
  StreamFilter f(options);
  for (const std::string_view part : parts) {
    const size_t before = run.out.size();
    if (!f.put(part, run.out)) {
      run.failed = true;
      FUZZ_CHECK(run.out.size() >= before, "put() shrank the output");
      break;
    }
  }
  run.acc = f.accounting();
  run.finished = f.finished();
  run.mid_event = f.midEvent();
  return run;
}

/// Checks that `out` is complete events of `event: ` / `data: ` lines, each
/// ended by an empty line, with nothing after a [DONE] event.
void checkWellFormed(std::string_view out, std::string_view context) {
  FUZZ_CHECK(out.find('\r') == std::string_view::npos, "CR in client bytes\n     " + std::string(context));
  size_t pos = 0;
  bool done = false;
  while (pos < out.size()) {
    FUZZ_CHECK(!done, "bytes after [DONE]\n     " + std::string(context));
    // One event.
    bool first = true;
    bool has_data = false;
    for (;;) {
      const size_t nl = out.find('\n', pos);
      FUZZ_CHECK(nl != std::string_view::npos, "unterminated line\n     " + std::string(context));
      const std::string_view line = out.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.empty()) break;
      if (line.starts_with("event: ")) {
        FUZZ_CHECK(first, "event: line after data\n     " + std::string(context));
      } else {
        FUZZ_CHECK(line.starts_with("data: "),
                   "not an event:/data: line: " + printable(line) + "\n     " + std::string(context));
        if (!has_data && line == "data: [DONE]") done = true;
        has_data = true;
      }
      first = false;
    }
    FUZZ_CHECK(has_data, "event without data\n     " + std::string(context));
  }
}

void checkAccounting(const StreamAccounting& a, std::string_view context) {
  const std::string why(context);
  if (a.usage) {
    FUZZ_CHECK(a.usage->input >= 0 && a.usage->cached >= 0 && a.usage->output >= 0 && a.usage->reasoning >= 0 &&
                   a.usage->total() >= 0,
               "negative usage\n     " + why);
  }
  FUZZ_CHECK(a.output_text_bytes >= 0 && a.output_non_ascii >= 0 && a.reasoning_bytes >= 0 && a.tool_call_bytes >= 0,
             "negative byte count\n     " + why);
  FUZZ_CHECK(a.output_non_ascii <= a.output_text_bytes, why);
  FUZZ_CHECK(a.reasoning_bytes + a.tool_call_bytes <= a.output_text_bytes, why);
  FUZZ_CHECK(a.events >= 0 && a.malformed_events >= 0 && a.dropped_events >= 0, why);
  FUZZ_CHECK(a.malformed_events + a.dropped_events <= a.events, why);
}

void checkMode(std::string_view input, bool wants_usage, size_t max_event_bytes,
               const std::vector<std::vector<size_t>>& cut_sets, InputRng& rng) {
  const StreamFilter::Options options{.client_wants_usage = wants_usage, .max_event_bytes = max_event_bytes};
  const FilterRun whole = filter({input}, options);
  const std::string mode = wants_usage ? "client wants usage" : "usage stripped";
  const std::string ctx = mode + ": " + describe(whole);
  checkWellFormed(whole.out, ctx);
  checkAccounting(whole.acc, ctx);
  FUZZ_CHECK(whole.finished == whole.acc.done, ctx);

  for (const auto& cuts : cut_sets) {
    const FilterRun split = filter(pieces(input, cuts), options);
    FUZZ_CHECK(split.out == whole.out && sameAccounting(split.acc, whole.acc) && split.failed == whole.failed &&
                   split.finished == whole.finished &&
                   (whole.finished || split.mid_event == whole.mid_event),  // after [DONE] input is ignored
               mode + ", fed in " + std::to_string(cuts.size() + 1) + " pieces\n     whole: " + describe(whole) +
                   "\n     split: " + describe(split));
  }

  // The client bytes through a second filter that forwards usage, and, when
  // the first one stripped it, through one that strips it (default limit:
  // re-framing adds a space after each "data:", so an event at the limit
  // may grow past it).
  for (const bool second_wants : {false, true}) {
    if (wants_usage && !second_wants) continue;  // that one strips what the first forwarded
    const FilterRun again = filter({whole.out}, {.client_wants_usage = second_wants});
    const std::string why = mode + " then " + (second_wants ? "forwarded" : "stripped") +
                            "\n     first:  " + describe(whole) + "\n     second: " + describe(again);
    FUZZ_CHECK(!again.failed && again.out == whole.out && !again.mid_event, why);
    FUZZ_CHECK(again.acc.malformed_events == whole.acc.malformed_events, why);
    if (wants_usage && second_wants) FUZZ_CHECK(sameAccounting(again.acc, whole.acc), why);
  }

  // Cutting the stream (the gateway's error path) keeps it well-formed.
  if (!whole.failed) {
    StreamFilter f(options);
    std::string out;
    (void)f.put(input, out);
    const bool append_done = rng.coin();
    f.cut(out, core::ErrorCode::kUpstreamTimeout, "upstream stalled \"x\"\n", append_done);
    FUZZ_CHECK(f.finished(), "not finished after cut()");
    checkWellFormed(out, mode + " after cut(): " + printable(out));
  }
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  InputRng rng(input);
  // Mostly the default event limit; sometimes a small one, to reach the limit paths.
  const size_t max_event_bytes = rng.below(4) == 0 ? 8 + rng.below(512) : SseParser::kDefaultMaxEventBytes;
  const auto cut_sets = cutSets(input.size(), rng, 256);

  const ParserRun whole = parse({input}, max_event_bytes);
  for (const auto& cuts : cut_sets) {
    const ParserRun split = parse(pieces(input, cuts), max_event_bytes);
    FUZZ_CHECK(split == whole, "SSE parser: fed in " + std::to_string(cuts.size() + 1) + " pieces, " +
                                   std::to_string(split.events.size()) + " events instead of " +
                                   std::to_string(whole.events.size()));
  }
  checkMode(input, false, max_event_bytes, cut_sets, rng);
  checkMode(input, true, max_event_bytes, cut_sets, rng);
  return 0;
}
