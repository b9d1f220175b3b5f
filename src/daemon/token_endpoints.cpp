#include "daemon/token_endpoints.h"

#include "core/drf_messages.h"
#include "daemon/directory_sync.h"
#include "daemon/event_log.h"
#include "daemon/token_authentication.h"
#include "drf/json_renderer.h"
#include "issuer/store/user_store.h"

#include <chrono>
#include <ctime>

namespace authtoken
{
namespace
{

constexpr std::string_view kLogoutPath = "/api-token-logout/";
constexpr std::string_view kLogoutAllPath = "/api-token-logout-all/";
constexpr std::string_view kTokensPath = "/api-tokens/";

// knox's Response(None, status=HTTP_204_NO_CONTENT): no body at all.
HttpResponse no_content()
{
    return json_answer(204, "");
}

const char *allowed_methods(TokenEndpoints::Route route)
{
    switch (route) {
    case TokenEndpoints::Route::logout:
    case TokenEndpoints::Route::logout_all:
        return "POST, OPTIONS";
    case TokenEndpoints::Route::tokens:
        return "GET, HEAD, OPTIONS";
    case TokenEndpoints::Route::token:
        break;
    }
    return "DELETE, OPTIONS";
}

const char *view_name(TokenEndpoints::Route route)
{
    switch (route) {
    case TokenEndpoints::Route::logout:
        return "Logout";
    case TokenEndpoints::Route::logout_all:
        return "Logout All";
    case TokenEndpoints::Route::tokens:
        return "Token List";
    case TokenEndpoints::Route::token:
        break;
    }
    return "Token Detail";
}

// What the log says the endpoint is.
const char *log_name(TokenEndpoints::Route route)
{
    switch (route) {
    case TokenEndpoints::Route::logout:
        return "logout";
    case TokenEndpoints::Route::logout_all:
        return "logout-all";
    case TokenEndpoints::Route::tokens:
        return "tokens";
    case TokenEndpoints::Route::token:
        break;
    }
    return "token";
}

bool method_allowed(TokenEndpoints::Route route, const std::string &method)
{
    switch (route) {
    case TokenEndpoints::Route::logout:
    case TokenEndpoints::Route::logout_all:
        return method == "POST";
    case TokenEndpoints::Route::tokens:
        return method == "GET" || method == "HEAD";
    case TokenEndpoints::Route::token:
        break;
    }
    return method == "DELETE";
}

// SimpleMetadata.determine_metadata() for a view without a serializer
// form (DRF 3.14: name, description, renders, parses).
HttpResponse options_answer(TokenEndpoints::Route route)
{
    nlohmann::ordered_json body;
    body["name"] = view_name(route);
    body["description"] = "";
    body["renders"] = {"application/json"};
    body["parses"] = {"application/json", "application/x-www-form-urlencoded",
                      "multipart/form-data"};
    HttpResponse res = json_answer(200, render_drf_json(body));
    res.set_header("Allow", allowed_methods(route));
    return res;
}

// ISO 8601 in UTC, as DRF's DateTimeField renders with USE_TZ.
nlohmann::ordered_json iso_time(std::int64_t unix_seconds)
{
    if (unix_seconds <= 0) {
        return nullptr;
    }
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buf);
}

nlohmann::ordered_json token_json(const TokenInfo &token,
                                  std::string_view current_digest)
{
    nlohmann::ordered_json t;
    t["id"] = token.id;
    t["name"] = token.name;
    t["created"] = token.created.empty()
                       ? nlohmann::ordered_json(nullptr)
                       : nlohmann::ordered_json(token.created);
    t["expires"] = iso_time(token.expires);
    t["last_used"] = iso_time(token.last_used);
    t["last_address"] = token.last_addr.empty()
                            ? nlohmann::ordered_json(nullptr)
                            : nlohmann::ordered_json(token.last_addr);
    t["current"] = token.digest == current_digest;
    return t;
}

std::int64_t unix_now()
{
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

} // namespace

std::optional<TokenEndpoints::Match>
TokenEndpoints::match(std::string_view path)
{
    if (path == kLogoutPath) {
        return Match{Route::logout, {}};
    }
    if (path == kLogoutAllPath) {
        return Match{Route::logout_all, {}};
    }
    if (path == kTokensPath) {
        return Match{Route::tokens, {}};
    }
    // /api-tokens/<id>/: one more segment, whatever it holds (an id that
    // is not one of the user's is a 404 once the user is known).
    if (path.size() > kTokensPath.size() + 1 &&
        path.substr(0, kTokensPath.size()) == kTokensPath &&
        path.back() == '/') {
        std::string_view id = path.substr(kTokensPath.size(),
                                          path.size() - kTokensPath.size() - 1);
        if (id.find('/') == std::string_view::npos) {
            return Match{Route::token, std::string(id)};
        }
    }
    return std::nullopt;
}

HttpResponse TokenEndpoints::handle(const Match &match,
                                    const HttpRequest &req) const noexcept
{
    try {
        return handle_or_throw(match, req);
    } catch (const RedisError &e) {
        log::error(std::string(log_name(match.route)) +
                   ": redis failed: " + e.what());
        HttpResponse res = json_answer(drf::kUnavailable);
        res.set_header("Retry-After", std::string(drf::kUnavailableRetryAfter));
        return res;
    } catch (const std::exception &e) {
        log::error(std::string(log_name(match.route)) + ": " + e.what());
        return json_answer(drf::kServerError);
    }
}

HttpResponse TokenEndpoints::handle_or_throw(const Match &match,
                                             const HttpRequest &req) const
{
    RedisPool::Lease conn = pool_.lease();
    UserStore store(*conn, scripts_, sealer_);
    if (directory_ != nullptr) {
        store.set_directory_fields(directory_->directory_fields_source());
    }
    const char *what = log_name(match.route);

    // APIView.initial() before the handler: authentication (and
    // IsAuthenticated) first, so that a wrong method without a valid
    // token is a 401, as in DRF.
    Authentication auth =
        authenticate_token(req, store, unix_now(), what, directory_);
    if (!auth.who) {
        log::info(req.method + " " + req.path + ": " +
                  std::to_string(auth.refusal.status));
        return std::move(auth.refusal);
    }
    const UserRecord &user = auth.who->user;
    const std::string &digest = auth.who->token_digest;
    const std::string who = log::quoted_username(user.username);

    if (req.method == "OPTIONS") {
        return options_answer(match.route);
    }
    if (!method_allowed(match.route, req.method)) {
        HttpResponse res = json_answer(
            405, render_drf_detail(drf::method_not_allowed_detail(req.method)));
        res.set_header("Allow", allowed_methods(match.route));
        log::info(req.method + " " + req.path + " for " + who + ": 405");
        return res;
    }

    try {
        switch (match.route) {
        case Route::logout:
            // knox's LogoutView: request._auth.delete(). A concurrent
            // logout may have deleted it first: still 204, it is gone.
            if (store.revoke_one(user.username, digest)) {
                metrics_.token_revoked();
            }
            log::info("logout for " + who + ": 204, token " +
                      digest.substr(0, kTokenIdLength) + " revoked");
            return no_content();
        case Route::logout_all: {
            int n = store.revoke_tokens(user.username);
            for (int i = 0; i < n; i++) {
                metrics_.token_revoked();
            }
            log::info("logout-all for " + who + ": 204, " + std::to_string(n) +
                      " token" + (n == 1 ? "" : "s") + " revoked");
            return no_content();
        }
        case Route::tokens: {
            nlohmann::ordered_json list = nlohmann::ordered_json::array();
            for (const TokenInfo &t : store.list_tokens(user)) {
                // cppcheck-suppress useStlAlgorithm
                list.push_back(token_json(t, digest));
            }
            return json_answer(200, render_drf_json(list),
                               CacheControl::no_store);
        }
        case Route::token:
            break;
        }
        // DELETE /api-tokens/<id>/: only among the caller's own tokens;
        // another user's id is as unknown as one that never was.
        for (const TokenInfo &t : store.list_tokens(user)) {
            if (t.id == match.id && store.revoke_one(user.username, t.digest)) {
                metrics_.token_revoked();
                log::info("DELETE token " + t.id + " for " + who + ": 204");
                return no_content();
            }
        }
    } catch (const NoSuchUser &) {
        // Deleted since it was authenticated: its tokens are gone too.
        HttpResponse res = json_answer(drf::kInvalidToken);
        res.set_header("WWW-Authenticate", std::string(kTokenKeyword));
        return res;
    }
    log::info("DELETE " + req.path + " for " + who + ": 404");
    return json_answer(drf::kNotFound);
}

} // namespace authtoken
