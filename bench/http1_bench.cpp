// HTTP/1.1 message parsing: our Http1Parser vs Boost.Beast's basic_parser on
// the messages a proxied LLM call carries: an OpenAI SDK request (head + JSON
// body) and a provider response (Content-Length and chunked). Both parsers get
// equivalent callbacks that only touch the parsed views, so the numbers are
// the parsers' own cost. Beast's parser cannot be reused, so (as in the server
// before) one is constructed per message; ours is reset().

#include <benchmark/benchmark.h>

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "net/http1_parser.h"

namespace sluice::net::detail {
namespace {

namespace http = boost::beast::http;
using boost::system::error_code;

std::string jsonBody(size_t n) {
  std::string s = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":")";
  while (s.size() + 3 < n) s += static_cast<char>('a' + s.size() % 26);
  s += "\"}]";
  s.resize(n, '}');
  return s;
}

std::string sdkRequest() {
  const std::string body = jsonBody(250);
  return "POST /v1/chat/completions HTTP/1.1\r\n"
         "Host: api.openai.com\r\n"
         "Accept-Encoding: gzip, deflate\r\n"
         "Connection: keep-alive\r\n"
         "Accept: application/json\r\n"
         "Content-Type: application/json\r\n"
         "User-Agent: OpenAI/Python 1.51.0\r\n"
         "X-Stainless-Lang: python\r\n"
         "X-Stainless-Package-Version: 1.51.0\r\n"
         "X-Stainless-OS: Linux\r\n"
         "X-Stainless-Arch: x64\r\n"
         "X-Stainless-Runtime: CPython\r\n"
         "X-Stainless-Runtime-Version: 3.12.4\r\n"
         "Authorization: Bearer sk-proj-4f2b1c9e8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c\r\n"
         "X-Stainless-Async: false\r\n"
         "x-stainless-retry-count: 0\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

constexpr std::string_view kResponseHead =
    "HTTP/1.1 200 OK\r\n"
    "Date: Tue, 11 Jun 2024 10:21:07 GMT\r\n"
    "Content-Type: application/json\r\n"
    "Connection: keep-alive\r\n"
    "access-control-expose-headers: X-Request-ID\r\n"
    "openai-organization: user-abcdefghijklmnop\r\n"
    "openai-processing-ms: 412\r\n"
    "openai-version: 2020-10-01\r\n"
    "x-request-id: req_7c1f0e5d2b9a48e6a3f4c2d1b0e9f8a7\r\n"
    "strict-transport-security: max-age=31536000; includeSubDomains; preload\r\n"
    "CF-RAY: 891a2b3c4d5e6f70-FRA\r\n";

std::string providerResponse() {
  const std::string body = jsonBody(400);
  return std::string(kResponseHead) + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string providerResponseChunked() {
  const std::string body = jsonBody(400);
  std::string s = std::string(kResponseHead) + "Transfer-Encoding: chunked\r\n\r\n";
  for (size_t i = 0; i < body.size(); i += 100) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", std::min<size_t>(100, body.size() - i));
    s += size;
    s += body.substr(i, 100);
    s += "\r\n";
  }
  s += "0\r\n\r\n";
  return s;
}

// ------------------------------------------------------------------ ours

class Sink final : public Http1Callbacks {
 public:
  size_t total = 0;
  void onRequestLine(std::string_view method, std::string_view target, int version) override {
    total += method.size() + target.size() + static_cast<size_t>(version);
  }
  void onStatusLine(int status, std::string_view reason, int version) override {
    total += static_cast<size_t>(status) + reason.size() + static_cast<size_t>(version);
  }
  void onField(std::string_view name, std::string_view value) override { total += name.size() + value.size(); }
  bool onHeaderDone() override { return true; }
  bool onBody(std::string_view data) override {
    total += data.size();
    return true;
  }
};

void runOurs(benchmark::State& state, const std::string& msg, bool is_request) {
  Http1Parser parser(is_request);
  Sink sink;
  for (auto _ : state) {
    parser.reset();
    ParseError err;
    const size_t used = parser.put(msg.data(), msg.size(), sink, err);
    if (err != ParseError::kNone || used != msg.size()) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(sink.total);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
}

// ------------------------------------------------------------------ Beast

template <bool kIsRequest>
class BeastSink final : public http::basic_parser<kIsRequest> {
 public:
  size_t total = 0;

 private:
  void on_request_impl(http::verb, boost::beast::string_view method, boost::beast::string_view target, int version,
                       error_code&) override {
    total += method.size() + target.size() + static_cast<size_t>(version);
  }
  void on_response_impl(int code, boost::beast::string_view reason, int version, error_code&) override {
    total += static_cast<size_t>(code) + reason.size() + static_cast<size_t>(version);
  }
  void on_field_impl(http::field, boost::beast::string_view name, boost::beast::string_view value,
                     error_code&) override {
    total += name.size() + value.size();
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  size_t on_body_impl(boost::beast::string_view body, error_code&) override {
    total += body.size();
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, error_code&) override {
    total += body.size();
    return body.size();
  }
  void on_finish_impl(error_code&) override {}
};

template <bool kIsRequest>
void runBeast(benchmark::State& state, const std::string& msg) {
  std::optional<BeastSink<kIsRequest>> parser;
  for (auto _ : state) {
    parser.emplace();
    parser->eager(true);
    error_code ec;
    const size_t used = parser->put(boost::asio::const_buffer(msg.data(), msg.size()), ec);
    if (ec || used != msg.size() || !parser->is_done()) {
      state.SkipWithError("beast parse failed");
      break;
    }
    benchmark::DoNotOptimize(parser->total);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
}

// ------------------------------------------------------------------ cases

void BM_Http1_Request(benchmark::State& state) { runOurs(state, sdkRequest(), true); }
void BM_Http1_Request_Beast(benchmark::State& state) { runBeast<true>(state, sdkRequest()); }
void BM_Http1_Response(benchmark::State& state) { runOurs(state, providerResponse(), false); }
void BM_Http1_Response_Beast(benchmark::State& state) { runBeast<false>(state, providerResponse()); }
void BM_Http1_ResponseChunked(benchmark::State& state) { runOurs(state, providerResponseChunked(), false); }
void BM_Http1_ResponseChunked_Beast(benchmark::State& state) { runBeast<false>(state, providerResponseChunked()); }

BENCHMARK(BM_Http1_Request);
BENCHMARK(BM_Http1_Request_Beast);
BENCHMARK(BM_Http1_Response);
BENCHMARK(BM_Http1_Response_Beast);
BENCHMARK(BM_Http1_ResponseChunked);
BENCHMARK(BM_Http1_ResponseChunked_Beast);

}  // namespace
}  // namespace sluice::net::detail
