// The body of POST /api-token-auth/ as DRF's obtain_auth_token reads it:
// parsers (JSON, form, multipart), then AuthTokenSerializer's field rules.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace authtoken {

struct ObtainCredentials {
    std::string username; // trimmed, as CharField(trim_whitespace=True)
    std::string password; // never trimmed
};

// Either credentials to check, or the complete HTTP answer DRF would give
// before checking anything (status and compact JSON body).
struct ObtainParseResult {
    std::optional<ObtainCredentials> credentials;
    int status = 0;   // 400 or 415 when credentials is empty
    std::string body; // JSON, e.g. {"username":["This field is required."]}
};

// `content_type` is the raw Content-Type header value (empty when absent);
// `body` the raw request body.
ObtainParseResult parse_obtain_request(std::string_view content_type,
                                       std::string_view body);

} // namespace authtoken
