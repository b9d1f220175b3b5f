// Every text DRF and Django answer with, and the ones we add beyond them, in
// one place. They are constants a user can search for, so they are kept word
// for word (rest_framework 3.14: exceptions.py, authentication.py,
// fields.py, serializers.py, authtoken/serializers.py; Django 4.2:
// core/validators.py, http/request.py).
//
// An error answer is one DrfError, as DRF's exceptions.py has one
// APIException subclass per kind: the status code, the default detail, and
// the whole {"detail":"..."} body, built at compile time for the nginx
// module (which links neither JSON library nor the drf layer). A detail
// that holds a value (a method, a media type, a wait) is built by one of the
// functions at the end and rendered by drf/json_renderer.h, the one JSON
// renderer; so are the serializer's error dicts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace authtoken::drf
{

// One kind of error answer. All three views are of static storage.
struct DrfError {
    int status;              // the HTTP status code
    std::string_view detail; // APIException.default_detail
    std::string_view body;   // {"detail":"<detail>"}, as JSONRenderer
};

// True when `detail` renders as itself inside a JSON string (printable
// ASCII without '"' or '\'), and `body` is exactly {"detail":"<detail>"}:
// then the compile-time body is byte for byte what JSONRenderer writes.
constexpr bool renders_verbatim(const DrfError &error)
{
    // std::any_of is constexpr only from C++20.
    for (char c : error.detail) {
        // cppcheck-suppress useStlAlgorithm
        if (c < ' ' || c > '~' || c == '"' || c == '\\') {
            return false;
        }
    }
    constexpr std::string_view kOpen = "{\"detail\":\"";
    constexpr std::string_view kClose = "\"}";
    return error.body.size() ==
               kOpen.size() + error.detail.size() + kClose.size() &&
           error.body.substr(0, kOpen.size()) == kOpen &&
           error.body.substr(kOpen.size(), error.detail.size()) ==
               error.detail &&
           error.body.substr(kOpen.size() + error.detail.size()) == kClose;
}

// clang-format off
#define AUTHTOKEN_DRF_ERROR(status, text)                                      \
    DrfError{status, text, "{\"detail\":\"" text "\"}"}
// clang-format on

// --- TokenAuthentication: the 401s the module answers ---------------------

// NotAuthenticated.default_detail: no Authorization header for our keyword.
inline constexpr DrfError kNotProvided =
    AUTHTOKEN_DRF_ERROR(401, "Authentication credentials were not provided.");
// TokenAuthentication.authenticate(), len(auth) == 1
inline constexpr DrfError kNoCredentials =
    AUTHTOKEN_DRF_ERROR(401, "Invalid token header. No credentials provided.");
// TokenAuthentication.authenticate(), len(auth) > 2
inline constexpr DrfError kContainsSpaces = AUTHTOKEN_DRF_ERROR(
    401, "Invalid token header. Token string should not contain spaces.");
// TokenAuthentication.authenticate(), UnicodeError on auth[1].decode()
inline constexpr DrfError kInvalidCharacters =
    AUTHTOKEN_DRF_ERROR(401, "Invalid token header. Token string should not "
                             "contain invalid characters.");
// TokenAuthentication.authenticate_credentials(), Token.DoesNotExist
inline constexpr DrfError kInvalidToken =
    AUTHTOKEN_DRF_ERROR(401, "Invalid token.");
// TokenAuthentication.authenticate_credentials(), not user.is_active
inline constexpr DrfError kInactive =
    AUTHTOKEN_DRF_ERROR(401, "User inactive or deleted.");

// --- exceptions.py: the module's and authtokend's other answers -----------

// A 503 in DRF's words (Django answers a dead database with a 500 page):
// the store cannot be asked. Both the module and authtokend send it with
// Retry-After: kUnavailableRetryAfter.
inline constexpr DrfError kUnavailable = AUTHTOKEN_DRF_ERROR(
    503, "Service temporarily unavailable, try again later.");
// Retry-After (seconds) on every kUnavailable: the cause (Redis unreachable
// or slow) is usually brief.
inline constexpr std::string_view kUnavailableRetryAfter = "1";
// APIException.default_detail: what should never happen.
inline constexpr DrfError kServerError =
    AUTHTOKEN_DRF_ERROR(500, "A server error occurred.");
// ParseError.default_detail: a request HTTP itself cannot parse.
inline constexpr DrfError kParseError =
    AUTHTOKEN_DRF_ERROR(400, "Malformed request.");
// NotFound.default_detail
inline constexpr DrfError kNotFound = AUTHTOKEN_DRF_ERROR(404, "Not found.");
// PermissionDenied.default_detail: an authenticated user without the
// permission (IsAdminUser on the staff admin API).
inline constexpr DrfError kPermissionDenied = AUTHTOKEN_DRF_ERROR(
    403, "You do not have permission to perform this action.");
// PageNumberPagination.invalid_page_message, raised as NotFound: a page
// that is not a number, below 1 or past the last (the staff admin API).
inline constexpr DrfError kInvalidPage =
    AUTHTOKEN_DRF_ERROR(404, "Invalid page.");

// --- Beyond DRF: authtokend's HTTP limits (Django's runserver has none) ---

inline constexpr DrfError kIncompleteBody =
    AUTHTOKEN_DRF_ERROR(400, "Incomplete request body.");
inline constexpr DrfError kBodyTooLarge =
    AUTHTOKEN_DRF_ERROR(413, "Request body too large.");
inline constexpr DrfError kUriTooLong =
    AUTHTOKEN_DRF_ERROR(414, "Request URI too long.");
// A head whose body framing is ambiguous or unreadable: nginx's 400 for
// Content-Length with Transfer-Encoding, a duplicate or invalid
// Content-Length, a NUL byte (ngx_http_process_request_header).
inline constexpr DrfError kAmbiguousFraming =
    AUTHTOKEN_DRF_ERROR(400, "Malformed request head.");
// nginx's 501 for a Transfer-Encoding other than chunked.
inline constexpr DrfError kTransferEncodingNotImplemented = AUTHTOKEN_DRF_ERROR(
    501, "Transfer-Encoding other than chunked is not supported.");
// --- Beyond DRF: authtokend with a separate token directory ------------
// (docs/operations.md, "Two stores"; docs/authtokend.md, "Errors")

// A write (login, logout, revocation, admin change) is in the user store
// and its outbox, but the token directory the edges read did not take it
// within the reply timeout: the replayer thread applies it once the
// directory is back. Retry-After: kUnavailableRetryAfter.
inline constexpr DrfError kDirectoryBehind = AUTHTOKEN_DRF_ERROR(
    503, "The change is recorded; it reaches the edges when the token "
         "directory is back.");
// The user store was made to feed a token directory while this authtokend
// runs without directory_url: the change went to the outbox, which only
// `authtokenctl directory sync` (or an authtokend with directory_url)
// applies.
inline constexpr DrfError kDirectoryNotFed = AUTHTOKEN_DRF_ERROR(
    503, "The change is recorded, but this issuer does not feed the token "
         "directory: it reaches the edges with the next directory sync.");
// Any other error status the HTTP server makes by itself; status 0: the
// answer keeps the one the server chose.
inline constexpr DrfError kRequestFailed =
    AUTHTOKEN_DRF_ERROR(0, "Request failed.");

#undef AUTHTOKEN_DRF_ERROR

static_assert(
    renders_verbatim(kNotProvided) && renders_verbatim(kNoCredentials) &&
    renders_verbatim(kContainsSpaces) && renders_verbatim(kInvalidCharacters) &&
    renders_verbatim(kInvalidToken) && renders_verbatim(kInactive) &&
    renders_verbatim(kUnavailable) && renders_verbatim(kServerError) &&
    renders_verbatim(kParseError) && renders_verbatim(kNotFound) &&
    renders_verbatim(kPermissionDenied) && renders_verbatim(kInvalidPage) &&
    renders_verbatim(kIncompleteBody) && renders_verbatim(kBodyTooLarge) &&
    renders_verbatim(kUriTooLong) && renders_verbatim(kRequestFailed) &&
    renders_verbatim(kAmbiguousFraming) &&
    renders_verbatim(kTransferEncodingNotImplemented) &&
    renders_verbatim(kDirectoryBehind) && renders_verbatim(kDirectoryNotFed));

// --- Details that hold a value (render them with render_drf_detail) -------

// MethodNotAllowed.default_detail: Method "<method>" not allowed.
std::string method_not_allowed_detail(std::string_view method);
// UnsupportedMediaType.default_detail: Unsupported media type "<media
// type>" in request. The media type as UTF-8 text.
std::string unsupported_media_type_detail(std::string_view media_type);
// Throttled: "Request was throttled. Expected available in <wait>
// seconds." (wait in whole seconds; "second" for 1).
std::string throttled_detail(std::int64_t wait_seconds);
// Beyond DRF: "Request body is larger than <limit> bytes."
std::string body_larger_than_detail(std::size_t limit_bytes);

// Beyond DRF: authtokend's bounds on a request head.
std::string request_line_longer_than_detail(std::size_t limit_bytes);
std::string header_line_longer_than_detail(std::size_t limit_bytes);
std::string more_header_fields_than_detail(std::size_t limit_fields);
std::string headers_larger_than_detail(std::size_t limit_bytes);

// --- The parsers' ParseError details, each followed by the cause ----------

// JSONParser.parse(): 'JSON parse error - %s' % str(JSONDecodeError)
inline constexpr std::string_view kJsonParseErrorPrefix = "JSON parse error - ";
// MultiPartParser.parse(): 'Multipart form parse error - %s' % str(exc),
// exc being one of Django's MultiPartParserError texts below
inline constexpr std::string_view kMultipartParseErrorPrefix =
    "Multipart form parse error - ";
// django.http.multipartparser.MultiPartParser.__init__(), each followed by
// the value it refuses
inline constexpr std::string_view kInvalidContentTypePrefix =
    "Invalid Content-Type: ";
inline constexpr std::string_view kNonAsciiContentTypePrefix =
    "Invalid non-ASCII Content-Type in multipart: ";
inline constexpr std::string_view kInvalidBoundaryPrefix =
    "Invalid boundary in multipart: ";

// --- Serializer and field messages (inside an error dict) -----------------

// Field.default_error_messages
inline constexpr std::string_view kFieldRequired = "This field is required.";
inline constexpr std::string_view kFieldNull = "This field may not be null.";
// CharField.default_error_messages
inline constexpr std::string_view kFieldBlank = "This field may not be blank.";
inline constexpr std::string_view kNotAString = "Not a valid string.";
// django.core.validators.ProhibitNullCharactersValidator
inline constexpr std::string_view kNullCharacters =
    "Null characters are not allowed.";
// Serializer.errors, when the data itself was None (a JSON null body)
inline constexpr std::string_view kNoDataProvided = "No data provided";
// Serializer.default_error_messages['invalid']: "Invalid data. Expected a
// dictionary, but got <type(data).__name__>."
std::string invalid_data_message(std::string_view type_name);
// django.core.exceptions.TooManyFieldsSent from QueryDict (Django answers
// it with a bare 400 page; we put the text in a JSON detail)
inline constexpr std::string_view kTooManyFormFields =
    "The number of GET/POST parameters exceeded "
    "settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.";
// django.core.exceptions.TooManyFilesSent from MultiPartParser
inline constexpr std::string_view kTooManyFiles =
    "The number of files exceeded settings.DATA_UPLOAD_MAX_NUMBER_FILES.";
// django.core.exceptions.RequestDataTooBig from MultiPartParser
inline constexpr std::string_view kRequestDataTooBig =
    "Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.";
// MultiPartParserError for a base64 file that does not decode
inline constexpr std::string_view kBadBase64File =
    "Could not decode base64 data.";
// AuthTokenSerializer.validate(): wrong password, unknown or inactive user,
// under non_field_errors
inline constexpr std::string_view kUnableToLogIn =
    "Unable to log in with provided credentials.";

// --- Django's model validation of a username (authtokenctl, import) -------

// django/db/models/fields/__init__.py, Field.default_error_messages['blank']
inline constexpr std::string_view kUsernameBlank =
    "This field cannot be blank.";
// django/contrib/auth/validators.py, UnicodeUsernameValidator.message
inline constexpr std::string_view kInvalidUsername =
    "Enter a valid username. This value may contain only letters, numbers, "
    "and @/./+/-/_ characters.";
// django/core/validators.py, EmailValidator.message (auth.User.email)
inline constexpr std::string_view kInvalidEmail =
    "Enter a valid email address.";
// MaxLengthValidator.message: "Ensure this value has at most <limit>
// characters (it has <length>)."
std::string max_length_message(std::size_t limit, std::size_t length);
// DRF's CharField.default_error_messages['max_length']: "Ensure this field
// has no more than <limit> characters."
std::string max_length_field_message(std::size_t limit);

// --- The staff admin API's serializer messages ---------------------------

// BooleanField.default_error_messages['invalid']
inline constexpr std::string_view kNotABoolean = "Must be a valid boolean.";
// AbstractUser.username's error_messages['unique'] (UniqueValidator)
inline constexpr std::string_view kUsernameExists =
    "A user with that username already exists.";
// Beyond DRF: a user field the admin API does not change (is_staff,
// is_superuser, username, email after creation); DRF would silently
// ignore a read-only field, which would hide a refused grant.
inline constexpr std::string_view kFieldReadOnly =
    "This field cannot be changed here.";

// The keys of a serializer's error dict.
inline constexpr std::string_view kNonFieldErrors = "non_field_errors";
inline constexpr std::string_view kUsername = "username";
inline constexpr std::string_view kPassword = "password";
// Beyond DRF: the token's name in a tokens_per_user = many login.
inline constexpr std::string_view kName = "name";

// --- Beyond DRF: several tokens per user (knox's words) --------------------

// knox's LoginView with TOKEN_LIMIT_PER_USER reached (knox answers it as
// {"error": ...}; we keep DRF's {"detail": ...} shape).
inline constexpr std::string_view kTokenLimitReached =
    "Maximum amount of tokens allowed per user exceeded.";

} // namespace authtoken::drf
