// Python's strip() without arguments, for str and for bytes. DRF's CharField
// trims with str.strip(), which knows Unicode whitespace; Django's header
// parsing strips bytes, which knows only ASCII whitespace.
#pragma once

#include <string_view>

namespace authtoken
{

// str.isspace() for one code point: \t \n \v \f \r, the separators
// U+001C..U+001F, space, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028,
// U+2029, U+202F, U+205F and U+3000 (Python 3.11's table).
bool is_python_space(char32_t code_point);

// str.strip() of valid UTF-8 text.
std::string_view strip_python_str(std::string_view utf8);

// bytes.strip(): space, \t, \n, \r, \v and \f.
std::string_view strip_python_bytes(std::string_view bytes);

} // namespace authtoken
