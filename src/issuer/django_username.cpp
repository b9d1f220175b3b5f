#include "issuer/django_username.h"
#include "drf/python/str_strip.h"

#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>

namespace authtoken
{
namespace
{

// django/contrib/auth/validators.py, UnicodeUsernameValidator.message.
constexpr const char *kInvalidUsername =
    "Enter a valid username. This value may contain only letters, numbers, "
    "and @/./+/-/_ characters.";
// django/db/models/fields/__init__.py, Field.default_error_messages.
constexpr const char *kBlank = "This field cannot be blank.";

const std::uint8_t *bytes_of(std::string_view s)
{
    return reinterpret_cast<const std::uint8_t *>(s.data());
}

// Python's \w on str is str.isalnum() plus "_", and isalnum() is true for
// exactly the general categories L* and N* (checked against CPython 3.11,
// code point by code point). libunistring 1.0 and CPython 3.11 both carry
// Unicode 14.0, so this is the same set; a Python with a newer Unicode may
// accept a newly assigned letter that this refuses, and the reverse.
bool is_word_character(ucs4_t c)
{
    static const uc_general_category_t letter_or_number =
        uc_general_category_or(UC_CATEGORY_L, UC_CATEGORY_N);
    return c == '_' || uc_is_general_category(c, letter_or_number);
}

bool is_username_character(ucs4_t c)
{
    return is_word_character(c) || c == '.' || c == '@' || c == '+' || c == '-';
}

} // namespace

std::string normalize_username(std::string_view name)
{
    if (name.empty() || u8_check(bytes_of(name), name.size()) != nullptr) {
        return std::string(name);
    }
    std::size_t length = 0;
    std::unique_ptr<std::uint8_t, decltype(&std::free)> normalized(
        u8_normalize(UNINORM_NFKC, bytes_of(name), name.size(), nullptr,
                     &length),
        &std::free);
    if (!normalized) {
        throw std::bad_alloc();
    }
    return std::string(reinterpret_cast<const char *>(normalized.get()),
                       length);
}

std::size_t username_length(std::string_view name)
{
    std::size_t characters = 0;
    std::size_t i = 0;
    while (i < name.size()) {
        ucs4_t c = 0;
        int n = u8_mbtoucr(&c, bytes_of(name) + i, name.size() - i);
        // Not UTF-8 here: Python's surrogateescape makes each such byte one
        // character.
        i += n > 0 ? static_cast<std::size_t>(n) : 1;
        characters++;
    }
    return characters;
}

std::vector<std::string> validate_username(std::string_view name)
{
    if (name.empty()) {
        return {kBlank};
    }
    std::vector<std::string> errors;
    bool valid = true;
    std::size_t i = 0;
    while (valid && i < name.size()) {
        ucs4_t c = 0;
        int n = u8_mbtoucr(&c, bytes_of(name) + i, name.size() - i);
        valid = n > 0 && is_username_character(c);
        i += n > 0 ? static_cast<std::size_t>(n) : 1;
    }
    if (!valid) {
        errors.emplace_back(kInvalidUsername);
    }
    std::size_t length = username_length(name);
    if (length > kUsernameMaxLength) {
        // MaxLengthValidator.message.
        errors.push_back("Ensure this value has at most " +
                         std::to_string(kUsernameMaxLength) +
                         " characters (it has " + std::to_string(length) +
                         ").");
    }
    return errors;
}

namespace
{

// One code point of `text` at `at`: its value and length in bytes, or
// {byte, 1} with valid = false for a byte that does not start one.
struct CodePoint {
    char32_t value;
    std::size_t length;
    bool valid;
};

CodePoint code_point_at(std::string_view text, std::size_t at)
{
    ucs4_t uc = 0;
    int n = u8_mbtoucr(&uc, reinterpret_cast<const uint8_t *>(text.data() + at),
                       text.size() - at);
    if (n <= 0) {
        return {static_cast<unsigned char>(text[at]), 1, false};
    }
    return {static_cast<char32_t>(uc), static_cast<std::size_t>(n), true};
}

bool is_control(char32_t c)
{
    return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f);
}

// Calls `each(code_point, at_either_end)` for every code point.
template <typename F> void for_each_code_point(std::string_view name, F each)
{
    for (std::size_t at = 0; at < name.size();) {
        CodePoint cp = code_point_at(name, at);
        bool at_end = at == 0 || at + cp.length == name.size();
        each(cp, at_end, name.substr(at, cp.length));
        at += cp.length;
    }
}

bool needs_escape(const CodePoint &cp, bool at_end)
{
    return !cp.valid || is_control(cp.value) ||
           (at_end && is_python_space(cp.value));
}

} // namespace

bool is_unsafe_username(std::string_view name)
{
    bool unsafe = false;
    for_each_code_point(
        name, [&](const CodePoint &cp, bool at_end, std::string_view) {
            unsafe = unsafe || needs_escape(cp, at_end);
        });
    return unsafe;
}

std::string escape_unsafe_username(std::string_view name)
{
    std::string out;
    for_each_code_point(
        name, [&](const CodePoint &cp, bool at_end, std::string_view bytes) {
            if (!needs_escape(cp, at_end)) {
                out.append(bytes);
                return;
            }
            char buf[16];
            if (!cp.valid || cp.value < 0x80) {
                std::snprintf(buf, sizeof buf, "\\x%02x",
                              static_cast<unsigned>(cp.value));
            } else {
                std::snprintf(buf, sizeof buf, "\\u%04x",
                              static_cast<unsigned>(cp.value));
            }
            out += buf;
        });
    return out;
}

} // namespace authtoken
