// Response bodies as DRF's JSONRenderer writes them, so that ours are byte
// for byte the same: every body authtokend renders goes through here. The
// texts are in core/drf_messages.h.
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

// {"detail":"<text>"}, the body of DRF's APIException responses. The
// fixed ones are ready-made in core/drf_messages.h (DrfError::body); this
// renders those with a value in them (drf::throttled_detail() and the
// like).
std::string render_drf_detail(std::string_view text);

// {"non_field_errors":["<message>"]}, a serializer's ValidationError that
// belongs to no one field (AuthTokenSerializer.validate()).
std::string render_drf_non_field_error(std::string_view message);

} // namespace authtoken
