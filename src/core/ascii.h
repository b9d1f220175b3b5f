// Python's bytes methods that the core, the drf layer and the issuer need,
// on std::string_view: ASCII only, as bytes.lower() and bytes.split() are.
// Header-only, for the nginx module as for the rest.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace authtoken
{

// bytes.isspace() for one byte: space, \t, \n, \r, \v and \f (the set
// bytes.split() and bytes.strip() use without an argument).
constexpr bool is_ascii_space(unsigned char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

// bytes.strip() without an argument.
constexpr std::string_view strip_ascii_space(std::string_view bytes) noexcept
{
    std::size_t begin = 0;
    std::size_t end = bytes.size();
    while (begin < end && is_ascii_space(bytes[begin])) {
        begin++;
    }
    while (end > begin && is_ascii_space(bytes[end - 1])) {
        end--;
    }
    return bytes.substr(begin, end - begin);
}

// bytes.lower() for one byte: only A..Z change.
constexpr char ascii_lower(char c) noexcept
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

// bytes.lower()
inline std::string ascii_lower(std::string_view bytes)
{
    std::string out(bytes);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](char c) { return ascii_lower(c); });
    return out;
}

// a.lower() == b.lower()
constexpr bool equals_ascii_case_insensitive(std::string_view a,
                                             std::string_view b) noexcept
{
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); i++) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

// bytes.isascii(): every byte below 0x80 (true for empty).
constexpr bool is_ascii(std::string_view bytes) noexcept
{
    // std::any_of is constexpr only from C++20.
    for (char c : bytes) {
        // cppcheck-suppress useStlAlgorithm
        if (static_cast<unsigned char>(c) >= 0x80) {
            return false;
        }
    }
    return true;
}

// bytes.startswith() / bytes.endswith() (std::string_view has them from
// C++20 on).
constexpr bool starts_with(std::string_view text,
                           std::string_view prefix) noexcept
{
    return text.substr(0, prefix.size()) == prefix;
}

constexpr bool ends_with(std::string_view text,
                         std::string_view suffix) noexcept
{
    return text.size() >= suffix.size() &&
           text.substr(text.size() - suffix.size()) == suffix;
}

} // namespace authtoken
