#include "drf/django_parse_header.h"

#include "drf/python/codecs.h"
#include "drf/python/urllib_parse_unquote.h"
#include "drf/python/str_strip.h"

#include <algorithm>
#include <cstddef>

namespace authtoken
{
namespace
{

bool is_ascii(std::string_view bytes)
{
    return std::all_of(bytes.begin(), bytes.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x80;
    });
}

std::string ascii_lower(std::string_view bytes)
{
    std::string out(bytes);
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    });
    return out;
}

// bytes.replace(from, to): left to right, without overlaps.
std::string replace_all(std::string_view text, std::string_view from,
                        std::string_view to)
{
    std::string out;
    std::size_t pos = 0;
    for (;;) {
        std::size_t hit = text.find(from, pos);
        if (hit == std::string_view::npos) {
            break;
        }
        out.append(text.substr(pos, hit - pos));
        out.append(to);
        pos = hit + from.size();
    }
    out.append(text.substr(pos));
    return out;
}

// _parse_header_params(): split at ';' where the part so far holds an even
// number of '"'. Python recounts the quotes from the part's start for every
// candidate ';'; carrying the parity along gives the same cuts in one pass.
// The parts come back unstripped.
std::vector<std::string_view> split_header_parts(std::string_view line)
{
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    bool inside_quotes = false;
    for (std::size_t i = 0; i < line.size(); i++) {
        if (line[i] == '"') {
            inside_quotes = !inside_quotes;
        } else if (line[i] == ';' && !inside_quotes) {
            parts.push_back(line.substr(start, i - start));
            start = i + 1;
        }
    }
    parts.push_back(line.substr(start));
    return parts;
}

// A quoted value loses its quotes, then "\\" becomes "\" and "\"" '"'.
std::string unquote_header_value(std::string_view value)
{
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        std::string out =
            replace_all(value.substr(1, value.size() - 2), "\\\\", "\\");
        return replace_all(out, "\\\"", "\"");
    }
    return std::string(value);
}

// The value of "name*=charset'language'percent-encoded-text", as Django
// decodes it with urllib's unquote(). nullopt where Python raises.
std::optional<std::string> decode_extended_value(std::string_view value)
{
    std::size_t first = value.find('\'');
    std::size_t second = value.find('\'', first + 1);
    if (first == std::string_view::npos || second == std::string_view::npos ||
        value.find('\'', second + 1) != std::string_view::npos) {
        return std::nullopt; // not exactly three pieces to unpack
    }
    std::string_view charset = value.substr(0, first);
    std::string_view text = value.substr(second + 1);
    // Both pieces go through bytes.decode() (strict UTF-8) first.
    if (decode_strict(charset, TextEncoding::utf8, true).failure ||
        decode_strict(text, TextEncoding::utf8, true).failure) {
        return std::nullopt;
    }
    // unquote() never looks the codec up when there is no '%'.
    if (text.find('%') == std::string_view::npos) {
        return std::string(text);
    }
    auto encoding = find_text_encoding(charset);
    if (!encoding) {
        return std::nullopt;
    }
    return unquote_python(text, *encoding);
}

std::optional<HeaderParameter> parse_parameter(std::string_view part)
{
    std::size_t equals = part.find('=');
    HeaderParameter parameter;
    std::string_view name = strip_python_bytes(part.substr(0, equals));
    if (!is_ascii(name)) {
        return std::nullopt; // name.decode('ascii') raised
    }
    parameter.name = ascii_lower(name);
    bool extended = false;
    if (!parameter.name.empty() && parameter.name.back() == '*') {
        parameter.name.pop_back();
        extended = std::count(part.begin(), part.end(), '\'') == 2;
    }
    std::string unquoted =
        unquote_header_value(strip_python_bytes(part.substr(equals + 1)));
    if (extended) {
        auto decoded = decode_extended_value(unquoted);
        if (!decoded) {
            return std::nullopt;
        }
        parameter.value = std::move(*decoded);
        parameter.decoded = true;
    } else {
        parameter.value = std::move(unquoted);
    }
    return parameter;
}

} // namespace

const HeaderParameter *ParsedHeader::find(std::string_view name) const
{
    auto last = std::find_if(parameters.rbegin(), parameters.rend(),
                             [&](const HeaderParameter &parameter) {
                                 return parameter.name == name;
                             });
    return last == parameters.rend() ? nullptr : &*last;
}

std::optional<ParsedHeader> parse_header_like_django(std::string_view line)
{
    std::vector<std::string_view> parts = split_header_parts(line);
    std::string_view main_value = strip_python_bytes(parts.front());
    if (!is_ascii(main_value)) {
        return std::nullopt; // the main value's decode('ascii') raised
    }
    ParsedHeader header;
    header.main_value = ascii_lower(main_value);
    for (std::size_t i = 1; i < parts.size(); i++) {
        std::string_view part = strip_python_bytes(parts[i]);
        if (part.find('=') == std::string_view::npos) {
            continue;
        }
        auto parameter = parse_parameter(part);
        if (!parameter) {
            return std::nullopt;
        }
        header.parameters.push_back(std::move(*parameter));
    }
    return header;
}

std::optional<std::string> cgi_header_parameter(std::string_view line,
                                                std::string_view name)
{
    // cgi works on the str that WSGI made of the header bytes.
    std::string text = latin1_to_utf8(line);
    std::optional<std::string> found;
    std::vector<std::string_view> parts = split_header_parts(text);
    for (std::size_t i = 1; i < parts.size(); i++) {
        std::string_view part = strip_python_str(parts[i]);
        std::size_t equals = part.find('=');
        if (equals == std::string_view::npos ||
            ascii_lower(strip_python_str(part.substr(0, equals))) != name) {
            continue;
        }
        found = unquote_header_value(strip_python_str(part.substr(equals + 1)));
    }
    return found;
}

} // namespace authtoken
