#pragma once
/// @file
/// @brief Asio-free interfaces of the network edge.
///
/// The gateway, the mock provider and tests see only these types; Boost.Beast
/// and Asio stay inside src/net/*.cpp (they make every translation unit that
/// includes them slow to compile). Everything is callback-driven and
/// single-threaded per event loop: a connection, the handler invoked for its
/// requests, the upstream calls the handler starts and the timers it
/// schedules all run on the same loop thread, so per-request state needs no
/// locks.
///
/// Lifetime rules that follow from that (the objects below are loop-confined
/// and use no atomics): a ServerStream, Timer, UpstreamClient or UpstreamCall
/// must be released on its loop thread, or after its loop has stopped, and
/// before the HttpServer / EventLoopThread that owns the loop is destroyed.
///
/// Network timeouts (header, idle, write, connect, first byte, ...) are
/// measured with the loop's Clock and checked on a ~50 ms sweep, so a test
/// with a core::ManualClock drives them by advancing the clock.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace sluice::net {

/// A header name: a string literal, kept as a view and never copied, or an
/// owned string (names parsed off the wire, or built at run time). Responses
/// carry a dozen fixed names ("x-ratelimit-remaining-requests", ...); one
/// std::string each was a quarter of the heap allocations of a proxied request.
class HeaderName {
 public:
  HeaderName() = default;
  /// For string literals (static storage): the name is kept as a view. Never
  /// pass a char array that dies before the header does.
  template <size_t N>
  // NOLINTNEXTLINE(google-explicit-constructor): a literal converts, as a std::string does
  constexpr HeaderName(const char (&literal)[N]) : literal_(literal), literal_size_(N - 1) {}
  HeaderName(std::string owned) : owned_(std::move(owned)) {}  // NOLINT(google-explicit-constructor)
  explicit HeaderName(std::string_view s) : owned_(s) {}

  /// Becomes an owned copy of `s` (reusing this name's storage).
  void assign(std::string_view s) {
    literal_ = nullptr;
    literal_size_ = 0;
    owned_.assign(s);
  }

  [[nodiscard]] std::string_view view() const {
    return literal_ != nullptr ? std::string_view(literal_, literal_size_) : std::string_view(owned_);
  }
  operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
  [[nodiscard]] const char* data() const { return view().data(); }
  [[nodiscard]] size_t size() const { return view().size(); }
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] const char* begin() const { return data(); }
  [[nodiscard]] const char* end() const { return data() + size(); }
  friend bool operator==(const HeaderName& a, std::string_view b) { return a.view() == b; }
  friend bool operator==(const HeaderName& a, const HeaderName& b) { return a.view() == b.view(); }

 private:
  const char* literal_ = nullptr;
  size_t literal_size_ = 0;
  std::string owned_;
};
std::ostream& operator<<(std::ostream& os, const HeaderName& name);  // test failure messages

struct Header {
  HeaderName name;
  std::string value;
};
using Headers = std::vector<Header>;

/// A response field name fixed in the source and checked at compile time: a
/// lowercase token that the server does not frame itself (not date,
/// connection, keep-alive, content-length or transfer-encoding). A name
/// that fails the check does not compile.
class FieldName {
 public:
  consteval FieldName(const char* name) : name_(name) {  // NOLINT(google-explicit-constructor): literals convert
    if (!valid(name_)) throw "HeaderLines::add: not a lowercase token, or a field the server frames itself";
  }
  [[nodiscard]] constexpr std::string_view view() const { return name_; }

 private:
  static consteval bool valid(std::string_view n) {
    if (n.empty()) return false;
    for (const char c : n) {
      const bool token = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
      if (!token) return false;
    }
    for (std::string_view managed : {"date", "connection", "keep-alive", "content-length", "transfer-encoding"}) {
      if (n == managed) return false;
    }
    return true;
  }
  std::string_view name_;
};

/// Response header fields rendered as they are added, one "name: value\r\n"
/// line each: for a handler that puts a dozen small fields on every response,
/// this costs no per-field string or vector entry, and the server copies the
/// block into the response head as is.
///
/// Every field is checked as respond() checks Headers: a value with CR, LF or
/// NUL is dropped. add() takes a FieldName, checked when it compiles;
/// addChecked() takes a name known only at run time and also drops a name that
/// is not a token or that the server frames itself (date, content-length,
/// transfer-encoding, keep-alive); there `connection` is not rendered, but a
/// value naming "close" makes the server close after the response.
class HeaderLines {
 public:
  HeaderLines() = default;
  explicit HeaderLines(const Headers& headers);

