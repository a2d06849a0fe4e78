// The upstream HTTP(S) client: one per (loop, provider origin), with a LIFO
// keep-alive pool.
//
// Like the server, it avoids per-request machinery: the request head is
// formatted into a reused string and written with a non-blocking writev()
// (plain TCP), the response is parsed by our HTTP/1.1 parser (http1_parser.h),
// which hands the de-chunked body to the callbacks straight from the read buffer,
// and timeouts are deadlines swept by the loop's tick. Every open connection
// keeps one read outstanding, so a pooled connection that the provider closes
// leaves the pool at once; one that dies in the remaining window (the classic
// keep-alive race) fails before any response byte and the request is sent
// again, once, on a fresh connection.

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <charconv>
#include <cstring>
#include <deque>
#include <optional>

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
namespace ssl = boost::asio::ssl;
using error_code = boost::system::error_code;

constexpr size_t kInitialBuffer = 16 * 1024;
constexpr size_t kMaxResponseHeader = 64 * 1024;
// A pooled connection unused this long is closed (providers drop idle
// keep-alive connections after a minute or so; we go first).
constexpr core::Nanos kPoolIdleTimeout = std::chrono::seconds(30);
constexpr core::Nanos kDnsCacheTtl = std::chrono::seconds(60);

bool clientManagedHeader(std::string_view n) {
  return iequalsAscii(n, "host") || iequalsAscii(n, "content-length") || iequalsAscii(n, "authorization") ||
         iequalsAscii(n, "connection") || iequalsAscii(n, "transfer-encoding") || iequalsAscii(n, "keep-alive") ||
         iequalsAscii(n, "te") || iequalsAscii(n, "upgrade") || iequalsAscii(n, "expect");
}

bool safeToken(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c == '\r' || c == '\n' || c == ' ' || c == '\0' || c == '\t') return false;
  }
  return true;
}

struct Origin {
  bool valid = false;
  bool tls = false;
  bool ip_literal = false;
  std::string host;  // without brackets
  uint16_t port = 0;
  std::string base_path;    // no trailing '/'
  std::string host_header;  // host[:port]
};

Origin parseBaseUrl(std::string_view url) {
  Origin o;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
    o.port = 80;
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
    o.tls = true;
    o.port = 443;
  } else {
    return o;
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) return o;  // no userinfo
  std::string_view host;
  std::string_view port;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return o;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return o;
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (host.empty() || !safeToken(host)) return o;
  if (!port.empty()) {
    unsigned v = 0;
    const auto res = std::from_chars(port.data(), port.data() + port.size(), v);
    if (res.ec != std::errc() || res.ptr != port.data() + port.size() || v == 0 || v > 65535) return o;
    o.port = static_cast<uint16_t>(v);
  }
  while (path.ends_with('/')) path.remove_suffix(1);
  if (!path.empty() && !safeToken(path)) return o;
  o.host = std::string(host);
  o.base_path = std::string(path);
  error_code ec;
  (void)asio::ip::make_address(o.host, ec);
  o.ip_literal = !ec;
  o.host_header = authority.starts_with('[') ? "[" + o.host + "]" : o.host;
  if (o.port != (o.tls ? 443 : 80)) o.host_header += ":" + std::to_string(o.port);
  o.valid = true;
  return o;
}

class ClientImpl;
class UpConn;

// Lets asynchronous completions find out whether their client still exists.
struct ClientToken final : detail::LoopRefCounted {
  ClientImpl* client = nullptr;
};

enum class Phase : uint8_t { kConnecting, kWaiting, kReceiving, kDone };

class CallState final : public detail::LoopRefCounted {
 public:
  CallState(ClientImpl* client, UpstreamRequest&& req, UpstreamCallbacks& cb)
      : client_(client), req_(std::move(req)), cb_(&cb) {}

  void cancel(bool notify);
  void drainThenCancel();
  [[nodiscard]] bool requestWritten() const;

  ClientImpl* client_;
  UpstreamRequest req_;
  UpstreamCallbacks* cb_;  // null once the caller abandoned the call
  Ref<UpConn> conn_;
  Phase phase_ = Phase::kConnecting;
  bool retried_ = false;
  bool got_byte_ = false;
  bool queued_ = false;
  bool drain_pending_ = false;  // drainThenCancel() ran inside a parser callback
  core::MonoTime total_deadline_{};
  core::MonoTime phase_deadline_{};
  int status_ = 0;
  // The client's list of active calls.
  CallState* prev_ = nullptr;
  CallState* next_ = nullptr;
};

