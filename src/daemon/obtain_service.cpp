#include "obtain_service.h"

#include "core/drf_messages.h"
#include "issuer/event_log.h"
#include "issuer/obtain_request.h"
#include "issuer/user_store.h"

#include <nlohmann/json.hpp>

#include <chrono>

namespace authtoken
{
namespace
{

// rest_framework/authtoken/serializers.py, AuthTokenSerializer.validate()
constexpr std::string_view kUnableToLogInBody =
    R"({"non_field_errors":["Unable to log in with provided credentials."]})";
// APIException.default_detail, for what should never happen.
constexpr std::string_view kServerErrorBody =
    R"({"detail":"A server error occurred."})";

// Usernames come from the client: keep log lines short and one line.
std::string loggable(std::string_view username)
{
    std::string out;
    for (char c : username.substr(0, 64)) {
        unsigned char u = static_cast<unsigned char>(c);
        out.push_back(u < 0x20 || u == 0x7f || c == '"' ? '?' : c);
    }
    return '"' + out + '"';
}

std::string token_body(const std::string &key)
{
    return nlohmann::json{{"token", key}}.dump();
}

} // namespace

ObtainAnswer ObtainService::obtain(std::string_view content_type,
                                   std::string_view body,
                                   const std::string &client) const noexcept
{
    try {
        return obtain_or_throw(content_type, body, client);
    } catch (const RedisError &e) {
        log::error("obtain-token from " + client +
                   ": redis failed: " + e.what());
        return {503, std::string(drf::kUnavailableBody), 0};
    } catch (const std::exception &e) {
        log::error("obtain-token from " + client + ": " + e.what());
        return {500, std::string(kServerErrorBody), 0};
    }
}

ObtainAnswer ObtainService::obtain_or_throw(std::string_view content_type,
                                            std::string_view body,
                                            const std::string &client) const
{
    ObtainParseResult parsed = parse_obtain_request(content_type, body);
    if (!parsed.credentials) {
        log::info("obtain-token from " + client + ": " +
                  std::to_string(parsed.status) + " (request body)");
        return {parsed.status, parsed.body, 0};
    }
    const ObtainCredentials &credentials = *parsed.credentials;
    const std::string who = loggable(credentials.username);

    RedisPool::Lease conn = pool_.lease();
    std::int64_t wait = throttle_.wait_ms(*conn, credentials.username, client);
    if (wait > 0) {
        long seconds = static_cast<long>(retry_after_seconds(wait));
        log::info("obtain-token for " + who + " from " + client +
                  ": 429 throttled for " + std::to_string(seconds) + "s");
        return {429, throttled_body(seconds), seconds};
    }

    UserStore store(*conn, scripts_, sealer_);
    std::optional<UserRecord> user = store.find_user(credentials.username);
    bool password_ok = false;
    {
        ConcurrencyLimit::Permit cpu(hashing_);
        if (!user || !passwords::is_password_usable(user->password)) {
            // Same cost as a real check: timing must not tell which
            // usernames exist (Django runs the default hasher once for the
            // same reason).
            passwords::run_dummy_check(credentials.password, policy_);
        } else {
            password_ok =
                passwords::check_password(credentials.password, user->password);
        }
    }

    if (password_ok && passwords::must_update(user->password, policy_)) {
        // Django's check_password setter: upgrade the hash on success, even
        // before is_active is looked at.
        std::string upgraded;
        {
            ConcurrencyLimit::Permit cpu(hashing_);
            upgraded = passwords::make_password(credentials.password, policy_);
        }
        if (store.set_password(credentials.username, upgraded,
                               user->password)) {
            log::info("obtain-token for " + who + ": password hash upgraded");
        }
    }

    if (!password_ok || !user->is_active) {
        throttle_.record_failure(*conn, credentials.username, client);
        log::info("obtain-token for " + who + " from " + client + ": 400 " +
                  (!user          ? "unknown user"
                   : !password_ok ? "wrong password"
                                  : "inactive user"));
        return {400, std::string(kUnableToLogInBody), 0};
    }

    IssuedToken token;
    try {
        token = store.get_or_create_token(credentials.username);
    } catch (const NoSuchUser &) {
        // Deleted between the password check and now.
        return {400, std::string(kUnableToLogInBody), 0};
    }
    log::info("obtain-token for " + who + " from " + client + ": 200" +
              (token.created ? " (new token)" : ""));
    return {200, token_body(token.key), 0};
}

} // namespace authtoken
