// Python's str.strip() without arguments: DRF's CharField trims with it,
// and it knows Unicode whitespace. (bytes.strip(), which knows only ASCII
// whitespace, is strip_ascii_space() in core/ascii.h.)
#pragma once

#include <string_view>

namespace authtoken
{

// str.isspace() for one code point: \t \n \v \f \r, the separators
// U+001C..U+001F, space, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028,
// U+2029, U+202F, U+205F and U+3000 (Python 3.11's table).
bool is_python_space(char32_t code_point);

// str.strip() of valid UTF-8 text (every caller's text comes out of a
// decoder, latin1_to_utf8() or an ASCII check). A byte that does not start
// a valid character is kept and ends the strip at that side.
std::string_view strip_python_str(std::string_view utf8);

} // namespace authtoken