class CallHandle final : public UpstreamCall {
 public:
  explicit CallHandle(Ref<CallState> st) : st_(std::move(st)) {}
  // NOLINTNEXTLINE(bugprone-exception-escape): only allocation can throw here; out of memory ends the process
  ~CallHandle() override { st_->cancel(/*notify=*/false); }
  void cancel() override { st_->cancel(/*notify=*/true); }
  void drainThenCancel() override { st_->drainThenCancel(); }
  [[nodiscard]] bool requestWritten() const override { return st_->requestWritten(); }

 private:
  Ref<CallState> st_;
};

// Hands the response to the call as the parser produces it (views into the
// read buffer).
class ResponseParser final : public detail::Http1Callbacks {
 public:
  explicit ResponseParser(UpConn& conn) : conn_(conn) {}

 private:
  void onStatusLine(int status, std::string_view reason, int version) override;
  void onField(std::string_view name, std::string_view value) override;
  bool onHeaderDone() override;
  bool onBody(std::string_view data) override;

  UpConn& conn_;
};

enum class ConnState : uint8_t { kConnecting, kIdle, kActive, kClosed };

class UpConn final : public detail::LoopRefCounted {
 public:
  explicit UpConn(ClientImpl* client, asio::io_context& io) : client_(client), sock_(io) {}

  static void readDone(void* owner, const error_code& ec, size_t n);
  static void readAbandoned(void* owner);

  ClientImpl* client_;
  detail::ReactorSocket sock_;
  std::optional<ssl::stream<tcp::socket&>> tls_;
  ConnState state_ = ConnState::kConnecting;
  bool reused_ = false;
  Ref<CallState> call_;
  Ref<UpConn> self_ref_;  // the client's list reference
  UpConn* prev_ = nullptr;
  UpConn* next_ = nullptr;
  core::MonoTime idle_since_{};

  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool reading_ = false;
  // Read synchronously by drainBuffered while an asynchronous read may be
  // pending into the same buffer: never pooled again.
  bool drained_ = false;
  bool in_parse_ = false;  // parser_.put() is running (its callbacks may call back in)
  Headers headers_;        // the current response's fields (reused, see onField)
  size_t header_count_ = 0;
  // Plain-TCP reads (TLS reads go through tls_); see read_op.h.
  detail::ReadOp read_op_{this, &UpConn::readDone, &UpConn::readAbandoned};
  Ref<UpConn> read_guard_;  // keeps us alive while read_op_ is pending
  detail::Http1Parser parser_{/*is_request=*/false};
  ResponseParser sink_{*this};

  std::string head_;
  size_t head_sent_ = 0;
  size_t body_sent_ = 0;
  bool write_waiting_ = false;
  bool write_done_ = true;  // the current request is fully written
  std::array<asio::const_buffer, 2> wbufs_;
};

class ClientImpl final : public UpstreamClient, public detail::Tickable {
 public:
  ClientImpl(Loop& loop, UpstreamOptions options);
  ~ClientImpl() override;

  std::unique_ptr<UpstreamCall> start(UpstreamRequest request, UpstreamCallbacks& callbacks) override;
  [[nodiscard]] bool busy() const override { return active_ != nullptr; }  // queued calls are on the list too
  void retire() override;
  void onTick(core::MonoTime now) override;

  // Call/connection plumbing (loop thread).
  void complete(CallState* st, UpstreamErrorKind kind);
  void closeConn(UpConn* c);
  void detach(CallState* st);

  // From the parser.
  void onResponseStart(UpConn& c, int status);
  void onField(UpConn& c, std::string_view name, std::string_view value);
  /// False when the call ended inside the callback: stop parsing.
  bool onHeader(UpConn& c);
  bool onBody(UpConn& c, std::string_view body);
  void onRead(UpConn* c, const error_code& ec, size_t n);
  /// Parses the bytes in c's buffer for st. True when st may want more
  /// (the parser needs more bytes); false when the answer finished, failed,
  /// or the call ended in a callback.
  bool parseBuffered(UpConn* c, const Ref<CallState>& st);
  void drainBuffered(CallState* raw);

 private:
  void assign(const Ref<CallState>& st);
  void openConnection(const Ref<CallState>& st);
  void resolveThenConnect(const Ref<UpConn>& c);
  void connect(const Ref<UpConn>& c);
  void onConnected(const Ref<UpConn>& c, const error_code& ec);
  void onReady(const Ref<UpConn>& c);
  void failConnect(UpConn* c);
  void sendRequest(UpConn* c);
  void writePlain(UpConn* c);
  void failBeforeResponse(UpConn* c, UpstreamErrorKind kind);
  void armRead(UpConn* c);
  void finishResponse(UpConn* c);
  void release(UpConn* c);
  void serviceQueue();
  void resetParser(UpConn* c, bool head_request);
  void postFailure(const Ref<CallState>& st, UpstreamErrorKind kind);

