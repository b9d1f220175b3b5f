// The HTTP side of authtokend on cpp-httplib: routes, DRF's status codes
// and headers, JSON bodies for every error (404, 405, 413, 500 included),
// the body limit, and which address a request comes from.
#pragma once

#include "daemon/issuer_metrics.h"
#include "daemon/obtain_service.h"

#include "issuer/settings/issuer_settings.h"

#include <httplib.h>

namespace authtoken
{

// Registers every route and handler on `server`, GET /metrics only when
// `metrics` is not null. The references must outlive the server.
void install_routes(httplib::Server &server, const IssuerSettings &settings,
                    const ObtainService &obtain, RedisPool &pool,
                    const IssuerMetrics *metrics);

} // namespace authtoken
