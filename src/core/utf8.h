// The one UTF-8 walker: CPython's strict decoder (Objects/stringlib/
// codecs.h, utf8_decode, 3.11), one character at a time. No overlong forms,
// no surrogates (U+D800..U+DFFF), nothing above U+10FFFF; an error covers
// the "maximal subpart" CPython reports as one error (and replaces with one
// U+FFFD under errors='replace'). Header-only: the nginx module uses it and
// links no Unicode library.
#pragma once

#include <cstddef>
#include <string_view>

namespace authtoken
{

constexpr bool is_utf8_continuation(unsigned char c) noexcept
{
    return c >= 0x80 && c <= 0xbf;
}

// One step from text[at] (at < text.size()).
struct Utf8Step {
    enum class Kind {
        valid,
        invalid_start,        // a byte no character starts with
        invalid_continuation, // a byte that cannot follow the ones before
        truncated,            // the text ends inside a character
    };
    Kind kind;
    // valid: the character's length; otherwise the bytes the error covers
    // (truncated: all that is left).
    std::size_t length;
    char32_t code_point; // when valid
};

constexpr Utf8Step utf8_step(std::string_view text, std::size_t at) noexcept
{
    const auto byte = [&](std::size_t k) {
        return static_cast<unsigned char>(text[at + k]);
    };
    const std::size_t available = text.size() - at;
    const unsigned char lead = byte(0);
    if (lead < 0x80) {
        return {Utf8Step::Kind::valid, 1, lead};
    }
    std::size_t need = 0;
    unsigned char lo = 0x80, hi = 0xbf; // allowed range of the second byte
    char32_t value = 0;
    if (lead >= 0xc2 && lead <= 0xdf) {
        need = 2;
        value = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        need = 3;
        value = lead & 0x0f;
        if (lead == 0xe0) {
            lo = 0xa0; // overlong
        } else if (lead == 0xed) {
            hi = 0x9f; // surrogates
        }
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        need = 4;
        value = lead & 0x07;
        if (lead == 0xf0) {
            lo = 0x90; // overlong
        } else if (lead == 0xf4) {
            hi = 0x8f; // above U+10FFFF
        }
    } else {
        return {Utf8Step::Kind::invalid_start, 1, 0}; // C0, C1, F5..FF, 80..BF
    }
    for (std::size_t k = 1; k < need; k++) {
        if (k >= available) {
            return {Utf8Step::Kind::truncated, available, 0};
        }
        const unsigned char c = byte(k);
        const bool ok = k == 1 ? (c >= lo && c <= hi) : is_utf8_continuation(c);
        if (!ok) {
            return {Utf8Step::Kind::invalid_continuation, k, 0};
        }
        value = (value << 6) | (c & 0x3f);
    }
    return {Utf8Step::Kind::valid, need, value};
}

// bytes.decode('utf-8') would not raise: no overlong forms, no surrogates,
// nothing above U+10FFFF, no truncated character.
constexpr bool is_valid_utf8(std::string_view text) noexcept
{
    for (std::size_t at = 0; at < text.size();) {
        const Utf8Step step = utf8_step(text, at);
        if (step.kind != Utf8Step::Kind::valid) {
            return false;
        }
        at += step.length;
    }
    return true;
}

// Where the character that ends at `end` starts, in valid UTF-8: `end` - 1
// and then back over continuation bytes, never before `begin`.
constexpr std::size_t utf8_start_before(std::string_view text,
                                        std::size_t begin,
                                        std::size_t end) noexcept
{
    std::size_t start = end - 1;
    while (start > begin &&
           is_utf8_continuation(static_cast<unsigned char>(text[start]))) {
        start--;
    }
    return start;
}

} // namespace authtoken