  Loop& loop_;
  UpstreamOptions options_;
  Origin origin_;
  std::optional<ssl::context> ssl_ctx_;
  tcp::resolver resolver_;
  Ref<ClientToken> token_;
  bool registered_ = false;
  bool destroying_ = false;
  bool retired_ = false;  // retire(): no connection goes back to the pool

  std::vector<tcp::endpoint> endpoints_;
  core::MonoTime resolved_at_{};
  bool resolving_ = false;
  std::vector<Ref<UpConn>> waiting_resolve_;

  UpConn* conns_ = nullptr;  // every open connection
  size_t conn_count_ = 0;
  std::vector<UpConn*> idle_;  // LIFO: the most recently used is the warmest
  std::deque<Ref<CallState>> queue_;
  CallState* active_ = nullptr;
};

// ------------------------------------------------------------------ parser

void ResponseParser::onStatusLine(int status, std::string_view, int) {
  if (conn_.client_ != nullptr) conn_.client_->onResponseStart(conn_, status);
}
void ResponseParser::onField(std::string_view name, std::string_view value) {
  if (conn_.client_ != nullptr) conn_.client_->onField(conn_, name, value);
}
bool ResponseParser::onHeaderDone() { return conn_.client_ != nullptr && conn_.client_->onHeader(conn_); }
bool ResponseParser::onBody(std::string_view data) {
  return conn_.client_ != nullptr && conn_.client_->onBody(conn_, data);
}

// ------------------------------------------------------------------ call

void CallState::cancel(bool notify) {
  if (phase_ == Phase::kDone) return;
  if (!notify) cb_ = nullptr;
  if (client_ == nullptr) {  // cannot happen: a dying client completes its calls
    phase_ = Phase::kDone;
    return;
  }
  // The connection is closed, not pooled: the response may be half-read.
  client_->complete(this, UpstreamErrorKind::kCancelled);
}

bool CallState::requestWritten() const {
  return conn_ && (phase_ == Phase::kWaiting || phase_ == Phase::kReceiving) && conn_->write_done_;
}

void CallState::drainThenCancel() {
  if (phase_ == Phase::kDone) return;
  const Ref<CallState> self(this);  // the callbacks may drop the caller's handle
  // Waiting too: the answer's head may already lie in the receive buffer.
  if (client_ != nullptr && (phase_ == Phase::kReceiving || phase_ == Phase::kWaiting) && conn_) {
    if (conn_->in_parse_) {
      // Called from a callback inside the parser: the read buffer is still
      // being consumed. The read loop drains and cancels when the parser
      // returns (ClientImpl::onRead).
      drain_pending_ = true;
      return;
    }
    client_->drainBuffered(this);
  }
  cancel(/*notify=*/true);  // a no-op if the answer completed while draining
}

// ------------------------------------------------------------------ client

ClientImpl::ClientImpl(Loop& loop, UpstreamOptions options)
    : loop_(loop),
      options_(std::move(options)),
      origin_(parseBaseUrl(options_.base_url)),
      resolver_(loop.io()),
      token_(new ClientToken) {
  token_->client = this;
  if (options_.max_connections == 0) options_.max_connections = 1;
  if (origin_.valid && origin_.tls) {
    ssl_ctx_.emplace(ssl::context::tls_client);
    error_code ec;
    ssl_ctx_->set_default_verify_paths(ec);
    ssl_ctx_->set_verify_mode(options_.verify_tls ? ssl::verify_peer : ssl::verify_none, ec);
  }
  if (origin_.valid && origin_.ip_literal) {
    endpoints_.emplace_back(asio::ip::make_address(origin_.host), origin_.port);
  }
}

// NOLINTNEXTLINE(bugprone-exception-escape): only allocation can throw here; out of memory ends the process
ClientImpl::~ClientImpl() {
  destroying_ = true;
  token_->client = nullptr;
  if (registered_) loop_.removeTickable(this);
  resolver_.cancel();
  // Every call still running completes, as promised, with kCancelled.
  std::vector<Ref<CallState>> calls;
  for (CallState* s = active_; s != nullptr; s = s->next_) calls.emplace_back(s);
  for (auto& s : calls) complete(s.get(), UpstreamErrorKind::kCancelled);
  for (auto& s : calls) s->client_ = nullptr;
  std::vector<Ref<UpConn>> conns;
  for (UpConn* c = conns_; c != nullptr; c = c->next_) conns.emplace_back(c);
  for (auto& c : conns) {
    closeConn(c.get());
    c->client_ = nullptr;
  }
  for (auto& c : waiting_resolve_) c->client_ = nullptr;
}

