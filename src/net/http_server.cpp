// The HTTP/1.1 server: thread-per-loop, callback-driven, built for per-request CPU.
//
// Per loop: one acceptor (SO_REUSEPORT when several loops share the port) and
// the connections it accepted. Per connection: one reusable read buffer, our
// own HTTP/1.1 parser (http1_parser.h: Beast's basic_parser cost several
// times more instructions per request) filling a reused HttpRequest, a
// response head formatted by hand into a reused string, and writes done as non-blocking
// writev() on the spot -- Asio is only asked to wait for writability when the
// socket buffer is full. A request answered synchronously therefore costs one
// read completion and three syscalls (epoll_wait, recv, writev).
//
// One read is always outstanding while the connection is open, also while a
// handler works on a request: it notices a client that leaves mid-response
// (EOF/RST) at once and buffers pipelined requests, which are handled one at
// a time, in order.
//
// Deadlines (header, idle, write, linger) are plain time stamps swept by the
// loop's tick (see loop.h).

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>

#include "core/error_body.h"
#include "net/header_check.h"
#include "net/http1_parser.h"
#include "net/loop.h"
#include "net/read_op.h"

namespace sluice::net {

namespace {

using detail::Loop;
using detail::Ref;
using tcp = boost::asio::ip::tcp;
namespace asio = boost::asio;
using error_code = boost::system::error_code;

constexpr size_t kInitialBuffer = 8 * 1024;
// A client that lets this much of a streamed response pile up unread is cut off.
constexpr size_t kMaxPendingStreamBytes = 8 * 1024 * 1024;
// After an error response: how long / how much we keep reading (and dropping)
// before closing, so the kernel does not answer the client's in-flight body
// with an RST that could destroy the response before the client reads it.
constexpr core::Nanos kLingerTimeout = std::chrono::seconds(2);
constexpr size_t kLingerMaxBytes = 1024 * 1024;
// Upper bound on the reserve() for a declared content-length: memory follows
// the bytes that actually arrive, not what a client claims.
constexpr size_t kMaxBodyReserve = 64 * 1024;

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

void appendNumber(std::string& out, uint64_t v, int base = 10) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, base);
  out.append(buf, res.ptr);
}

// Parses a request straight into a reused HttpRequest.
constexpr size_t kHeadersReserve = 16;

class Connection;

// Fills an HttpRequest from the parser's callbacks (views into the read
// buffer, copied out here: the request outlives the buffer's contents).
class RequestParser final : public detail::Http1Callbacks {
 public:
  RequestParser(Connection& conn, HttpRequest& req, const detail::Http1Parser& parser)
      : conn_(conn), req_(req), parser_(parser) {}

 private:
  void onRequestLine(std::string_view method, std::string_view target, int /*version*/) override {
    req_.method.assign(method);
    req_.target.assign(target);
    req_.headers.reserve(kHeadersReserve);  // SDK clients send ~15
  }
  void onField(std::string_view name, std::string_view value) override {
    req_.headers.push_back(Header{HeaderName(name), std::string(value)});
  }
  bool onHeaderDone() override;  // after Connection
  bool onBody(std::string_view data) override;

  Connection& conn_;
  HttpRequest& req_;
  const detail::Http1Parser& parser_;
};

class LoopServer;

// The ServerStream of one exchange on a connection (the gateway's request
// pipeline is gateway::Exchange; this is only its HTTP side). It points at
// its connection only while the exchange runs; the connection clears the
// pointer when the exchange ends or the client goes, so a handler may keep
// the stream as long as it likes.
class ConnectionStream final : public ServerStream {
 public:
  explicit ConnectionStream(Connection* conn) : conn_(conn) {}
  ~ConnectionStream() override;

  void respond(int status, Headers headers, std::string body) override;
  void beginStream(int status, Headers headers) override;
  void respondLines(int status, const HeaderLines& headers, std::string body) override;
  void beginStreamLines(int status, const HeaderLines& headers) override;
  void write(std::string data) override;
  void end() override;
  void endWithTrailers(Headers trailers) override;
  [[nodiscard]] size_t pendingBytes() const override;
  [[nodiscard]] bool clientGone() const override { return gone_; }
  void onClientGone(std::function<void()> cb) override {
    if (gone_) {
      if (!gone_fired_) {
        gone_fired_ = true;
        cb();
      }
      return;
    }
    gone_cb_ = std::move(cb);
  }

  // Connection side.
  void detach() { conn_ = nullptr; }
  // `unsent`: bytes of output the connection still held when it closed.
  void markGone(size_t unsent) {
    conn_ = nullptr;
    gone_ = true;
    unsent_at_gone_ = unsent;
    if (gone_cb_ && !gone_fired_) {
      gone_fired_ = true;
      auto cb = std::move(gone_cb_);
      cb();  // last: it may destroy this ConnectionStream
    }
  }
  [[nodiscard]] bool started() const { return started_; }

 private:
  Connection* conn_;
  bool started_ = false;
  bool streaming_ = false;
  bool gone_ = false;
  bool gone_fired_ = false;
  size_t unsent_at_gone_ = 0;  // pendingBytes() once the connection is gone: what it never sent
  std::function<void()> gone_cb_;
};

enum class ConnState : uint8_t {
  kIdle,      // keep-alive: waiting for the first byte of a request
  kReading,   // a request is partly read
  kHandling,  // the handler owns the exchange
  kClosing,   // last response queued; close once it is written
  kLinger,    // error response sent; draining input until EOF/deadline
  kClosed,
};

