#include "core/authorization_header.h"

#include "core/ascii.h"
#include "core/utf8.h"

namespace authtoken
{
namespace
{

// Cuts the next whitespace-separated part off the front of `rest`.
std::string_view next_part(std::string_view &rest) noexcept
{
    std::size_t i = 0;
    while (i < rest.size() && is_ascii_space(rest[i])) {
        i++;
    }
    std::size_t start = i;
    while (i < rest.size() && !is_ascii_space(rest[i])) {
        i++;
    }
    std::string_view part = rest.substr(start, i - start);
    rest.remove_prefix(i);
    return part;
}

} // namespace

ParsedAuthorization parse_authorization(std::string_view value,
                                        const std::string_view *keywords,
                                        std::size_t keyword_count) noexcept
{
    std::string_view rest = value;
    std::string_view keyword = next_part(rest);
    if (keyword.empty()) {
        return {HeaderVerdict::not_provided, {}};
    }

    bool ours = false;
    for (std::size_t i = 0; i < keyword_count && !ours; i++) {
        ours = equals_ascii_case_insensitive(keyword, keywords[i]);
    }
    if (!ours) {
        return {HeaderVerdict::not_provided, {}};
    }

    std::string_view key = next_part(rest);
    if (key.empty()) {
        return {HeaderVerdict::no_credentials, {}};
    }
    // DRF counts the parts before it decodes the key, so "Token k\xff x"
    // is about spaces, not characters.
    if (!next_part(rest).empty()) {
        return {HeaderVerdict::contains_spaces, {}};
    }
    if (!is_valid_utf8(key)) {
        return {HeaderVerdict::invalid_characters, {}};
    }
    return {HeaderVerdict::key_present, key};
}

} // namespace authtoken
