// The upstream client over TLS, against a small blocking OpenSSL server with
// a self-signed certificate made at test time.

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <future>
#include <mutex>

#include "core/clock.h"
#include "net/event_loop.h"
#include "net/http.h"
#include "net_test_util.h"

namespace sluice::net {
namespace {

// A TLS server on 127.0.0.1:<port> answering every request with its SNI name.
class TlsServer {
 public:
  TlsServer() {
    ctx_ = SSL_CTX_new(TLS_server_method());
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost");
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(cert, key, EVP_sha256());
    SSL_CTX_use_certificate(ctx_, cert);
    SSL_CTX_use_PrivateKey(ctx_, key);
    X509_free(cert);
    EVP_PKEY_free(key);

    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~TlsServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
    SSL_CTX_free(ctx_);
  }
  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] int connections() const { return connections_.load(); }
  [[nodiscard]] int handshakes() const { return handshakes_.load(); }

 private:
  // One connection at a time is enough here.
  void run() {
    for (;;) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0 || stop_) {
        if (fd >= 0) ::close(fd);
        return;
      }
      ++connections_;
      timeval tv{10, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) {
        ++handshakes_;
        serve(ssl);
      }
      SSL_free(ssl);
      ::close(fd);
    }
  }
  void serve(SSL* ssl) {
    std::string buf;
    char tmp[4096];
    for (;;) {
      size_t head_end;
      while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
        const int n = SSL_read(ssl, tmp, sizeof tmp);
        if (n <= 0) return;
        buf.append(tmp, static_cast<size_t>(n));
      }
      size_t body_len = 0;
      const std::string head = testing::lowerCopy(buf.substr(0, head_end));
      if (const size_t p = head.find("content-length:"); p != std::string::npos) {
        body_len = std::stoul(head.substr(p + 15));
      }
      while (buf.size() < head_end + 4 + body_len) {
        const int n = SSL_read(ssl, tmp, sizeof tmp);
        if (n <= 0) return;
        buf.append(tmp, static_cast<size_t>(n));
      }
      const std::string auth = head.find("authorization: bearer sk-tls") != std::string::npos ? "auth" : "noauth";
      buf.erase(0, head_end + 4 + body_len);
      const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
      const std::string body = std::string("sni=") + (sni != nullptr ? sni : "") + ";" + auth;
      const std::string resp = "HTTP/1.1 200 OK\r\ncontent-length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      if (SSL_write(ssl, resp.data(), static_cast<int>(resp.size())) <= 0) return;
    }
  }

  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> handshakes_{0};
  std::thread thread_;
};

class Result final : public UpstreamCallbacks {
 public:
  void onHeaders(int status, const Headers&) override { status_ = status; }
  void onData(std::string_view d) override { body_ += d; }
  void onComplete(UpstreamErrorKind e) override { done_.set_value(e); }
  UpstreamErrorKind wait() {
    auto f = done_.get_future();
    EXPECT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return f.get();
  }
  int status_ = 0;
  std::string body_;

 private:
  std::promise<UpstreamErrorKind> done_;
};

UpstreamErrorKind callOnce(EventLoopThread& loop, UpstreamClient& client, Result& r) {
  std::unique_ptr<UpstreamCall> call;
  loop.runSync([&] {
    UpstreamRequest req;
    req.path = "/chat/completions";
    req.body = "{}";
    call = client.start(std::move(req), r);
  });
  const UpstreamErrorKind e = r.wait();
  loop.runSync([&] { call.reset(); });
  return e;
}

TEST(UpstreamTls, HttpsWithSniAndKeepAlive) {
  TlsServer server;
  auto loop = makeEventLoopThread(core::SystemClock::instance());
  std::unique_ptr<UpstreamClient> client;
  loop->runSync([&] {
    client = makeHttpUpstreamClient(loop->dispatcher(),
                                    {.base_url = "https://localhost:" + std::to_string(server.port()) + "/v1",
                                     .api_key = "sk-tls",
                                     .verify_tls = false});
  });
  for (int i = 0; i < 3; ++i) {
    Result r;
    EXPECT_EQ(callOnce(*loop, *client, r), UpstreamErrorKind::kNone);
    EXPECT_EQ(r.status_, 200);
    EXPECT_EQ(r.body_, "sni=localhost;auth");
  }
  EXPECT_EQ(server.connections(), 1);
  loop->runSync([&] { client.reset(); });
}

TEST(UpstreamTls, UntrustedCertificateFailsVerification) {
  TlsServer server;
  auto loop = makeEventLoopThread(core::SystemClock::instance());
  std::unique_ptr<UpstreamClient> client;
  loop->runSync([&] {
    client = makeHttpUpstreamClient(loop->dispatcher(),
                                    {.base_url = "https://localhost:" + std::to_string(server.port()),
                                     .verify_tls = true});
  });
  Result r;
  EXPECT_EQ(callOnce(*loop, *client, r), UpstreamErrorKind::kConnect);
  EXPECT_EQ(r.status_, 0);
  EXPECT_EQ(server.handshakes(), 0);
  loop->runSync([&] { client.reset(); });
}

}  // namespace
}  // namespace sluice::net