class Connection final : public detail::LoopRefCounted {
 public:
  Connection(LoopServer& owner, tcp::socket sock);

  void start();
  /// Instead of start(): answers a connection accepted over max_connections
  /// with a 503 and closes it.
  void refuseOverLimit();
  void closeNow();
  void onTick(core::MonoTime now, std::vector<Ref<Connection>>& expired);
  void expire(core::MonoTime now);
  void drain();  // server stopping: close if idle

  // The stream side.
  // `lines` (may be null) follow `headers` in the head.
  void respond(int status, const Headers& headers, const HeaderLines* lines, std::string&& body);
  void beginStream(int status, const Headers& headers, const HeaderLines* lines);
  void streamWrite(std::string&& data);
  void streamEnd(const Headers* trailers);
  void exchangeAbandoned(bool started);
  [[nodiscard]] size_t pendingBytes() const { return out_bytes_; }

  // Intrusive list of the loop's connections.
  Connection* prev_ = nullptr;
  Connection* next_ = nullptr;
  Ref<Connection> self_ref_;  // the list's reference

 private:
  void armRead();
  static void readDone(void* owner, const error_code& ec, size_t n);
  static void readAbandoned(void* owner);
  void onRead(const error_code& ec, size_t n);
  void onReadError(const error_code& ec);
  void process();
  void dispatch();
  void resetRequest();
  void failRequest(int status, std::string_view message, std::string_view code, bool linger,
                   std::string_view type = "invalid_request_error", const Headers& extra = {});

 public:
  /// The parser's onHeaderDone(): asks the handler about the head, and
  /// counts a declared body against max_buffered_body_bytes. False stops the
  /// parser (early_ or body_refused_ then says why).
  bool headComplete();
  /// Counts `n` more body bytes of this request; false (body_refused_) when
  /// that would pass max_buffered_body_bytes.
  bool chargeBody(size_t n);

 private:
  void finishExchange(bool close_after);
  void appendHead(int status, const Headers& headers, const HeaderLines* lines, bool close, bool chunked,
                  const uint64_t* content_length);

  void send(std::string_view a, std::string&& b, std::string_view c);
  void queue(std::string_view s);
  void queue(std::string&& s);
  void flush();
  void consume(size_t n);
  void releaseBodyCharge();
  void waitWritable();
  void onDrained();
  void finishClose();
  void breakConnection();

  LoopServer& owner_;
  detail::ReactorSocket sock_;
  ConnState state_ = ConnState::kIdle;

  // Read side.
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool reading_ = false;
  detail::ReadOp read_op_{this, &Connection::readDone, &Connection::readAbandoned};
  Ref<Connection> read_guard_;  // keeps us alive while read_op_ is pending
  bool header_armed_ = false;
  bool in_process_ = false;
  bool process_posted_ = false;
  core::MonoTime read_deadline_{};
  size_t linger_bytes_ = 0;
  HttpRequest req_;
  detail::Http1Parser parser_{/*is_request=*/true};
  RequestParser sink_{*this, req_, parser_};
  bool continue_sent_ = false;
  HeadAnswer early_;           // what onHead() answered (status 0: nothing)
  size_t body_charge_ = 0;     // this request's body bytes counted in the server's total
  bool body_refused_ = false;  // the body would pass max_buffered_body_bytes

  // The running exchange's stream.
  ConnectionStream* exchange_ = nullptr;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool chunked_ = false;
  bool linger_after_ = false;

  // Write side: pieces not yet taken by the socket.
  std::string head_;
  std::vector<std::string> out_;
  size_t out_head_ = 0;  // first unsent piece
  size_t out_off_ = 0;   // bytes of out_[out_head_] already sent
  size_t out_bytes_ = 0;
  std::vector<asio::const_buffer> iov_;
  bool write_waiting_ = false;
  bool broken_ = false;  // write failed; a close is posted
  core::MonoTime write_deadline_{};
};

class ServerImpl;

// One event loop's share of the server: its acceptor and connections.
class LoopServer final : public detail::Tickable {
 public:
  LoopServer(ServerImpl& server, const core::Clock& clock) : server_(server), loop_(clock) {}
  ~LoopServer() = default;

  bool listen(const tcp::endpoint& ep, bool reuse_port, std::string& error);
  [[nodiscard]] uint16_t localPort() const { return acceptor_ ? acceptor_->local_endpoint().port() : 0; }
  void startAccepting();  // loop thread
  void beginDrain();      // loop thread
  void forceClose();      // loop thread

  void onTick(core::MonoTime now) override;
  void link(Connection* c);
  void unlink(Connection* c);

  Loop& loop() { return loop_; }
  [[nodiscard]] const ServerOptions& options() const;
  [[nodiscard]] RequestHandler& handler() const;
  [[nodiscard]] bool draining() const { return draining_; }
  [[nodiscard]] bool chargeBody(size_t n);
  void releaseBody(size_t n);

 private:
  void accept();

  ServerImpl& server_;
  Loop loop_;
  std::optional<tcp::acceptor> acceptor_;
  std::unique_ptr<Timer> accept_retry_;
  Connection* head_ = nullptr;
  bool draining_ = false;
  std::vector<Ref<Connection>> scratch_;
};

