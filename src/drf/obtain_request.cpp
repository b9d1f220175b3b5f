// ObtainAuthToken.post() up to the credentials check: request.data (DRF's
// Request._parse() with the default parsers), then AuthTokenSerializer's
// field validation, answered the way DRF answers.
#include "drf/obtain_request.h"

#include "drf/char_field.h"
#include "drf/json_renderer.h"
#include "drf/form_parser.h"
#include "drf/json_parser.h"
#include "drf/multipart_parser.h"
#include "core/drf_messages.h"
#include "drf/request_data.h"
#include "drf/parser_negotiation.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace authtoken
{
namespace
{

constexpr int kBadRequest = 400;
constexpr int kUnsupportedMediaType = 415;

ObtainParseResult answer(int status, std::string body)
{
    ObtainParseResult result;
    result.status = status;
    result.body = std::move(body);
    return result;
}

ObtainParseResult non_field_error(std::string_view message)
{
    return answer(kBadRequest, render_drf_non_field_error(message));
}

// QueryDict's d[key] is the last value sent for that key.
std::optional<DataValue> last_value(const std::vector<FormField> &fields,
                                    std::string_view name)
{
    auto last = std::find_if(
        fields.rbegin(), fields.rend(),
        [&](const FormField &field) { return field.name == name; });
    if (last == fields.rend()) {
        return std::nullopt;
    }
    return DataValue{DataValue::Type::str, last->value};
}

ObtainData data_from_form(const std::vector<FormField> &fields)
{
    ObtainData data;
    data.username = last_value(fields, drf::kUsername);
    data.password = last_value(fields, drf::kPassword);
    data.name = last_value(fields, drf::kName);
    return data;
}

// Request._load_data_and_files() puts request.FILES after request.POST
// under each key, so a file part named like a field is what the field
// gets, however the fields came.
std::optional<DataValue> last_file_or_value(const MultipartForm &form,
                                            std::string_view name)
{
    auto last = std::find_if(
        form.files.rbegin(), form.files.rend(),
        [&](const UploadedFilePart &file) { return file.field_name == name; });
    if (last == form.files.rend()) {
        return last_value(form.fields, name);
    }
    return DataValue{DataValue::Type::uploaded_file, last->file_name};
}

ObtainData data_from_multipart(const MultipartForm &form)
{
    ObtainData data;
    data.username = last_file_or_value(form, drf::kUsername);
    data.password = last_file_or_value(form, drf::kPassword);
    data.name = last_file_or_value(form, drf::kName);
    return data;
}

ObtainData data_from_json(JsonBody body)
{
    ObtainData data;
    if (body.root.type != DataValue::Type::dict) {
        data.non_mapping = std::move(body.root);
        return data;
    }
    auto member = [&](std::string_view name) -> std::optional<DataValue> {
        auto it = body.members.find(name);
        if (it == body.members.end()) {
            return std::nullopt;
        }
        return std::move(it->second);
    };
    data.username = member(drf::kUsername);
    data.password = member(drf::kPassword);
    data.name = member(drf::kName);
    return data;
}

// Python's len() of UTF-8 text: its code points.
std::size_t code_points(std::string_view text)
{
    return static_cast<std::size_t>(
        std::count_if(text.begin(), text.end(), [](char c) {
            return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        }));
}

// name = CharField(required=False, allow_blank=True, max_length=64):
// absent or blank is "" (CharField.run_validation() returns '' for a
// blank value before anything else when allow_blank); otherwise
// CharField's rules, then MaxLengthValidator on the stripped value.
CharFieldResult validate_name_field(const std::optional<DataValue> &data)
{
    if (!data) {
        return {};
    }
    CharFieldResult name = validate_char_field(data, true);
    if (name.errors.size() == 1 && name.errors[0] == drf::kFieldBlank) {
        return {};
    }
    return name;
}

// Serializer.is_valid(): a mapping is required ("No data provided" for
// None); then each field in declaration order, username before password
// (before name), and every field's errors are reported together.
ObtainParseResult validate_obtain_data(const ObtainData &data, bool with_name)
{
    if (data.non_mapping) {
        if (data.non_mapping->type == DataValue::Type::none) {
            return non_field_error(drf::kNoDataProvided);
        }
        return non_field_error(drf::invalid_data_message(
            python_type_name(data.non_mapping->type)));
    }
    CharFieldResult username = validate_char_field(data.username, true);
    // AuthTokenSerializer: password = CharField(trim_whitespace=False)
    CharFieldResult password = validate_char_field(data.password, false);
    CharFieldResult name;
    // Outlives the loop below: name.errors holds a view of it.
    // cppcheck-suppress variableScope
    std::string too_long;
    if (with_name) {
        name = validate_name_field(data.name);
        if (name.errors.empty() &&
            code_points(name.value) > kTokenNameMaxLength) {
            too_long = drf::max_length_field_message(kTokenNameMaxLength);
            name.errors.push_back(too_long);
        }
    }
    if (username.errors.empty() && password.errors.empty() &&
        name.errors.empty()) {
        ObtainParseResult result;
        result.credentials =
            ObtainCredentials{std::move(username.value),
                              std::move(password.value), std::move(name.value)};
        return result;
    }
    nlohmann::ordered_json errors = nlohmann::ordered_json::object();
    for (const auto &[key, field] :
         {std::pair{drf::kUsername, &username},
          std::pair{drf::kPassword, &password}, std::pair{drf::kName, &name}}) {
        for (std::string_view message : field->errors) {
            errors[std::string(key)].push_back(std::string(message));
        }
    }
    return answer(kBadRequest, render_drf_json(errors));
}

ObtainParseResult unsupported_media_type(std::string_view content_type)
{
    // The header as Django has it: its bytes read as latin-1.
    return answer(kUnsupportedMediaType,
                  render_drf_detail(drf::unsupported_media_type_detail(
                      latin1_to_utf8(content_type))));
}

} // namespace

ObtainParseResult parse_obtain_request(std::string_view content_type,
                                       std::string_view body, bool with_name)
{
    // Request._load_stream(): with Content-Length 0 there is no stream, so
    // nothing is parsed and request.data is empty, whatever the type says.
    if (body.empty()) {
        return validate_obtain_data(ObtainData{}, with_name);
    }
    // Without a Content-Type header, DRF sees "" and no parser matches it.
    BodyParser parser = select_body_parser(content_type);
    if (parser == BodyParser::none) {
        return unsupported_media_type(content_type);
    }
    TextEncoding encoding = request_text_encoding(content_type);

    if (parser == BodyParser::json) {
        JsonParseResult parsed =
            // `name` is kept only when asked for: without it the body is
            // read exactly as DRF reads it (a value out of Python's
            // reach there would otherwise refuse the body).
            with_name
                ? parse_json_body(body, encoding,
                                  {drf::kUsername, drf::kPassword, drf::kName})
                : parse_json_body(body, encoding,
                                  {drf::kUsername, drf::kPassword});
        if (!parsed.body) {
            return answer(kBadRequest, render_drf_detail(parsed.error));
        }
        return validate_obtain_data(data_from_json(std::move(*parsed.body)),
                                    with_name);
    }
    if (parser == BodyParser::form) {
        auto fields = parse_urlencoded_form(body, encoding);
        if (!fields) {
            return answer(kBadRequest,
                          render_drf_detail(drf::kTooManyFormFields));
        }
        return validate_obtain_data(data_from_form(*fields), with_name);
    }
    MultipartParseResult parsed =
        parse_multipart_form(content_type, body, encoding);
    if (!parsed.form) {
        return answer(kBadRequest, render_drf_detail(parsed.error));
    }
    return validate_obtain_data(data_from_multipart(*parsed.form), with_name);
}

} // namespace authtoken
