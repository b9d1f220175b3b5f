#include "drf/python/json_decode_error.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <optional>
#include <string>

namespace authtoken
{
namespace
{

bool starts_with(std::string_view text, std::string_view prefix)
{
    return text.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view text, std::string_view suffix)
{
    return text.size() >= suffix.size() &&
           text.substr(text.size() - suffix.size()) == suffix;
}

bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

std::size_t count_code_points(std::string_view utf8)
{
    return static_cast<std::size_t>(
        std::count_if(utf8.begin(), utf8.end(), [](char c) {
            return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
        }));
}

// How long Python's NUMBER_RE match at `at` is:
// (-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)? - 0 when nothing matches.
std::size_t python_number_length(std::string_view text, std::size_t at)
{
    std::size_t i = at;
    auto digits_from = [&](std::size_t k) {
        while (k < text.size() && is_digit(text[k])) {
            k++;
        }
        return k;
    };
    if (i < text.size() && text[i] == '-') {
        i++;
    }
    if (i >= text.size() || !is_digit(text[i])) {
        return 0;
    }
    i = text[i] == '0' ? i + 1 : digits_from(i);
    if (i + 1 < text.size() && text[i] == '.' && is_digit(text[i + 1])) {
        i = digits_from(i + 1);
    }
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        std::size_t k = i + 1;
        if (k < text.size() && (text[k] == '-' || text[k] == '+')) {
            k++;
        }
        if (k < text.size() && is_digit(text[k])) {
            i = digits_from(k);
        }
    }
    return i - at;
}

// The literal (Python's own NaN and Infinity included) starting at `at`.
std::optional<std::string_view> python_literal_at(std::string_view text,
                                                  std::size_t at,
                                                  bool constants_only = false)
{
    constexpr std::string_view kLiterals[] = {"NaN",  "Infinity", "-Infinity",
                                              "true", "false",    "null"};
    std::string_view rest = text.substr(at);
    const auto *end = std::end(kLiterals) - (constants_only ? 3 : 0);
    const auto *found =
        std::find_if(std::begin(kLiterals), end, [&](std::string_view literal) {
            return starts_with(rest, literal);
        });
    if (found == end) {
        return std::nullopt;
    }
    return *found;
}

// The tokens Python's scanner could take at `at`: strings, numbers, its
// literals (NaN and Infinity included) and punctuation. 0 for none, as for
// an unterminated string.
std::size_t python_token_length(std::string_view text, std::size_t at)
{
    char c = text[at];
    if (c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ',') {
        return 1;
    }
    if (c == '"') {
        for (std::size_t i = at + 1; i < text.size(); i++) {
            if (text[i] == '\\') {
                i++;
            } else if (text[i] == '"') {
                return i + 1 - at;
            }
        }
        return 0;
    }
    if (auto literal = python_literal_at(text, at)) {
        return literal->size();
    }
    return python_number_length(text, at);
}

// Where Python reports an "Expecting ..." or "Extra data" error: at the
// start of the token nlohmann stumbled on (the byte at `failed_at` belongs
// to it). Everything before that token is valid JSON, so reading tokens
// from the start finds it; `at_end` counts the end of the text as a token
// of its own, for errors about input ending too early.
std::size_t failing_token_start(std::string_view text, std::size_t failed_at,
                                bool at_end)
{
    std::size_t start = 0;
    std::size_t i = 0;
    for (;;) {
        while (i < text.size() && is_json_space(text[i])) {
            i++;
        }
        if (i >= text.size()) {
            return at_end ? text.size() : start;
        }
        if (i > failed_at) {
            return start;
        }
        start = i;
        std::size_t length = python_token_length(text, i);
        if (length == 0) {
            return start;
        }
        i += length;
    }
}

// Python's "Extra data" position: the first token after the document's
// value, which nlohmann found complete.
std::size_t first_token_after_value(std::string_view text)
{
    std::size_t depth = 0;
    std::size_t i = 0;
    for (;;) {
        while (i < text.size() && is_json_space(text[i])) {
            i++;
        }
        if (i >= text.size()) {
            return i;
        }
        std::size_t length = python_token_length(text, i);
        if (length == 0) {
            return i;
        }
        if (text[i] == '[' || text[i] == '{') {
            depth++;
        } else if ((text[i] == ']' || text[i] == '}') && depth > 0) {
            depth--;
        }
        i += length;
        if (depth == 0) {
            while (i < text.size() && is_json_space(text[i])) {
                i++;
            }
            return i;
        }
    }
}

// Python's strict_constant(): DRF refuses what Python would read as floats.
std::optional<std::string_view> python_constant_at(std::string_view text,
                                                   std::size_t at)
{
    return python_literal_at(text, at, true);
}

// Python 3.11's int() refuses more than sys.get_int_max_str_digits()
// (4300) digits with a ValueError; nlohmann reaches such numbers as doubles
// that overflow.
std::optional<std::string> python_int_refusal(std::string_view text,
                                              std::size_t at)
{
    constexpr std::size_t kMaxIntDigits = 4300;
    std::size_t length = python_number_length(text, at);
    std::string_view number = text.substr(at, length);
    if (number.find_first_of(".eE") != std::string_view::npos) {
        return std::nullopt;
    }
    std::size_t digits = length - (number.substr(0, 1) == "-" ? 1 : 0);
    if (digits <= kMaxIntDigits) {
        return std::nullopt;
    }
    return "Exceeds the limit (" + std::to_string(kMaxIntDigits) +
           " digits) for integer string conversion: value has " +
           std::to_string(digits) +
           " digits; use sys.set_int_max_str_digits() to increase the limit";
}

// The "\u" escape whose error nlohmann reports at `failed_at`.
std::size_t unicode_escape_start(std::string_view text, std::size_t failed_at)
{
    std::size_t hit = text.rfind("\\u", failed_at > 0 ? failed_at - 1 : 0);
    return hit == std::string_view::npos ? failed_at : hit;
}

// The byte nlohmann stumbled on, from the count of bytes it read (the end
// of the input counts as one).
std::size_t failed_byte(std::string_view text, std::size_t position)
{
    std::size_t read = std::min(position, text.size() + 1);
    return read > 0 ? read - 1 : 0;
}

} // namespace