class ServerImpl final : public HttpServer {
 public:
  ServerImpl(ServerOptions options, std::shared_ptr<RequestHandler> handler, const core::Clock& clock)
      : options_(std::move(options)), handler_(std::move(handler)), clock_(clock) {}
  ~ServerImpl() override {
    if (started_) stop(core::Nanos{0});
  }

  bool start() override;
  [[nodiscard]] uint16_t port() const override { return port_; }
  void stop(core::Nanos deadline) override;
  void wait() override {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return stopped_; });
  }
  std::vector<Dispatcher*> loops() override {
    std::vector<Dispatcher*> out;
    for (auto& l : loops_) out.push_back(&l->loop());
    return out;
  }

  const ServerOptions& options() const { return options_; }
  RequestHandler& handler() const { return *handler_; }
  void connectionOpened() { connections_.fetch_add(1, std::memory_order_relaxed); }
  [[nodiscard]] size_t openConnections() const { return connections_.load(std::memory_order_relaxed); }
  /// Counts `n` more body bytes held; false (nothing counted) when that
  /// would take the total above max_buffered_body_bytes.
  [[nodiscard]] bool chargeBody(size_t n) {
    const size_t total = buffered_body_.fetch_add(n, std::memory_order_relaxed) + n;
    const size_t cap = options_.max_buffered_body_bytes;
    if (cap != 0 && total > cap) {
      buffered_body_.fetch_sub(n, std::memory_order_relaxed);
      return false;
    }
    // The period's high-water mark: a plain load unless this is a new one.
    size_t peak = buffered_peak_.load(std::memory_order_relaxed);
    while (total > peak && !buffered_peak_.compare_exchange_weak(peak, total, std::memory_order_relaxed)) {
    }
    return true;
  }
  BufferedBodies takeBufferedBodies() override {
    const size_t now = buffered_body_.load(std::memory_order_relaxed);
    const size_t peak = buffered_peak_.exchange(now, std::memory_order_relaxed);
    return {now, std::max(now, peak)};
  }
  void releaseBody(size_t n) { buffered_body_.fetch_sub(n, std::memory_order_relaxed); }
  void connectionClosed() {
    if (connections_.fetch_sub(1, std::memory_order_acq_rel) == 1 && draining_.load()) {
      std::lock_guard lk(mu_);
      cv_.notify_all();
    }
  }

 private:
  ServerOptions options_;
  std::shared_ptr<RequestHandler> handler_;
  const core::Clock& clock_;
  std::vector<std::unique_ptr<LoopServer>> loops_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  bool started_ = false;
  std::atomic<size_t> connections_{0};
  std::atomic<size_t> buffered_body_{0};  // see ServerOptions::max_buffered_body_bytes
  std::atomic<size_t> buffered_peak_{0};  // its most since takeBufferedBodies()
  std::atomic<bool> draining_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool stopped_ = false;
};

const ServerOptions& LoopServer::options() const { return server_.options(); }
RequestHandler& LoopServer::handler() const { return server_.handler(); }
bool LoopServer::chargeBody(size_t n) { return server_.chargeBody(n); }
void LoopServer::releaseBody(size_t n) { server_.releaseBody(n); }

// ------------------------------------------------------------------ ConnectionStream

// NOLINTNEXTLINE(bugprone-exception-escape): only allocation can throw here; out of memory ends the process
ConnectionStream::~ConnectionStream() {
  if (conn_ != nullptr) conn_->exchangeAbandoned(started_);
}

void ConnectionStream::respond(int status, Headers headers, std::string body) {
  if (conn_ == nullptr || started_) return;
  started_ = true;
  conn_->respond(status, headers, nullptr, std::move(body));  // ends the exchange: detaches us
}

void ConnectionStream::beginStream(int status, Headers headers) {
  if (conn_ == nullptr || started_) return;
  started_ = true;
  streaming_ = true;
  conn_->beginStream(status, headers, nullptr);
}

void ConnectionStream::respondLines(int status, const HeaderLines& headers, std::string body) {
  if (conn_ == nullptr || started_) return;
  started_ = true;
  conn_->respond(status, {}, &headers, std::move(body));
}

void ConnectionStream::beginStreamLines(int status, const HeaderLines& headers) {
  if (conn_ == nullptr || started_) return;
  started_ = true;
  streaming_ = true;
  conn_->beginStream(status, {}, &headers);
}

void ConnectionStream::write(std::string data) {
  if (conn_ == nullptr || !streaming_) return;
  conn_->streamWrite(std::move(data));
}

void ConnectionStream::end() {
  if (conn_ == nullptr || !streaming_) return;
  conn_->streamEnd(nullptr);
}

void ConnectionStream::endWithTrailers(Headers trailers) {
  if (conn_ == nullptr || !streaming_) return;
  conn_->streamEnd(&trailers);
}

size_t ConnectionStream::pendingBytes() const { return conn_ != nullptr ? conn_->pendingBytes() : unsent_at_gone_; }

// ---------------------------------------------------------------- Connection

Connection::Connection(LoopServer& owner, tcp::socket sock) : owner_(owner), sock_(std::move(sock)) {}

void Connection::start() {
  error_code ec;
  sock_.set_option(tcp::no_delay(true), ec);
  sock_.non_blocking(true, ec);  // our own writev() must never block the loop
  cap_ = kInitialBuffer;
  buf_ = std::make_unique_for_overwrite<char[]>(cap_);
  resetRequest();
  state_ = ConnState::kIdle;
  // The first request must arrive within header_timeout.
  read_deadline_ = owner_.loop().now() + owner_.options().header_timeout;
  armRead();
}

