// Parsing of "Authorization: <keyword> <key>" exactly as DRF's
// TokenAuthentication.authenticate() does it.
#pragma once

#include <cstddef>
#include <string_view>

namespace authtoken
{

enum class HeaderVerdict {
    not_provided,       // no header, empty, or another scheme: not ours
    no_credentials,     // the keyword alone
    contains_spaces,    // more than two parts
    invalid_characters, // the key is not valid UTF-8
    key_present,        // exactly "<keyword> <key>": look the key up
};

struct ParsedAuthorization {
    HeaderVerdict verdict;
    // Points into the parsed value; set only for key_present.
    std::string_view key;
};

// Parses the raw bytes of an Authorization value (DRF reads it as
// ISO-8859-1, i.e. the bytes as sent). The value is split on runs of ASCII
// whitespace (space, \t, \n, \r, \v, \f) as Python's bytes.split() does;
// the first part is compared case-insensitively (ASCII only) with each of
// `keywords`. No check is made on the key's length or alphabet: DRF simply
// does not find keys that are not its own.
ParsedAuthorization parse_authorization(std::string_view value,
                                        const std::string_view *keywords,
                                        std::size_t keyword_count) noexcept;

} // namespace authtoken
