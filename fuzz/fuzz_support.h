// What the fuzz targets share: reading structured values out of the fuzz
// input, failing loudly when an invariant breaks, and a reference UTF-8
// decoder written from the Unicode tables rather than from our parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz
{

// An invariant failure: print what broke and abort(), which libFuzzer
// reports as a crash and keeps the input for.
[[noreturn]] inline void fail(const char *what, const std::string &detail)
{
    std::fprintf(stderr, "\n*** INVARIANT FAILED: %s\n%s\n", what,
                 detail.c_str());
    std::abort();
}

#define FUZZ_CHECK(cond, detail)                                               \
    do {                                                                       \
        if (!(cond)) {                                                         \
            ::fuzz::fail(#cond, (detail));                                     \
        }                                                                      \
    } while (0)

// Printable form of bytes for failure messages: Python-like escapes.
inline std::string repr(std::string_view bytes)
{
    static const char kHex[] = "0123456789abcdef";
    std::string out = "b'";
    for (unsigned char c : bytes) {
        if (c == '\\' || c == '\'') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out + "'";
}

// Takes values off the front of the fuzz input. Running out yields zeros
// and empty strings, never an error, so that every input is meaningful.
class Input
{
  public:
    Input(const std::uint8_t *data, std::size_t size)
        : rest_(reinterpret_cast<const char *>(data), size)
    {
    }

    std::uint8_t byte()
    {
        if (rest_.empty()) {
            return 0;
        }
        auto b = static_cast<std::uint8_t>(rest_.front());
        rest_.remove_prefix(1);
        return b;
    }

    // A string whose length is the next byte (so up to 255 bytes).
    std::string short_string()
    {
        std::size_t n = byte();
        return take(n);
    }

    // Everything up to the next `separator` byte (consumed), or the rest.
    std::string until(char separator)
    {
        std::size_t at = rest_.find(separator);
        std::string out(rest_.substr(0, at));
        rest_.remove_prefix(at == std::string_view::npos ? rest_.size()
                                                         : at + 1);
        return out;
    }

    std::string take(std::size_t n)
    {
        std::string out(rest_.substr(0, n));
        rest_.remove_prefix(out.size());
        return out;
    }

    std::string rest()
    {
        std::string out(rest_);
        rest_ = {};
        return out;
    }

    bool empty() const
    {
        return rest_.empty();
    }

  private:
    std::string_view rest_;
};

// --- reference UTF-8 -------------------------------------------------------
//
// Decodes one code point the long way: read the lead byte's length, gather
// the payload bits, then refuse what Unicode forbids by looking at the
// *value* (too small for its length, a surrogate, beyond U+10FFFF). That is
// how Python's strict decoder decides, described differently from the
// production code's table of second-byte ranges, so the two can be compared.

struct Decoded {
    char32_t code_point;
    std::size_t length;
};

inline std::optional<Decoded> decode_one(std::string_view s, std::size_t at)
{
    auto b = [&](std::size_t k) {
        return static_cast<unsigned char>(s[at + k]);
    };
    unsigned char lead = b(0);
    std::size_t length;
    char32_t value;
    if (lead < 0x80) {
        return Decoded{lead, 1};
    } else if ((lead & 0xe0) == 0xc0) {
        length = 2;
        value = lead & 0x1f;
    } else if ((lead & 0xf0) == 0xe0) {
        length = 3;
        value = lead & 0x0f;
    } else if ((lead & 0xf8) == 0xf0) {
        length = 4;
        value = lead & 0x07;
    } else {
        return std::nullopt; // a continuation byte or 0xf8..0xff
    }
    if (at + length > s.size()) {
        return std::nullopt;
    }
    for (std::size_t k = 1; k < length; k++) {
        if ((b(k) & 0xc0) != 0x80) {
            return std::nullopt;
        }
        value = (value << 6) | (b(k) & 0x3f);
    }
    static const char32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (value < kSmallest[length]) {
        return std::nullopt; // overlong
    }
    if (value >= 0xd800 && value <= 0xdfff) {
        return std::nullopt; // surrogate
    }
    if (value > 0x10ffff) {
        return std::nullopt;
    }
    return Decoded{value, length};
}

// The code points of `s`, or nullopt if Python's bytes.decode('utf-8')
// would raise.
inline std::optional<std::vector<char32_t>> decode_utf8(std::string_view s)
{
    std::vector<char32_t> out;
    for (std::size_t at = 0; at < s.size();) {
        auto d = decode_one(s, at);
        if (!d) {
            return std::nullopt;
        }
        out.push_back(d->code_point);
        at += d->length;
    }
    return out;
}

inline void append_utf8(std::string &out, char32_t c)
{
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xc0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xe0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
        out += static_cast<char>(0xf0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (c & 0x3f));
    }
}

inline std::string encode_utf8(const std::vector<char32_t> &code_points)
{
    std::string out;
    for (char32_t c : code_points) {
        append_utf8(out, c);
    }
    return out;
}

// Arbitrary bytes made into valid UTF-8 text: each byte that does not start
// a valid sequence becomes U+FFFD (a simplified errors='replace').
inline std::vector<char32_t> to_text(std::string_view s)
{
    std::vector<char32_t> out;
    for (std::size_t at = 0; at < s.size();) {
        auto d = decode_one(s, at);
        if (d) {
            out.push_back(d->code_point);
            at += d->length;
        } else {
            out.push_back(0xfffd);
            at++;
        }
    }
    return out;
}

} // namespace fuzz
