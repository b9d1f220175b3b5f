// The value of one digit in the encodings we parse by hand (hex digests
// and percent-escapes; Django's base64; the base64url of token record
// names), shared so there is one of each.
#pragma once

namespace authtoken
{

// 0-15 for [0-9a-fA-F], -1 for anything else.
constexpr int hex_digit_value(char c) noexcept
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// 0-63 for the standard base64 alphabet (RFC 4648), -1 for anything else.
constexpr int base64_digit_value(char c) noexcept
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

// 0-63 for the URL and filename safe alphabet (RFC 4648 section 5: '-' and
// '_' in place of '+' and '/'), -1 for anything else.
constexpr int base64url_digit_value(char c) noexcept
{
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return c == '+' || c == '/' ? -1 : base64_digit_value(c);
}

} // namespace authtoken
