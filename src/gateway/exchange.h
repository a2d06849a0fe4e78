#pragma once
/// @file
/// @brief One API request through the gateway, from its parsed head and
/// body to its usage record (see exchange.cpp for the path, stage by stage).

#include <memory>

#include "net/http.h"

namespace sluice::gateway {

class Worker;

/// Serves `request` on `worker`'s loop; `stream` answers it. Every request
/// started here yields exactly one usage record, and its budget reservation
/// is always settled or given back.
void serveExchange(Worker& worker, net::HttpRequest&& request, std::shared_ptr<net::ServerStream> stream);

}  // namespace sluice::gateway
