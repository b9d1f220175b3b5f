// The staff admin API: Django admin's User admin and DRF's TokenAdmin over
// HTTP, DRF router style, JSON in and out.
//
//   GET    /api-admin/users/[?search=S][&page=N]   list (PageNumberPagination)
//   POST   /api-admin/users/                       create (201)
//   GET    /api-admin/users/<username>/            one user
//   PATCH  /api-admin/users/<username>/            is_active, password
//   DELETE /api-admin/users/<username>/            delete (204)
//   POST   /api-admin/users/<username>/token/      regenerate (201 {"token"})
//   DELETE /api-admin/users/<username>/token/      revoke (204)
//
// Each request is authenticated by the caller's own token, checked here
// (token_authentication.h: no identity header is believed), then
// permission-checked: is_staff (or is_superuser) to come in (403
// otherwise); only a superuser may create staff or superusers, or change,
// delete or re-key a staff user or a superuser. Every change goes through
// issuer/admin/user_admin.h, the code path authtokenctl uses, and leaves
// one audit line in the daemon's log. docs/authtokend.md has the bodies and
// every error.
#pragma once

#include "daemon/concurrency_limit.h"
#include "daemon/http_server.h"

#include "issuer/password_hasher.h"
#include "issuer/settings/issuer_settings.h"
#include "issuer/store/redis_client.h"
#include "issuer/token_sealer.h"

#include <string_view>

namespace authtoken
{

class DirectorySync;

inline constexpr std::string_view kAdminPrefix = "/api-admin/";

class AdminApi
{
  public:
    // The references must outlive this. Password hashes (create, set
    // password) run under `hashing`, the daemon's bound on CPU work.
    AdminApi(const IssuerSettings &settings, RedisPool &pool,
             const ScriptLibrary &scripts, const TokenSealer &sealer,
             const passwords::HasherPolicy &policy, ConcurrencyLimit &hashing)
        : settings_(settings), pool_(pool), scripts_(scripts), sealer_(sealer),
          policy_(policy), hashing_(hashing)
    {
    }

    // Any request under kAdminPrefix, on a worker thread once its body is
    // in. Never throws: Redis failures answer 503 with Retry-After,
    // anything else 500, both logged.
    HttpResponse handle(const HttpRequest &req) const noexcept;

    // With a separate token directory: where a renewed token's expiry is
    // read (authenticate_token()). Set before the server starts.
    void set_directory(DirectorySync *directory) noexcept
    {
        directory_ = directory;
    }

  private:
    HttpResponse handle_or_throw(const HttpRequest &req) const;

    const IssuerSettings &settings_;
    RedisPool &pool_;
    const ScriptLibrary &scripts_;
    const TokenSealer &sealer_;
    passwords::HasherPolicy policy_;
    ConcurrencyLimit &hashing_;
    DirectorySync *directory_ = nullptr;
};

} // namespace authtoken
