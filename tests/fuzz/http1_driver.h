#pragma once
// Drives net::detail::Http1Parser the way a connection does, for the HTTP/1.1
// fuzz targets: bytes arrive in pieces, unconsumed bytes stay at the front of
// the buffer, a finished message is followed by the next one (pipelining),
// and the end of the input is the end of the connection. Records everything
// the parser reported, so two runs can be compared, and serialises a parsed
// message back to canonical HTTP/1.1.

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_util.h"
#include "net/http1_parser.h"

namespace sluice::fuzz {

using net::detail::Http1Callbacks;
using net::detail::Http1Parser;
using net::detail::ParseError;

using Fields = std::vector<std::pair<std::string, std::string>>;

/// One message as the parser reported it.
struct Message {
  std::string method;
  std::string target;
  std::string reason;
  int version = 0;
  int status = 0;
  Fields fields;
  std::string body;
  bool keep_alive = false;
  bool chunked = false;
  bool need_eof = false;
  bool expect_continue = false;
  std::optional<uint64_t> content_length;
  friend bool operator==(const Message&, const Message&) = default;
};

/// A whole connection: the messages that completed, then how it ended.
struct Outcome {
  std::vector<Message> messages;
  /// kNone: the input ended between messages; kNeedMore: it ended inside one
  /// (and putEof() was not called because the message is not EOF-delimited
  /// or not far enough); anything else: the parser's error.
  ParseError end = ParseError::kNone;
  bool header_done = false;  ///< of the unfinished message, when end != kNone
  size_t unconsumed = 0;     ///< bytes left in the buffer at the end (0 after kBodyLimit)
  std::string partial_body;  ///< body bytes of the unfinished message (none after kBodyLimit)
  friend bool operator==(const Outcome&, const Outcome&) = default;
};

struct DriverOptions {
  bool is_request = true;
  bool head_response = false;  ///< every response answers a HEAD request
  size_t header_limit = Http1Parser::kDefaultHeaderLimit;
  uint64_t body_limit = 1024 * 1024;
  size_t max_messages = 8;
};

class Recorder final : public Http1Callbacks {
 public:
  Message msg;
  size_t header_done_calls = 0;

  void onRequestLine(std::string_view method, std::string_view target, int version) override {
    msg.method = method;
    msg.target = target;
    msg.version = version;
  }
  void onStatusLine(int status, std::string_view reason, int version) override {
    msg.status = status;
    msg.reason = reason;
    msg.version = version;
  }
  void onField(std::string_view name, std::string_view value) override { msg.fields.emplace_back(name, value); }
  bool onHeaderDone() override {
    ++header_done_calls;
    return true;
  }
  bool onBody(std::string_view data) override {
    FUZZ_CHECK(!data.empty(), "onBody with no bytes");
    msg.body += data;
    return true;
  }
};

inline void snapshot(const Http1Parser& p, Message& m) {
  m.keep_alive = p.keepAlive();
  m.chunked = p.chunked();
  m.need_eof = p.needEof();
  m.expect_continue = p.expectContinue();
  m.content_length = p.contentLength();
}

/// Runs one connection over `input`, fed in pieces ending at `cuts`.
inline Outcome runConnection(std::string_view input, const DriverOptions& o, const std::vector<size_t>& cuts) {
  Outcome out;
  Http1Parser p(o.is_request);
  p.reset(o.head_response);
  p.headerLimit(o.header_limit);
  p.bodyLimit(o.body_limit);
  Recorder rec;
  std::string buf;
  ParseError err = ParseError::kNone;
  bool in_message = false;  // bytes of the current message were seen
  bool stop = false;

  // Parses what is buffered; returns false once the connection is over.
  auto drain = [&]() {
    while (!buf.empty()) {
      in_message = true;
      // An exact-size heap copy: a read past the end trips ASan.
      const auto exact = std::make_unique<char[]>(buf.size());
      std::memcpy(exact.get(), buf.data(), buf.size());
      const size_t used = p.put(exact.get(), buf.size(), rec, err);
      FUZZ_CHECK(used <= buf.size(), "put() consumed more than it was given");
      buf.erase(0, used);
      if (err == ParseError::kNeedMore) {
        FUZZ_CHECK(!p.done(), "kNeedMore from a finished parser");
        return true;
      }
      if (err != ParseError::kNone) return false;
      FUZZ_CHECK(p.done(), "kNone but the message is not done");
      FUZZ_CHECK(rec.header_done_calls == 1, "onHeaderDone() calls: " + std::to_string(rec.header_done_calls));
      snapshot(p, rec.msg);
      out.messages.push_back(std::move(rec.msg));
      rec = Recorder{};
      in_message = false;
      if (out.messages.size() >= o.max_messages) return false;
      p.reset(o.head_response);
    }
    return true;
  };

  size_t fed = 0;
  for (const std::string_view piece : pieces(input, cuts)) {
    buf.append(piece);
    fed += piece.size();
    if (!drain()) {
      stop = true;
      break;
    }
  }
  if (!stop && in_message) {
    if (p.headerDone() && p.needEof()) {
      p.putEof(err);
      if (err == ParseError::kNone) {
        snapshot(p, rec.msg);
        out.messages.push_back(std::move(rec.msg));
        rec = Recorder{};
        in_message = false;
      }
    } else {
      err = ParseError::kNeedMore;
    }
  }
  out.end = in_message ? err : ParseError::kNone;
  out.header_done = in_message && p.headerDone();
  out.unconsumed = buf.size() + (input.size() - fed);
  if (in_message) out.partial_body = rec.msg.body;
  if (out.end == ParseError::kBodyLimit) {
    // An EOF-delimited body over the limit: how much of it was reported (and
    // consumed) before the limit tripped depends on the read sizes.
    out.unconsumed = 0;
    out.partial_body.clear();
  }
  return out;
}

inline bool lowerEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != b[i]) return false;
  }
  return true;
}

