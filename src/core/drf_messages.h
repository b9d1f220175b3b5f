// The exact texts DRF answers with. They are constants a user can search for,
// so they are kept word for word (rest_framework/authentication.py,
// exceptions.py, authtoken/serializers.py).
#pragma once

#include <string_view>

namespace authtoken::drf {

// rest_framework.exceptions.NotAuthenticated.default_detail
inline constexpr std::string_view kNotProvided =
    "Authentication credentials were not provided.";
// TokenAuthentication.authenticate(), len(auth) == 1
inline constexpr std::string_view kNoCredentials =
    "Invalid token header. No credentials provided.";
// TokenAuthentication.authenticate(), len(auth) > 2
inline constexpr std::string_view kContainsSpaces =
    "Invalid token header. Token string should not contain spaces.";
// TokenAuthentication.authenticate(), UnicodeError on auth[1].decode()
inline constexpr std::string_view kInvalidCharacters =
    "Invalid token header. Token string should not contain invalid "
    "characters.";
// TokenAuthentication.authenticate_credentials(), Token.DoesNotExist
inline constexpr std::string_view kInvalidToken = "Invalid token.";
// TokenAuthentication.authenticate_credentials(), not user.is_active
inline constexpr std::string_view kInactive = "User inactive or deleted.";
// rest_framework.exceptions.ServiceUnavailable.default_detail
inline constexpr std::string_view kUnavailable =
    "Service temporarily unavailable, try again later.";

// The same messages as complete response bodies, compact JSON as DRF's
// renderer writes them. None of the texts needs JSON escaping.
#define AUTHTOKEN_DETAIL_BODY(text) "{\"detail\":\"" text "\"}"
inline constexpr std::string_view kNotProvidedBody =
    AUTHTOKEN_DETAIL_BODY("Authentication credentials were not provided.");
inline constexpr std::string_view kNoCredentialsBody =
    AUTHTOKEN_DETAIL_BODY("Invalid token header. No credentials provided.");
inline constexpr std::string_view kContainsSpacesBody = AUTHTOKEN_DETAIL_BODY(
    "Invalid token header. Token string should not contain spaces.");
inline constexpr std::string_view kInvalidCharactersBody =
    AUTHTOKEN_DETAIL_BODY("Invalid token header. Token string should not "
                          "contain invalid characters.");
inline constexpr std::string_view kInvalidTokenBody =
    AUTHTOKEN_DETAIL_BODY("Invalid token.");
inline constexpr std::string_view kInactiveBody =
    AUTHTOKEN_DETAIL_BODY("User inactive or deleted.");
inline constexpr std::string_view kUnavailableBody = AUTHTOKEN_DETAIL_BODY(
    "Service temporarily unavailable, try again later.");
#undef AUTHTOKEN_DETAIL_BODY

// Retry-After (seconds) on every 503 above, the module's and authtokend's
// alike: the cause (Redis unreachable or slow) is usually brief.
inline constexpr std::string_view kUnavailableRetryAfter = "1";

} // namespace authtoken::drf