std::unique_ptr<UpstreamCall> ClientImpl::start(UpstreamRequest request, UpstreamCallbacks& callbacks) {
  if (!registered_) {  // here, not in the constructor: this runs on the loop thread
    registered_ = true;
    loop_.addTickable(this);
  }
  Ref<CallState> st(new CallState(this, std::move(request), callbacks));
  const core::MonoTime now = loop_.now();
  st->total_deadline_ = now + st->req_.total_timeout;
  st->phase_deadline_ = now + st->req_.connect_timeout;
  st->next_ = active_;
  if (active_ != nullptr) active_->prev_ = st.get();
  active_ = st.get();
  if (!origin_.valid) {
    postFailure(st, UpstreamErrorKind::kConnect);
  } else if (!safeToken(st->req_.method) || (!st->req_.path.empty() && !safeToken(st->req_.path))) {
    postFailure(st, UpstreamErrorKind::kProtocol);
  } else {
    assign(st);
  }
  return std::make_unique<CallHandle>(std::move(st));
}

void ClientImpl::retire() {
  retired_ = true;
  std::vector<Ref<UpConn>> idle(idle_.begin(), idle_.end());
  for (auto& c : idle) closeConn(c.get());
}

void ClientImpl::postFailure(const Ref<CallState>& st, UpstreamErrorKind kind) {
  // Posted: start() never runs a callback before it returns.
  asio::post(loop_.io(), [st, kind, token = token_] {
    const detail::CallbackScope scope;
    if (token->client != nullptr && st->phase_ != Phase::kDone) token->client->complete(st.get(), kind);
  });
}

void ClientImpl::assign(const Ref<CallState>& st) {
  if (!idle_.empty()) {
    UpConn* c = idle_.back();
    idle_.pop_back();
    c->state_ = ConnState::kActive;
    c->reused_ = true;
    c->call_ = st;
    st->conn_ = c;
    sendRequest(c);
    return;
  }
  if (conn_count_ < options_.max_connections) {
    openConnection(st);
    return;
  }
  st->queued_ = true;
  queue_.push_back(st);
}

void ClientImpl::openConnection(const Ref<CallState>& st) {
  Ref<UpConn> c(new UpConn(this, loop_.io()));
  c->self_ref_ = c;
  c->next_ = conns_;
  if (conns_ != nullptr) conns_->prev_ = c.get();
  conns_ = c.get();
  ++conn_count_;
  c->call_ = st;
  st->conn_ = c;
  st->phase_ = Phase::kConnecting;
  const bool fresh_dns = !endpoints_.empty() && (origin_.ip_literal || loop_.now() - resolved_at_ < kDnsCacheTtl);
  if (fresh_dns) {
    connect(c);
  } else {
    resolveThenConnect(c);
  }
}

void ClientImpl::resolveThenConnect(const Ref<UpConn>& c) {
  waiting_resolve_.push_back(c);
  if (resolving_) return;
  resolving_ = true;
  resolver_.async_resolve(origin_.host, std::to_string(origin_.port),
                          [token = token_](const error_code& ec, const tcp::resolver::results_type& results) {
                            const detail::CallbackScope scope;
                            ClientImpl* self = token->client;
                            if (self == nullptr) return;
                            self->resolving_ = false;
                            auto waiting = std::move(self->waiting_resolve_);
                            self->waiting_resolve_.clear();
                            if (!ec && !results.empty()) {
                              self->endpoints_.clear();
                              for (const auto& r : results) self->endpoints_.push_back(r.endpoint());
                              self->resolved_at_ = self->loop_.now();
                            }
                            const Ref<ClientToken>& alive = token;
                            for (auto& c : waiting) {
                              if (alive->client == nullptr) return;
                              if (c->state_ == ConnState::kClosed) continue;
                              if (self->endpoints_.empty()) {
                                self->failConnect(c.get());
                              } else {
                                self->connect(c);
                              }
                            }
                          });
}

void ClientImpl::connect(const Ref<UpConn>& c) {
  asio::async_connect(c->sock_, endpoints_, [c](const error_code& ec, const tcp::endpoint&) {
    const detail::CallbackScope scope;
    if (c->client_ == nullptr || c->state_ == ConnState::kClosed) return;
    c->client_->onConnected(c, ec);
  });
}

