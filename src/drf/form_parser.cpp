#include "drf/form_parser.h"

#include "drf/python/urllib_parse_unquote.h"

#include <algorithm>

namespace authtoken
{
namespace
{

std::string plus_to_space(std::string_view text)
{
    std::string out(text);
    std::replace(out.begin(), out.end(), '+', ' ');
    return out;
}

} // namespace

std::optional<std::vector<FormField>>
parse_urlencoded_form(std::string_view body, TextEncoding encoding)
{
    // limited_parse_qsl() refuses before parsing anything. '&' is ASCII, so
    // counting it in the bytes counts it in the decoded text.
    std::size_t pieces = body.empty() ? 0
                                      : 1 + static_cast<std::size_t>(std::count(
                                                body.begin(), body.end(), '&'));
    if (pieces > kMaxFormFields) {
        return std::nullopt;
    }

    StrictDecodeResult decoded = decode_strict(body, encoding, true);
    std::string text =
        decoded.failure ? latin1_to_utf8(body) : std::move(decoded.text);

    std::vector<FormField> fields;
    std::string_view rest = text;
    for (;;) {
        std::size_t amp = rest.find('&');
        std::string_view piece = rest.substr(0, amp);
        if (!piece.empty()) {
            std::size_t equals = piece.find('=');
            std::string_view name = piece.substr(0, equals);
            std::string_view value = equals == std::string_view::npos
                                         ? std::string_view()
                                         : piece.substr(equals + 1);
            fields.push_back({unquote_python(plus_to_space(name), encoding),
                              unquote_python(plus_to_space(value), encoding)});
        }
        if (amp == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(amp + 1);
    }
    return fields;
}

} // namespace authtoken
