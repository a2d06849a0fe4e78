#pragma once

// A lean, strict, incremental HTTP/1.1 message parser (RFC 9112) for the
// server side (requests) and the upstream client side (responses).
//
// Why not Beast's basic_parser: under a callgrind profile it was a large
// share of a proxied request's instructions (request + response; the count
// is in BENCHMARKS.md). This parser finds
// the end of the header block with a SIMD scan that also records where each
// line ends, then checks every line on its own (SIMD name/value scans, no
// line waits for the one before); it never allocates and hands string views
// into the caller's buffer to its callbacks. bench/http1_bench.cpp compares
// it with Beast.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::net::detail {

/// Outcome of Http1Parser::put() / putEof(). Callers map everything but
/// kNone / kNeedMore / kHeaderLimit / kBodyLimit to "400" (server) or
/// "protocol error" (upstream client); the finer kinds exist for logs/tests.
enum class ParseError : uint8_t {
  kNone,
  kNeedMore,        ///< all usable input consumed; the message is not complete yet
  kHeaderLimit,     ///< header block (or chunked trailer section) over headerLimit()
  kBodyLimit,       ///< body over bodyLimit()
  kBadMessage,      ///< generic syntax error
  kBadStartLine,    ///< request line / status line
  kBadVersion,      ///< not HTTP/1.0 or HTTP/1.1
  kBadField,        ///< field name/value syntax, bare CR/LF, obs-fold
  kBadFraming,      ///< Content-Length / Transfer-Encoding invalid or conflicting
  kBadChunk,        ///< chunk size line, chunk extension, chunk CRLF, trailer
  kBadHost,         ///< a request with two Host fields, or an HTTP/1.1 one with none (RFC 9112 3.2)
  kPartialMessage,  ///< putEof() before the message was complete
  kAborted,         ///< a callback returned false
};

struct LineIndex;  // implementation detail (http1_parser.cpp)

/// Testing only: with false, the parser uses its baseline (SSE2) kernels
/// even on a CPU with AVX2 (picked at run time otherwise), so tests can cover
/// both. Returns whether AVX2 kernels are now in use. Not for concurrent use.
bool http1AllowAvx2ForTesting(bool allow);

/// Short stable name for logs ("need_more", "bad_field", ...).
[[nodiscard]] std::string_view parseErrorName(ParseError e);

/// Receives the parts of a message. Every string_view points into the buffer
/// passed to Http1Parser::put() and is valid only during the callback.
/// The defaults do nothing, so an implementation overrides what it needs.
class Http1Callbacks {
 public:
  virtual ~Http1Callbacks() = default;
  /// Request line. version is 10 or 11.
  virtual void onRequestLine(std::string_view method, std::string_view target, int version);
  /// Status line. status is 100..599, reason may be empty; version 10 or 11.
  virtual void onStatusLine(int status, std::string_view reason, int version);
  /// One header field, in order (repeated names are repeated calls). value has
  /// leading/trailing SP/HTAB removed. Trailer fields of a chunked body are
  /// validated but not reported.
  virtual void onField(std::string_view name, std::string_view value);
  /// After the last field; framing accessors (contentLength(), chunked(),
  /// keepAlive(), expectContinue(), ...) are valid from here on. Return
  /// false to stop: put() then returns at once with kAborted.
  virtual bool onHeaderDone();
  /// De-chunked body bytes, as they arrive (never empty; any number of calls).
  /// Return false to stop: put() then returns at once with kAborted.
  virtual bool onBody(std::string_view data);
};

/// Incremental HTTP/1.x parser for one connection (one message at a time).
///
/// Input contract (as Beast's): put() is given the caller's buffer of
/// unconsumed bytes; bytes it does not consume must be given again, at the
/// start of the next put(), followed by any newly received bytes.
///
/// - The header block is parsed only once it is complete (its empty line is
///   in the buffer); until then put() consumes nothing (but one empty line
///   before a request line, which it drops: RFC 9112 2.2) and reports kNeedMore,
///   or kHeaderLimit as soon as the buffered bytes reach headerLimit()
///   without the block being complete (start line + fields + final CRLF
///   count). So a syntax error too shows once the block is complete, and the
///   outcome and callbacks never depend on how the bytes were split. The
///   start-line and field callbacks then run in one go (on an error, those
///   for the lines before it may have run: discard them).
/// - Body bytes are consumed and reported as they come; a chunk need not be
///   buffered whole (only a chunk-size line, at most 4 KiB, and the trailer
///   section, at most headerLimit()).
/// - Once done(), put() consumes nothing more (pipelined bytes stay with the
///   caller); reset() prepares the next message.
/// - After an error, every later put()/putEof() returns the same error.
/// - Requests: exactly one Host field, or none in HTTP/1.0 (else kBadHost,
///   RFC 9112 3.2); an HTTP/1.0 request with Transfer-Encoding is
///   kBadFraming (RFC 9112 6.1: its framing cannot be trusted). A server
///   answers both 400 and closes.
///
/// Never allocates, never recurses, never reads past the given bytes.
/// Not thread-safe (one connection, one thread).
class Http1Parser {
 public:
  static constexpr size_t kDefaultHeaderLimit = 8192;
  static constexpr uint64_t kDefaultRequestBodyLimit = 1024 * 1024;       // as Beast
  static constexpr uint64_t kDefaultResponseBodyLimit = 8 * 1024 * 1024;  // as Beast
  /// Longest chunk-size line (size + extensions + CRLF) accepted.
  static constexpr size_t kMaxChunkLine = 4096;

