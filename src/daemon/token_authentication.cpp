#include "daemon/token_authentication.h"

#include "core/authorization_header.h"
#include "core/token_digest.h"
#include "daemon/event_log.h"
#include "drf/json_renderer.h"

#include <exception>

namespace authtoken
{
namespace
{

// AuthenticationFailed and NotAuthenticated: 401 with the challenge
// (APIView.get_authenticate_header(): the first authenticator's keyword).
HttpResponse unauthorized(const drf::DrfError &error)
{
    HttpResponse res = json_answer(error);
    res.set_header("WWW-Authenticate", std::string(kTokenKeyword));
    return res;
}

Authentication refused(HttpResponse res)
{
    Authentication a;
    a.refusal = std::move(res);
    return a;
}

} // namespace

AuthorizationClaim claim_from_header(std::string_view header_value) noexcept
{
    const std::string_view keywords[] = {kTokenKeyword};
    ParsedAuthorization parsed =
        parse_authorization(header_value, keywords, std::size(keywords));
    AuthorizationClaim claim;
    switch (parsed.verdict) {
    case HeaderVerdict::not_provided:
        claim.refusal = &drf::kNotProvided;
        break;
    case HeaderVerdict::no_credentials:
        claim.refusal = &drf::kNoCredentials;
        break;
    case HeaderVerdict::contains_spaces:
        claim.refusal = &drf::kContainsSpaces;
        break;
    case HeaderVerdict::invalid_characters:
        claim.refusal = &drf::kInvalidCharacters;
        break;
    case HeaderVerdict::key_present:
        claim.key = parsed.key;
        break;
    }
    return claim;
}

Authentication authenticate_token(const HttpRequest &req, UserStore &store,
                                  std::int64_t now,
                                  std::string_view what) noexcept
{
    try {
        std::string header = req.header("Authorization");
        AuthorizationClaim claim = claim_from_header(header);
        if (claim.refusal != nullptr) {
            return refused(unauthorized(*claim.refusal));
        }
        Sha256Hex hex = token_digest_hex(claim.key);
        std::string digest(hex.data(), hex.size());

        UserStore::TokenLookup lookup = store.lookup_token(digest, now);
        switch (lookup.judgement.verdict) {
        case TokenVerdict::valid:
            break;
        case TokenVerdict::inactive:
            return refused(unauthorized(drf::kInactive));
        case TokenVerdict::unknown:
        case TokenVerdict::expired:
            return refused(unauthorized(drf::kInvalidToken));
        case TokenVerdict::malformed:
            // Fail closed, as the module does (503, logged).
            log::error(std::string(what) + ": the token record " +
                       digest.substr(0, 12) + "... is malformed");
            {
                HttpResponse res = json_answer(drf::kUnavailable);
                res.set_header("Retry-After",
                               std::string(drf::kUnavailableRetryAfter));
                return refused(std::move(res));
            }
        }

        // The user as it is now: gone, renamed, or no longer holding this
        // token (its one token, or one of its tokens_per_user = many set)
        // means the record is a leftover (Token.DoesNotExist); the user's
        // own is_active decides, not the record's copy.
        std::optional<UserRecord> user = store.find_user_by_uid(lookup.uid);
        if (!user || user->username != lookup.user ||
            !store.holds_token(*user, digest)) {
            return refused(unauthorized(drf::kInvalidToken));
        }
        if (!user->is_active) {
            return refused(unauthorized(drf::kInactive));
        }
        Authentication a;
        a.who = Authenticated{std::move(*user), std::move(digest)};
        return a;
    } catch (const RedisError &e) {
        log::error(std::string(what) + ": redis failed: " + e.what());
        HttpResponse res = json_answer(drf::kUnavailable);
        res.set_header("Retry-After", std::string(drf::kUnavailableRetryAfter));
        return refused(std::move(res));
    } catch (const std::exception &e) {
        log::error(std::string(what) + ": " + e.what());
        return refused(json_answer(drf::kServerError));
    }
}

HttpResponse permission_denied()
{
    return json_answer(drf::kPermissionDenied);
}

bool is_admin_user(const UserRecord &user) noexcept
{
    return user.is_staff || user.is_superuser;
}

} // namespace authtoken
