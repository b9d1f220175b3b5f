// The HTTP side of authtokend on cpp-httplib: routes, DRF's status codes
// and headers, JSON bodies for every error (404, 405, 413, 500 included),
// the body limit, and which address a request comes from.
#pragma once

#include "daemon/obtain_service.h"

#include "issuer/settings/issuer_settings.h"

#include <httplib.h>

namespace authtoken
{

// Registers every route and handler on `server`. The references must
// outlive the server.
void install_routes(httplib::Server &server, const IssuerSettings &settings,
                    const ObtainService &obtain, RedisPool &pool);

} // namespace authtoken
