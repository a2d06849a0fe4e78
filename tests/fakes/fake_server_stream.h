#pragma once
// A net::ServerStream that records what a handler sends, and can play a
// client that goes away.

#include <functional>
#include <optional>
#include <string>

#include "net/http.h"

namespace sluice::testing {

class FakeServerStream final : public net::ServerStream {
 public:
  void respond(int status, net::Headers headers, std::string body) override {
    status_ = status;
    headers_ = std::move(headers);
    body_ = std::move(body);
    ended_ = true;
  }
  void beginStream(int status, net::Headers headers) override {
    status_ = status;
    headers_ = std::move(headers);
    streaming_ = true;
  }
  void write(std::string data) override { body_ += data; }
  void end() override { ended_ = true; }
  void endWithTrailers(net::Headers trailers) override {
    trailers_ = std::move(trailers);
    ended_ = true;
  }
  [[nodiscard]] size_t pendingBytes() const override { return 0; }
  [[nodiscard]] bool clientGone() const override { return gone_; }
  void onClientGone(std::function<void()> cb) override {
    if (gone_) return cb();
    on_gone_ = std::move(cb);
  }

  /// The client disconnects now.
  void disconnect() {
    gone_ = true;
    if (on_gone_) std::exchange(on_gone_, nullptr)();
  }

  [[nodiscard]] int status() const { return status_; }
  [[nodiscard]] const std::string& body() const { return body_; }
  [[nodiscard]] bool ended() const { return ended_; }
  [[nodiscard]] bool streaming() const { return streaming_; }
  [[nodiscard]] std::string header(std::string_view name) const { return std::string(net::findHeader(headers_, name)); }
  [[nodiscard]] std::string trailer(std::string_view name) const {
    return std::string(net::findHeader(trailers_, name));
  }

 private:
  int status_ = 0;
  net::Headers headers_;
  net::Headers trailers_;
  std::string body_;
  bool ended_ = false;
  bool streaming_ = false;
  bool gone_ = false;
  std::function<void()> on_gone_;
};

}  // namespace sluice::testing