void Connection::refuseOverLimit() {
  error_code ec;
  sock_.non_blocking(true, ec);
  cap_ = kInitialBuffer;
  buf_ = std::make_unique_for_overwrite<char[]>(cap_);
  // Lingers after the answer (reading and dropping what the client sent), so
  // closing with its request unread does not reset the 503 away.
  failRequest(503, "The gateway is at its connection limit; retry shortly.", "server_overloaded", /*linger=*/true,
              "server_error", {{"retry-after", "1"}});
}

void Connection::resetRequest() {
  req_.method.clear();
  req_.target.clear();
  req_.headers.clear();
  req_.body.clear();
  parser_.reset();
  const auto& o = owner_.options();
  parser_.headerLimit(o.max_header_bytes);
  parser_.bodyLimit(o.max_body_bytes);
  continue_sent_ = false;
  header_armed_ = false;
  early_ = {};
  releaseBodyCharge();
  body_refused_ = false;
}

void Connection::armRead() {
  if (reading_ || state_ == ConnState::kClosed) return;
  if (begin_ == end_) begin_ = end_ = 0;
  if (end_ == cap_) {
    const size_t max_cap = std::max(kInitialBuffer, owner_.options().max_header_bytes + 1024);
    if (begin_ > 0) {
      std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    } else if (cap_ < max_cap) {
      const size_t ncap = std::min(max_cap, cap_ * 2);
      auto nbuf = std::make_unique_for_overwrite<char[]>(ncap);
      std::memcpy(nbuf.get(), buf_.get(), end_);
      buf_ = std::move(nbuf);
      cap_ = ncap;
    } else {
      return;  // full of pipelined bytes: resume once the current exchange ends
    }
  }
  reading_ = true;
  read_guard_ = Ref<Connection>(this);  // released when the read completes
  // A whole request was consumed (it is being handled, or was answered and
  // nothing follows it): the client has nothing more to say yet.
  const bool at_boundary = begin_ == end_ && (state_ == ConnState::kHandling || state_ == ConnState::kIdle);
  read_op_.start(sock_, buf_.get() + end_, cap_ - end_, at_boundary);
}

void Connection::readDone(void* owner, const error_code& ec, size_t n) {
  const Ref<Connection> self = std::move(static_cast<Connection*>(owner)->read_guard_);
  self->onRead(ec, n);
  self->read_op_.leaveCompletion();
}

void Connection::readAbandoned(void* owner) { static_cast<Connection*>(owner)->read_guard_.reset(); }

void Connection::onRead(const error_code& ec, size_t n) {
  reading_ = false;
  if (state_ == ConnState::kClosed) return;
  if (ec) {
    onReadError(ec);
    return;
  }
  if (state_ == ConnState::kLinger) {
    linger_bytes_ += n;
    begin_ = end_ = 0;
    if (linger_bytes_ > kLingerMaxBytes) {
      closeNow();
      return;
    }
    armRead();
    return;
  }
  end_ += n;
  if (state_ == ConnState::kIdle) state_ = ConnState::kReading;
  if (state_ == ConnState::kReading) {
    process();
    if (state_ == ConnState::kReading && !header_armed_) {
      header_armed_ = true;
      read_deadline_ = owner_.loop().now() + owner_.options().header_timeout;
    }
  }
  // kHandling / kClosing: the bytes wait in the buffer (pipelining).
  armRead();
}

void Connection::onReadError(const error_code& ec) {
  switch (state_) {
    case ConnState::kHandling:
      closeNow();  // the client left mid-exchange: onClientGone
      return;
    case ConnState::kIdle:
    case ConnState::kClosing:
      if (ec == asio::error::eof && (out_bytes_ > 0 || write_waiting_)) {
        // Half-close after the request: still deliver what is queued.
        state_ = ConnState::kClosing;
        linger_after_ = false;
        return;
      }
      closeNow();
      return;
    default: closeNow(); return;
  }
}

void Connection::process() {
  in_process_ = true;
  while (state_ == ConnState::kReading && begin_ < end_) {
    detail::ParseError err = detail::ParseError::kNone;
    const size_t used = parser_.put(buf_.get() + begin_, end_ - begin_, sink_, err);
    begin_ += used;
    if (err == detail::ParseError::kHeaderLimit) {
      failRequest(431, "request headers are too large", "request_header_fields_too_large", true);
      break;
    }
    if (err == detail::ParseError::kBodyLimit) {
      failRequest(413, "request body is too large", "request_too_large", true);
      break;
    }
    if (err == detail::ParseError::kAborted && early_.status != 0) {
      // Answered from the head: the body is not read (lingering drops it).
      failRequest(early_.status, early_.message, early_.code, true, early_.type);
      break;
    }
    if (err == detail::ParseError::kAborted && body_refused_) {
      failRequest(503, "The gateway is holding too many request bodies; retry shortly.", "server_overloaded", true,
                  "server_error", {{"retry-after", "1"}});
      break;
    }
    if (err != detail::ParseError::kNone && err != detail::ParseError::kNeedMore) {
      failRequest(400,
                  err == detail::ParseError::kBadHost ? "an HTTP/1.1 request needs exactly one Host header"
                                                      : "malformed HTTP request",
                  "invalid_http", true);
      break;
    }
    if (parser_.done()) {
      dispatch();
      continue;
    }
    if (parser_.headerDone() && parser_.expectContinue() && !continue_sent_) {
      continue_sent_ = true;
      send("HTTP/1.1 100 Continue\r\n\r\n", std::string(), {});
    }
    break;  // kNeedMore: wait for more bytes
  }
  in_process_ = false;
}

