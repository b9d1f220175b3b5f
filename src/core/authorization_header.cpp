#include "core/authorization_header.h"

namespace authtoken {
namespace {

// bytes.split() with no argument: the six ASCII whitespace bytes.
constexpr bool is_split_space(unsigned char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

constexpr unsigned char ascii_lower(unsigned char c) noexcept
{
    return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + 32) : c;
}

bool equals_ascii_case_insensitive(std::string_view a,
                                   std::string_view b) noexcept
{
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); i++) {
        if (ascii_lower(static_cast<unsigned char>(a[i])) !=
            ascii_lower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

// Cuts the next whitespace-separated part off the front of `rest`.
std::string_view next_part(std::string_view &rest) noexcept
{
    std::size_t i = 0;
    while (i < rest.size() && is_split_space(rest[i])) {
        i++;
    }
    std::size_t start = i;
    while (i < rest.size() && !is_split_space(rest[i])) {
        i++;
    }
    std::string_view part = rest.substr(start, i - start);
    rest.remove_prefix(i);
    return part;
}

} // namespace

bool is_valid_utf8(std::string_view bytes) noexcept
{
    const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
    const auto *end = p + bytes.size();

    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }

        std::size_t need;
        unsigned char lo = 0x80, hi = 0xbf; // range of the second byte
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0) {
                lo = 0xa0; // overlong
            } else if (c == 0xed) {
                hi = 0x9f; // surrogates
            }
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0) {
                lo = 0x90; // overlong
            } else if (c == 0xf4) {
                hi = 0x8f; // above U+10FFFF
            }
        } else {
            return false; // continuation byte, C0, C1 or F5..FF
        }

        if (static_cast<std::size_t>(end - p) <= need) {
            return false;
        }
        if (p[1] < lo || p[1] > hi) {
            return false;
        }
        for (std::size_t k = 2; k <= need; k++) {
            if (p[k] < 0x80 || p[k] > 0xbf) {
                return false;
            }
        }
        p += need + 1;
    }
    return true;
}

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
