// A user's own tokens over HTTP, beyond DRF (django-rest-knox 4.2's
// LogoutView and LogoutAllView, and a list knox has not):
//
//   POST   /api-token-logout/       the token the request carries: 204
//   POST   /api-token-logout-all/   every token of its user: 204
//   GET    /api-tokens/             the user's tokens (never a key): 200
//   DELETE /api-tokens/<id>/        one of them: 204, or 404 "Not found."
//                                   for an id that is not the user's
//
// Each request is authenticated by the token it carries, here, with DRF's
// TokenAuthentication (token_authentication.h): nginx in front runs
// `auth_token on`, but no identity header is trusted. Then, as DRF's
// APIView.dispatch() does, another method gets 405 with Allow, OPTIONS
// the view's metadata. Every answer is JSON in DRF's shapes except 204,
// which has no body (knox's Response(None, status=204)). Both modes of
// tokens_per_user serve them: with `one`, the user's one token is the
// list, and logging out deletes it (the next login makes a new one).
#pragma once

#include "daemon/http_server.h"
#include "daemon/issuer_metrics.h"

#include "issuer/settings/issuer_settings.h"
#include "issuer/store/redis_client.h"
#include "issuer/token_sealer.h"

#include <optional>
#include <string>
#include <string_view>

namespace authtoken
{

class DirectorySync;

class TokenEndpoints
{
  public:
    // Every token revoked here is counted in `metrics`
    // (authtokend_tokens_revoked_total).
    TokenEndpoints(RedisPool &pool, const ScriptLibrary &scripts,
                   const TokenSealer &sealer, IssuerMetrics &metrics)
        : pool_(pool), scripts_(scripts), sealer_(sealer), metrics_(metrics)
    {
    }

    // The routes above: Route::logout, logout_all, tokens, or token with
    // the id (the path segment after /api-tokens/, any text); nullopt for
    // other paths.
    enum class Route { logout, logout_all, tokens, token };
    struct Match {
        Route route;
        std::string id;
    };
    static std::optional<Match> match(std::string_view path);

    // With a separate token directory: where a renewed token's expiry is
    // read (authenticate_token()). Set before the server starts.
    void set_directory(DirectorySync *directory) noexcept
    {
        directory_ = directory;
    }

    // Runs on a worker thread (it waits for Redis). Never throws: Redis
    // failures answer 503 with Retry-After, anything else 500.
    HttpResponse handle(const Match &match,
                        const HttpRequest &req) const noexcept;

  private:
    HttpResponse handle_or_throw(const Match &match,
                                 const HttpRequest &req) const;

    RedisPool &pool_;
    const ScriptLibrary &scripts_;
    const TokenSealer &sealer_;
    IssuerMetrics &metrics_;
    DirectorySync *directory_ = nullptr;
};

} // namespace authtoken
