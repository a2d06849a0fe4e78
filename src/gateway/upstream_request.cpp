#include "gateway/upstream_request.h"

#include "proto/rewrite.h"

namespace sluice::gateway {

net::UpstreamRequest upstreamRequest(std::string_view path, const Inspection& request, const std::string& body,
                                     std::string_view upstream_model, int64_t cap,
                                     const config::ProviderConfig& provider) {
  net::UpstreamRequest up;
  up.path = std::string(path);
  up.headers.push_back({"content-type", "application/json"});
  if (request.stream) up.headers.push_back({"accept", "text/event-stream"});
  proto::RewriteOptions rw;
  rw.model = upstream_model;
  if (request.has_output) {
    rw.output_cap = cap;
    rw.insert_field = request.endpoint == proto::Endpoint::kCompletions ? proto::CapField::kMaxTokens
                                                                        : proto::CapField::kMaxCompletionTokens;
  }
  rw.request_stream_usage = request.stream;
  up.body = proto::rewriteRequest(body, request.layout, rw);
  up.connect_timeout = std::chrono::milliseconds(provider.connect_timeout_ms);
  up.first_byte_timeout = std::chrono::milliseconds(provider.first_byte_timeout_ms);
  up.idle_timeout = std::chrono::milliseconds(provider.idle_timeout_ms);
  // A stream may run for many minutes; its idle and first-token deadlines guard it.
  up.total_timeout = request.stream ? std::chrono::hours(1) : std::chrono::milliseconds(provider.timeout_ms);
  return up;
}

}  // namespace sluice::gateway
