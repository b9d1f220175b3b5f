// Django's parse_header() (django.http.multipartparser, 3.2): how Django and
// DRF 3.14 read "type/subtype; name=value" header values. DRF matches the
// request's Content-Type with it, and Django reads the multipart boundary
// and each part's Content-Disposition with it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

struct HeaderParameter {
    std::string name;     // stripped and lower-cased; an RFC 2231 '*' removed
    std::string value;    // the raw bytes, unquoted; UTF-8 text if `decoded`
    bool decoded = false; // an RFC 2231 value (name*=charset'lang'text)
};

struct ParsedHeader {
    std::string main_value; // the part before the first ';', lower-cased
    std::vector<HeaderParameter> parameters;

    // Parameters land in a dict, so the last one of a name wins.
    const HeaderParameter *find(std::string_view name) const;
};

// The line is split at each ';' outside double quotes, the parts stripped
// of ASCII whitespace; parts without '=' are dropped; a value that starts
// and ends with '"' loses them, then "\\" becomes "\" and "\"" becomes '"'.
// nullopt where Django raises ValueError: a non-ASCII main value or
// parameter name, or an RFC 2231 value that cannot be decoded (we also
// refuse charsets other than UTF-8, latin-1 and ASCII there, which Python
// would decode or, for unknown names, crash on).
std::optional<ParsedHeader> parse_header_like_django(std::string_view line);

// cgi.parse_header(line)[1].get(name), which Django uses for the request's
// charset: the same split and unquoting on the latin-1 reading of the
// bytes, but every name taken literally (no RFC 2231) and nothing refused.
// The value comes back as UTF-8.
std::optional<std::string> cgi_header_parameter(std::string_view line,
                                                std::string_view name);

} // namespace authtoken