void ClientImpl::onConnected(const Ref<UpConn>& c, const error_code& ec) {
  if (ec) {
    if (!origin_.ip_literal) endpoints_.clear();  // re-resolve next time
    failConnect(c.get());
    return;
  }
  error_code ignored;
  c->sock_.set_option(tcp::no_delay(true), ignored);
  if (!origin_.tls) {
    c->sock_.non_blocking(true, ignored);
    onReady(c);
    return;
  }
  c->tls_.emplace(c->sock_, *ssl_ctx_);
  if (!origin_.ip_literal) SSL_set_tlsext_host_name(c->tls_->native_handle(), origin_.host.c_str());
  if (options_.verify_tls) c->tls_->set_verify_callback(ssl::host_name_verification(origin_.host));
  c->tls_->async_handshake(ssl::stream_base::client, [c](const error_code& hec) {
    const detail::CallbackScope scope;
    if (c->client_ == nullptr || c->state_ == ConnState::kClosed) return;
    if (hec) {
      c->client_->failConnect(c.get());
      return;
    }
    c->client_->onReady(c);
  });
}

void ClientImpl::failConnect(UpConn* c) {
  Ref<CallState> st = c->call_;
  closeConn(c);
  if (st) complete(st.get(), UpstreamErrorKind::kConnect);
}

void ClientImpl::onReady(const Ref<UpConn>& c) {
  c->state_ = ConnState::kActive;
  c->cap_ = kInitialBuffer;
  c->buf_ = std::make_unique_for_overwrite<char[]>(c->cap_);
  armRead(c.get());
  if (c->call_) {
    sendRequest(c.get());
  } else {
    release(c.get());
  }
}

void ClientImpl::resetParser(UpConn* c, bool head_request) {
  c->parser_.reset(head_request);
  c->parser_.headerLimit(kMaxResponseHeader);
  c->parser_.bodyLimit(options_.max_response_bytes);
}

void ClientImpl::sendRequest(UpConn* c) {
  CallState* st = c->call_.get();
  const UpstreamRequest& r = st->req_;
  st->phase_ = Phase::kWaiting;
  st->got_byte_ = false;
  st->phase_deadline_ = loop_.now() + r.first_byte_timeout;
  resetParser(c, r.method == "HEAD");

  std::string& h = c->head_;
  h.clear();
  h += r.method;
  h += ' ';
  h += origin_.base_path;
  h += r.path.empty() ? "/" : r.path;
  h += " HTTP/1.1\r\nhost: ";
  h += origin_.host_header;
  h += "\r\n";
  if (!r.body.empty() || (r.method != "GET" && r.method != "HEAD" && r.method != "DELETE")) {
    h += "content-length: ";
    char num[24];
    const auto res = std::to_chars(num, num + sizeof num, r.body.size());
    h.append(num, res.ptr);
    h += "\r\n";
  }
  if (!options_.api_key.empty()) {
    h += "authorization: Bearer ";
    h += options_.api_key;
    h += "\r\n";
  }
  for (const auto& hd : r.headers) {
    if (clientManagedHeader(hd.name) || !detail::isValidField(hd.name, hd.value)) continue;
    h += hd.name;
    h += ": ";
    h += hd.value;
    h += "\r\n";
  }
  h += "\r\n";

  c->write_done_ = false;
  if (c->tls_) {
    c->wbufs_ = {asio::buffer(c->head_), asio::buffer(r.body)};
    Ref<UpConn> cref(c);
    asio::async_write(*c->tls_, c->wbufs_, [cref](const error_code& ec, size_t) {
      const detail::CallbackScope scope;
      if (cref->client_ == nullptr || cref->state_ == ConnState::kClosed) return;
      if (!ec) {
        cref->write_done_ = true;
      } else if (cref->call_) {
        cref->client_->failBeforeResponse(cref.get(), UpstreamErrorKind::kReset);
      }
    });
    return;
  }
  c->head_sent_ = 0;
  c->body_sent_ = 0;
  writePlain(c);
}

void ClientImpl::writePlain(UpConn* c) {
  if (!c->call_) return;
  const std::string& body = c->call_->req_.body;
  while (c->head_sent_ < c->head_.size() || c->body_sent_ < body.size()) {
    const std::array<asio::const_buffer, 2> bufs{asio::buffer(c->head_.data() + c->head_sent_,
                                                              c->head_.size() - c->head_sent_),
                                                 asio::buffer(body.data() + c->body_sent_,
                                                              body.size() - c->body_sent_)};
    error_code ec;
    size_t n = c->sock_.sendSome(bufs, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      if (c->write_waiting_) return;
      c->write_waiting_ = true;
      Ref<UpConn> cref(c);
      c->sock_.async_wait(tcp::socket::wait_write, [cref](const error_code& wec) {
        const detail::CallbackScope scope;
        cref->write_waiting_ = false;
        if (cref->client_ == nullptr || cref->state_ == ConnState::kClosed || !cref->call_) return;
        if (wec) {
          cref->client_->failBeforeResponse(cref.get(), UpstreamErrorKind::kReset);
          return;
        }
        cref->client_->writePlain(cref.get());
      });
      return;
    }
    if (ec) {
      failBeforeResponse(c, UpstreamErrorKind::kReset);
      return;
    }
    const size_t h = std::min(n, c->head_.size() - c->head_sent_);
    c->head_sent_ += h;
    c->body_sent_ += n - h;
  }
  c->write_done_ = true;
}

