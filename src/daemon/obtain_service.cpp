#include "daemon/obtain_service.h"

#include "core/drf_messages.h"
#include "core/token_digest.h"
#include "daemon/client_address.h"
#include "daemon/event_log.h"
#include "drf/json_renderer.h"
#include "drf/obtain_request.h"
#include "issuer/store/user_store.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

namespace authtoken
{
namespace
{

std::string token_body(const std::string &key)
{
    nlohmann::ordered_json body;
    body["token"] = key;
    return render_drf_json(body);
}

// AuthTokenSerializer.validate(): wrong password, unknown or inactive user.
ObtainAnswer unable_to_log_in()
{
    return {400, render_drf_non_field_error(drf::kUnableToLogIn), 0};
}

// What a tokens_per_user = many login did besides making its token, for
// its log line: expired tokens swept, the oldest dropped at
// token_limit_per_user, or both.
std::string many_login_outcome(const IssuedToken &token)
{
    std::string what = " (new token";
    if (token.swept > 0) {
        what += ", " + std::to_string(token.swept) + " expired token" +
                (token.swept == 1 ? "" : "s") + " swept";
    }
    const int at_limit = token.dropped - token.swept;
    if (at_limit > 0) {
        what += at_limit == 1 ? ", the oldest"
                              : ", the " + std::to_string(at_limit) + " oldest";
        what += " dropped at the limit";
    }
    return what + ")";
}

} // namespace

template <typename Hash> auto ObtainService::hash(Hash &&hash) const
{
    std::optional<ConcurrencyLimit::Permit> slot;
    {
        IssuerMetrics::HashWait wait(metrics_);
        slot.emplace(hashing_);
    }
    // Ends (and stops counting in flight) before the slot is released.
    IssuerMetrics::HashRun run(metrics_);
    return hash();
}

ObtainAnswer ObtainService::obtain(std::string_view content_type,
                                   std::string_view body,
                                   const std::string &client) const noexcept
{
    try {
        return obtain_or_throw(content_type, body, client);
    } catch (const RedisError &e) {
        log::error("obtain-token from " + client +
                   ": redis failed: " + e.what());
        metrics_.login(LoginOutcome::unavailable);
        return {drf::kUnavailable.status, std::string(drf::kUnavailable.body),
                0};
    } catch (const std::exception &e) {
        log::error("obtain-token from " + client + ": " + e.what());
        metrics_.login(LoginOutcome::server_error);
        return {drf::kServerError.status, std::string(drf::kServerError.body),
                0};
    }
}

ObtainAnswer ObtainService::obtain_or_throw(std::string_view content_type,
                                            std::string_view body,
                                            const std::string &client) const
{
    const bool many = token_policy_.mode == TokensPerUser::many;
    ObtainParseResult parsed = parse_obtain_request(content_type, body, many);
    if (!parsed.credentials) {
        log::info("obtain-token from " + client + ": " +
                  std::to_string(parsed.status) + " (request body)");
        metrics_.login(LoginOutcome::bad_request);
        return {parsed.status, parsed.body, 0};
    }
    const ObtainCredentials &credentials = *parsed.credentials;
    const std::string who = log::quoted_username(credentials.username);

    const std::string subject = throttle_subject(client);
    ThrottleTicket ticket;
    {
        RedisPool::Lease conn = pool_.lease();
        ticket = throttle_.reserve(*conn, credentials.username, subject);
    }
    if (ticket.wait_ms > 0) {
        long seconds = static_cast<long>(retry_after_seconds(ticket.wait_ms));
        log::info("obtain-token for " + who + " from " + client +
                  ": 429 throttled for " + std::to_string(seconds) + "s");
        metrics_.login(LoginOutcome::throttled);
        return {429, render_drf_detail(drf::throttled_detail(seconds)),
                seconds};
    }
    if (ticket.delay_ms > 0) {
        // The username's own window is full: slow down, never lock out.
        // No Redis connection and no hashing slot is held meanwhile.
        log::warn("obtain-token for " + who + " from " + client + ": delayed " +
                  std::to_string(ticket.delay_ms) +
                  " ms, too many failed logins for this username");
        std::this_thread::sleep_for(std::chrono::milliseconds(ticket.delay_ms));
    }

    RedisPool::Lease conn = pool_.lease();
    UserStore store(*conn, scripts_, sealer_);
    store.set_token_ttl(token_ttl_);
    store.set_token_renewal(auto_refresh_, max_ttl_);
    store.set_renewed_expiry(renewed_expiry_);
    std::optional<UserRecord> user = store.find_user(credentials.username);
    // Django's verify_password(): an unknown user, an unusable, empty,
    // unknown or malformed hash runs the dummy hash, and a wrong password
    // against a cheaper hash runs the missing iterations, so the time taken
    // tells nothing about the user.
    passwords::PasswordVerdict verdict = hash([&] {
        return passwords::verify_password(credentials.password,
                                          user ? user->password : std::string(),
                                          policy_);
    });

    // The hash this login verified, as stored once the token is issued.
    std::string verified = user ? user->password : std::string();
    if (verdict.matched && verdict.must_update) {
        // Django's check_password setter: upgrade the hash on success, even
        // before is_active is looked at.
        std::string upgraded = hash([&] {
            return passwords::make_password(credentials.password, policy_);
        });
        if (store.set_password(credentials.username, upgraded,
                               user->password)) {
            verified = upgraded;
            log::info("obtain-token for " + who + ": password hash upgraded");
        }
    }

    const bool failed = !verdict.matched || !user->is_active;
    if (failed) {
        throttle_.finish(*conn, ticket, true);
        // The stored password's own state when it could never match
        // (plain text from an import, unusable, unsupported hasher): the
        // real reason, and never the password itself.
        passwords::PasswordFormat format =
            user ? passwords::classify_password(user->password)
                 : passwords::PasswordFormat::usable;
        log::info(
            "obtain-token for " + who + " from " + client + ": 400 " +
            (!user ? "unknown user"
             : !verdict.matched && format != passwords::PasswordFormat::usable
                 ? passwords::describe(format)
             : !verdict.matched ? "wrong password"
                                : "inactive user"));
        metrics_.login(verdict.matched ? LoginOutcome::inactive
                                       : LoginOutcome::wrong_credentials);
        return unable_to_log_in();
    }

    IssuedToken token;
    try {
        token = many ? store.add_token_for_login(credentials.username,
                                                 credentials.name,
                                                 token_policy_, *user, verified)
                     : store.issue_token_for_login(credentials.username, *user,
                                                   verified);
    } catch (const TokenLimitReached &) {
        // The password was right: not a failed login for the throttle.
        throttle_.finish(*conn, ticket, false);
        log::info("obtain-token for " + who + " from " + client +
                  ": 403 token_limit_per_user (" +
                  std::to_string(token_policy_.limit) + ") reached");
        metrics_.login(LoginOutcome::token_limit);
        return {403, render_drf_detail(drf::kTokenLimitReached), 0};
    } catch (const NoSuchUser &) {
        throttle_.finish(*conn, ticket, true);
        log::info("obtain-token for " + who + " from " + client +
                  ": 400 user deleted during the login");
        metrics_.login(LoginOutcome::wrong_credentials);
        return unable_to_log_in();
    } catch (const CredentialsChanged &) {
        throttle_.finish(*conn, ticket, true);
        log::info("obtain-token for " + who + " from " + client +
                  ": 400 password, status or token changed during the login");
        metrics_.login(LoginOutcome::wrong_credentials);
        return unable_to_log_in();
    }
    // Made in Redis whatever happens next.
    if (token.created) {
        metrics_.token_created();
    }
    if (token.replaced) {
        for (int i = 0; i < std::max(token.dropped, 1); i++) {
            metrics_.token_revoked();
        }
    }
    throttle_.finish(*conn, ticket, false);
    log::info("obtain-token for " + who + " from " + client + ": 200" +
              (many             ? many_login_outcome(token)
               : token.replaced ? " (new token, replacing the old one)"
               : token.created  ? " (new token)"
                                : ""));
    ObtainAnswer answer{200, token_body(token.key), 0};
    answer.settle = [this](bool withheld) {
        metrics_.login(withheld ? LoginOutcome::withheld : LoginOutcome::ok);
    };
    if (many && token.created) {
        // Nobody but this answer's reader can hold the key: if the answer
        // is withheld, the token would count toward token_limit_per_user
        // with no client to use or log it out.
        Sha256Hex hex = token_digest_hex(token.key);
        answer.withdraw = [this, username = credentials.username,
                           digest = std::string(hex.data(), hex.size()),
                           client] {
            withdraw_token(username, digest, client);
        };
    }
    return answer;
}

void ObtainService::withdraw_token(const std::string &username,
                                   const std::string &digest_hex,
                                   const std::string &client) const noexcept
{
    const std::string what =
        "obtain-token for " + log::quoted_username(username) + " from " +
        client + ": the new token " + digest_hex.substr(0, kTokenIdLength);
    if (withdraw_unheld_token(pool_, scripts_, sealer_, username, digest_hex,
                              what)) {
        metrics_.token_revoked();
    }
}

bool withdraw_unheld_token(RedisPool &pool, const ScriptLibrary &scripts,
                           const TokenSealer &sealer,
                           const std::string &username,
                           const std::string &digest_hex,
                           const std::string &what) noexcept
{
    try {
        RedisPool::Lease conn = pool.lease();
        UserStore store(*conn, scripts, sealer);
        if (store.revoke_one(username, digest_hex)) {
            log::warn(what + " revoked: its answer was withheld (503)");
            return true;
        }
        log::info(what + " was already gone when its answer was withheld");
    } catch (const NoSuchUser &) {
        log::info(what + " went with its user, deleted meanwhile");
    } catch (const std::exception &e) {
        log::error(what +
                   ": cannot revoke it after its answer was withheld (503): " +
                   e.what() +
                   "; it stays, unused, until it expires or the user's "
                   "logout-all or an admin revokes it");
    }
    return false;
}

} // namespace authtoken
