#include "drf/python/str_strip.h"

#include "core/utf8.h"

#include <cstddef>

namespace authtoken
{

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
        Utf8Step step = utf8_step(text, begin);
        if (step.kind != Utf8Step::Kind::valid ||
            !is_python_space(step.code_point)) {
            break;
        }
        begin += step.length;
    }
    std::size_t end = text.size();
    while (end > begin) {
        std::size_t start = utf8_start_before(text, begin, end);
        Utf8Step step = utf8_step(text.substr(0, end), start);
        if (step.kind != Utf8Step::Kind::valid || start + step.length != end ||
            !is_python_space(step.code_point)) {
            break;
        }
        end = start;
    }
    return text.substr(begin, end - begin);
}

} // namespace authtoken
