#pragma once
/// @file
/// @brief INTERNAL to src/net: a reusable, allocation-free receive on a plain
/// TCP socket that does not retry recv() on a drained socket, and the socket
/// type it needs (ReactorSocket, whose sendSome() is the matching send).
///
/// Why not socket::async_read_some: Asio's reactor tries recv() at once every
/// time a read is started, and only a zero-byte read (EOF) tells it the socket
/// is exhausted. A proxy starts a read right after each message it consumed,
/// so nearly every such try returns EAGAIN: two wasted syscalls per proxied
/// request (one on the client side, one upstream). The alternative Asio offers,
/// async_wait(), costs an epoll_ctl(MOD) per wait instead.
///
/// ReadOp lets its owner skip that try where it cannot find anything: when
/// the previous recv() returned less than its buffer (the socket was drained
/// at that moment) and the owner, still inside that read's completion, has
/// just consumed a whole message (a request, a response) and starts the next
/// read. Nothing can have arrived unseen in between: no epoll_wait ran, and
/// the next arrival is signalled as a new edge (Asio registers every socket
/// with EPOLLET; the kernel signals each arrival). Mid-message, or later
/// (from another handler), the read tries recv() at once as usual.
///
/// The one thing a drained socket can still hold is a FIN (or RST) that came
/// with the data: recv() hands over the data and leaves the EOF for the next
/// call. With the hint, that EOF is noticed when the peer sends again or we
/// write (or by the idle timeout), not at once. At a message boundary that is
/// harmless: a pooled upstream connection that the provider closed this way
/// fails on its next use and the call is retried on a fresh one (as for any
/// stale keep-alive connection); a client that half-closes after its request
/// still gets its answer.
///
/// It plugs into Asio's own epoll reactor as a reactor operation, so it mixes
/// freely with Asio's operations on the same socket (writes, async_wait, close
/// and cancel complete it with operation_aborted as they would any read). It
/// uses Asio's detail interfaces (reactor_op, epoll_reactor::start_op), which
/// is why it is confined to this header; tests/net/read_op_test.cpp pins the
/// behaviour this relies on.
///
/// Thread-safety: loop thread only, like the socket.

#include <boost/asio/detail/config.hpp>
#include <boost/version.hpp>

// ReadOp plugs into Asio's private reactor interfaces (reactor_op,
// epoll_reactor::start_op, the socket's reactor state), which change between
// Boost releases without notice. It is pinned to the release its behaviour
// was verified on (tests/net/read_op_test.cpp); another Boost must fail here,
// loudly, rather than build something subtly wrong.
#if BOOST_VERSION != 108100 && !defined(SLUICE_ASIO_PUBLIC_READ)
#error \
    "src/net/read_op.h uses Asio internals verified on Boost 1.81 only (Debian 12's libboost1.81-dev). Check ReadOp against this Boost's boost/asio/detail/reactor_op.hpp and epoll_reactor, run tests/net/read_op_test.cpp, then widen this check."
#endif
#if !defined(BOOST_ASIO_HAS_EPOLL) && !defined(SLUICE_ASIO_PUBLIC_READ)
#error "src/net/read_op.h needs Asio's epoll reactor (Linux)."
#endif

#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <span>
#include <utility>

#include <cerrno>
#include <cstddef>

#include "net/callback_scope.h"

namespace sluice::net::detail {

/// A tcp::socket whose reactor state ReadOp can reach (Asio keeps it in a
/// protected member). Behaves exactly as a tcp::socket otherwise.
class ReactorSocket : public boost::asio::ip::tcp::socket {
 public:
  using boost::asio::ip::tcp::socket::basic_stream_socket;
  explicit ReactorSocket(boost::asio::ip::tcp::socket&& s) : boost::asio::ip::tcp::socket(std::move(s)) {}

  [[nodiscard]] auto& reactorImpl() { return impl_.get_implementation(); }