  void reserve(size_t bytes) { text_.reserve(bytes); }
  void add(FieldName name, std::string_view value);
  /// A decimal integer value, formatted in place (nothing to check).
  void add(FieldName name, int64_t value);
  void addChecked(std::string_view name, std::string_view value);

  [[nodiscard]] std::string_view text() const { return text_; }
  [[nodiscard]] bool closeRequested() const { return close_; }
  [[nodiscard]] bool empty() const { return text_.empty(); }
  /// The fields as Headers (tests, and streams without the fast path).
  [[nodiscard]] Headers toHeaders() const;

 private:
  void append(std::string_view name, std::string_view value);

  std::string text_;
  bool close_ = false;
};

/// Case-insensitive lookup; empty view when absent.
[[nodiscard]] std::string_view findHeader(const Headers& headers, std::string_view name);

/// ASCII case-insensitive equality (header names, tokens).
[[nodiscard]] bool iequalsAscii(std::string_view a, std::string_view b);

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path + query, as received
  Headers headers;
  std::string body;
  [[nodiscard]] std::string_view header(std::string_view name) const { return findHeader(headers, name); }
};

/// A one-shot timer; destroying it cancels it.
class Timer {
 public:
  virtual ~Timer() = default;
};

/// The event loop a handler runs on.
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  /// Runs `fn` later on this loop.
  virtual void post(std::function<void()> fn) = 0;
  /// Runs `fn` on this loop from a fresh stack frame, as post() does, but
  /// right after the callback now running returns and before the loop waits
  /// for I/O again: no queue lock, no extra wake-up. Outside a loop callback
  /// it is post(). Call it from the loop thread.
  virtual void defer(std::function<void()> fn) { post(std::move(fn)); }
  /// Runs `fn` on this loop after `delay` (real time), unless the returned
  /// Timer is destroyed first. Loop thread only.
  [[nodiscard]] virtual std::unique_ptr<Timer> schedule(core::Nanos delay, std::function<void()> fn) = 0;
  [[nodiscard]] virtual const core::Clock& clock() const = 0;
};

/// The response side of one server exchange. Methods must be called on the
/// loop thread that invoked the handler. Writes are queued, never block.
class ServerStream {
 public:
  virtual ~ServerStream() = default;
  /// Sends a whole response (content-length framing). Ends the exchange.
  virtual void respond(int status, Headers headers, std::string body) = 0;
  /// Starts a chunked response; follow with write() calls and end().
  virtual void beginStream(int status, Headers headers) = 0;
  /// respond() / beginStream() with the fields pre-rendered (HeaderLines).
  /// The server's own streams copy them as is; the defaults convert.
  virtual void respondLines(int status, const HeaderLines& headers, std::string body) {
    respond(status, headers.toHeaders(), std::move(body));
  }
  virtual void beginStreamLines(int status, const HeaderLines& headers) { beginStream(status, headers.toHeaders()); }
  virtual void write(std::string data) = 0;
  virtual void end() = 0;
  /// end(), with trailer fields after the last chunk (RFC 9112 7.1.2): values
  /// known only once the stream is over. Declare them in a `trailer` header
  /// of beginStream(). HTTP/1.0 clients (no chunked coding) do not get them.
  // NOLINTNEXTLINE(performance-unnecessary-value-param): the overrides take ownership
  virtual void endWithTrailers(Headers trailers) {
    (void)trailers;
    end();
  }
  /// Bytes queued but not yet taken by the socket (for backpressure). Once
  /// the client is gone: the bytes it never took.
  [[nodiscard]] virtual size_t pendingBytes() const = 0;
  /// True once the client connection is gone.
  [[nodiscard]] virtual bool clientGone() const = 0;
  /// Called once, on the loop, if the client disconnects before end()/respond()
  /// (EOF/reset noticed at once by an outstanding read, a failed write, the
  /// write timeout, more than 8 MiB of unsent stream data, or server stop).
  /// Runs `cb` right away if the client is already gone. Never called from
  /// inside respond()/write()/end().
  virtual void onClientGone(std::function<void()> cb) = 0;
};

using Handler = std::function<void(HttpRequest&& request, std::shared_ptr<ServerStream> stream, Dispatcher& loop)>;

/// An answer decided from a request's head alone (RequestHandler::onHead).
/// The server sends it as an OpenAI-shaped error (`{"error":{...}}`) and
/// closes the connection without buffering the body. The views must outlive
/// the call (string literals).
struct HeadAnswer {
  int status = 0;  ///< 0: no answer; the body is read and onRequest() called
  std::string_view message;
  std::string_view type;  ///< error.type
  std::string_view code;  ///< error.code; empty = null
};

