// ReadOp (src/net/read_op.h): an Asio reactor operation of our own, so these
// tests pin both what it delivers and the reactor behaviour it relies on --
// above all that skipping the speculative recv() never loses data.

#include "net/read_op.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <functional>
#include <memory>
#include <string>

namespace sluice::net::detail {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// A connected loopback pair: `ours` is read with a ReadOp, `peer` writes.
struct Pair {
  asio::io_context io;
  ReactorSocket ours{io};
  tcp::socket peer{io};

  Pair() {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    peer.connect(acc.local_endpoint());
    tcp::socket accepted(io);
    acc.accept(accepted);
    ours = ReactorSocket(std::move(accepted));
  }
  void send(const std::string& s) { asio::write(peer, asio::buffer(s)); }
};

// Owner of a ReadOp that records every completion and runs `then` inside it.
struct Reader {
  Pair& p;
  char buf[64];
  std::string got;
  error_code last_ec;
  int completions = 0;
  int abandoned = 0;
  std::function<void(Reader&)> then;
  ReadOp op{this, &Reader::done, &Reader::abandon};

  explicit Reader(Pair& pair) : p(pair) {}
  void start(bool at_boundary = false) { op.start(p.ours, buf, sizeof buf, at_boundary); }

  static void done(void* owner, const error_code& ec, size_t n) {
    auto* r = static_cast<Reader*>(owner);
    ++r->completions;
    r->last_ec = ec;
    r->got.append(r->buf, n);
    if (r->then) r->then(*r);
    r->op.leaveCompletion();
  }
  static void abandon(void* owner) { ++static_cast<Reader*>(owner)->abandoned; }
};

// Runs handlers until `pred` holds (bounded, never sleeps on a timer).
template <typename Pred>
bool runUntil(asio::io_context& io, Pred pred) {
  for (int i = 0; i < 200 && !pred(); ++i) {
    io.restart();
    io.run_one_for(std::chrono::milliseconds(50));
  }
  return pred();
}

TEST(ReadOp, DeliversBytesAndNeverCompletesInline) {
  Pair p;
  Reader r(p);
  p.send("hello");
  r.start();
  EXPECT_TRUE(r.op.pending());
  EXPECT_EQ(r.completions, 0);  // even though the bytes were there already
  ASSERT_TRUE(runUntil(p.io, [&] { return r.completions == 1; }));
  EXPECT_FALSE(r.last_ec);
  EXPECT_EQ(r.got, "hello");
  EXPECT_FALSE(r.op.pending());
}

TEST(ReadOp, WaitsForDataThatIsNotThereYet) {
  Pair p;
  Reader r(p);
  r.start();
  p.io.poll();
  EXPECT_EQ(r.completions, 0);
  p.send("late");
  ASSERT_TRUE(runUntil(p.io, [&] { return r.completions == 1; }));
  EXPECT_EQ(r.got, "late");
}

TEST(ReadOp, FullBufferIsReadOnInChunks) {
  Pair p;
  Reader r(p);
  const std::string big(200, 'x');  // more than the 64-byte buffer
  p.send(big);
  r.then = [](Reader& self) {
    if (self.got.size() < 200) self.start(/*at_boundary=*/true);  // full reads never skip the try
  };
  r.start();
  ASSERT_TRUE(runUntil(p.io, [&] { return r.got.size() == 200; }));
  EXPECT_EQ(r.got, big);
}

TEST(ReadOp, EofAndResetAreErrors) {
  Pair p;
  Reader r(p);
  r.start();
  p.peer.close();
  ASSERT_TRUE(runUntil(p.io, [&] { return r.completions == 1; }));
  EXPECT_EQ(r.last_ec, asio::error::eof);
}

TEST(ReadOp, CloseCompletesAPendingReadAsAborted) {
  Pair p;
  Reader r(p);
  r.start();
  p.io.poll();
  p.ours.close();
  ASSERT_TRUE(runUntil(p.io, [&] { return r.completions == 1; }));
  EXPECT_EQ(r.last_ec, asio::error::operation_aborted);
}

TEST(ReadOp, AtBoundaryInsideTheCompletionStillSeesTheNextArrival) {
  // The skip case: a short read, then (inside its completion) the next read
  // starts without trying recv(). Data the peer sends afterwards -- even
  // before that start -- arrives through the next epoll edge.
  Pair p;
  Reader r(p);
  r.then = [&](Reader& self) {
    if (self.completions == 1) {
      p.send("second");  // lands in the socket before the skipped try
      self.start(/*at_boundary=*/true);
    }
  };
  p.send("first");
  r.start();
  ASSERT_TRUE(runUntil(p.io, [&] { return r.completions == 2; }));
  EXPECT_EQ(r.got, "firstsecond");
}

TEST(ReadOp, AtBoundaryIsIgnoredOnceTheLoopPolledInBetween) {
  // The unsafe case the hint must not apply to: the completion returns
  // without a new read, the loop polls (consuming the edge for bytes that
  // arrive meanwhile), and only then does a read start. It must try recv().
  Pair p;
  Reader r(p);
  p.send("first");
  r.start();
  ASSERT_TRUE(runUntil(p.io, [&] { return r.completions == 1; }));
  // Outstanding work elsewhere, so that poll() really runs epoll_wait.
  bool peer_woke = false;
  p.peer.async_wait(tcp::socket::wait_read, [&](const error_code&) { peer_woke = true; });
  p.send("second");
  p.io.restart();
  p.io.poll();  // the reactor sees the edge with no read queued
  ASSERT_FALSE(peer_woke);
  r.start(/*at_boundary=*/true);
  ASSERT_TRUE(runUntil(p.io, [&] { return r.completions == 2; }));
  EXPECT_EQ(r.got, "firstsecond");
}

TEST(ReadOp, WithoutTheHintAFinThatCameWithTheDataIsSeenAtOnce) {
  Pair p;
  Reader r(p);
  r.then = [](Reader& self) {
    if (self.completions == 1) self.start(/*at_boundary=*/false);
  };
  p.send("bye");
  p.peer.shutdown(tcp::socket::shutdown_send);
  r.start();
  ASSERT_TRUE(runUntil(p.io, [&] { return r.completions == 2; }));
  EXPECT_EQ(r.got, "bye");
  EXPECT_EQ(r.last_ec, asio::error::eof);
}

TEST(ReactorSocket, SendSomeGathersBuffersAndReportsAFullSocket) {
  Pair p;
  p.ours.non_blocking(true);
  error_code ec;
  const std::array<asio::const_buffer, 2> two{asio::buffer("hel", 3), asio::buffer("lo", 2)};
  EXPECT_EQ(p.ours.sendSome(two, ec), 5u);
  EXPECT_FALSE(ec);
  char got[5];
  asio::read(p.peer, asio::buffer(got));
  EXPECT_EQ(std::string(got, 5), "hello");
  // Nobody reads: the socket buffers fill up, and then the send says so.
  const std::string chunk(64 * 1024, 'x');
  size_t sent = 0;
  for (int i = 0; i < 10000 && !ec; ++i) sent += p.ours.sendSome(std::array{asio::buffer(chunk)}, ec);
  EXPECT_EQ(ec, asio::error::would_block);
  EXPECT_GT(sent, 0u);
  p.peer.close();
  ec.clear();
  // A closed peer: an error (EPIPE/ECONNRESET), never SIGPIPE.
  for (int i = 0; i < 100 && !ec; ++i) p.ours.sendSome(std::array{asio::buffer(chunk)}, ec);
  EXPECT_TRUE(ec);
  EXPECT_NE(ec, asio::error::would_block);
}

TEST(ReadOp, DestroyingTheLoopAbandonsAPendingRead) {
  auto p = std::make_unique<Pair>();
  Reader r(*p);
  r.start();
  p->io.poll();
  ASSERT_EQ(r.completions, 0);
  p.reset();  // sockets close, then the io_context destroys the queued operation
  EXPECT_EQ(r.completions + r.abandoned, 1);
  EXPECT_EQ(r.completions, 0);
}

}  // namespace
}  // namespace sluice::net::detail