inline bool isFramingField(std::string_view name) {
  return lowerEquals(name, "content-length") || lowerEquals(name, "transfer-encoding");
}

/// The fields minus Content-Length and Transfer-Encoding.
inline Fields withoutFraming(const Fields& fields) {
  Fields out;
  for (const auto& f : fields) {
    if (!isFramingField(f.first)) out.push_back(f);
  }
  return out;
}

/// Start line and the non-framing fields of `m`, without the final CRLF.
inline std::string serializeHead(const Message& m, bool is_request) {
  std::string s;
  const std::string version = m.version == 10 ? "HTTP/1.0" : "HTTP/1.1";
  if (is_request) {
    s = m.method + " " + m.target + " " + version + "\r\n";
  } else {
    s = version + " " + std::to_string(m.status) + " " + m.reason + "\r\n";
  }
  for (const auto& [name, value] : withoutFraming(m.fields)) s.append(name).append(": ").append(value).append("\r\n");
  return s;
}

/// `body` in the chunked coding, in chunks of sizes drawn from `rng`.
inline std::string chunkedBody(std::string_view body, InputRng& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t n = std::min(body.size() - pos, 1 + rng.below(rng.coin() ? 8 : body.size()));
    std::string size;
    for (size_t v = n; v != 0; v >>= 4) size.insert(size.begin(), kHex[v & 15]);
    s += size;
    if (rng.below(4) == 0) s += ";ext=\"v\"";
    s += "\r\n";
    s.append(body.substr(pos, n));
    s += "\r\n";
    pos += n;
  }
  s += "0\r\n";
  if (rng.coin()) s += "X-Trailer: t\r\n";
  s += "\r\n";
  return s;
}

inline std::string describe(const Message& m) {
  std::string s = "[" + printable(m.method) + " " + printable(m.target) + " " + std::to_string(m.status) + " " +
                  printable(m.reason) + " v" + std::to_string(m.version) + "] fields=";
  for (const auto& [n, v] : m.fields) s += "{" + printable(n) + ": " + printable(v) + "}";
  s += " body=" + printable(m.body) + " ka=" + std::to_string(m.keep_alive) + " chunked=" + std::to_string(m.chunked) +
       " eof=" + std::to_string(m.need_eof) +
       " cl=" + (m.content_length ? std::to_string(*m.content_length) : std::string("none"));
  return s;
}

inline std::string describe(const Outcome& o) {
  std::string s = std::to_string(o.messages.size()) +
                  " message(s), end=" + std::string(net::detail::parseErrorName(o.end)) +
                  " unconsumed=" + std::to_string(o.unconsumed);
  for (const Message& m : o.messages) s += "\n       " + describe(m);
  return s;
}

/// Runs `input` as one connection whole, then cut into pieces at the
/// positions cutSets() draws (byte by byte once, with the SSE2 kernels), and
/// checks every split run reports exactly what the whole one did. Returns
/// the whole run.
inline Outcome runWholeAndSplit(std::string_view input, const DriverOptions& o, InputRng& rng) {
  const Outcome whole = runConnection(input, o, {});
  for (const auto& cuts : cutSets(input.size(), rng)) {
    const bool baseline = cuts.size() + 1 == input.size();  // byte by byte: the SSE2 kernels
    net::detail::http1AllowAvx2ForTesting(!baseline);
    const Outcome split = runConnection(input, o, cuts);
    net::detail::http1AllowAvx2ForTesting(true);
    FUZZ_CHECK(split == whole, "fed in " + std::to_string(cuts.size() + 1) + " pieces" +
                                   (baseline ? " (SSE2 kernels)" : "") + "\n     whole: " + describe(whole) +
                                   "\n     split: " + describe(split));
  }
  return whole;
}

}  // namespace sluice::fuzz
