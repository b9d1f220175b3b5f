#include "drf/json_parser.h"

#include "drf/python/float_repr.h"
#include "drf/python/json_decode_error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <vector>

namespace authtoken
{
namespace
{

constexpr std::string_view kErrorPrefix = "JSON parse error - ";

constexpr std::string_view kUtf8Bom = "\xef\xbb\xbf";

// nlohmann's out_of_range.406, "number overflow parsing ...".
constexpr int kNumberOverflowId = 406;

JsonParseResult failure(std::string_view message)
{
    JsonParseResult result;
    result.error.assign(kErrorPrefix);
    result.error.append(message);
    return result;
}

// Calls `visit(index)` for each byte outside string literals until it
// returns true, and returns that index (or the text's size). Only used on
// text that nlohmann found valid up to the point of interest, so quotes
// and escapes there mean what they say.
template <typename Visit>
std::size_t find_outside_strings(std::string_view text, Visit visit)
{
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (visit(i)) {
            return i;
        }
    }
    return text.size();
}

// Where the first bracket past kMaxJsonDepth opens, for the error message.
std::size_t too_deep_position(std::string_view text)
{
    std::size_t depth = 0;
    return find_outside_strings(text, [&](std::size_t i) {
        if (text[i] == '[' || text[i] == '{') {
            return ++depth > kMaxJsonDepth;
        }
        if (text[i] == ']' || text[i] == '}') {
            depth--;
        }
        return false;
    });
}

// nlohmann takes a NUL byte outside strings for the end of the input, and
// would accept "{}\0junk"; for Python it is a character like any other.
std::size_t first_nul_outside_strings(std::string_view text)
{
    return find_outside_strings(text,
                                [&](std::size_t i) { return text[i] == '\0'; });
}

// Python's int(): a JSON integer too long for 64 bits reaches us as a
// double with its text; Python keeps every digit. (Past 308 digits the
// double overflows and nlohmann refuses the document instead.)
bool is_integer_lexeme(std::string_view lexeme)
{
    return lexeme.find_first_of(".eE") == std::string_view::npos;
}

// Keeps the document's root value and the wanted members of a root object,
// and nothing else: no DOM is built, so neither memory nor stack grow with
// what the client nests.
class TopLevelCollector final : public nlohmann::json_sax<nlohmann::json>
{
  public:
    explicit TopLevelCollector(std::initializer_list<std::string_view> wanted)
        : wanted_(wanted)
    {
    }

    bool null() override
    {
        return take(DataValue::Type::none, "None");
    }

    bool boolean(bool value) override
    {
        return take(DataValue::Type::bool_, value ? "True" : "False");
    }

    bool number_integer(number_integer_t value) override
    {
        return take(DataValue::Type::int_, std::to_string(value));
    }

    bool number_unsigned(number_unsigned_t value) override
    {
        return take(DataValue::Type::int_, std::to_string(value));
    }

    bool number_float(number_float_t value, const string_t &lexeme) override
    {
        if (is_integer_lexeme(lexeme)) {
            return take(DataValue::Type::int_, lexeme);
        }
        return take(DataValue::Type::float_,
                    keeping() ? python_float_repr(value) : std::string());
    }

    bool string(string_t &value) override
    {
        return take(DataValue::Type::str, std::move(value));
    }

    bool binary(binary_t &) override
    {
        return true; // JSON text has no binary values
    }

    bool start_object(std::size_t) override
    {
        return open(DataValue::Type::dict);
    }

    bool key(string_t &name) override
    {
        if (depth_ == 1) {
            member_wanted_ = std::find(wanted_.begin(), wanted_.end(), name) !=
                             wanted_.end();
            member_name_ = std::move(name);
        }
        return true;
    }

    bool end_object() override
    {
        depth_--;
        return true;
    }

    bool start_array(std::size_t) override
    {
        return open(DataValue::Type::list);
    }

    bool end_array() override
    {
        depth_--;
        return true;
    }

    bool parse_error(std::size_t position, const std::string &,
                     const nlohmann::detail::exception &ex) override
    {
        syntax_error_position_ = position;
        syntax_error_ = ex.what();
        number_overflow_ = ex.id == kNumberOverflowId;
        return false;
    }

    JsonBody take_body()
    {
        return std::move(body_);
    }

    bool too_deep() const
    {
        return too_deep_;
    }
    bool at_top_level() const
    {
        return depth_ == 0;
    }
    bool number_overflow() const
    {
        return number_overflow_;
    }
    const std::string &syntax_error() const
    {
        return syntax_error_;
    }
    std::size_t syntax_error_position() const
    {
        return syntax_error_position_;
    }

  private:
    // True for the values we keep: the root, and wanted members of a root
    // object (the only values at depth 1 that follow a key).
    bool keeping() const
    {
        return depth_ == 0 ||
               (depth_ == 1 && body_.root.type == DataValue::Type::dict &&
                member_wanted_);
    }

    bool take(DataValue::Type type, std::string text)
    {
        if (depth_ == 0) {
            body_.root = DataValue{type, std::move(text)};
        } else if (keeping()) {
            body_.members[member_name_] = DataValue{type, std::move(text)};
        }
        return true;
    }

    bool open(DataValue::Type type)
    {
        take(type, type == DataValue::Type::dict ? "{}" : "[]");
        if (++depth_ > kMaxJsonDepth) {
            too_deep_ = true;
            return false;
        }
        return true;
    }

    std::vector<std::string_view> wanted_;
    JsonBody body_;
    std::size_t depth_ = 0;
    std::string member_name_;
    bool member_wanted_ = false;
    bool too_deep_ = false;
    std::string syntax_error_;
    std::size_t syntax_error_position_ = 0;
    bool number_overflow_ = false;
};

} // namespace

JsonParseResult parse_json_body(std::string_view body, TextEncoding encoding,
                                std::initializer_list<std::string_view> wanted)
{
    // codecs.getreader(encoding)(stream).read(): decoding errors are
    // ValueErrors too, and an incomplete character at the end is dropped.
    StrictDecodeResult decoded = decode_strict(body, encoding, false);
    if (decoded.failure) {
        return failure(
            describe_decode_failure(body, encoding, *decoded.failure));
    }
    const std::string &text = decoded.text;
    // json.loads() refuses a BOM, which nlohmann would skip.
    if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
        return failure(format_json_error(
            "Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0));
    }

    TopLevelCollector collector(wanted);
    bool parsed = nlohmann::json::sax_parse(
        text, &collector, nlohmann::json::input_format_t::json, true, false);
    if (parsed) {
        // Only whitespace may lie between the value and a NUL that ended
        // nlohmann's reading; Python finds extra data there.
        std::size_t nul = first_nul_outside_strings(text);
        if (nul < text.size()) {
            return failure(format_json_error("Extra data", text, nul));
        }
        JsonParseResult result;
        result.body = collector.take_body();
        return result;
    }
    if (collector.too_deep()) {
        return failure(format_json_error("Nesting deeper than " +
                                             std::to_string(kMaxJsonDepth) +
                                             " levels is not supported",
                                         text, too_deep_position(text)));
    }
    if (collector.number_overflow()) {
        return failure(describe_json_number_overflow(
            text, collector.syntax_error_position()));
    }
    return failure(describe_json_syntax_error(
        text, collector.syntax_error_position(), collector.syntax_error(),
        collector.at_top_level()));
}

} // namespace authtoken
