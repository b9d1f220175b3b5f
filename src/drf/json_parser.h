// application/json bodies as DRF's JSONParser reads them: the body decoded
// with request.encoding by a codecs StreamReader, then json.load() with
// DRF's strict constants (NaN and Infinity refused).
#pragma once

#include "drf/python/codecs.h"
#include "drf/request_data.h"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace authtoken
{

// Python would recurse once per level (and fail past about 1000 levels with
// a RecursionError, a 500 in DRF). We parse without recursion but refuse
// documents nested deeper than this, as a 400.
inline constexpr std::size_t kMaxJsonDepth = 64;

struct JsonBody {
    // The document's value: its type, and its str() for scalars.
    DataValue root;
    // For an object, the top-level members named in the request, the last
    // of duplicated names winning as in a Python dict.
    std::map<std::string, DataValue, std::less<>> members;
};

struct JsonParseResult {
    std::optional<JsonBody> body;
    std::string error; // DRF's detail, "JSON parse error - ...", if no body
};

// `wanted` names the top-level members to keep. Numbers come out as Python
// would print them: integers digit for digit, other numbers as float repr
// ("1e+16"). Unlike Python, we refuse numbers beyond a double's range
// (integers of 309 digits and more, 1e400), and "\ud800" escapes that are
// not surrogate pairs (Python keeps them, and DRF's CharField then refuses
// them). Linear in the body size; never recursive.
JsonParseResult parse_json_body(std::string_view body, TextEncoding encoding,
                                std::initializer_list<std::string_view> wanted);

} // namespace authtoken
