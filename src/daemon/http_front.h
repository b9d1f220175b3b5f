// The HTTP side of authtokend: its routes, DRF's status codes and headers,
// JSON bodies for every error (404, 405, 413, 500 included), the body
// limit, and which address a request comes from. The server itself
// (connections, limits, threads) is http_server.h.
#pragma once

#include "daemon/http_server.h"
#include "daemon/issuer_metrics.h"
#include "daemon/obtain_service.h"
#include "daemon/token_endpoints.h"

#include "issuer/settings/issuer_settings.h"

namespace authtoken
{

// Every route of the daemon, dispatched in one place (route() in
// http_front.cpp); GET /metrics only when `metrics` is not null. The
// references must outlive the server.
Router make_router(const IssuerSettings &settings, const ObtainService &obtain,
                   const TokenEndpoints &tokens, RedisPool &pool,
                   const IssuerMetrics *metrics);

} // namespace authtoken
