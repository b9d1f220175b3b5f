#include "drf/json_renderer.h"

namespace authtoken
{
namespace
{

// JSONRenderer escapes the two line separators that JavaScript string
// literals cannot hold, even with ensure_ascii=False.
void escape_line_separators(std::string &json)
{
    constexpr std::string_view kSeparators[][2] = {
        {"\xe2\x80\xa8", "\\u2028"},
        {"\xe2\x80\xa9", "\\u2029"},
    };
    for (const auto &pair : kSeparators) {
        std::size_t pos = 0;
        while ((pos = json.find(pair[0], pos)) != std::string::npos) {
            json.replace(pos, pair[0].size(), pair[1]);
            pos += pair[1].size();
        }
    }
}

} // namespace

std::string render_drf_json(const nlohmann::ordered_json &value)
{
    std::string json = value.dump(
        -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    escape_line_separators(json);
    return json;
}

std::string render_drf_detail(std::string_view text)
{
    nlohmann::ordered_json body;
    body["detail"] = std::string(text);
    return render_drf_json(body);
}

} // namespace authtoken
