// DRF's request.data as far as a serializer of string fields can tell: the
// Python type of each value, and its str().
#pragma once

#include <optional>
#include <string>

namespace authtoken
{

struct DataValue {
    enum class Type {
        str,
        int_,
        float_,
        bool_,
        none,
        list,
        dict,
        uploaded_file, // a multipart file part that landed in request.data
    };
    Type type = Type::str;
    // UTF-8. str: the string; int_/float_: Python's str() of the number;
    // bool_: "True"/"False"; none: "None"; uploaded_file: the file's name.
    std::string text;
};

// Python's type(value).__name__.
constexpr const char *python_type_name(DataValue::Type type)
{
    switch (type) {
    case DataValue::Type::str:
        return "str";
    case DataValue::Type::int_:
        return "int";
    case DataValue::Type::float_:
        return "float";
    case DataValue::Type::bool_:
        return "bool";
    case DataValue::Type::none:
        return "NoneType";
    case DataValue::Type::list:
        return "list";
    case DataValue::Type::dict:
        return "dict";
    default:
        return "InMemoryUploadedFile";
    }
}

// What AuthTokenSerializer receives as data.
struct ObtainData {
    // request.data when it is not a mapping (a JSON body that is not an
    // object); empty for a mapping.
    std::optional<DataValue> non_mapping;
    // The mapping's values (the last one for repeated form keys).
    std::optional<DataValue> username;
    std::optional<DataValue> password;
    // Beyond DRF: the token's name (tokens_per_user = many).
    std::optional<DataValue> name;
};

} // namespace authtoken
