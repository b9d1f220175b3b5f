#include "daemon/admin_api.h"

#include "core/drf_messages.h"
#include "core/token_digest.h"
#include "daemon/directory_sync.h"
#include "daemon/event_log.h"
#include "daemon/obtain_service.h"
#include "daemon/token_authentication.h"
#include "drf/char_field.h"
#include "drf/form_parser.h"
#include "drf/json_parser.h"
#include "drf/json_renderer.h"
#include "drf/pagination.h"
#include "drf/parser_negotiation.h"
#include "issuer/admin/user_admin.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace authtoken
{
namespace
{

constexpr std::string_view kUsersPath = "users/";
constexpr const char *kAllowList = "GET, POST, HEAD, OPTIONS";
constexpr const char *kAllowUser = "GET, PATCH, DELETE, HEAD, OPTIONS";
constexpr const char *kAllowToken = "POST, DELETE, OPTIONS";

// Every answer of this API but the refusals of token_authentication.h:
// they name users and, on creation and regeneration, hold a key.
constexpr CacheControl kNoStore = CacheControl::no_store;

HttpResponse no_content()
{
    return json_answer(204, "", kNoStore);
}

HttpResponse validation_error(const AdminValidationError::Errors &errors)
{
    nlohmann::ordered_json body = nlohmann::ordered_json::object();
    for (const auto &[field, messages] : errors) {
        body[field] = messages;
    }
    return json_answer(400, render_drf_json(body), kNoStore);
}

HttpResponse field_error(std::string_view field, std::string_view message)
{
    return validation_error({{std::string(field), {std::string(message)}}});
}

std::int64_t unix_now()
{
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The user as the API shows it: the fields of `authtokenctl users --json`
// and the token's dates; never the password hash or the key. With
// tokens_per_user = many, `tokens` counts the user's tokens (and
// has_token says whether there is any).
nlohmann::ordered_json user_json(const UserRecord &u, std::int64_t now,
                                 std::optional<std::size_t> tokens)
{
    bool has_token = !u.token_digest.empty();
    nlohmann::ordered_json j;
    j["id"] = u.uid;
    j["username"] = u.username;
    j["email"] = u.email;
    j["is_active"] = u.is_active;
    j["is_staff"] = u.is_staff;
    j["is_superuser"] = u.is_superuser;
    j["date_joined"] = u.date_joined;
    j["has_token"] = has_token && !u.token_expired(now);
    j["token_expired"] = u.token_expired(now);
    j["token_created"] = has_token ? nlohmann::ordered_json(u.token_created)
                                   : nlohmann::ordered_json(nullptr);
    j["token_expires"] = has_token && u.token_expires != 0
                             ? nlohmann::ordered_json(u.token_expires)
                             : nlohmann::ordered_json(nullptr);
    if (tokens) {
        j["has_token"] = *tokens > 0;
        j["tokens"] = *tokens;
    }
    return j;
}

using QueryFields = std::vector<FormField>;

// --- request bodies -------------------------------------------------------

struct Body {
    std::map<std::string, DataValue, std::less<>> members;
};

// The request's JSON object (parser_classes = [JSONParser]); an empty body
// is an empty object, as DRF's request.data of a request without content.
// Else the whole error answer.
std::variant<Body, HttpResponse> read_body(const HttpRequest &req)
{
    if (req.body.empty()) {
        return Body{};
    }
    std::string content_type = req.header("Content-Type");
    if (select_body_parser(content_type) != BodyParser::json) {
        return json_answer(
            415,
            render_drf_detail(drf::unsupported_media_type_detail(content_type)),
            kNoStore);
    }
    JsonParseResult parsed =
        parse_json_body(req.body, request_text_encoding(content_type),
                        {"username", "password", "email", "is_active",
                         "is_staff", "is_superuser", "revoke_token"});
    if (!parsed.body) {
        return json_answer(400, render_drf_detail(parsed.error), kNoStore);
    }
    if (parsed.body->root.type == DataValue::Type::none) {
        return json_answer(
            400, render_drf_non_field_error(drf::kNoDataProvided), kNoStore);
    }
    if (parsed.body->root.type != DataValue::Type::dict) {
        return json_answer(400,
                           render_drf_non_field_error(drf::invalid_data_message(
                               python_type_name(parsed.body->root.type))),
                           kNoStore);
    }
    return Body{std::move(parsed.body->members)};
}

const DataValue *member(const Body &body, std::string_view name)
{
    auto it = body.members.find(name);
    return it == body.members.end() ? nullptr : &it->second;
}

// DRF's BooleanField.to_internal_value(): its TRUE_VALUES / FALSE_VALUES
// (strings, the numbers 1 and 0, true and false); null is "may not be
// null", anything else "Must be a valid boolean.".
std::variant<bool, std::string_view> boolean_field(const DataValue &v)
{
    static const char *const kTrue[] = {"t",   "T",   "y",    "Y",    "yes",
                                        "Yes", "YES", "true", "True", "TRUE",
                                        "on",  "On",  "ON",   "1"};
    static const char *const kFalse[] = {
        "f",     "F",     "n",     "N",   "no",  "No",  "NO",
        "false", "False", "FALSE", "off", "Off", "OFF", "0"};
    if (v.type == DataValue::Type::none) {
        return drf::kFieldNull;
    }
    if (v.type == DataValue::Type::bool_) {
        return v.text == "True";
    }
    if (v.type == DataValue::Type::str || v.type == DataValue::Type::int_) {
        auto is = [&v](const char *text) { return v.text == text; };
        if (std::any_of(std::begin(kTrue), std::end(kTrue), is)) {
            return true;
        }
        if (std::any_of(std::begin(kFalse), std::end(kFalse), is)) {
            return false;
        }
    }
    return drf::kNotABoolean;
}

// --- the views ----------------------------------------------------------

class AdminRequest
{
  public:
    AdminRequest(
        const HttpRequest &req, const IssuerSettings &settings,
        UserStore &store, const passwords::HasherPolicy &policy,
        ConcurrencyLimit &hashing, const UserRecord &caller,
        std::function<void(const std::string &, const std::string &)> withdraw)
        : req_(req), settings_(settings), store_(store), hashing_(hashing),
          caller_(caller), withdraw_(std::move(withdraw)),
          admin_(store, policy, settings.auto_create_token, settings.tokens,
                 [](const std::string &line) { log::info(line); }),
          actor_{caller.username, "http"}
    {
    }

    HttpResponse list();
    HttpResponse create();
    HttpResponse retrieve(const std::string &name);
    HttpResponse update(const std::string &name);
    HttpResponse destroy(const std::string &name);
    HttpResponse regenerate(const std::string &name);
    HttpResponse revoke(const std::string &name);

  private:
    // The target, or 404; and 403 when the caller may not change it.
    std::variant<UserRecord, HttpResponse> target(const std::string &name,
                                                  bool to_change);
    HttpResponse denied(const std::string &what);
    nlohmann::ordered_json json_of(const UserRecord &user, std::int64_t now)
    {
        return user_json(user, now,
                         admin_.many_tokens() ? std::optional<std::size_t>(
                                                    store_.count_tokens(user))
                                              : std::nullopt);
    }

    const HttpRequest &req_;
    const IssuerSettings &settings_;
    UserStore &store_;
    ConcurrencyLimit &hashing_;
    const UserRecord &caller_;
    // withdraw_unheld_token() for (username, digest), on the worker thread.
    std::function<void(const std::string &, const std::string &)> withdraw_;
    UserAdmin admin_;
    AdminActor actor_;
};

HttpResponse AdminRequest::denied(const std::string &what)
{
    log::info("admin: " + req_.method + " " + req_.path + " by " +
              log::quoted_username(caller_.username) + ": 403 (" + what +
              " needs a superuser)");
    return permission_denied();
}

std::variant<UserRecord, HttpResponse>
AdminRequest::target(const std::string &name, bool to_change)
{
    std::optional<UserRecord> user = admin_.find_user(name);
    if (!user) {
        return json_answer(drf::kNotFound, kNoStore);
    }
    // Staff who are not superusers manage ordinary users only: changing a
    // staff user or a superuser (its password, its token) would let them
    // act as one.
    if (to_change && !caller_.is_superuser &&
        (user->is_staff || user->is_superuser)) {
        return denied("changing a staff user or a superuser");
    }
    return *user;
}

HttpResponse AdminRequest::list()
{
    std::optional<QueryFields> query =
        parse_urlencoded_form(req_.query, TextEncoding::utf8);
    if (!query) {
        return json_answer(400, render_drf_detail(drf::kTooManyFormFields),
                           kNoStore);
    }
    std::vector<UserRecord> users =
        admin_.list_users(query_get(*query, "search").value_or(""));
    std::size_t size = settings_.admin_page_size;
    std::size_t num_pages = page_count(users.size(), size);
    std::optional<std::size_t> page =
        valid_page(query_get(*query, "page").value_or("1"), num_pages);
    if (!page) {
        return json_answer(drf::kInvalidPage, kNoStore);
    }
    const std::size_t n = *page;
    // request.build_absolute_uri(): the Host header as sent (nginx must
    // pass it: proxy_set_header Host $http_host), https only when a
    // trusted proxy says so in X-Forwarded-Proto.
    std::string host = req_.header("Host");
    // (Any peer of a unix socket is a trusted proxy, as for the client's
    // address: client_address.h.)
    bool https = req_.header("X-Forwarded-Proto") == "https" &&
                 (req_.peer.empty() ||
                  std::find(settings_.trusted_proxies.begin(),
                            settings_.trusted_proxies.end(),
                            req_.peer) != settings_.trusted_proxies.end());
    std::string base = (https ? "https://" : "http://") +
                       (host.empty() ? std::string("localhost") : host) +
                       req_.path;
    nlohmann::ordered_json body;
    body["count"] = users.size();
    body["next"] = n < num_pages
                       ? nlohmann::ordered_json(page_link(base, *query, n + 1))
                       : nlohmann::ordered_json(nullptr);
    body["previous"] =
        n > 1 ? nlohmann::ordered_json(page_link(
                    base, *query,
                    n == 2 ? std::nullopt : std::optional<std::size_t>(n - 1)))
              : nlohmann::ordered_json(nullptr);
    body["results"] = nlohmann::ordered_json::array();
    std::int64_t now = unix_now();
    // The page's renewed expiries, in one read of the directory.
    std::vector<UserRecord *> shown;
    for (std::size_t i = (n - 1) * size; i < users.size() && i < n * size;
         i++) {
        shown.push_back(&users[i]);
    }
    store_.show_directory_expiry(shown);
    for (const UserRecord *user : shown) {
        body["results"].push_back(json_of(*user, now));
    }
    return json_answer(200, render_drf_json(body), kNoStore);
}

HttpResponse AdminRequest::create()
{
    auto read = read_body(req_);
    if (auto *answer = std::get_if<HttpResponse>(&read)) {
        return std::move(*answer);
    }
    const Body &body = std::get<Body>(read);
    AdminValidationError::Errors errors;
    CreateUserRequest request;
    auto optional_of = [&](std::string_view name) {
        const DataValue *v = member(body, name);
        return v ? std::optional<DataValue>(*v) : std::nullopt;
    };
    CharFieldResult username =
        validate_char_field(optional_of("username"), true);
    if (!username.errors.empty()) {
        errors.emplace_back("username",
                            std::vector<std::string>(username.errors.begin(),
                                                     username.errors.end()));
    } else {
        request.username = username.value;
    }
    if (const DataValue *password = member(body, "password")) {
        CharFieldResult p = validate_char_field(*password, false);
        if (!p.errors.empty()) {
            errors.emplace_back(
                "password",
                std::vector<std::string>(p.errors.begin(), p.errors.end()));
        } else {
            request.password = p.value;
        }
    }
    if (const DataValue *email = member(body, "email")) {
        if (email->type == DataValue::Type::str) {
            request.email = email->text;
        } else {
            errors.emplace_back("email", std::vector<std::string>{
                                             std::string(drf::kNotAString)});
        }
    }
    for (auto [name, field] :
         {std::pair{"is_active", &request.is_active},
          std::pair{"is_staff", &request.is_staff},
          std::pair{"is_superuser", &request.is_superuser}}) {
        if (const DataValue *v = member(body, name)) {
            auto b = boolean_field(*v);
            if (auto *message = std::get_if<std::string_view>(&b)) {
                errors.emplace_back(
                    name, std::vector<std::string>{std::string(*message)});
            } else {
                *field = std::get<bool>(b);
            }
        }
    }
    // Django's own checks (the username's validators, the email) on the
    // fields DRF's did not already refuse, and every field's errors
    // together, in the serializer's field order.
    for (auto &checked : UserAdmin::check_new_user(request)) {
        const std::string &field = checked.first;
        bool refused =
            std::any_of(errors.begin(), errors.end(),
                        [&field](const auto &e) { return e.first == field; });
        if (!refused && !(field == "username" && request.username.empty())) {
            errors.push_back(std::move(checked));
        }
    }
    static constexpr std::string_view kOrder[] = {"username", "password",
                                                  "email",    "is_active",
                                                  "is_staff", "is_superuser"};
    auto rank = [](const std::string &field) {
        return std::find(std::begin(kOrder), std::end(kOrder), field) -
               std::begin(kOrder);
    };
    std::stable_sort(errors.begin(), errors.end(),
                     [&](const auto &a, const auto &b) {
                         return rank(a.first) < rank(b.first);
                     });
    if (!errors.empty()) {
        return validation_error(errors);
    }
    if ((request.is_staff || request.is_superuser) && !caller_.is_superuser) {
        return denied("creating a staff user or a superuser");
    }
    CreatedUser created;
    try {
        std::optional<ConcurrencyLimit::Permit> slot;
        if (request.password) {
            slot.emplace(hashing_);
        }
        created = admin_.create_user(actor_, request);
    } catch (const AdminValidationError &e) {
        return validation_error(e.errors());
    } catch (const UsernameTaken &) {
        return field_error("username", drf::kUsernameExists);
    }
    std::optional<UserRecord> user = admin_.find_user(created.username);
    if (!user) {
        // Deleted at once by another request.
        return json_answer(drf::kNotFound, kNoStore);
    }
    nlohmann::ordered_json j = json_of(*user, unix_now());
    // The key is shown once, to whoever created the user, as TokenAdmin
    // shows it; GET never shows it.
    if (!user->token_digest.empty()) {
        j["token"] = store_.reveal_token(*user);
    }
    return json_answer(201, render_drf_json(j), kNoStore);
}

HttpResponse AdminRequest::retrieve(const std::string &name)
{
    auto found = target(name, false);
    if (auto *answer = std::get_if<HttpResponse>(&found)) {
        return std::move(*answer);
    }
    UserRecord &user = std::get<UserRecord>(found);
    store_.show_directory_expiry({&user});
    return json_answer(200, render_drf_json(json_of(user, unix_now())),
                       kNoStore);
}

// PATCH: is_active and password (with revoke_token, the token too); the
// other fields cannot be changed here and say so.
HttpResponse AdminRequest::update(const std::string &name)
{
    // As DRF's get_object(): the user (404) and the permission on it
    // (403) before the body is read.
    auto found = target(name, true);
    if (auto *answer = std::get_if<HttpResponse>(&found)) {
        return std::move(*answer);
    }
    auto read = read_body(req_);
    if (auto *answer = std::get_if<HttpResponse>(&read)) {
        return std::move(*answer);
    }
    const Body &body = std::get<Body>(read);
    AdminValidationError::Errors errors;
    std::optional<bool> active;
    std::optional<std::string> password;
    bool revoke_token = false;
    for (const char *fixed :
         {"username", "email", "is_staff", "is_superuser"}) {
        if (member(body, fixed) != nullptr) {
            errors.emplace_back(fixed, std::vector<std::string>{
                                           std::string(drf::kFieldReadOnly)});
        }
    }
    if (const DataValue *v = member(body, "password")) {
        CharFieldResult p = validate_char_field(*v, false);
        if (!p.errors.empty()) {
            errors.emplace_back(
                "password",
                std::vector<std::string>(p.errors.begin(), p.errors.end()));
        } else {
            password = p.value;
        }
    }
    for (auto [field, out] :
         {std::pair{"is_active", 0}, std::pair{"revoke_token", 1}}) {
        if (const DataValue *v = member(body, field)) {
            auto b = boolean_field(*v);
            if (auto *message = std::get_if<std::string_view>(&b)) {
                errors.emplace_back(
                    field, std::vector<std::string>{std::string(*message)});
            } else if (out == 0) {
                active = std::get<bool>(b);
            } else {
                revoke_token = std::get<bool>(b);
            }
        }
    }
    if (!errors.empty()) {
        return validation_error(errors);
    }
    try {
        if (password) {
            ConcurrencyLimit::Permit slot(hashing_);
            admin_.set_password(actor_, name, *password, revoke_token);
        } else if (revoke_token) {
            admin_.revoke_tokens(actor_, name);
        }
        if (active) {
            admin_.set_active(actor_, name, *active);
        }
    } catch (const AdminValidationError &e) {
        return validation_error(e.errors());
    } catch (const NoSuchUser &) {
        return json_answer(drf::kNotFound, kNoStore);
    }
    return retrieve(name);
}

HttpResponse AdminRequest::destroy(const std::string &name)
{
    auto found = target(name, true);
    if (auto *answer = std::get_if<HttpResponse>(&found)) {
        return std::move(*answer);
    }
    try {
        admin_.delete_user(actor_, name);
    } catch (const NoSuchUser &) {
        return json_answer(drf::kNotFound, kNoStore);
    }
    return no_content();
}

HttpResponse AdminRequest::regenerate(const std::string &name)
{
    auto found = target(name, true);
    if (auto *answer = std::get_if<HttpResponse>(&found)) {
        return std::move(*answer);
    }
    IssuedToken token;
    try {
        token = admin_.regenerate_token(actor_, name);
    } catch (const NoSuchUser &) {
        return json_answer(drf::kNotFound, kNoStore);
    }
    nlohmann::ordered_json body;
    body["token"] = token.key;
    HttpResponse res = json_answer(201, render_drf_json(body), kNoStore);
    if (admin_.many_tokens() && token.created) {
        // Shown once and not kept (no sealed copy): if this answer is
        // withheld (503), nobody holds the key, so it is taken back.
        Sha256Hex hex = token_digest_hex(token.key);
        res.withdraw = [withdraw = withdraw_, name,
                        digest = std::string(hex.data(), hex.size())] {
            withdraw(name, digest);
        };
    }
    return res;
}

HttpResponse AdminRequest::revoke(const std::string &name)
{
    auto found = target(name, true);
    if (auto *answer = std::get_if<HttpResponse>(&found)) {
        return std::move(*answer);
    }
    try {
        if (admin_.revoke_tokens(actor_, name) == 0) {
            return json_answer(drf::kNotFound, kNoStore); // no token to delete
        }
    } catch (const NoSuchUser &) {
        return json_answer(drf::kNotFound, kNoStore);
    }
    return no_content();
}

HttpResponse method_not_allowed(const HttpRequest &req, const char *allow)
{
    HttpResponse res = json_answer(
        405, render_drf_detail(drf::method_not_allowed_detail(req.method)),
        kNoStore);
    res.set_header("Allow", allow);
    return res;
}

HttpResponse options_answer(const char *name, const char *allow)
{
    nlohmann::ordered_json body;
    body["name"] = name;
    body["renders"] = {"application/json"};
    body["parses"] = {"application/json"};
    HttpResponse res = json_answer(200, render_drf_json(body), kNoStore);
    res.set_header("Allow", allow);
    return res;
}

} // namespace

HttpResponse AdminApi::handle(const HttpRequest &req) const noexcept
{
    try {
        return handle_or_throw(req);
    } catch (const RedisError &e) {
        log::error("admin: " + req.method + " " + req.path +
                   ": redis failed: " + e.what());
        HttpResponse res = json_answer(drf::kUnavailable, kNoStore);
        res.set_header("Retry-After", std::string(drf::kUnavailableRetryAfter));
        return res;
    } catch (const std::exception &e) {
        log::error("admin: " + req.method + " " + req.path + ": " + e.what());
        return json_answer(drf::kServerError, kNoStore);
    }
}

HttpResponse AdminApi::handle_or_throw(const HttpRequest &req) const
{
    if (req.body_too_large) {
        HttpResponse res =
            json_answer(413,
                        render_drf_detail(drf::body_larger_than_detail(
                            settings_.max_body_size)),
                        kNoStore);
        res.close = true;
        return res;
    }
    // users/, users/<name>/, users/<name>/token/ under the prefix; the
    // name is the path segment as MHD decoded it (%XX).
    std::string_view rest = std::string_view(req.path).substr(
        std::min(req.path.size(), kAdminPrefix.size()));
    enum class Resource { none, list, user, token } resource = Resource::none;
    std::string name;
    if (rest == kUsersPath) {
        resource = Resource::list;
    } else if (rest.substr(0, kUsersPath.size()) == kUsersPath &&
               rest.back() == '/') {
        std::string_view tail = rest.substr(kUsersPath.size());
        tail.remove_suffix(1);
        constexpr std::string_view kToken = "/token";
        if (tail.size() > kToken.size() &&
            tail.substr(tail.size() - kToken.size()) == kToken) {
            tail.remove_suffix(kToken.size());
            resource = Resource::token;
        } else {
            resource = Resource::user;
        }
        name = std::string(tail);
        if (name.empty() || name.find('/') != std::string::npos) {
            resource = Resource::none;
        }
    }

    RedisPool::Lease conn = pool_.lease();
    UserStore store(*conn, scripts_, sealer_);
    store.set_token_ttl(settings_.token_ttl);
    if (directory_ != nullptr) {
        store.set_renewed_expiry(directory_->renewed_expiry_source());
        store.set_directory_fields(directory_->directory_fields_source());
    }
    // APIView.initial(): authentication, then permissions, then the
    // handler (whose absence is 405), as DRF orders them.
    Authentication auth =
        authenticate_token(req, store, unix_now(), "admin", directory_);
    if (!auth.who) {
        log::info("admin: " + req.method + " " + req.path + ": " +
                  std::to_string(auth.refusal.status));
        return std::move(auth.refusal);
    }
    const UserRecord &caller = auth.who->user;
    if (!is_admin_user(caller)) {
        log::info("admin: " + req.method + " " + req.path + " by " +
                  log::quoted_username(caller.username) + ": 403 (not staff)");
        return permission_denied();
    }
    AdminRequest view(req, settings_, store, policy_, hashing_, caller,
                      [this, by = caller.username](const std::string &username,
                                                   const std::string &digest) {
                          withdraw_unheld_token(
                              pool_, scripts_, sealer_, username, digest,
                              "admin: " + log::quoted_username(by) +
                                  " regenerated the token of " +
                                  log::quoted_username(username) +
                                  ": the new token " +
                                  digest.substr(0, kTokenIdLength));
                      });
    const std::string &m = req.method;
    switch (resource) {
    case Resource::none:
        return json_answer(drf::kNotFound, kNoStore);
    case Resource::list:
        if (m == "GET" || m == "HEAD") {
            return view.list();
        }
        if (m == "POST") {
            return view.create();
        }
        if (m == "OPTIONS") {
            return options_answer("User List", kAllowList);
        }
        return method_not_allowed(req, kAllowList);
    case Resource::user:
        if (m == "GET" || m == "HEAD") {
            return view.retrieve(name);
        }
        if (m == "PATCH") {
            return view.update(name);
        }
        if (m == "DELETE") {
            return view.destroy(name);
        }
        if (m == "OPTIONS") {
            return options_answer("User Instance", kAllowUser);
        }
        return method_not_allowed(req, kAllowUser);
    case Resource::token:
        if (m == "POST") {
            return view.regenerate(name);
        }
        if (m == "DELETE") {
            return view.revoke(name);
        }
        if (m == "OPTIONS") {
            return options_answer("User Token", kAllowToken);
        }
        return method_not_allowed(req, kAllowToken);
    }
    return json_answer(drf::kNotFound, kNoStore);
}

} // namespace authtoken
