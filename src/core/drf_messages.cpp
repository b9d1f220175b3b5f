#include "core/drf_messages.h"

namespace authtoken::drf
{
namespace
{

std::string around(std::string_view before, std::string_view value,
                   std::string_view after)
{
    std::string text;
    text.reserve(before.size() + value.size() + after.size());
    text += before;
    text += value;
    text += after;
    return text;
}

} // namespace

std::string method_not_allowed_detail(std::string_view method)
{
    return around("Method \"", method, "\" not allowed.");
}

std::string unsupported_media_type_detail(std::string_view media_type)
{
    return around("Unsupported media type \"", media_type, "\" in request.");
}

std::string throttled_detail(std::int64_t wait_seconds)
{
    // Throttled.extra_detail_singular / extra_detail_plural
    return around("Request was throttled. Expected available in ",
                  std::to_string(wait_seconds),
                  wait_seconds == 1 ? " second." : " seconds.");
}

std::string body_larger_than_detail(std::size_t limit_bytes)
{
    return around("Request body is larger than ", std::to_string(limit_bytes),
                  " bytes.");
}

std::string request_line_longer_than_detail(std::size_t limit_bytes)
{
    return around("Request line is longer than ", std::to_string(limit_bytes),
                  " bytes.");
}

std::string header_line_longer_than_detail(std::size_t limit_bytes)
{
    return around("A request header line is longer than ",
                  std::to_string(limit_bytes), " bytes.");
}

std::string more_header_fields_than_detail(std::size_t limit_fields)
{
    return around("Request has more than ", std::to_string(limit_fields),
                  " header fields.");
}

std::string headers_larger_than_detail(std::size_t limit_bytes)
{
    return around("Request headers are larger than ",
                  std::to_string(limit_bytes), " bytes.");
}

std::string max_length_message(std::size_t limit, std::size_t length)
{
    return around("Ensure this value has at most ", std::to_string(limit),
                  around(" characters (it has ", std::to_string(length), ")."));
}

std::string max_length_field_message(std::size_t limit)
{
    return around("Ensure this field has no more than ", std::to_string(limit),
                  " characters.");
}

std::string invalid_data_message(std::string_view type_name)
{
    return around("Invalid data. Expected a dictionary, but got ", type_name,
                  ".");
}

} // namespace authtoken::drf