void ClientImpl::failBeforeResponse(UpConn* c, UpstreamErrorKind kind) {
  Ref<CallState> st = c->call_;
  if (!st) {
    closeConn(c);
    return;
  }
  if (c->reused_ && !st->retried_ && !st->got_byte_) {
    // A pooled connection the provider had already dropped: the request never
    // got an answer, so sending it again on a fresh connection is safe.
    st->retried_ = true;
    detach(st.get());
    closeConn(c);
    st->phase_deadline_ = loop_.now() + st->req_.connect_timeout;
    openConnection(st);
    return;
  }
  detach(st.get());
  closeConn(c);
  complete(st.get(), kind);
}

void ClientImpl::armRead(UpConn* c) {
  if (c->reading_ || c->state_ == ConnState::kClosed) return;
  if (c->begin_ == c->end_) c->begin_ = c->end_ = 0;
  if (c->end_ == c->cap_) {
    if (c->begin_ > 0) {
      std::memmove(c->buf_.get(), c->buf_.get() + c->begin_, c->end_ - c->begin_);
      c->end_ -= c->begin_;
      c->begin_ = 0;
    } else {
      // Only an unfinished header can fill the buffer (bodies are consumed as
      // they come); the parser's header limit bounds the growth.
      const size_t ncap = c->cap_ * 2;
      auto nbuf = std::make_unique_for_overwrite<char[]>(ncap);
      std::memcpy(nbuf.get(), c->buf_.get(), c->end_);
      c->buf_ = std::move(nbuf);
      c->cap_ = ncap;
    }
  }
  c->reading_ = true;
  if (!c->tls_) {
    c->read_guard_ = Ref<UpConn>(c);
    // Idle, or waiting for the answer to a request just written: the
    // provider has nothing more to say yet.
    const bool at_boundary = c->begin_ == c->end_ && (!c->call_ || !c->call_->got_byte_);
    c->read_op_.start(c->sock_, c->buf_.get() + c->end_, c->cap_ - c->end_, at_boundary);
    return;
  }
  c->tls_->async_read_some(asio::buffer(c->buf_.get() + c->end_, c->cap_ - c->end_),
                           [cref = Ref<UpConn>(c)](const error_code& ec, size_t n) {
                             const detail::CallbackScope scope;
                             UpConn::readDone(cref.get(), ec, n);
                           });
}

void UpConn::readDone(void* owner, const error_code& ec, size_t n) {
  auto* c = static_cast<UpConn*>(owner);
  const Ref<UpConn> cref = c->read_guard_ ? std::move(c->read_guard_) : Ref<UpConn>(c);
  cref->reading_ = false;
  if (cref->client_ != nullptr && cref->state_ != ConnState::kClosed) cref->client_->onRead(cref.get(), ec, n);
  cref->read_op_.leaveCompletion();
}

void UpConn::readAbandoned(void* owner) { static_cast<UpConn*>(owner)->read_guard_.reset(); }

void ClientImpl::onRead(UpConn* c, const error_code& ec, size_t n) {
  Ref<UpConn> guard(c);
  if (ec) {
    Ref<CallState> st = c->call_;
    if (!st) {
      closeConn(c);  // an idle pooled connection the provider closed
      return;
    }
    if (!st->got_byte_) {
      failBeforeResponse(c, UpstreamErrorKind::kReset);
      return;
    }
    if ((ec == asio::error::eof || ec == ssl::error::stream_truncated) && c->parser_.headerDone() &&
        c->parser_.needEof()) {
      detail::ParseError pec = detail::ParseError::kNone;
      c->parser_.putEof(pec);  // a body delimited by the end of the connection
      if (pec == detail::ParseError::kNone && c->call_ == st) {
        finishResponse(c);
        return;
      }
    }
    if (c->call_ != st) return;
    detach(st.get());
    closeConn(c);
    complete(st.get(), UpstreamErrorKind::kReset);
    return;
  }
  c->end_ += n;
  Ref<CallState> st = c->call_;
  if (!st) {
    closeConn(c);  // bytes nobody asked for: this connection cannot be trusted
    return;
  }
  if (!st->got_byte_) {
    st->got_byte_ = true;
    st->phase_ = Phase::kReceiving;
    st->phase_deadline_ = loop_.now() + st->req_.idle_timeout;
  }
  if (!parseBuffered(c, st)) return;
  if (st->drain_pending_) {
    drainBuffered(st.get());
    st->cancel(/*notify=*/true);  // a no-op if the drain completed the answer
    return;
  }
  armRead(c);
}