/// An answer the server wrote by itself (RequestHandler::onServerAnswer).
struct ServerAnswer {
  int status = 0;
  std::string_view message;
  std::string_view type;  ///< error.type
  std::string_view code;  ///< error.code; empty = null
  /// The request so far once its request line was parsed (method, target,
  /// the fields parsed before the answer; never a body), else nullptr: a
  /// connection refused over max_connections, or a head too large, cut
  /// short or unparseable.
  const HttpRequest* head = nullptr;
};

/// What a server asks of the code it serves. All three run on the loop of
/// the request's connection.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;

  /// The header block of a request is complete; its body (if any) is not
  /// read yet. A non-zero status answers the request now, before a byte of
  /// the body is buffered: `Expect: 100-continue` gets that answer instead
  /// of the 100. It runs for every request: keep it cheap, allocation-free.
  [[nodiscard]] virtual HeadAnswer onHead(const HttpRequest& head, Dispatcher& loop) {
    (void)head;
    (void)loop;
    return {};
  }

  /// A whole request (head and body) to answer on `stream`.
  virtual void onRequest(HttpRequest&& request, std::shared_ptr<ServerStream> stream, Dispatcher& loop) = 0;

  /// The server is about to send an answer it wrote itself (see HttpServer):
  /// the handler may trace it (a request id, a log line) and add fields to it
  /// in `fields` (e.g. x-request-id). Answers from onHead() come here too.
  virtual void onServerAnswer(const ServerAnswer& answer, Dispatcher& loop, HeaderLines& fields) {
    (void)answer;
    (void)loop;
    (void)fields;
  }
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 = pick a free port
  int threads = 1;    // event loops; each accepts and owns its connections
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 4 * 1024 * 1024;
  core::Nanos header_timeout = std::chrono::seconds(10);  // head + body must arrive within
  core::Nanos idle_timeout = std::chrono::seconds(60);    // keep-alive idle
  core::Nanos write_timeout = std::chrono::seconds(30);   // a client taking no response bytes this long is cut off
  /// Open client connections, all loops together; a connection accepted over
  /// it gets a 503 (OpenAI-shaped, retry-after: 1) and is closed. 0 = no cap.
  size_t max_connections = 10'000;
  /// Request body bytes held, all connections together: a declared
  /// Content-Length counts in full from the head, a chunked body as it
  /// arrives, until the request's exchange ends. A request that would take
  /// the total above it gets a 503 (server_overloaded, retry-after: 1), from
  /// its head when its length is declared, and is closed. Keep it at least
  /// max_body_bytes. 0 = no cap.
  size_t max_buffered_body_bytes = 256 * 1024 * 1024;
};

/// What a server answers by itself, before any handler: 413 for a body over
/// the limit, 431 for oversized headers, 400 for unparseable HTTP (also an
/// HTTP/1.1 request without exactly one Host, and an HTTP/1.0 one with
/// Transfer-Encoding: RFC 9112 3.2, 6.1), 408 on a read timeout, 503 to a
/// connection over max_connections and to a request over
/// max_buffered_body_bytes, and what RequestHandler::onHead() asks for. Bodies are OpenAI-shaped errors; each such
/// answer closes the connection and is reported to RequestHandler::onServerAnswer() first. A handler that drops its
/// stream without answering gets a 500 sent for it (a started stream is cut).
class HttpServer {
 public:
  virtual ~HttpServer() = default;
  /// Binds and starts the loops. Returns false (and logs) if binding failed.
  [[nodiscard]] virtual bool start() = 0;
  [[nodiscard]] virtual uint16_t port() const = 0;
  /// Stops accepting, lets in-flight exchanges finish until `deadline`, then
  /// closes what is left and joins the loop threads. Not from a loop thread.
  virtual void stop(core::Nanos deadline) = 0;
  /// Blocks until stop() has completed.
  virtual void wait() = 0;
  /// The loops, e.g. to create one UpstreamClient per loop at startup.
  [[nodiscard]] virtual std::vector<Dispatcher*> loops() = 0;

  /// Request body bytes held (as ServerOptions::max_buffered_body_bytes
  /// counts them): now, and the most at any moment since the last call (the
  /// call starts a new period). Thread-safe.
  struct BufferedBodies {
    size_t now = 0;
    size_t peak = 0;
  };
  [[nodiscard]] virtual BufferedBodies takeBufferedBodies() = 0;
};

[[nodiscard]] std::unique_ptr<HttpServer> makeHttpServer(ServerOptions options, std::shared_ptr<RequestHandler> handler,
                                                         const core::Clock& clock);
/// The same with a plain request handler (no head check, answers untraced).
[[nodiscard]] std::unique_ptr<HttpServer> makeHttpServer(ServerOptions options, Handler handler,
                                                         const core::Clock& clock);

