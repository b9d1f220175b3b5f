// POST /api-token-auth/ without the HTTP: DRF's obtain_auth_token view,
// from the raw body to the answer. authenticate() as Django's ModelBackend
// does it (unknown users cost one dummy hash, inactive users fail, old
// hashes are upgraded), the failed-login throttle, then the user's one
// token, created if it has none. Every password hash (check, dummy check,
// upgrade) runs under `hashing`, the daemon's bound on CPU work. Every
// answer, hash and token made is counted in `metrics`.
#pragma once

#include "daemon/concurrency_limit.h"
#include "daemon/issuer_metrics.h"

#include "issuer/store/login_throttle.h"
#include "issuer/password_hasher.h"
#include "issuer/store/redis_client.h"
#include "issuer/store/user_store.h"
#include "issuer/token_sealer.h"

#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace authtoken
{

struct ObtainAnswer {
    ObtainAnswer(int status_, std::string body_, long retry_after_ = 0)
        : status(status_), body(std::move(body_)), retry_after(retry_after_)
    {
    }

    int status = 200;
    std::string body;     // compact JSON
    long retry_after = 0; // seconds, set with 429
    // With a 200 that made a token only this answer would hand out
    // (tokens_per_user = many): revokes that token, for when the answer is
    // withheld (HttpResponse::withdraw). Empty otherwise. Never throws.
    std::function<void()> withdraw;
    // With a 200: counts the login once the caller knows whether the
    // answer is sent (false: `ok`) or withheld (true: `withheld`)
    // (HttpResponse::settle). Empty otherwise. Never throws.
    std::function<void(bool withheld)> settle;
};

// Revokes the token `digest_hex` of `username` that only a withheld answer
// would have handed out (a tokens_per_user = many key, shown once: a login,
// or an admin regeneration, answered 503 because the token directory did
// not take the write; HttpResponse::withdraw), through the outbox as every
// revocation, so the directory applies the creation and this in order and
// ends without the token. `what` begins the log lines ("obtain-token for
// ... the new token <id>"). True when it was revoked; false when it was
// gone already or could not be revoked (logged: it stays until it expires
// or is revoked). Never throws.
bool withdraw_unheld_token(RedisPool &pool, const ScriptLibrary &scripts,
                           const TokenSealer &sealer,
                           const std::string &username,
                           const std::string &digest_hex,
                           const std::string &what) noexcept;

class ObtainService
{
  public:
    ObtainService(RedisPool &pool, const ScriptLibrary &scripts,
                  const TokenSealer &sealer, const LoginThrottle &throttle,
                  const passwords::HasherPolicy &policy,
                  ConcurrencyLimit &hashing, IssuerMetrics &metrics)
        : pool_(pool), scripts_(scripts), sealer_(sealer), throttle_(throttle),
          policy_(policy), hashing_(hashing), metrics_(metrics)
    {
    }

    // Tokens this service creates expire `seconds` after their creation
    // (the token_ttl setting); 0, the default, = never (DRF).
    void set_token_ttl(std::int64_t seconds)
    {
        token_ttl_ = seconds;
    }
    // token_auto_refresh and token_max_ttl: UserStore::set_token_renewal().
    void set_token_renewal(bool auto_refresh, std::int64_t max_ttl_seconds)
    {
        auto_refresh_ = auto_refresh;
        max_ttl_ = max_ttl_seconds;
    }

    // tokens_per_user and its limit: with `many` each login creates a new
    // token (knox's LoginView), named by the body's `name` field.
    void set_token_policy(const TokenPolicy &policy)
    {
        token_policy_ = policy;
    }

    // With a separate token directory: a DRF-mode login keeps the token the
    // edges still renew (UserStore::set_renewed_expiry). Set before the
    // server starts.
    void set_renewed_expiry(UserStore::RenewedExpiry source)
    {
        renewed_expiry_ = std::move(source);
    }

    // Never throws: Redis failures answer 503, anything else 500, and both
    // are logged with their cause.
    ObtainAnswer obtain(std::string_view content_type, std::string_view body,
                        const std::string &client) const noexcept;

  private:
    ObtainAnswer obtain_or_throw(std::string_view content_type,
                                 std::string_view body,
                                 const std::string &client) const;
    // ObtainAnswer::withdraw: revokes the token `digest_hex` that a login
    // of `username` made, whose answer was withheld; logs what happened.
    void withdraw_token(const std::string &username,
                        const std::string &digest_hex,
                        const std::string &client) const noexcept;
    // Runs `hash` under a hashing slot, timed and counted.
    template <typename Hash> auto hash(Hash &&hash) const;

    RedisPool &pool_;
    const ScriptLibrary &scripts_;
    const TokenSealer &sealer_;
    const LoginThrottle &throttle_;
    passwords::HasherPolicy policy_;
    ConcurrencyLimit &hashing_;
    IssuerMetrics &metrics_;
    std::int64_t token_ttl_ = 0;
    bool auto_refresh_ = false;
    std::int64_t max_ttl_ = 0;
    TokenPolicy token_policy_;
    UserStore::RenewedExpiry renewed_expiry_;
};

} // namespace authtoken
