#include "drf/char_field.h"

#include "drf/obtain_messages.h"
#include "drf/python/str_strip.h"

namespace authtoken
{
namespace
{

CharFieldResult refuse(std::string_view message)
{
    CharFieldResult result;
    result.errors.push_back(message);
    return result;
}

} // namespace

CharFieldResult validate_char_field(const std::optional<DataValue> &data,
                                    bool trim_whitespace)
{
    if (!data) {
        return refuse(drf::kFieldRequired);
    }
    // CharField.run_validation() tests blankness before anything else, on
    // str(data) whatever its type: a file named "  " is blank too.
    bool empty_str = data->type == DataValue::Type::str && data->text.empty();
    if (empty_str ||
        (trim_whitespace && strip_python_str(data->text).empty())) {
        return refuse(drf::kFieldBlank);
    }
    switch (data->type) {
    case DataValue::Type::none:
        return refuse(drf::kFieldNull);
    case DataValue::Type::str:
    case DataValue::Type::int_:
    case DataValue::Type::float_:
        break;
    default:
        return refuse(drf::kNotAString);
    }

    CharFieldResult result;
    std::string_view value = data->text;
    result.value = trim_whitespace ? strip_python_str(value) : value;
    // The validators run after to_internal_value(), on the stripped value.
    if (result.value.find('\0') != std::string::npos) {
        result.errors.push_back(drf::kNullCharacters);
    }
    return result;
}

} // namespace authtoken
