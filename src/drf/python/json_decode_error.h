// Python's wording for JSON syntax errors (str(json.JSONDecodeError)), made
// from what nlohmann::json reports, so that DRF's "JSON parse error - ..."
// reads the same for the usual mistakes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace authtoken
{

// "<message>: line L column C (char N)" for the character at `byte_index`
// of the UTF-8 `text` (N counts code points, as Python does).
std::string format_json_error(std::string_view message, std::string_view text,
                              std::size_t byte_index);

// Python's message for the syntax error nlohmann reported at `position`
// (bytes read so far) with the exception text `what`, `at_top_level` when
// no array or object was open: "Expecting value", "Extra data", "Expecting
// ',' delimiter", "Unterminated string starting at", ... at the position
// Python names. Unpaired surrogate escapes, which Python accepts, get a
// message of their own. Only the wording for rare garbage differs from
// Python's (a number cut short inside a longer token, say).
std::string describe_json_syntax_error(std::string_view text,
                                       std::size_t position,
                                       std::string_view what,
                                       bool at_top_level);

// For a number nlohmann refused as out of a double's range: Python's error
// for an integer of more than 4300 digits; for anything else Python would
// have read it (as a long int or float('inf')), so the message is ours.
std::string describe_json_number_overflow(std::string_view text,
                                          std::size_t position);

} // namespace authtoken