bool ClientImpl::parseBuffered(UpConn* c, const Ref<CallState>& st) {
  while (c->begin_ < c->end_) {
    detail::ParseError pec = detail::ParseError::kNone;
    c->in_parse_ = true;
    const size_t used = c->parser_.put(c->buf_.get() + c->begin_, c->end_ - c->begin_, c->sink_, pec);
    c->in_parse_ = false;
    c->begin_ += used;
    if (c->call_ != st) return false;  // cancelled, abandoned or client destroyed in a callback
    if (pec == detail::ParseError::kNeedMore) break;
    if (pec != detail::ParseError::kNone) {
      detach(st.get());
      closeConn(c);
      complete(st.get(), UpstreamErrorKind::kProtocol);
      return false;
    }
    if (c->parser_.done()) {
      if (st->status_ / 100 == 1 && st->status_ != 101) {  // interim response: the real one follows
        resetParser(c, st->req_.method == "HEAD");
        continue;
      }
      finishResponse(c);
      // A pooled (or already reassigned) connection keeps its read outstanding.
      if (c->client_ != nullptr && c->state_ != ConnState::kClosed) c->client_->armRead(c);
      return false;
    }
  }
  return true;
}

// What the provider already sent (and billed) lies in the kernel's receive
// buffer until we read it; closing the socket would throw it away unseen.
// Reads it without waiting (recv with MSG_DONTWAIT until EAGAIN, EOF or
// kMaxDrainBytes) and hands it to the call as any body bytes. Plain TCP only:
// a TLS stream has a read outstanding inside its engine that a second read
// must not interleave with, so there only the bytes already parsed count.
void ClientImpl::drainBuffered(CallState* raw) {
  static constexpr size_t kMaxDrainBytes = size_t{8} << 20;
  const Ref<CallState> st(raw);
  const Ref<UpConn> c = st->conn_;
  if (!c || c->tls_ || c->state_ == ConnState::kClosed) return;
  // The read below shares the buffer with the asynchronous read that may
  // be pending on the socket (it targets the bytes after end_ as they were
  // when it was armed): whatever happens, this connection closes with the
  // call and is never handed to another request.
  c->drained_ = true;
  size_t drained = 0;
  while (drained < kMaxDrainBytes && c->call_ == st) {
    if (c->begin_ == c->end_) c->begin_ = c->end_ = 0;
    if (c->end_ == c->cap_) {
      if (c->begin_ == 0) return;  // an unfinished header filled the buffer: nothing billable
      std::memmove(c->buf_.get(), c->buf_.get() + c->begin_, c->end_ - c->begin_);
      c->end_ -= c->begin_;
      c->begin_ = 0;
    }
    const ssize_t n = ::recv(c->sock_.native_handle(), c->buf_.get() + c->end_, c->cap_ - c->end_, MSG_DONTWAIT);
    if (n <= 0) return;  // drained (EAGAIN), closed (0) or failed: the caller cancels
    c->end_ += static_cast<size_t>(n);
    drained += static_cast<size_t>(n);
    if (!st->got_byte_) {
      st->got_byte_ = true;
      st->phase_ = Phase::kReceiving;
    }
    if (!parseBuffered(c.get(), st)) return;
  }
}

void ClientImpl::onResponseStart(UpConn& c, int status) {
  CallState* st = c.call_.get();
  if (st == nullptr) return;
  st->status_ = status;
  c.header_count_ = 0;
}

void ClientImpl::onField(UpConn& c, std::string_view name, std::string_view value) {
  if (c.call_ == nullptr) return;
  // Written over the previous response's fields: their strings keep their
  // capacity, so a connection's responses stop allocating after the first.
  if (c.header_count_ < c.headers_.size()) {
    Header& h = c.headers_[c.header_count_];
    h.name.assign(name);
    h.value.assign(value);
  } else {
    c.headers_.push_back(Header{HeaderName(name), std::string(value)});
  }
  ++c.header_count_;
}

bool ClientImpl::onHeader(UpConn& c) {
  Ref<CallState> st = c.call_;
  if (!st || (st->status_ / 100 == 1 && st->status_ != 101)) return true;
  if (c.headers_.size() > c.header_count_) c.headers_.resize(c.header_count_);
  if (st->cb_ != nullptr) st->cb_->onHeaders(st->status_, c.headers_);
  return c.call_ == st;  // else the call is over: stop parsing
}

bool ClientImpl::onBody(UpConn& c, std::string_view body) {
  Ref<CallState> st = c.call_;
  if (!st) return true;
  st->phase_deadline_ = loop_.now() + st->req_.idle_timeout;
  if (st->cb_ != nullptr) st->cb_->onData(body);
  return c.call_ == st;
}

