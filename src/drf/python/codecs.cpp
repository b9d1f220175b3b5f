#include "drf/python/codecs.h"

#include <algorithm>
#include <cstdio>
#include <iterator>

namespace authtoken
{
namespace
{

// encodings.normalize_encoding() after codecs.lookup()'s own pass: ASCII
// letters lower-cased, every run of characters other than ASCII letters,
// digits and '.' collapsed into one '_', none at either end.
std::string normalize_codec_name(std::string_view name)
{
    std::string out;
    bool pending_separator = false;
    for (char ch : name) {
        auto c = static_cast<unsigned char>(ch);
        bool keep = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                    (c >= 'A' && c <= 'Z') || c == '.';
        if (!keep) {
            pending_separator = true;
            continue;
        }
        if (pending_separator && !out.empty()) {
            out += '_';
        }
        pending_separator = false;
        out += static_cast<char>((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    return out;
}

struct CodecAlias {
    std::string_view name;
    TextEncoding encoding;
};

// Python 3.11's encodings.aliases for our three codecs, plus the module
// names themselves, which lookup() also accepts.
constexpr CodecAlias kCodecAliases[] = {
    {"utf_8", TextEncoding::utf8},
    {"u8", TextEncoding::utf8},
    {"utf", TextEncoding::utf8},
    {"utf8", TextEncoding::utf8},
    {"utf8_ucs2", TextEncoding::utf8},
    {"utf8_ucs4", TextEncoding::utf8},
    {"cp65001", TextEncoding::utf8},
    {"latin_1", TextEncoding::latin1},
    {"8859", TextEncoding::latin1},
    {"cp819", TextEncoding::latin1},
    {"csisolatin1", TextEncoding::latin1},
    {"ibm819", TextEncoding::latin1},
    {"iso8859", TextEncoding::latin1},
    {"iso8859_1", TextEncoding::latin1},
    {"iso_8859_1", TextEncoding::latin1},
    {"iso_8859_1_1987", TextEncoding::latin1},
    {"iso_ir_100", TextEncoding::latin1},
    {"l1", TextEncoding::latin1},
    {"latin", TextEncoding::latin1},
    {"latin1", TextEncoding::latin1},
    {"ascii", TextEncoding::ascii},
    {"646", TextEncoding::ascii},
    {"ansi_x3.4_1968", TextEncoding::ascii},
    {"ansi_x3.4_1986", TextEncoding::ascii},
    {"ansi_x3_4_1968", TextEncoding::ascii},
    {"cp367", TextEncoding::ascii},
    {"csascii", TextEncoding::ascii},
    {"ibm367", TextEncoding::ascii},
    {"iso646_us", TextEncoding::ascii},
    {"iso_646.irv_1991", TextEncoding::ascii},
    {"iso_ir_6", TextEncoding::ascii},
    {"us", TextEncoding::ascii},
    {"us_ascii", TextEncoding::ascii},
};

std::optional<TextEncoding> find_alias(std::string_view normalized)
{
    const auto *end = std::end(kCodecAliases);
    const auto *found =
        std::find_if(std::begin(kCodecAliases), end,
                     [&](const CodecAlias &a) { return a.name == normalized; });
    if (found == end) {
        return std::nullopt;
    }
    return found->encoding;
}

// One step of CPython's UTF-8 decoder. `length` is how many bytes the step
// covers: the whole character when valid, otherwise the "maximal subpart"
// that CPython reports as one error (and replaces with one U+FFFD).
struct Utf8Step {
    enum class Kind { valid, invalid_start, invalid_continuation, truncated };
    Kind kind;
    std::size_t length;
};

constexpr bool is_continuation(unsigned char c)
{
    return c >= 0x80 && c <= 0xbf;
}

Utf8Step scan_utf8(const unsigned char *p, std::size_t available)
{
    unsigned char lead = p[0];
    if (lead < 0x80) {
        return {Utf8Step::Kind::valid, 1};
    }
    std::size_t need;
    unsigned char lo = 0x80, hi = 0xbf; // allowed range of the second byte
    if (lead >= 0xc2 && lead <= 0xdf) {
        need = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        need = 3;
        if (lead == 0xe0) {
            lo = 0xa0; // overlong
        } else if (lead == 0xed) {
            hi = 0x9f; // surrogates
        }
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        need = 4;
        if (lead == 0xf0) {
            lo = 0x90; // overlong
        } else if (lead == 0xf4) {
            hi = 0x8f; // above U+10FFFF
        }
    } else {
        return {Utf8Step::Kind::invalid_start, 1};
    }
    for (std::size_t k = 1; k < need; k++) {
        if (k >= available) {
            return {Utf8Step::Kind::truncated, available};
        }
        bool ok = (k == 1) ? (p[1] >= lo && p[1] <= hi) : is_continuation(p[k]);
        if (!ok) {
            return {Utf8Step::Kind::invalid_continuation, k};
        }
    }
    return {Utf8Step::Kind::valid, need};
}

std::string_view reason_for(Utf8Step::Kind kind)
{
    switch (kind) {
    case Utf8Step::Kind::invalid_start:
        return "invalid start byte";
    case Utf8Step::Kind::invalid_continuation:
        return "invalid continuation byte";
    default:
        return "unexpected end of data";
    }
}

void append_latin1_char(std::string &out, unsigned char c)
{
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else {
        out += static_cast<char>(0xc0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3f));
    }
}

constexpr std::string_view kReplacementChar = "\xef\xbf\xbd"; // U+FFFD

} // namespace

std::optional<TextEncoding> find_text_encoding(std::string_view charset)
{
    std::string normalized = normalize_codec_name(charset);
    if (auto found = find_alias(normalized)) {
        return found;
    }
    // encodings.search_function() also tries the name with '.' as '_'.
    std::replace(normalized.begin(), normalized.end(), '.', '_');
    return find_alias(normalized);
}

std::string_view codec_name(TextEncoding encoding)
{
    switch (encoding) {
    case TextEncoding::latin1:
        return "latin-1";
    case TextEncoding::ascii:
        return "ascii";
    default:
        return "utf-8";
    }
}

StrictDecodeResult decode_strict(std::string_view bytes, TextEncoding encoding,
                                 bool final)
{
    StrictDecodeResult result;
    const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
    std::size_t n = bytes.size();

    if (encoding == TextEncoding::latin1) {
        result.text = latin1_to_utf8(bytes);
        return result;
    }
    if (encoding == TextEncoding::ascii) {
        for (std::size_t i = 0; i < n; i++) {
            if (p[i] >= 0x80) {
                result.failure =
                    DecodeFailure{i, i + 1, "ordinal not in range(128)"};
                return result;
            }
        }
        result.text.assign(bytes);
        return result;
    }

    std::size_t valid_end = 0;
    while (valid_end < n) {
        Utf8Step step = scan_utf8(p + valid_end, n - valid_end);
        if (step.kind == Utf8Step::Kind::truncated && !final) {
            break; // kept back for more input that never comes
        }
        if (step.kind != Utf8Step::Kind::valid) {
            result.failure = DecodeFailure{valid_end, valid_end + step.length,
                                           reason_for(step.kind)};
            return result;
        }
        valid_end += step.length;
    }
    result.text.assign(bytes.substr(0, valid_end));
    return result;
}

std::string decode_replacing(std::string_view bytes, TextEncoding encoding)
{
    const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
    std::size_t n = bytes.size();

    if (encoding == TextEncoding::latin1) {
        return latin1_to_utf8(bytes);
    }
    std::string out;
    out.reserve(n);
    for (std::size_t i = 0; i < n;) {
        if (encoding == TextEncoding::ascii) {
            if (p[i] < 0x80) {
                out += static_cast<char>(p[i]);
            } else {
                out += kReplacementChar;
            }
            i++;
            continue;
        }
        Utf8Step step = scan_utf8(p + i, n - i);
        if (step.kind == Utf8Step::Kind::valid) {
            out.append(bytes.substr(i, step.length));
        } else {
            out += kReplacementChar;
        }
        i += step.length;
    }
    return out;
}

std::string describe_decode_failure(std::string_view bytes,
                                    TextEncoding encoding,
                                    const DecodeFailure &failure)
{
    std::string message = "'";
    message += codec_name(encoding);
    char where[96];
    if (failure.end - failure.start == 1 && failure.start < bytes.size()) {
        std::snprintf(where, sizeof where,
                      "' codec can't decode byte 0x%02x in position %zu: ",
                      static_cast<unsigned char>(bytes[failure.start]),
                      failure.start);
    } else {
        std::snprintf(where, sizeof where,
                      "' codec can't decode bytes in position %zu-%zu: ",
                      failure.start, failure.end - 1);
    }
    message += where;
    message += failure.reason;
    return message;
}

std::string latin1_to_utf8(std::string_view bytes)
{
    std::string out;
    out.reserve(bytes.size());
    for (char c : bytes) {
        append_latin1_char(out, static_cast<unsigned char>(c));
    }
    return out;
}

} // namespace authtoken
