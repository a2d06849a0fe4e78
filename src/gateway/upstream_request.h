#pragma once
/// @file
/// @brief What one attempt sends upstream: the client's body rewritten for
/// the attempt's model and output cap (proto/rewrite.h: only the fields the
/// inspection located change; a stream asks for its usage), and the
/// provider's timeouts. Pure.

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"
#include "gateway/inspection.h"
#include "net/http.h"

namespace sluice::gateway {

[[nodiscard]] net::UpstreamRequest upstreamRequest(std::string_view path, const Inspection& request,
                                                   const std::string& body, std::string_view upstream_model,
                                                   int64_t cap, const config::ProviderConfig& provider);

}  // namespace sluice::gateway