  /// One non-blocking sendmsg() of `bufs` (at most kMaxSendBuffers are
  /// used), MSG_NOSIGNAL. Returns the bytes taken; on failure 0 and `ec`
  /// (asio::error::would_block when the socket buffer is full). The socket
  /// must be in non-blocking mode (any Asio async operation or ReadOp puts it
  /// there). Unlike write_some(), goes through rawSyscall().
  size_t sendSome(std::span<const boost::asio::const_buffer> bufs, boost::system::error_code& ec) {
    std::array<iovec, kMaxSendBuffers> iov;
    const size_t n = std::min(bufs.size(), iov.size());
    for (size_t i = 0; i < n; ++i) iov[i] = iovec{const_cast<void*>(bufs[i].data()), bufs[i].size()};
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = n;
    for (;;) {
      const long r = rawSyscall(SYS_sendmsg, native_handle(), &msg, MSG_NOSIGNAL);  // NOLINT(google-runtime-int)
      if (r >= 0) {
        ec.clear();
        return static_cast<size_t>(r);
      }
      if (errno == EINTR) continue;
      ec = (errno == EAGAIN || errno == EWOULDBLOCK)
               ? make_error_code(boost::asio::error::would_block)
               : boost::system::error_code(errno, boost::asio::error::get_system_category());
      return 0;
    }
  }

  static constexpr size_t kMaxSendBuffers = 64;

  /// syscall(2) itself, not glibc's recv()/sendmsg() wrappers: in a
  /// multi-threaded process those are thread-cancellation points and cost two
  /// atomic read-modify-writes per call (measured: BENCHMARKS.md). Sluice
  /// never cancels threads.
  template <typename... Args>
  static long rawSyscall(long number, Args... args) {  // NOLINT(google-runtime-int): syscall(2)'s types
    return ::syscall(number, args...);
  }
};

#if defined(SLUICE_ASIO_PUBLIC_READ)
/// The same receive through Asio's public socket::async_read_some (built with
/// -DSLUICE_ASIO_PUBLIC_READ=ON): what ReadOp below costs against, measured
/// with bench/ab.sh (BENCHMARKS.md). It tries recv() at every start, so a
/// read started at a message boundary costs one more (EAGAIN) syscall.
class ReadOp {
 public:
  using error_code = boost::system::error_code;
  using OnComplete = void (*)(void* owner, const error_code& ec, size_t n);
  using OnAbandon = void (*)(void* owner);

  ReadOp(void* owner, OnComplete on_complete, OnAbandon on_abandon)
      : owner_(owner), on_complete_(on_complete), on_abandon_(on_abandon) {}
  ReadOp(const ReadOp&) = delete;
  ReadOp& operator=(const ReadOp&) = delete;

  [[nodiscard]] bool pending() const { return pending_; }

  void start(ReactorSocket& sock, char* data, size_t size, bool /*at_boundary*/) {
    pending_ = true;
    sock.async_read_some(boost::asio::buffer(data, size), Handler{this});
  }
  void leaveCompletion() {}

 private:
  // Calls on_abandon_ when destroyed un-run (the io_context went away with
  // the read pending), as ReadOp's reactor completion does.
  struct Handler {
    ReadOp* op;
    explicit Handler(ReadOp* o) : op(o) {}
    Handler(Handler&& other) noexcept : op(std::exchange(other.op, nullptr)) {}
    Handler& operator=(Handler&&) = delete;
    ~Handler() {
      if (op != nullptr) {
        op->pending_ = false;
        op->on_abandon_(op->owner_);
      }
    }
    void operator()(const error_code& ec, size_t n) {
      ReadOp* self = std::exchange(op, nullptr);
      self->pending_ = false;
      const CallbackScope scope;
      self->on_complete_(self->owner_, ec, n);  // may destroy *self
    }
  };

  void* owner_;
  OnComplete on_complete_;
  OnAbandon on_abandon_;
  bool pending_ = false;
};
#else
/// One outstanding receive at a time, reused for the life of its owner. The
/// owner must stay alive while pending() (keep a self-reference until the
/// completion or abandonment callback).
class ReadOp final : public boost::asio::detail::reactor_op {
 public:
  using error_code = boost::system::error_code;
  /// Called on the loop thread with the result: bytes > 0, or an error
  /// (asio::error::eof when the peer closed, operation_aborted on close/cancel).
  using OnComplete = void (*)(void* owner, const error_code& ec, size_t n);
  /// Called instead when the io_context is destroyed with the read pending:
  /// release what keeps the owner alive, do nothing else.
  using OnAbandon = void (*)(void* owner);

