// DRF's serializers.CharField (allow_blank=False, allow_null=False, no
// length limits), as AuthTokenSerializer declares username and password.
#pragma once

#include "drf/request_data.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

struct CharFieldResult {
    std::string value;                    // meaningful when errors is empty
    std::vector<std::string_view> errors; // DRF's messages, in its order
};

// CharField.run_validation() of `data` (nullopt: the key is absent):
// required; blank when "" or, with trim_whitespace, when str(data).strip()
// is ""; None is "may not be null"; bools, lists, dicts and files are "Not
// a valid string."; numbers become their str(); the value is then stripped
// (trim_whitespace) and checked for NUL characters. Surrogates, which DRF
// also refuses, cannot reach us: all our text is well-formed UTF-8.
CharFieldResult validate_char_field(const std::optional<DataValue> &data,
                                    bool trim_whitespace);

} // namespace authtoken
