// libFuzzer target: the HTTP/1.1 response parser and its chunked decoder
// (net/http1_parser.h), as the upstream client uses them on a provider
// connection (several responses in a row, EOF-delimited bodies, answers to
// HEAD requests).
//
// Properties, besides no crash, leak or undefined behaviour:
//  - Incremental: the same bytes fed whole, in a few pieces, in many pieces
//    and byte by byte (AVX2 and baseline SSE2 kernels) give the same
//    responses, bodies and end.
//  - Round trip: every response that parsed, serialised back (same status
//    line and fields) with its decoded body framed by a Content-Length, and
//    again in the chunked coding with other chunk sizes, extensions and a
//    trailer, decodes to the same status, fields and body. A response that
//    has no body by its status (1xx, 204, 304) or request (HEAD) never
//    reports body bytes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http1_driver.h"

namespace sluice::fuzz {
namespace {

DriverOptions optionsFor(InputRng& rng) {
  DriverOptions o;
  o.is_request = false;
  o.head_response = rng.below(8) == 0;
  o.body_limit = Http1Parser::kDefaultResponseBodyLimit;
  if (rng.below(4) == 0) o.header_limit = 16 + rng.below(512);
  if (rng.below(4) == 0) o.body_limit = rng.below(256);
  return o;
}

bool bodiless(const Message& m, bool head_response) {
  return head_response || m.status / 100 == 1 || m.status == 204 || m.status == 304;
}

void checkReparse(const Message& m, const std::string& wire, bool head_response, bool chunked) {
  DriverOptions o;
  o.is_request = false;
  o.head_response = head_response;
  o.header_limit = wire.size() + 1;
  o.body_limit = m.body.size();
  const Outcome again = runConnection(wire, o, {});
  const std::string why = "serialised: " + printable(wire) + "\n     reparsed: " + describe(again) +
                          "\n     original: " + describe(m);
  FUZZ_CHECK(again.end == ParseError::kNone && again.messages.size() == 1 && again.unconsumed == 0, why);
  const Message& r = again.messages[0];
  FUZZ_CHECK(r.status == m.status && r.reason == m.reason && r.version == m.version, why);
  FUZZ_CHECK(withoutFraming(r.fields) == withoutFraming(m.fields), why);
  FUZZ_CHECK(r.body == m.body, "decoded bodies differ\n     " + why);
  if (!bodiless(m, head_response)) {
    FUZZ_CHECK(r.chunked == chunked && !r.need_eof, why);
    if (!chunked) FUZZ_CHECK(r.content_length == m.body.size(), why);
  }
  // Unless the original framing decided it (an EOF-delimited body, or chunked
  // with a Content-Length: never kept alive), keep-alive must agree.
  bool had_content_length = false;
  for (const auto& f : m.fields) had_content_length |= lowerEquals(f.first, "content-length");
  if (!m.need_eof && !(m.chunked && had_content_length)) FUZZ_CHECK(r.keep_alive == m.keep_alive, why);
}

void checkRoundTrip(const Message& m, bool head_response, InputRng& rng) {
  if (bodiless(m, head_response)) {
    FUZZ_CHECK(m.body.empty(), "a bodiless response reported body bytes: " + describe(m));
    checkReparse(m, serializeHead(m, false) + "\r\n", head_response, false);
    return;
  }
  checkReparse(m, serializeHead(m, false) + "Content-Length: " + std::to_string(m.body.size()) + "\r\n\r\n" + m.body,
               head_response, false);
  checkReparse(m, serializeHead(m, false) + "Transfer-Encoding: chunked\r\n\r\n" + chunkedBody(m.body, rng),
               head_response, true);
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  InputRng rng(input);
  const DriverOptions o = optionsFor(rng);

  const Outcome whole = runWholeAndSplit(input, o, rng);
  for (const Message& m : whole.messages) checkRoundTrip(m, o.head_response, rng);
  return 0;
}