  explicit Http1Parser(bool is_request);

  /// Starts over for the next message on the same connection; limits are
  /// kept. head_response (responses only): the message has no body whatever
  /// its header says (the answer to a HEAD request).
  void reset(bool head_response = false);

  void headerLimit(size_t n) { header_limit_ = n; }
  void bodyLimit(uint64_t n) { body_limit_ = n; }
  [[nodiscard]] size_t headerLimit() const { return header_limit_; }
  [[nodiscard]] uint64_t bodyLimit() const { return body_limit_; }

  /// Parses as much of [data, data+n) as it can; returns the bytes consumed.
  /// err: kNone when the message is done() (or nothing could be done because
  /// it already was), kNeedMore when the input ran out first, else an error.
  size_t put(const char* data, size_t n, Http1Callbacks& cb, ParseError& err);

  /// The connection ended. Completes a body delimited by the end of the
  /// connection (needEof()); err = kNone if the message is done() afterwards,
  /// else kPartialMessage.
  void putEof(ParseError& err);

  [[nodiscard]] bool isRequest() const { return is_request_; }
  [[nodiscard]] bool headerDone() const { return header_done_; }
  [[nodiscard]] bool done() const { return state_ == State::kDone; }
  /// The body runs to the end of the connection (a response with neither
  /// Content-Length nor chunked coding). Valid after headerDone().
  [[nodiscard]] bool needEof() const { return need_eof_; }
  /// The connection may carry another message after this one: never with
  /// "Connection: close" (whatever else is listed), else HTTP/1.1 always and
  /// HTTP/1.0 only with "keep-alive"; never for a body delimited by EOF nor
  /// after a 101 response. Valid after headerDone().
  [[nodiscard]] bool keepAlive() const;
  /// 10 or 11 (valid once the start line is parsed).
  [[nodiscard]] int version() const { return version_; }
  /// An HTTP/1.1 request carried "Expect: 100-continue" (HTTP/1.0 requests
  /// never do: RFC 9110 says to ignore it there).
  [[nodiscard]] bool expectContinue() const { return expect_continue_ && version_ >= 11; }
  /// The Content-Length header's value, if there was one and it frames the
  /// body (a chunked response's is ignored).
  [[nodiscard]] std::optional<uint64_t> contentLength() const;
  /// The body uses the chunked transfer coding.
  [[nodiscard]] bool chunked() const { return chunked_; }
  /// Response status (0 for requests / before the status line).
  [[nodiscard]] int status() const { return status_; }
  /// The error that stopped the parser (kNone if none).
  [[nodiscard]] ParseError error() const { return error_; }

 private:
  enum class State : uint8_t {
    kHeader,
    kBodyLength,
    kBodyEof,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailer,
    kDone,
    kError,
  };

  size_t putHeader(const char* data, size_t n, Http1Callbacks& cb, ParseError& err);
  ParseError scanHeader(const char* p, const char* he, const char* limit, const LineIndex& idx, Http1Callbacks& cb);
  void clearHeaderState();
  ParseError parseField(std::string_view name, std::string_view value);
  ParseError finishHeader();
  ParseError parseChunkLine(const char* p, const char* cr);
  size_t fail(ParseError e, size_t consumed, ParseError& err);

  uint64_t body_limit_;
  uint64_t body_left_ = 0;  // bodyLimit budget left (chunked / EOF bodies)
  uint64_t remaining_ = 0;  // Content-Length or chunk bytes left
  uint64_t content_length_ = 0;
  size_t header_limit_ = kDefaultHeaderLimit;
  size_t scan_ = 0;  // bytes already searched for a terminator
  int status_ = 0;
  int version_ = 11;
  State state_ = State::kHeader;
  ParseError error_ = ParseError::kNone;
  bool is_request_;
  bool head_response_ = false;
  bool header_done_ = false;
  bool has_content_length_ = false;
  bool has_transfer_encoding_ = false;
  bool te_coding_ = false;  // Transfer-Encoding named at least one coding
  bool chunked_ = false;
  bool need_eof_ = false;
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  bool expect_continue_ = false;
  bool skipped_empty_line_ = false;  // the one CRLF allowed before a request line was dropped
  uint8_t host_fields_ = 0;          // Host fields seen (counted up to 2)
};

}  // namespace sluice::net::detail