bool Connection::headComplete() {
  try {
    early_ = owner_.handler().onHead(req_, owner_.loop());
  } catch (const std::exception& e) {
    spdlog::error("http handler threw in onHead: {}", e.what());
    early_ = {};
  }
  if (early_.status != 0) return false;
  if (auto length = parser_.contentLength(); length && *length > 0) {
    // The whole declared body counts from now: a request that does not fit
    // is refused before its first byte is read.
    if (!chargeBody(*length)) return false;
    req_.body.reserve(std::min<uint64_t>(*length, kMaxBodyReserve));
  }
  return true;
}

bool Connection::chargeBody(size_t n) {
  if (!owner_.chargeBody(n)) {
    body_refused_ = true;
    return false;
  }
  body_charge_ += n;
  return true;
}

void Connection::releaseBodyCharge() {
  if (body_charge_ == 0) return;
  owner_.releaseBody(body_charge_);
  body_charge_ = 0;
}

bool RequestParser::onHeaderDone() { return conn_.headComplete(); }

bool RequestParser::onBody(std::string_view data) {
  // A chunked body counts as it arrives (a declared one counted at the head).
  if (parser_.chunked() && !conn_.chargeBody(data.size())) return false;
  req_.body.append(data);
  return true;
}

void Connection::dispatch() {
  state_ = ConnState::kHandling;
  http10_ = parser_.version() < 11;
  keep_alive_ = parser_.keepAlive() && !owner_.draining();
  auto ex = std::make_shared<ConnectionStream>(this);
  exchange_ = ex.get();
  Ref<Connection> guard(this);
  try {
    owner_.handler().onRequest(std::move(req_), std::move(ex), owner_.loop());
  } catch (const std::exception& e) {
    spdlog::error("http handler threw: {}", e.what());
    if (exchange_ != nullptr) {
      ConnectionStream* cur = exchange_;
      if (!cur->started()) {
        cur->respond(500, {}, core::errorObject("internal error", "server_error", "", ""));
      } else {
        cur->detach();
        exchange_ = nullptr;
        breakConnection();
      }
    }
  }
}

void Connection::failRequest(int status, std::string_view message, std::string_view code, bool linger,
                             std::string_view type, const Headers& extra) {
  releaseBodyCharge();
  state_ = ConnState::kClosing;
  linger_after_ = linger;
  HeaderLines fields;
  try {
    const ServerAnswer answer{status, message, type, code, req_.method.empty() ? nullptr : &req_};
    owner_.handler().onServerAnswer(answer, owner_.loop(), fields);
  } catch (const std::exception& e) {
    spdlog::error("http handler threw in onServerAnswer: {}", e.what());
  }
  head_.clear();
  const std::string body = core::errorObject(message, type, "", code);
  const uint64_t len = body.size();
  Headers headers{{"content-type", "application/json"}};
  headers.insert(headers.end(), extra.begin(), extra.end());
  appendHead(status, headers, &fields, /*close=*/true, /*chunked=*/false, &len);
  head_ += body;
  send(head_, std::string(), {});
  if (state_ != ConnState::kClosed && out_bytes_ == 0 && !write_waiting_) finishClose();
}

void Connection::appendHead(int status, const Headers& headers, const HeaderLines* lines, bool close, bool chunked,
                            const uint64_t* content_length) {
  head_ += http10_ ? "HTTP/1.0 " : "HTTP/1.1 ";
  appendNumber(head_, static_cast<uint64_t>(status));
  head_ += ' ';
  head_ += reasonPhrase(status);
  head_ += "\r\n";
  head_ += owner_.loop().dateHeaderLine();
  // The handler's headers in one pass into storage sized up front: a response
  // carries ~15 of them, and four checked appends per header were a large
  // part of the per-request cost.
  size_t need = 0;
  for (const auto& h : headers) need += h.name.size() + h.value.size() + 4;
  const size_t start = head_.size();
  // (Not `p + n - need`: libstdc++ 12 passes a grown buffer's capacity as n.)
  head_.resize_and_overwrite(start + need, [&](char* p, size_t) {
    char* w = p + start;
    for (const auto& h : headers) {
      const std::string_view name = h.name.view();
      const std::string_view value = h.value;
      if (detail::serverManagedHeader(name) || !detail::isValidField(name, value)) continue;
      std::memcpy(w, name.data(), name.size());
      w += name.size();
      *w++ = ':';
      *w++ = ' ';
      std::memcpy(w, value.data(), value.size());
      w += value.size();
      *w++ = '\r';
      *w++ = '\n';
    }
    return static_cast<size_t>(w - p);
  });
  if (lines != nullptr) head_ += lines->text();  // checked as they were added
  if (content_length != nullptr) {
    head_ += "content-length: ";
    appendNumber(head_, *content_length);
    head_ += "\r\n";
  }
  if (chunked) head_ += "transfer-encoding: chunked\r\n";
  if (close) {
    head_ += "connection: close\r\n";
  } else if (http10_) {
    head_ += "connection: keep-alive\r\n";
  }
  head_ += "\r\n";
}

