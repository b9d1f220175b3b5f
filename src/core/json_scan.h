// Walking JSON text outside its string literals, for the positions Python's
// json module reports and nlohmann does not (a too-deep bracket, a NUL byte,
// a number too large).
#pragma once

#include <cstddef>
#include <string_view>

namespace authtoken
{

// Calls `visit(index)` for each byte outside string literals until it
// returns true, and returns that index (or text.size()). Only meaningful on
// text that is valid JSON up to the point of interest, so that quotes and
// escapes there mean what they say.
template <typename Visit>
std::size_t find_outside_json_strings(std::string_view text, Visit visit)
{
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); i++) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (visit(i)) {
            return i;
        }
    }
    return text.size();
}

} // namespace authtoken