// ---------------------------------------------------------------- upstream

enum class UpstreamErrorKind : uint8_t {
  kNone,
  kConnect,  // resolve/connect/TLS handshake failed
  kConnectTimeout,
  kFirstByteTimeout,
  kIdleTimeout,  // gap between body chunks too long
  kTotalTimeout,
  kReset,      // connection closed/reset mid-response
  kProtocol,   // unparseable HTTP from upstream
  kCancelled,  // cancel() was called
};

struct UpstreamRequest {
  std::string method = "POST";
  std::string path;  // appended to the provider's base path, e.g. "/chat/completions"
  Headers headers;   // the client adds host, content-length, authorization (from the provider key)
  std::string body;
  core::Nanos connect_timeout = std::chrono::seconds(5);
  core::Nanos first_byte_timeout = std::chrono::seconds(15);
  core::Nanos idle_timeout = std::chrono::seconds(30);
  core::Nanos total_timeout = std::chrono::seconds(300);
};

/// Receives one upstream response as it arrives, on the loop thread.
/// Exactly one onComplete() ends every call, also after cancel() (kCancelled).
class UpstreamCallbacks {
 public:
  virtual ~UpstreamCallbacks() = default;
  virtual void onHeaders(int status, const Headers& headers) = 0;
  /// A piece of the (de-chunked) body, as soon as it arrives.
  virtual void onData(std::string_view data) = 0;
  virtual void onComplete(UpstreamErrorKind error) = 0;
};

class UpstreamCall {
 public:
  virtual ~UpstreamCall() = default;
  /// Aborts the call: the connection is closed, not returned to the pool, and
  /// onComplete(kCancelled) runs before cancel() returns (no-op once complete).
  /// Destroying the UpstreamCall before onComplete aborts the call silently:
  /// no callback runs after that.
  virtual void cancel() = 0;
  /// Cancels after handing over what the provider already sent: body bytes
  /// waiting in the connection's receive buffer are read without waiting and
  /// delivered through onData (callbacks may end the call meanwhile; if the
  /// answer completes, onComplete(kNone) ends it), then cancel(). What a
  /// provider sent before the cut is what it bills, so a caller that counts
  /// tokens drains rather than cancels. Called from inside one of the call's
  /// own callbacks, the drain and cancel run when that callback returns.
  /// The default only cancels.
  virtual void drainThenCancel() { cancel(); }
  /// True once the whole request (head and body) was handed to the
  /// connection: from then on the provider may have it, and bill it, even
  /// if no byte of an answer ever comes back.
  [[nodiscard]] virtual bool requestWritten() const { return false; }
};

/// A client for one provider origin on one loop, with its own keep-alive pool.
/// `callbacks` must outlive the call (until onComplete). start() never runs a
/// callback before it returns. Loop thread only.
class UpstreamClient {
 public:
  /// Completes every call still running with kCancelled.
  virtual ~UpstreamClient() = default;
  [[nodiscard]] virtual std::unique_ptr<UpstreamCall> start(UpstreamRequest request, UpstreamCallbacks& callbacks) = 0;

  /// True while a call started here has not completed, i.e. while destroying
  /// the client would cut a call (complete it with kCancelled).
  [[nodiscard]] virtual bool busy() const = 0;

  /// For a client being replaced (a reload changed or removed its provider):
  /// closes its idle connections now and pools no more, so each remaining
  /// connection closes when its call ends. Calls running finish normally;
  /// calls started later still work, each on a connection of its own.
  virtual void retire() = 0;
};

/// A provider answered without HTTP, as the gateway sees it: it makes the
/// provider's client on each loop (makeClient runs on `loop`'s thread, once
/// per loop and again after a reload changed the provider). The built-in
/// mock (`kind: mock`, mock::MockProvider) is one; the app wires it in, so
/// the gateway does not depend on its implementation. Thread-safe.
class InProcessProvider {
 public:
  virtual ~InProcessProvider() = default;
  [[nodiscard]] virtual std::unique_ptr<UpstreamClient> makeClient(Dispatcher& loop) = 0;
};

struct UpstreamOptions {
  std::string base_url;  // http://host:port/v1 or https://host/v1
  std::string api_key;   // sent as "Authorization: Bearer ..." when non-empty
  size_t max_connections = 64;
  bool verify_tls = true;
  size_t max_response_bytes = 64 * 1024 * 1024;
};

/// Real HTTP(S) client bound to `loop` (which must be a loop of an HttpServer
/// or of an EventLoop from this module).
[[nodiscard]] std::unique_ptr<UpstreamClient> makeHttpUpstreamClient(Dispatcher& loop, UpstreamOptions options);

}  // namespace sluice::net
