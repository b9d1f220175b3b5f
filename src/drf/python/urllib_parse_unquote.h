// urllib.parse.unquote(text, encoding, errors='replace'), which Django's
// form parsing (QueryDict) and RFC 2231 header parameters go through.
#pragma once

#include "drf/python/codecs.h"

#include <string>
#include <string_view>

namespace authtoken
{

// `text` is UTF-8. Each run of ASCII characters has its %XX escapes turned
// into bytes, and the run is decoded with `encoding`, bad bytes becoming
// U+FFFD; non-ASCII characters pass through untouched. A '%' not followed
// by two hex digits stays as it is.
std::string unquote_python(std::string_view text, TextEncoding encoding);

} // namespace authtoken
