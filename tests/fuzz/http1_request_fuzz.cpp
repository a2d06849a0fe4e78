// libFuzzer target: the HTTP/1.1 request parser (net/http1_parser.h), as the
// server uses it on a client connection (pipelined requests included).
//
// Properties, besides no crash, leak or undefined behaviour:
//  - Incremental: the same bytes fed whole, in a few pieces, in many pieces
//    and byte by byte (with the AVX2 kernels and the baseline SSE2 ones) give
//    the same requests and the same end.
//  - Round trip: every request that parsed, serialised back to canonical
//    HTTP/1.1 (same method, target, version and fields, the body framed by a
//    Content-Length), parses to the same request.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http1_driver.h"

namespace sluice::fuzz {
namespace {

DriverOptions optionsFor(InputRng& rng) {
  DriverOptions o;
  o.is_request = true;
  // Mostly the server's limits; sometimes small ones, to reach the limit paths.
  if (rng.below(4) == 0) o.header_limit = 16 + rng.below(512);
  if (rng.below(4) == 0) o.body_limit = rng.below(256);
  return o;
}

void checkRoundTrip(const Message& m) {
  std::string canonical = serializeHead(m, /*is_request=*/true);
  canonical += "Content-Length: " + std::to_string(m.body.size()) + "\r\n\r\n";
  canonical += m.body;

  DriverOptions o;
  o.is_request = true;
  o.header_limit = canonical.size() + 1;
  o.body_limit = m.body.size();
  const Outcome again = runConnection(canonical, o, {});
  const std::string why = "canonical: " + printable(canonical) + "\n     reparsed: " + describe(again) +
                          "\n     original: " + describe(m);
  FUZZ_CHECK(again.end == ParseError::kNone && again.messages.size() == 1 && again.unconsumed == 0, why);
  const Message& r = again.messages[0];
  FUZZ_CHECK(r.method == m.method && r.target == m.target && r.version == m.version, why);
  FUZZ_CHECK(withoutFraming(r.fields) == withoutFraming(m.fields), why);
  FUZZ_CHECK(r.body == m.body, why);
  FUZZ_CHECK(r.content_length == m.body.size() && !r.chunked && !r.need_eof, why);
  FUZZ_CHECK(r.keep_alive == m.keep_alive && r.expect_continue == m.expect_continue, why);
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  InputRng rng(input);
  const DriverOptions o = optionsFor(rng);

  const Outcome whole = runWholeAndSplit(input, o, rng);
  for (const Message& m : whole.messages) checkRoundTrip(m);
  return 0;
}
