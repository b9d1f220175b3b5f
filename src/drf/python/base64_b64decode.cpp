#include "drf/python/base64_b64decode.h"

#include "core/digit_values.h"

namespace authtoken
{

std::optional<std::string> decode_base64_leniently(std::string_view text)
{
    std::string out;
    out.reserve(text.size() / 4 * 3 + 3);
    int quad_pos = 0;
    int pads = 0;
    unsigned left = 0;
    for (char ch : text) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '=') {
            // Pads count only once two sextets of the group are in; the
            // group's last pad ends the data, whatever follows.
            if (quad_pos >= 2 && quad_pos + ++pads >= 4) {
                return out;
            }
            continue;
        }
        int value = base64_digit_value(static_cast<char>(c));
        if (value < 0) {
            continue;
        }
        pads = 0;
        auto v = static_cast<unsigned>(value);
        switch (quad_pos) {
        case 0:
            left = v;
            break;
        case 1:
            out += static_cast<char>(((left << 2) | (v >> 4)) & 0xff);
            left = v & 0x0f;
            break;
        case 2:
            out += static_cast<char>(((left << 4) | (v >> 2)) & 0xff);
            left = v & 0x03;
            break;
        default:
            out += static_cast<char>(((left << 6) | v) & 0xff);
            left = 0;
            break;
        }
        quad_pos = (quad_pos + 1) % 4;
    }
    if (quad_pos != 0) {
        return std::nullopt;
    }
    return out;
}

} // namespace authtoken
