#pragma once
// Test helpers for src/net: a raw POSIX socket client, a scripted raw HTTP
// server (for what a real server would never do: stale keep-alive, cut
// bodies), and a thread-safe "wait until" helper. Every wait has a generous
// safety limit; tests assert outcomes, never durations.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sluice::net::testing {

inline constexpr int kSafetyMs = 10'000;

inline std::string lowerCopy(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// A parsed HTTP message as a raw client/server sees it.
struct RawMessage {
  std::string start_line;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool chunked = false;
  std::vector<std::string> chunks;              // chunk payloads, when chunked
  std::map<std::string, std::string> trailers;  // lower-case names, when chunked
  [[nodiscard]] int status() const { return start_line.size() >= 12 ? std::stoi(start_line.substr(9, 3)) : 0; }
  [[nodiscard]] std::string header(const std::string& n) const {
    auto it = headers.find(n);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// Blocking socket with poll()-bounded reads.
class RawSocket {
 public:
  RawSocket() = default;
  explicit RawSocket(int fd) : fd_(fd) {}
  RawSocket(RawSocket&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)), on_close_(std::move(o.on_close_)) {
    o.fd_ = -1;
  }
  RawSocket& operator=(RawSocket&& o) noexcept {
    close();
    fd_ = o.fd_;
    buf_ = std::move(o.buf_);
    on_close_ = std::move(o.on_close_);
    o.fd_ = -1;
    return *this;
  }
  ~RawSocket() { close(); }

  static RawSocket connectTo(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd);
      return RawSocket();
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return RawSocket(fd);
  }

  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  [[nodiscard]] int fd() const { return fd_; }

  bool sendAll(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  void close() {
    if (fd_ < 0) return;
    if (on_close_) on_close_(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  /// Called with the fd just before it is closed.
  void onClose(std::function<void(int)> hook) { on_close_ = std::move(hook); }
  /// Closes with an RST instead of a FIN.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }

  /// Reads more bytes into the buffer; false on EOF/error/safety timeout.
  bool fill(int timeout_ms = kSafetyMs) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char tmp[16384];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  /// True when the peer closed (EOF or reset) within the safety limit, discarding data.
  bool waitClosed(int timeout_ms = kSafetyMs) {
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return false;
      char tmp[16384];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return true;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  std::optional<std::string> readLine() {
    for (;;) {
      const size_t pos = buf_.find("\r\n");
      if (pos != std::string::npos) {
        std::string line = buf_.substr(0, pos);
        buf_.erase(0, pos + 2);
        return line;
      }
      if (!fill()) return std::nullopt;
    }
  }

  bool readExactly(size_t n, std::string& out) {
    while (buf_.size() < n) {
      if (!fill()) return false;
    }
    out.append(buf_, 0, n);
    buf_.erase(0, n);
    return true;
  }

  /// Reads one HTTP message head (start line + headers).
  std::optional<RawMessage> readHead() {
    RawMessage m;
    auto line = readLine();
    if (!line) return std::nullopt;
    m.start_line = *line;
    for (;;) {
      auto h = readLine();
      if (!h) return std::nullopt;
      if (h->empty()) break;
      const size_t colon = h->find(':');
      if (colon == std::string::npos) return std::nullopt;
      std::string value = h->substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      m.headers[lowerCopy(h->substr(0, colon))] = value;
    }
    m.chunked = lowerCopy(m.header("transfer-encoding")).find("chunked") != std::string::npos;
    return m;
  }

  /// Reads one whole HTTP message (content-length, chunked, or until close
  /// when `until_close_ok`). Interim 1xx responses are returned as they come.
  std::optional<RawMessage> readMessage(bool is_response = true) {
    auto m = readHead();
    if (!m) return std::nullopt;
    if (m->chunked) {
      for (;;) {
        auto size_line = readLine();
        if (!size_line) return std::nullopt;
        const size_t size = std::stoul(*size_line, nullptr, 16);
        if (size == 0) {
          for (;;) {  // trailer fields up to the empty line
            auto t = readLine();
            if (!t) return std::nullopt;
            if (t->empty()) break;
            const size_t colon = t->find(':');
            if (colon == std::string::npos) return std::nullopt;
            std::string value = t->substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            m->trailers[lowerCopy(t->substr(0, colon))] = value;
          }
          break;
        }
        std::string chunk;
        if (!readExactly(size, chunk)) return std::nullopt;
        std::string crlf;
        if (!readExactly(2, crlf)) return std::nullopt;
        m->body += chunk;
        m->chunks.push_back(std::move(chunk));
      }
    } else if (!m->header("content-length").empty()) {
      if (!readExactly(std::stoul(m->header("content-length")), m->body)) return std::nullopt;
    } else if (is_response && m->status() >= 200 && m->status() != 204 && m->status() != 304) {
      while (fill()) {
      }
      m->body = std::move(buf_);
      buf_.clear();
    }
    return m;
  }

 private:
  int fd_ = -1;
  std::string buf_;
  std::function<void(int)> on_close_;
};

/// A scripted HTTP/1.1 server on 127.0.0.1:<port>, one thread per connection.
/// The script gets each request (head + content-length body) and the socket.
class RawHttpServer {
 public:
  using Script = std::function<void(RawSocket& conn, const RawMessage& request, int conn_index, int request_index)>;

  explicit RawHttpServer(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();  // no port: no test
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~RawHttpServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    {
      std::lock_guard lk(mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
  }

  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] int connections() const { return connections_.load(); }
  [[nodiscard]] int requests() const { return requests_.load(); }
  /// Connections that ended (the peer closed, or the script did).
  [[nodiscard]] int closed() const { return closed_.load(); }
  std::vector<RawMessage> received() {
    std::lock_guard lk(mu_);
    return received_;
  }

 private:
  void acceptLoop() {
    for (;;) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      if (stop_) {
        ::close(fd);
        return;
      }
      const int index = connections_++;
      std::lock_guard lk(mu_);
      open_fds_.push_back(fd);
      workers_.emplace_back([this, fd, index] { serve(fd, index); });
    }
  }

  void serve(int fd, int conn_index) {
    RawSocket s(fd);
    s.onClose([this](int closing) {
      std::lock_guard lk(mu_);
      std::erase(open_fds_, closing);
    });
    for (int req_index = 0;; ++req_index) {
      auto m = s.readHead();
      if (!m) break;
      if (!m->header("content-length").empty()) {
        if (!s.readExactly(std::stoul(m->header("content-length")), m->body)) break;
      }
      ++requests_;
      {
        std::lock_guard lk(mu_);
        received_.push_back(*m);
      }
      script_(s, *m, conn_index, req_index);
      if (!s.valid()) break;
    }
    ++closed_;
  }

  Script script_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> closed_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> open_fds_;
  std::vector<std::thread> workers_;
  std::vector<RawMessage> received_;
};

/// A port nothing listens on (bound, then released).
inline uint16_t unusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();  // no port: no test
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// Polls `pred` until true or the safety limit; returns the final value.
template <typename Pred>
bool eventually(Pred pred, int timeout_ms = kSafetyMs) {
  for (int waited = 0; waited < timeout_ms; waited += 2) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

}  // namespace sluice::net::testing