bool handlerAsksClose(const Headers& headers, const HeaderLines* lines) {
  if (lines != nullptr && lines->closeRequested()) return true;
  if (headers.empty()) return false;
  const std::string_view c = findHeader(headers, "connection");
  return !c.empty() && detail::connectionOptions(c).close;
}

void Connection::respond(int status, const Headers& headers, const HeaderLines* lines, std::string&& body) {
  const bool close = !keep_alive_ || owner_.draining() || handlerAsksClose(headers, lines);
  head_.clear();
  const uint64_t len = body.size();
  appendHead(status, headers, lines, close, /*chunked=*/false, &len);
  send(head_, std::move(body), {});
  finishExchange(close);
}

void Connection::beginStream(int status, const Headers& headers, const HeaderLines* lines) {
  // HTTP/1.0 has no chunked encoding: the body then ends with the connection.
  chunked_ = !http10_;
  const bool close = !keep_alive_ || owner_.draining() || !chunked_ || handlerAsksClose(headers, lines);
  keep_alive_ = !close;
  head_.clear();
  appendHead(status, headers, lines, close, chunked_, nullptr);
  send(head_, std::string(), {});
}

void Connection::streamWrite(std::string&& data) {
  if (data.empty() || broken_) return;
  if (chunked_) {
    char hex[24];
    auto res = std::to_chars(hex, hex + 16, data.size(), 16);
    *res.ptr++ = '\r';
    *res.ptr++ = '\n';
    send(std::string_view(hex, static_cast<size_t>(res.ptr - hex)), std::move(data), "\r\n");
  } else {
    send({}, std::move(data), {});
  }
  if (out_bytes_ > kMaxPendingStreamBytes) breakConnection();  // a reader this slow is cut off
}

void Connection::streamEnd(const Headers* trailers) {
  if (chunked_) {
    if (trailers == nullptr || trailers->empty()) {
      send("0\r\n\r\n", std::string(), {});
    } else {
      std::string tail = "0\r\n";
      for (const auto& t : *trailers) {
        // Framing fields are never trailers (RFC 9110 6.5.1); nor is anything
        // that could split the message.
        if (detail::serverManagedHeader(t.name) || iequalsAscii(t.name, "trailer") ||
            !detail::isValidField(t.name, t.value))
          continue;
        tail += t.name.view();
        tail += ": ";
        tail += t.value;
        tail += "\r\n";
      }
      tail += "\r\n";
      send(tail, std::string(), {});
    }
  }
  finishExchange(!keep_alive_);
}

void Connection::exchangeAbandoned(bool started) {
  // The handler dropped its stream without ending the exchange.
  exchange_ = nullptr;
  if (state_ != ConnState::kHandling) return;
  if (!started) {
    const std::string body = core::errorObject("the request was dropped by the server", "server_error", "", "");
    head_.clear();
    const uint64_t len = body.size();
    appendHead(500, {{"content-type", "application/json"}}, nullptr, /*close=*/true, false, &len);
    head_ += body;
    send(head_, std::string(), {});
    finishExchange(true);
  } else {
    breakConnection();  // a half-sent stream can only be cut
  }
}

void Connection::finishExchange(bool close_after) {
  releaseBodyCharge();  // the exchange is over: its body no longer counts
  if (exchange_ != nullptr) {
    exchange_->detach();
    exchange_ = nullptr;
  }
  if (state_ == ConnState::kClosed) return;
  if (close_after || !keep_alive_ || owner_.draining() || broken_) {
    state_ = ConnState::kClosing;
    linger_after_ = false;
    if (out_bytes_ == 0 && !write_waiting_ && !broken_) finishClose();
    return;
  }
  state_ = ConnState::kIdle;
  resetRequest();
  read_deadline_ = owner_.loop().now() + owner_.options().idle_timeout;
  if (begin_ < end_) {
    // Pipelined bytes are already here.
    state_ = ConnState::kReading;
    if (in_process_) return;  // process() continues with them
    if (!process_posted_) {
      process_posted_ = true;
      // Posted, not called: we may be deep inside a handler's callback.
      asio::post(owner_.loop().io(), [self = Ref<Connection>(this)] {
        const detail::CallbackScope scope;
        self->process_posted_ = false;
        if (self->state_ != ConnState::kReading) return;
        self->process();
        if (self->state_ == ConnState::kReading && !self->header_armed_) {
          self->header_armed_ = true;
          self->read_deadline_ = self->owner_.loop().now() + self->owner_.options().header_timeout;
        }
        self->armRead();
      });
    }
    return;
  }
  armRead();
}

// ---------------------------------------------------------------- writing

void Connection::queue(std::string_view s) {
  if (s.empty()) return;
  out_.emplace_back(s);
  out_bytes_ += s.size();
}

void Connection::queue(std::string&& s) {
  if (s.empty()) return;
  out_bytes_ += s.size();
  out_.push_back(std::move(s));
}

