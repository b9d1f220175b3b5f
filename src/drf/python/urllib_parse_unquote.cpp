#include "drf/python/urllib_parse_unquote.h"

#include "core/digit_values.h"

#include <cstddef>

namespace authtoken
{
namespace
{

// unquote_to_bytes() of one ASCII run.
std::string percent_decode(std::string_view run)
{
    std::string bytes;
    bytes.reserve(run.size());
    for (std::size_t i = 0; i < run.size(); i++) {
        bool escape = run[i] == '%' && i + 2 < run.size() &&
                      hex_digit_value(run[i + 1]) >= 0 &&
                      hex_digit_value(run[i + 2]) >= 0;
        if (escape) {
            bytes += static_cast<char>(hex_digit_value(run[i + 1]) * 16 +
                                       hex_digit_value(run[i + 2]));
            i += 2;
        } else {
            bytes += run[i];
        }
    }
    return bytes;
}

} // namespace

std::string unquote_python(std::string_view text, TextEncoding encoding)
{
    // Python returns the text itself when there is nothing to unquote.
    if (text.find('%') == std::string_view::npos) {
        return std::string(text);
    }
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t start = i;
        bool ascii = static_cast<unsigned char>(text[i]) < 0x80;
        while (i < text.size() &&
               (static_cast<unsigned char>(text[i]) < 0x80) == ascii) {
            i++;
        }
        std::string_view run = text.substr(start, i - start);
        if (ascii) {
            out += decode_replacing(percent_decode(run), encoding);
        } else {
            out += run;
        }
    }
    return out;
}

} // namespace authtoken