  ReadOp(void* owner, OnComplete on_complete, OnAbandon on_abandon)
      : reactor_op(error_code(), &ReadOp::perform, &ReadOp::complete),
        owner_(owner),
        on_complete_(on_complete),
        on_abandon_(on_abandon) {}
  ReadOp(const ReadOp&) = delete;
  ReadOp& operator=(const ReadOp&) = delete;
  ~ReadOp() = default;

  [[nodiscard]] bool pending() const { return pending_; }

  /// Starts receiving into [data, data + size) (size > 0). Never completes
  /// inline: the result arrives through the loop like any Asio completion.
  /// `at_boundary`: the owner consumed a whole message and expects nothing
  /// more yet; honoured only as described in the file comment.
  void start(ReactorSocket& sock, char* data, size_t size, bool at_boundary) {
    namespace ad = boost::asio::detail;
    auto& impl = sock.reactorImpl();
    skip_try_ = at_boundary && in_completion_ && last_short_;
    in_completion_ = false;
    pending_ = true;
    data_ = data;
    size_ = size;
    fd_ = impl.socket_;
    ec_ = error_code();
    bytes_transferred_ = 0;
    if (reactor_ == nullptr) reactor_ = &boost::asio::use_service<ad::reactor>(sock.get_executor().context());
    ad::reactor& reactor = *reactor_;  // (use_service locks and searches a list: once per op, not per read)
    if ((impl.state_ & ad::socket_ops::internal_non_blocking) == 0 &&
        !ad::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, ec_)) {
      reactor.post_immediate_completion(this, /*is_continuation=*/true);
      return;
    }
    // perform() runs inside start_op() (the speculative try) or later, on an
    // epoll event; skip_try_ only ever applies to the former.
    reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, this, /*is_continuation=*/true,
                     /*allow_speculative=*/true);
    skip_try_ = false;
  }

  /// The owner's OnComplete callback is done (call it before returning from
  /// the callback if the owner is still alive; start() does it too).
  void leaveCompletion() { in_completion_ = false; }

 private:
  static status perform(reactor_op* base) {
    auto* self = static_cast<ReadOp*>(base);
    if (self->skip_try_) return not_done;  // queued: wait for the next edge
    for (;;) {
      const ssize_t n = ReactorSocket::rawSyscall(SYS_recvfrom, self->fd_, self->data_, self->size_, 0, nullptr,
                                                  nullptr);
      if (n > 0) {
        self->bytes_transferred_ = static_cast<size_t>(n);
        self->last_short_ = static_cast<size_t>(n) < self->size_;
        return done;
      }
      self->last_short_ = false;
      if (n == 0) {
        self->ec_ = boost::asio::error::eof;
        return done_and_exhausted;  // as Asio's own receive does
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;
      self->ec_ = error_code(errno, boost::asio::error::get_system_category());
      return done;
    }
  }

  static void complete(void* owner, boost::asio::detail::scheduler_operation* base, const error_code& /*ec*/,
                       size_t /*bytes*/) {
    auto* self = static_cast<ReadOp*>(base);
    self->pending_ = false;
    if (owner == nullptr) {  // the io_context is being destroyed
      self->on_abandon_(self->owner_);
      return;
    }
    self->in_completion_ = !self->ec_;
    const CallbackScope scope;  // time stamp and deferred work of this callback (callback_scope.h)
    self->on_complete_(self->owner_, self->ec_, self->bytes_transferred_);  // may destroy *self
  }

  void* owner_;
  boost::asio::detail::reactor* reactor_ = nullptr;  // of the socket's io_context
  OnComplete on_complete_;
  OnAbandon on_abandon_;
  char* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;
  bool pending_ = false;
  bool skip_try_ = false;       // only during start()
  bool last_short_ = false;     // the last recv() drained the socket
  bool in_completion_ = false;  // inside the owner's OnComplete callback
};
#endif  // SLUICE_ASIO_PUBLIC_READ

}  // namespace sluice::net::detail
