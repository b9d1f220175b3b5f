#include "drf/parser_negotiation.h"

#include "drf/django_parse_header.h"

#include <algorithm>
#include <iterator>

namespace authtoken
{
namespace
{

struct ParserMediaType {
    std::string_view main_type;
    std::string_view sub_type;
    BodyParser parser;
};

// ObtainAuthToken.parser_classes, in its order (not the settings' default
// order): the first match wins, which matters for wildcards.
constexpr ParserMediaType kParsers[] = {
    {"application", "x-www-form-urlencoded", BodyParser::form},
    {"multipart", "form-data", BodyParser::multipart},
    {"application", "json", BodyParser::json},
};

// _MediaType.match() with the parser's type on the left: a '*' in the
// request's type or subtype matches whatever the parser has there.
bool matches(const ParserMediaType &parser, std::string_view main_type,
             std::string_view sub_type)
{
    return (sub_type == "*" || sub_type == parser.sub_type) &&
           (main_type == "*" || main_type == parser.main_type);
}

} // namespace

BodyParser select_body_parser(std::string_view content_type)
{
    auto header = parse_header_like_django(content_type);
    if (!header) {
        return BodyParser::none;
    }
    // full_type.partition('/'): no '/' leaves the subtype empty.
    std::string_view full_type = header->main_value;
    std::size_t slash = full_type.find('/');
    std::string_view main_type = full_type.substr(0, slash);
    std::string_view sub_type = slash == std::string_view::npos
                                    ? std::string_view()
                                    : full_type.substr(slash + 1);
    const auto *end = std::end(kParsers);
    const auto *found =
        std::find_if(std::begin(kParsers), end, [&](const auto &parser) {
            return matches(parser, main_type, sub_type);
        });
    return found == end ? BodyParser::none : found->parser;
}

TextEncoding request_text_encoding(std::string_view content_type)
{
    auto charset = cgi_header_parameter(content_type, "charset");
    if (!charset) {
        return TextEncoding::utf8;
    }
    return find_text_encoding(*charset).value_or(TextEncoding::utf8);
}

} // namespace authtoken
