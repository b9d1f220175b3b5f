#include "drf/python/float_repr.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace authtoken
{

std::string python_float_repr(double value)
{
    if (std::isnan(value)) {
        return "nan";
    }
    if (std::isinf(value)) {
        return value < 0 ? "-inf" : "inf";
    }
    // to_chars() without a precision gives the shortest round-trip digits,
    // as Python's repr() does; "d.ddde+XX" is easy to take apart.
    char buffer[64];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value,
                                   std::chars_format::scientific);
    std::string_view text(buffer, ec == std::errc() ? end - buffer : 0);

    std::string out;
    if (!text.empty() && text.front() == '-') {
        out += '-';
        text.remove_prefix(1);
    }
    std::size_t e = text.find('e');
    std::string digits;
    for (char c : text.substr(0, e)) {
        if (c != '.') {
            digits += c;
        }
    }
    if (digits.empty() || e == std::string_view::npos) {
        return out + "0.0"; // to_chars() cannot fail with this buffer
    }
    int exponent = std::atoi(std::string(text.substr(e + 1)).c_str());
    // Python's float_repr_style 'short': the decimal point sits `point`
    // digits in; fixed notation unless point <= -4 or point > 16.
    int point = exponent + 1;
    auto count = static_cast<int>(digits.size());
    if (point > -4 && point <= 16) {
        if (point <= 0) {
            out += "0.";
            out.append(static_cast<std::size_t>(-point), '0');
            out += digits;
        } else if (point >= count) {
            out += digits;
            out.append(static_cast<std::size_t>(point - count), '0');
            out += ".0";
        } else {
            out += digits.substr(0, static_cast<std::size_t>(point));
            out += '.';
            out += digits.substr(static_cast<std::size_t>(point));
        }
        return out;
    }
    out += digits.front();
    if (count > 1) {
        out += '.';
        out += digits.substr(1);
    }
    char exponent_text[16];
    auto written = std::snprintf(exponent_text, sizeof exponent_text, "e%c%02d",
                                 exponent < 0 ? '-' : '+', std::abs(exponent));
    out.append(exponent_text, static_cast<std::size_t>(written));
    return out;
}

} // namespace authtoken
