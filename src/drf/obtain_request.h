// The body of POST /api-token-auth/ as DRF's obtain_auth_token reads it:
// parsers (JSON, form, multipart), then AuthTokenSerializer's field rules.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace authtoken
{

// Both non-empty, well-formed UTF-8, free of NUL characters.
struct ObtainCredentials {
    std::string username; // trimmed, as CharField(trim_whitespace=True)
    std::string password; // never trimmed
    // Beyond DRF, read only when asked for (tokens_per_user = many): the
    // token's name, CharField(required=False, allow_blank=True,
    // max_length=kTokenNameMaxLength), trimmed; "" when absent or blank.
    std::string name;
};

// The longest token name, in characters (code points, as Python's len()).
inline constexpr std::size_t kTokenNameMaxLength = 64;

// Either credentials to check, or the complete HTTP answer DRF would give
// before checking anything (status and compact JSON body).
struct ObtainParseResult {
    std::optional<ObtainCredentials> credentials;
    int status = 0;   // 400 or 415 when credentials is empty
    std::string body; // JSON, e.g. {"username":["This field is required."]}
};

// `content_type` is the raw Content-Type header value (empty when absent);
// `body` the raw request body, whose size stands for Content-Length (an
// empty body is not parsed at all, as DRF does for Content-Length 0).
// Linear in the body size, whatever the body holds; throws nothing but
// std::bad_alloc.
//
// Where we knowingly answer differently from DRF 3.14 on Django 3.2:
// - a 400 with a JSON `detail` where Django answers a bare 400 page (more
//   than 1000 form fields, 100 files, 2.5 MB of multipart fields) or DRF
//   fails with a 500 (a 415 for a non-ASCII media type);
// - JSON nested deeper than 64 levels, numbers beyond a double's range
//   (1e400, integers of 309 to 4300 digits) and unpaired "\ud800" escapes
//   are refused as parse errors, where Python reads them;
// - charsets other than UTF-8, latin-1 and ASCII are read as UTF-8;
// - multipart bodies are read as if in one 64 KiB chunk of Django's, and
//   file names are not HTML-unescaped;
// - the wording, not the status, of a few JSON syntax errors.
// With `with_name`, the `name` field is validated too (after username and
// password, as a serializer declaring it last would); without it, `name`
// is ignored as DRF's AuthTokenSerializer ignores every unknown field.
ObtainParseResult parse_obtain_request(std::string_view content_type,
                                       std::string_view body,
                                       bool with_name = false);

} // namespace authtoken
