#include "mock/mock_server.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include "mock/player.h"

namespace sluice::mock {
namespace {

/// Plays onto a server exchange.
class ServerSink final : public MockSink {
 public:
  explicit ServerSink(std::shared_ptr<net::ServerStream> stream) : stream_(std::move(stream)) {}

  void respond(int status, const net::Headers& headers, std::string body) override {
    if (stream_) stream_->respond(status, headers, std::move(body));
  }
  void begin(int status, const net::Headers& headers) override {
    if (stream_) stream_->beginStream(status, headers);
  }
  void data(std::string bytes) override {
    if (stream_) stream_->write(std::move(bytes));
  }
  void end() override {
    if (stream_) stream_->end();
  }
  // net's contract: a stream dropped after its headers went out is cut (the
  // connection is closed, what was written stays written). This is the only
  // reference to it, so releasing it is the reset.
  void abort() override { stream_.reset(); }
  [[nodiscard]] size_t pendingBytes() const override { return stream_ ? stream_->pendingBytes() : 0; }

 private:
  std::shared_ptr<net::ServerStream> stream_;
};

// Set by the SIGINT/SIGTERM handler, which runs on whichever thread the
// kernel picked (a loop thread as well as the main one), and read by the main
// thread: a lock-free atomic, which is both async-signal-safe and a
// cross-thread handoff (a volatile sig_atomic_t is only the former).
std::atomic<bool> g_signalled{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void onStopSignal(int /*sig*/) { g_signalled.store(true); }

}  // namespace

MockServer::MockServer(MockServerOptions options, const core::Clock& clock)
    : options_(std::move(options)), clock_(clock), state_(std::make_shared<MockState>(options_.behavior)) {}

MockServer::~MockServer() { stop(std::chrono::milliseconds(0)); }

void MockServer::track(const std::shared_ptr<MockPlayer>& player) {
  std::lock_guard lock(players_mu_);
  // Amortised pruning keeps the list proportional to the responses in flight.
  if (players_.size() >= 64 && players_.size() == players_.capacity()) {
    std::erase_if(players_, [](const std::weak_ptr<MockPlayer>& w) { return w.expired(); });
  }
  players_.push_back(player);
}

bool MockServer::start() {
  net::ServerOptions so;
  so.host = options_.host;
  so.port = options_.port;
  so.threads = options_.threads < 1 ? 1 : options_.threads;
  auto handler = [this](net::HttpRequest&& request, const std::shared_ptr<net::ServerStream>& stream,
                        net::Dispatcher& loop) {
    auto player = std::make_shared<MockPlayer>(loop, state_, std::make_unique<ServerSink>(stream));
    std::weak_ptr<MockPlayer> weak = player;
    stream->onClientGone([weak] {
      if (auto p = weak.lock()) p->stop();
    });
    track(player);
    player->start(request, /*keep_alive=*/true);
  };
  server_ = net::makeHttpServer(std::move(so), std::move(handler), clock_);
  return server_->start();
}

uint16_t MockServer::port() const { return server_ ? server_->port() : 0; }

void MockServer::stop(core::Nanos deadline) {
  if (stopped_ || !server_) return;
  stopped_ = true;
  server_->stop(deadline);
  // The loops are joined: end what is left (stalls) so nothing outlives the server.
  std::vector<std::weak_ptr<MockPlayer>> players;
  {
    std::lock_guard lock(players_mu_);
    players.swap(players_);
  }
  for (auto& w : players) {
    if (auto p = w.lock()) p->stop();
  }
}

int runMockUpstream(const MockServerOptions& options, const std::atomic<bool>* stop) {
  MockServer server(options);
  if (!server.start()) {
    std::fprintf(stderr, "mock-upstream: cannot listen on %s:%u\n", options.host.c_str(),
                 static_cast<unsigned>(options.port));
    return 1;
  }
  if (stop == nullptr) {
    g_signalled.store(false);
    struct sigaction sa {};
    sa.sa_handler = onStopSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
  }
  std::printf("mock-upstream listening on %s:%u\n", options.host.c_str(), static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  while (stop != nullptr ? !stop->load() : !g_signalled.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  server.stop();
  return 0;
}

}  // namespace sluice::mock
