// ObtainAuthToken.post() up to the credentials check: request.data (DRF's
// Request._parse() with the default parsers), then AuthTokenSerializer's
// field validation, answered the way DRF answers.
#include "drf/obtain_request.h"

#include "drf/char_field.h"
#include "drf/json_renderer.h"
#include "drf/form_parser.h"
#include "drf/json_parser.h"
#include "drf/multipart_parser.h"
#include "drf/obtain_messages.h"
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

ObtainParseResult non_field_error(std::string message)
{
    nlohmann::ordered_json body;
    body[std::string(drf::kNonFieldErrors)] = {std::move(message)};
    return answer(kBadRequest, render_drf_json(body));
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
    return data;
}

// Serializer.is_valid(): a mapping is required ("No data provided" for
// None); then each field in declaration order, username before password,
// and every field's errors are reported together.
ObtainParseResult validate_obtain_data(const ObtainData &data)
{
    if (data.non_mapping) {
        if (data.non_mapping->type == DataValue::Type::none) {
            return non_field_error(std::string(drf::kNoDataProvided));
        }
        std::string message(drf::kInvalidDataBefore);
        message += python_type_name(data.non_mapping->type);
        message += drf::kInvalidDataAfter;
        return non_field_error(std::move(message));
    }
    CharFieldResult username = validate_char_field(data.username, true);
    // AuthTokenSerializer: password = CharField(trim_whitespace=False)
    CharFieldResult password = validate_char_field(data.password, false);
    if (username.errors.empty() && password.errors.empty()) {
        ObtainParseResult result;
        result.credentials = ObtainCredentials{std::move(username.value),
                                               std::move(password.value)};
        return result;
    }
    nlohmann::ordered_json errors = nlohmann::ordered_json::object();
    for (const auto &[name, field] : {std::pair{drf::kUsername, &username},
                                      std::pair{drf::kPassword, &password}}) {
        for (std::string_view message : field->errors) {
            errors[std::string(name)].push_back(std::string(message));
        }
    }
    return answer(kBadRequest, render_drf_json(errors));
}

ObtainParseResult unsupported_media_type(std::string_view content_type)
{
    // The header as Django has it: its bytes read as latin-1.
    std::string detail(drf::kUnsupportedMediaBefore);
    detail += latin1_to_utf8(content_type);
    detail += drf::kUnsupportedMediaAfter;
    return answer(kUnsupportedMediaType, render_drf_detail(detail));
}

} // namespace

ObtainParseResult parse_obtain_request(std::string_view content_type,
                                       std::string_view body)
{
    // Request._load_stream(): with Content-Length 0 there is no stream, so
    // nothing is parsed and request.data is empty, whatever the type says.
    if (body.empty()) {
        return validate_obtain_data(ObtainData{});
    }
    // Without a Content-Type header, DRF sees "" and no parser matches it.
    BodyParser parser = select_body_parser(content_type);
    if (parser == BodyParser::none) {
        return unsupported_media_type(content_type);
    }
    TextEncoding encoding = request_text_encoding(content_type);

    if (parser == BodyParser::json) {
        JsonParseResult parsed =
            parse_json_body(body, encoding, {drf::kUsername, drf::kPassword});
        if (!parsed.body) {
            return answer(kBadRequest, render_drf_detail(parsed.error));
        }
        return validate_obtain_data(data_from_json(std::move(*parsed.body)));
    }
    if (parser == BodyParser::form) {
        auto fields = parse_urlencoded_form(body, encoding);
        if (!fields) {
            return answer(kBadRequest,
                          render_drf_detail(drf::kTooManyFormFields));
        }
        return validate_obtain_data(data_from_form(*fields));
    }
    MultipartParseResult parsed =
        parse_multipart_form(content_type, body, encoding);
    if (!parsed.form) {
        return answer(kBadRequest, render_drf_detail(parsed.error));
    }
    return validate_obtain_data(data_from_multipart(*parsed.form));
}

} // namespace authtoken