void Connection::send(std::string_view a, std::string&& b, std::string_view c) {
  if (state_ == ConnState::kClosed || broken_) return;
  if (out_bytes_ > 0 || write_waiting_) {
    queue(a);
    queue(std::move(b));
    queue(c);
    return;
  }
  // Fast path: the socket is idle, write right now, one writev.
  const std::array<asio::const_buffer, 3> bufs{asio::buffer(a), asio::buffer(b), asio::buffer(c)};
  const size_t total = a.size() + b.size() + c.size();
  error_code ec;
  size_t n = sock_.write_some(bufs, ec);
  if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
    breakConnection();
    return;
  }
  if (ec) n = 0;
  if (n == total) return;
  if (n < a.size()) {
    queue(a.substr(n));
    queue(std::move(b));
    queue(c);
  } else if (n < a.size() + b.size()) {
    queue(std::move(b));
    out_off_ = n - a.size();
    out_bytes_ -= out_off_;
    queue(c);
  } else {
    queue(c.substr(n - a.size() - b.size()));
  }
  waitWritable();
}

void Connection::consume(size_t n) {
  out_bytes_ -= n;
  while (n > 0) {
    const size_t rem = out_[out_head_].size() - out_off_;
    if (n >= rem) {
      n -= rem;
      ++out_head_;
      out_off_ = 0;
    } else {
      out_off_ += n;
      n = 0;
    }
  }
  if (out_head_ == out_.size()) {
    out_.clear();
    out_head_ = 0;
  } else if (out_head_ > 32 && out_head_ * 2 > out_.size()) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
    out_head_ = 0;
  }
}

void Connection::flush() {
  while (out_bytes_ > 0) {
    iov_.clear();
    for (size_t i = out_head_; i < out_.size() && iov_.size() < detail::ReactorSocket::kMaxSendBuffers; ++i) {
      const std::string& s = out_[i];
      const size_t off = i == out_head_ ? out_off_ : 0;
      iov_.emplace_back(s.data() + off, s.size() - off);
    }
    error_code ec;
    const size_t n = sock_.sendSome(iov_, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      waitWritable();
      return;
    }
    if (ec) {
      breakConnection();
      return;
    }
    consume(n);
  }
  onDrained();
}

void Connection::waitWritable() {
  write_deadline_ = owner_.loop().now() + owner_.options().write_timeout;
  if (write_waiting_) return;
  write_waiting_ = true;
  sock_.async_wait(tcp::socket::wait_write, [self = Ref<Connection>(this)](const error_code& ec) {
    const detail::CallbackScope scope;
    self->write_waiting_ = false;
    if (self->state_ == ConnState::kClosed) return;
    if (ec) {
      self->breakConnection();
      return;
    }
    self->flush();
  });
}

void Connection::onDrained() {
  if (state_ == ConnState::kClosing) finishClose();
}

void Connection::finishClose() {
  if (linger_after_) {
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
    state_ = ConnState::kLinger;
    read_deadline_ = owner_.loop().now() + kLingerTimeout;
    begin_ = end_ = 0;
    armRead();
    return;
  }
  closeNow();
}

void Connection::breakConnection() {
  // Called from inside ConnectionStream methods: closing (and so onClientGone) is
  // posted, so a handler is never re-entered from its own write()/respond().
  if (broken_ || state_ == ConnState::kClosed) return;
  broken_ = true;
  asio::post(owner_.loop().io(), [self = Ref<Connection>(this)] {
    const detail::CallbackScope scope;
    self->closeNow();
  });
}

void Connection::closeNow() {
  if (state_ == ConnState::kClosed) return;
  state_ = ConnState::kClosed;
  releaseBodyCharge();
  error_code ec;
  sock_.close(ec);  // pending operations complete with operation_aborted
  const size_t unsent = out_bytes_;
  out_.clear();
  out_head_ = out_off_ = out_bytes_ = 0;
  owner_.unlink(this);
  // The list's reference goes last, and later: callers may still be in a member function.
  asio::post(owner_.loop().io(), [ref = std::move(self_ref_)] {});
  if (exchange_ != nullptr) {
    ConnectionStream* ex = exchange_;
    exchange_ = nullptr;
    ex->markGone(unsent);
  }
}

void Connection::onTick(core::MonoTime now, std::vector<Ref<Connection>>& expired) {
  bool due = false;
  if (write_waiting_ && now >= write_deadline_) {
    due = true;
  } else {
    switch (state_) {
      case ConnState::kIdle: due = out_bytes_ == 0 && !write_waiting_ && now >= read_deadline_; break;
      case ConnState::kReading: due = header_armed_ && now >= read_deadline_; break;
      case ConnState::kLinger: due = now >= read_deadline_; break;
      default: break;
    }
  }
  if (due) expired.emplace_back(this);
}

void Connection::expire(core::MonoTime now) {
  if (state_ == ConnState::kClosed) return;
  const bool client_stopped_reading = write_waiting_ && now >= write_deadline_;
  if (!client_stopped_reading && state_ == ConnState::kReading) {
    failRequest(408, "request timed out", "request_timeout", false);
  } else {
    closeNow();  // the client stopped taking bytes, or an idle keep-alive or linger is over: silently
  }
}

void Connection::drain() {
  if (state_ == ConnState::kIdle && out_bytes_ == 0 && !write_waiting_) closeNow();
}

// ---------------------------------------------------------------- LoopServer

bool LoopServer::listen(const tcp::endpoint& ep, bool reuse_port, std::string& error) {
  error_code ec;
  acceptor_.emplace(loop_.io());
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && reuse_port) {
    acceptor_->set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
  }
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = ec.message();
    acceptor_.reset();
    return false;
  }
  return true;
}

