#include "drf/python/str_strip.h"

#include <cstddef>

namespace authtoken
{
namespace
{

bool is_ascii_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

constexpr bool is_continuation(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

// Decodes the code point of a well-formed UTF-8 sequence of `length` bytes.
char32_t code_point_at(std::string_view text, std::size_t start,
                       std::size_t length)
{
    auto byte = [&](std::size_t k) {
        return static_cast<unsigned char>(text[start + k]);
    };
    switch (length) {
    case 1:
        return byte(0);
    case 2:
        return (char32_t(byte(0) & 0x1f) << 6) | (byte(1) & 0x3f);
    case 3:
        return (char32_t(byte(0) & 0x0f) << 12) |
               (char32_t(byte(1) & 0x3f) << 6) | (byte(2) & 0x3f);
    default:
        return (char32_t(byte(0) & 0x07) << 18) |
               (char32_t(byte(1) & 0x3f) << 12) |
               (char32_t(byte(2) & 0x3f) << 6) | (byte(3) & 0x3f);
    }
}

std::size_t sequence_length(unsigned char lead)
{
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xf0) {
        return 4;
    }
    return lead >= 0xe0 ? 3 : 2;
}

} // namespace

bool is_python_space(char32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 ||
           c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
           c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
           c == 0x3000;
}

std::string_view strip_python_str(std::string_view text)
{
    std::size_t begin = 0;
    while (begin < text.size()) {
        std::size_t length = sequence_length(text[begin]);
        if (begin + length > text.size() ||
            !is_python_space(code_point_at(text, begin, length))) {
            break;
        }
        begin += length;
    }
    std::size_t end = text.size();
    while (end > begin) {
        std::size_t start = end - 1;
        while (start > begin && is_continuation(text[start])) {
            start--;
        }
        if (!is_python_space(code_point_at(text, start, end - start))) {
            break;
        }
        end = start;
    }
    return text.substr(begin, end - begin);
}

std::string_view strip_python_bytes(std::string_view bytes)
{
    std::size_t begin = 0;
    std::size_t end = bytes.size();
    while (begin < end && is_ascii_space(bytes[begin])) {
        begin++;
    }
    while (end > begin && is_ascii_space(bytes[end - 1])) {
        end--;
    }
    return bytes.substr(begin, end - begin);
}

} // namespace authtoken
