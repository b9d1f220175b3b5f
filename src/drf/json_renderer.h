// Response bodies as DRF's JSONRenderer writes them, so that ours are byte
// for byte the same.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace authtoken
{

// json.dumps(value, ensure_ascii=False, separators=(',', ':')) plus DRF's
// escaping of U+2028 and U+2029: compact, non-ASCII left as UTF-8, control
// characters as \b \t \n \f \r or \u00XX. ordered_json keeps the keys in
// the order they were added, as DRF's ordered dicts do. Invalid UTF-8 in a
// string comes out as U+FFFD rather than throwing.
std::string render_drf_json(const nlohmann::ordered_json &value);

// {"detail":"<text>"}, the body of DRF's APIException responses.
std::string render_drf_detail(std::string_view text);

} // namespace authtoken