void LoopServer::startAccepting() {
  loop_.addTickable(this);
  accept();
}

void LoopServer::accept() {
  if (!acceptor_ || draining_) return;
  acceptor_->async_accept([this](const error_code& ec, tcp::socket sock) {
    const detail::CallbackScope scope;
    if (ec == asio::error::operation_aborted || !acceptor_ || draining_) return;
    if (ec) {
      // E.g. out of file descriptors: back off instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      accept_retry_ = loop_.schedule(std::chrono::milliseconds(100), [this] { accept(); });
      return;
    }
    auto* c = new Connection(*this, std::move(sock));
    c->self_ref_ = Ref<Connection>(c);
    link(c);
    const size_t cap = options().max_connections;
    if (cap != 0 && server_.openConnections() > cap) c->refuseOverLimit();
    else c->start();
    accept();
  });
}

void LoopServer::link(Connection* c) {
  c->next_ = head_;
  if (head_ != nullptr) head_->prev_ = c;
  head_ = c;
  server_.connectionOpened();
}

void LoopServer::unlink(Connection* c) {
  if (c->prev_ != nullptr) c->prev_->next_ = c->next_;
  if (c->next_ != nullptr) c->next_->prev_ = c->prev_;
  if (head_ == c) head_ = c->next_;
  c->prev_ = c->next_ = nullptr;
  server_.connectionClosed();
}

void LoopServer::onTick(core::MonoTime now) {
  scratch_.clear();
  for (Connection* c = head_; c != nullptr; c = c->next_) c->onTick(now, scratch_);
  for (auto& c : scratch_) c->expire(now);
  scratch_.clear();
}

void LoopServer::beginDrain() {
  draining_ = true;
  accept_retry_.reset();
  if (acceptor_) {
    error_code ec;
    acceptor_->close(ec);
  }
  scratch_.clear();
  for (Connection* c = head_; c != nullptr; c = c->next_) scratch_.emplace_back(c);
  for (auto& c : scratch_) c->drain();
  scratch_.clear();
}

void LoopServer::forceClose() {
  beginDrain();
  scratch_.clear();
  for (Connection* c = head_; c != nullptr; c = c->next_) scratch_.emplace_back(c);
  for (auto& c : scratch_) c->closeNow();
  scratch_.clear();
  loop_.removeTickable(this);
}

// ---------------------------------------------------------------- ServerImpl

bool ServerImpl::start() {
  if (started_) return false;
  error_code ec;
  asio::ip::address addr = asio::ip::make_address(options_.host, ec);
  if (ec) {
    // A host name: resolve it once, at startup.
    asio::io_context io;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(options_.host, "", ec);
    if (ec || results.empty()) {
      spdlog::error("cannot resolve listen host '{}': {}", options_.host, ec ? ec.message() : "no address");
      return false;
    }
    addr = results.begin()->endpoint().address();
  }
  const int n = std::max(1, options_.threads);
  for (int i = 0; i < n; ++i) {
    auto ls = std::make_unique<LoopServer>(*this, clock_);
    std::string error;
    const uint16_t port = i == 0 ? options_.port : port_;
    if (!ls->listen(tcp::endpoint(addr, port), n > 1, error)) {
      spdlog::error("cannot listen on {}:{}: {}", options_.host, port, error);
      loops_.clear();
      return false;
    }
    if (i == 0) port_ = ls->localPort();
    loops_.push_back(std::move(ls));
  }
  started_ = true;
  for (auto& l : loops_) {
    LoopServer* ls = l.get();
    ls->loop().post([ls] { ls->startAccepting(); });
    threads_.emplace_back([ls] { ls->loop().run(); });
  }
  return true;
}

void ServerImpl::stop(core::Nanos deadline) {
  {
    std::unique_lock lk(mu_);
    if (stopping_) {
      cv_.wait(lk, [&] { return stopped_; });
      return;
    }
    stopping_ = true;
  }
  if (started_) {
    draining_ = true;
    for (auto& l : loops_) {
      LoopServer* ls = l.get();
      ls->loop().post([ls] { ls->beginDrain(); });
    }
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, deadline, [&] { return connections_.load() == 0; });
    }
    for (auto& l : loops_) {
      LoopServer* ls = l.get();
      ls->loop().post([ls] {
        ls->forceClose();
        ls->loop().stop();
      });
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  std::lock_guard lk(mu_);
  stopped_ = true;
  cv_.notify_all();
}

}  // namespace

std::unique_ptr<HttpServer> makeHttpServer(ServerOptions options, std::shared_ptr<RequestHandler> handler,
                                           const core::Clock& clock) {
  return std::make_unique<ServerImpl>(std::move(options), std::move(handler), clock);
}

std::unique_ptr<HttpServer> makeHttpServer(ServerOptions options, Handler handler, const core::Clock& clock) {
  class FunctionHandler final : public RequestHandler {
   public:
    explicit FunctionHandler(Handler fn) : fn_(std::move(fn)) {}
    void onRequest(HttpRequest&& request, std::shared_ptr<ServerStream> stream, Dispatcher& loop) override {
      fn_(std::move(request), std::move(stream), loop);
    }

   private:
    Handler fn_;
  };
  return makeHttpServer(std::move(options), std::make_shared<FunctionHandler>(std::move(handler)), clock);
}

}  // namespace sluice::net