std::string format_json_error(std::string_view message, std::string_view text,
                              std::size_t byte_index)
{
    std::string_view before = text.substr(0, byte_index);
    std::size_t line = 1 + static_cast<std::size_t>(
                               std::count(before.begin(), before.end(), '\n'));
    std::size_t last_newline = before.rfind('\n');
    std::string_view this_line = last_newline == std::string_view::npos
                                     ? before
                                     : before.substr(last_newline + 1);
    char where[96];
    std::snprintf(where, sizeof where, ": line %zu column %zu (char %zu)", line,
                  count_code_points(this_line) + 1, count_code_points(before));
    std::string out(message);
    out += where;
    return out;
}

std::string describe_json_number_overflow(std::string_view text,
                                          std::size_t position)
{
    std::size_t start =
        failing_token_start(text, failed_byte(text, position), false);
    if (auto refused = python_int_refusal(text, start)) {
        return *refused;
    }
    // Python reads such a number as a huge int or as float('inf'), and DRF
    // goes on; nlohmann cannot.
    return format_json_error("Number out of range", text, start);
}

std::string describe_json_syntax_error(std::string_view text,
                                       std::size_t position,
                                       std::string_view what, bool at_top_level)
{
    std::size_t failed_at = failed_byte(text, position);

    constexpr std::string_view kSyntax = "syntax error while parsing ";
    std::size_t found = what.find(kSyntax);
    std::string_view detail = found == std::string_view::npos
                                  ? std::string_view()
                                  : what.substr(found + kSyntax.size());
    std::size_t dash = detail.find(" - ");
    std::string_view context = detail.substr(0, dash);
    std::string_view problem = dash == std::string_view::npos
                                   ? std::string_view()
                                   : detail.substr(dash + 3);

    if (ends_with(problem, "; expected end of input")) {
        return format_json_error("Extra data", text,
                                 first_token_after_value(text));
    }
    bool at_end = starts_with(problem, "unexpected end of input");
    std::size_t start = failing_token_start(text, failed_at, at_end);
    // Where Python expects punctuation it looks at one character, and
    // never reads the string or number nlohmann stumbled in.
    if (context == "object separator") {
        return format_json_error("Expecting ':' delimiter", text, start);
    }
    if (context == "object" || context == "array") {
        return format_json_error("Expecting ',' delimiter", text, start);
    }
    if (starts_with(problem, "invalid string: control character")) {
        return format_json_error("Invalid control character at", text,
                                 failed_at);
    }
    if (starts_with(problem, "invalid string: forbidden character after") &&
        failed_at < text.size()) {
        return format_json_error("Invalid \\escape", text, failed_at - 1);
    }
    if (starts_with(problem, "invalid string: '\\u' must be followed")) {
        return format_json_error("Invalid \\uXXXX escape", text,
                                 unicode_escape_start(text, failed_at) + 1);
    }
    if (starts_with(problem, "invalid string: surrogate")) {
        return format_json_error("Unpaired surrogate in \\uXXXX escape", text,
                                 unicode_escape_start(text, failed_at));
    }
    if (starts_with(problem, "invalid string")) {
        return format_json_error("Unterminated string starting at", text,
                                 start);
    }
    if (context == "object key") {
        return format_json_error(
            "Expecting property name enclosed in double quotes", text, start);
    }
    // "2." or "1e": Python takes the number "2" and trips on what follows
    // it, where nlohmann refuses the whole token.
    if (starts_with(problem, "invalid number") && start > 0 &&
        is_digit(text[start - 1])) {
        return format_json_error(at_top_level ? "Extra data"
                                              : "Expecting ',' delimiter",
                                 text, start);
    }
    if (auto constant = python_constant_at(text, start)) {
        std::string message =
            "Out of range float values are not JSON compliant: '";
        message += *constant;
        message += '\'';
        return message;
    }
    return format_json_error("Expecting value", text, start);
}

} // namespace authtoken