void ClientImpl::finishResponse(UpConn* c) {
  Ref<CallState> st = c->call_;
  // An early answer (e.g. a 413 while the body is still going out) leaves the
  // connection mid-request: not reusable.
  const bool reusable = c->parser_.keepAlive() && c->begin_ == c->end_ && c->write_done_ && !c->drained_ &&
                        !destroying_ && !retired_;
  detach(st.get());
  if (reusable) {
    release(c);  // before onComplete: a follow-up call can reuse it at once
  } else {
    closeConn(c);
  }
  complete(st.get(), UpstreamErrorKind::kNone);
}

void ClientImpl::release(UpConn* c) {
  c->state_ = ConnState::kIdle;
  c->reused_ = true;
  c->idle_since_ = loop_.now();
  idle_.push_back(c);
  serviceQueue();
}

void ClientImpl::serviceQueue() {
  while (!queue_.empty() && !destroying_ && (!idle_.empty() || conn_count_ < options_.max_connections)) {
    Ref<CallState> st = std::move(queue_.front());
    queue_.pop_front();
    st->queued_ = false;
    if (st->phase_ == Phase::kDone) continue;
    assign(st);
  }
}

void ClientImpl::detach(CallState* st) {
  if (st->conn_) {
    st->conn_->call_.reset();
    st->conn_.reset();
  }
}

void ClientImpl::closeConn(UpConn* c) {
  if (c->state_ == ConnState::kClosed) return;
  if (c->state_ == ConnState::kIdle) std::erase(idle_, c);
  c->state_ = ConnState::kClosed;
  error_code ec;
  c->sock_.close(ec);  // pending operations complete with operation_aborted
  if (c->prev_ != nullptr) c->prev_->next_ = c->next_;
  if (c->next_ != nullptr) c->next_->prev_ = c->prev_;
  if (conns_ == c) conns_ = c->next_;
  c->prev_ = c->next_ = nullptr;
  --conn_count_;
  if (c->call_) {
    c->call_->conn_.reset();
    c->call_.reset();
  }
  // The list's reference goes later: callers may still be using `c`.
  asio::post(loop_.io(), [ref = std::move(c->self_ref_)] {});
  serviceQueue();
}

void ClientImpl::complete(CallState* st, UpstreamErrorKind kind) {
  if (st->phase_ == Phase::kDone) return;
  Ref<CallState> guard(st);
  st->phase_ = Phase::kDone;
  if (st->prev_ != nullptr) st->prev_->next_ = st->next_;
  if (st->next_ != nullptr) st->next_->prev_ = st->prev_;
  if (active_ == st) active_ = st->next_;
  st->prev_ = st->next_ = nullptr;
  if (st->queued_) {
    st->queued_ = false;
    std::erase_if(queue_, [st](const Ref<CallState>& q) { return q.get() == st; });
  }
  if (st->conn_) {
    Ref<UpConn> c = st->conn_;
    detach(st);
    closeConn(c.get());
  }
  UpstreamCallbacks* cb = st->cb_;
  st->cb_ = nullptr;
  if (cb != nullptr) cb->onComplete(kind);  // last: it may destroy the client
}

void ClientImpl::onTick(core::MonoTime now) {
  std::vector<std::pair<Ref<CallState>, UpstreamErrorKind>> expired;
  for (CallState* s = active_; s != nullptr; s = s->next_) {
    if (now >= s->total_deadline_) {
      expired.emplace_back(s, UpstreamErrorKind::kTotalTimeout);
    } else if (now >= s->phase_deadline_) {
      UpstreamErrorKind kind = UpstreamErrorKind::kConnectTimeout;
      if (s->phase_ == Phase::kWaiting) kind = UpstreamErrorKind::kFirstByteTimeout;
      if (s->phase_ == Phase::kReceiving) kind = UpstreamErrorKind::kIdleTimeout;
      expired.emplace_back(s, kind);
    }
  }
  std::vector<Ref<UpConn>> stale;
  for (UpConn* c : idle_) {
    if (now - c->idle_since_ >= kPoolIdleTimeout) stale.emplace_back(c);
  }
  for (auto& c : stale) closeConn(c.get());
  Ref<ClientToken> alive = token_;
  for (auto& [st, kind] : expired) {
    if (alive->client == nullptr) return;  // a callback destroyed the client
    complete(st.get(), kind);
  }
}

}  // namespace

std::unique_ptr<UpstreamClient> makeHttpUpstreamClient(Dispatcher& loop, UpstreamOptions options) {
  return std::make_unique<ClientImpl>(detail::loopOf(loop), std::move(options));
}

}  // namespace sluice::net
