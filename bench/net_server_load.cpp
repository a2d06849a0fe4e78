// A load target for wrk, to compare src/net with nginx (not part of ctest).
//
//   direct: answers every request with a fixed JSON body.
//   proxy:  relays every request to UPSTREAM_BASE_URL (one keep-alive pool
//           per loop) and answers with the upstream's body: a reverse proxy.
//
// Build (a bench target, with the release preset):
//   bash scripts/build-release.sh --target sluice_net_server_load
// Run:
//   taskset -c 0 build/release/bench/sluice_net_server_load direct 8080 &
//   taskset -c 1 wrk -t1 -c64 -d5s http://127.0.0.1:8080/

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "core/clock.h"
#include "net/http.h"

namespace {

using namespace sluice;

const std::string kBody =
    R"({"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":)"
    R"({"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,)"
    R"("completion_tokens":2,"total_tokens":11}})";

std::string g_upstream;
thread_local std::unique_ptr<net::UpstreamClient> tl_client;

// One relayed exchange; owns itself until the upstream call completes.
class ProxyCall final : public net::UpstreamCallbacks {
 public:
  explicit ProxyCall(std::shared_ptr<net::ServerStream> stream) : stream_(std::move(stream)) {}

  static void start(net::HttpRequest&& req, std::shared_ptr<net::ServerStream> stream, net::Dispatcher& loop) {
    if (!tl_client) tl_client = net::makeHttpUpstreamClient(loop, {.base_url = g_upstream, .api_key = "sk-bench"});
    auto* self = new ProxyCall(std::move(stream));
    net::UpstreamRequest up;
    up.method = req.method;
    up.path = req.target;
    up.body = std::move(req.body);
    up.headers = {{"content-type", "application/json"}};
    self->call_ = tl_client->start(std::move(up), *self);
  }

  void onHeaders(int status, const net::Headers& headers) override {
    status_ = status;
    content_type_ = std::string(net::findHeader(headers, "content-type"));
  }
  void onData(std::string_view data) override { body_.append(data); }
  void onComplete(net::UpstreamErrorKind error) override {
    if (error == net::UpstreamErrorKind::kNone) {
      stream_->respond(status_, {{"content-type", content_type_}}, std::move(body_));
    } else {
      stream_->respond(502, {{"content-type", "application/json"}}, R"({"error":{"message":"upstream failed"}})");
    }
    delete this;
  }

 private:
  std::shared_ptr<net::ServerStream> stream_;
  std::unique_ptr<net::UpstreamCall> call_;
  int status_ = 0;
  std::string content_type_;
  std::string body_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s direct|proxy PORT [UPSTREAM_BASE_URL] [THREADS]\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  net::ServerOptions options;
  options.port = static_cast<uint16_t>(std::atoi(argv[2]));
  if (argc > 3) g_upstream = argv[3];
  if (argc > 4) options.threads = std::atoi(argv[4]);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // loop threads inherit the mask

  net::Handler handler;
  if (mode == "direct") {
    handler = [](net::HttpRequest&&, const std::shared_ptr<net::ServerStream>& stream, net::Dispatcher&) {
      stream->respond(200, {{"content-type", "application/json"}}, kBody);
    };
  } else if (mode == "proxy" && !g_upstream.empty()) {
    handler = &ProxyCall::start;
  } else {
    std::fprintf(stderr, "bad mode or missing upstream\n");
    return 2;
  }
  auto server = net::makeHttpServer(options, handler, core::SystemClock::instance());
  if (!server->start()) return 1;
  std::printf("listening on %u (%s)\n", server->port(), mode.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  server->stop(std::chrono::seconds(1));
  return 0;
}
