// DRF's TokenAuthentication inside authtokend (rest_framework 3.14,
// authentication.py: TokenAuthentication.authenticate() and
// authenticate_credentials(); views.py: APIView.permission_denied() and
// get_authenticate_header()), for the issuer's own endpoints that act on
// behalf of a user (logout, the user's tokens, the staff admin API).
//
// These endpoints sit behind nginx with `auth_token on`, but the issuer
// trusts no identity header nginx could pass: it checks the presented
// `Authorization: Token <key>` against the store itself, with the same
// rules, messages and statuses as the module (one parser,
// core/authorization_header.h; one verdict, core/token_record.h; one
// catalogue, core/drf_messages.h), and then reads the user as the store
// holds it now (the user's is_active is the truth, not the record's copy).
#pragma once

#include "daemon/http_server.h"

#include "core/drf_messages.h"
#include "issuer/store/user_store.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace authtoken
{
class DirectorySync;
}

namespace authtoken
{

// DRF's TokenAuthentication.keyword.
inline constexpr std::string_view kTokenKeyword = "Token";

// What the Authorization header alone decides, before any lookup: either a
// key to look up, or the refusal DRF gives (401, with WWW-Authenticate).
// `key` borrows from `header_value`.
struct AuthorizationClaim {
    std::string_view key;                   // set when refusal is null
    const drf::DrfError *refusal = nullptr; // kNotProvided, kNoCredentials,
                                            // kContainsSpaces or
                                            // kInvalidCharacters
};
AuthorizationClaim claim_from_header(std::string_view header_value) noexcept;

// A request whose token names an active user.
struct Authenticated {
    UserRecord user;          // read after the token was judged valid
    std::string token_digest; // SHA-256 of the presented key, lowercase hex
};

// Either `who` (authenticated) or `refusal`, the whole answer to send:
// 401 with `WWW-Authenticate: Token` (DRF's authenticate_header, for every
// AuthenticationFailed and NotAuthenticated), or 503 with Retry-After when
// the store cannot be asked (Redis errors are caught here and logged).
struct Authentication {
    std::optional<Authenticated> who;
    HttpResponse refusal;
};

// Reads the request's Authorization header and judges its token with one
// HMGET of the token record (as the module does) and one read of the user.
// A record whose user is gone, renamed or no longer holds that token is
// "Invalid token." (Token.DoesNotExist); an inactive user is "User inactive
// or deleted." `now`: Unix seconds, for the record's `expires`.
// `what` names the endpoint in log lines ("logout", "admin").
// `directory`: with a separate token directory, where a renewed expiry is
// read when the user store's copy of the record has expired (the edges
// accept the token until the directory's expiry; the daemon must too, or a
// renewed token could not be logged out); nullptr or one store: none.
// Never throws.
Authentication authenticate_token(const HttpRequest &req, UserStore &store,
                                  std::int64_t now, std::string_view what,
                                  DirectorySync *directory = nullptr) noexcept;

// DRF's permission_denied() for an authenticated user without permission:
// 403 "You do not have permission to perform this action."
HttpResponse permission_denied();

// DRF's IsAdminUser (user.is_staff); a superuser that is not staff is also
// let in, as "superusers can do everything" (Django's has_perm()).
bool is_admin_user(const UserRecord &user) noexcept;

} // namespace authtoken
