// The HTTP side of authtokend: its routes, DRF's status codes and headers,
// JSON bodies for every error (404, 405, 413, 500 included), the body
// limit, and which address a request comes from. The server itself
// (connections, limits, threads) is http_server.h.
#pragma once

#include "daemon/admin_api.h"
#include "daemon/directory_sync.h"
#include "daemon/http_server.h"
#include "daemon/issuer_metrics.h"
#include "daemon/obtain_service.h"
#include "daemon/token_endpoints.h"

#include "issuer/settings/issuer_settings.h"

namespace authtoken
{

// Every route of the daemon, dispatched in one place (route() in
// http_front.cpp); GET /metrics only when `metrics` is not null, the staff
// admin API (/api-admin/) only when `admin` is not null. The references
// must outlive the server. With `sync`, a writing request's 2xx answer
// waits for DirectorySync::settle() (503 when the token directory does not
// take the change) and /healthz shows the directory's pending entries.
Router make_router(const IssuerSettings &settings, const ObtainService &obtain,
                   const TokenEndpoints &tokens, RedisPool &pool,
                   const IssuerMetrics *metrics,
                   const AdminApi *admin = nullptr,
                   DirectorySync *sync = nullptr);

} // namespace authtoken
