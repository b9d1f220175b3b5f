// What a token record in Redis means for a request: the verdict DRF's
// authenticate_credentials() would reach.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace authtoken {

// The fields of one record as Redis answered HMGET (nullopt = nil), in the
// order of keys::kTokenRecordFields. The views borrow the reply.
struct TokenRecordView {
    std::optional<std::string_view> uid;
    std::optional<std::string_view> user;
    std::optional<std::string_view> active;
    std::optional<std::string_view> expires;
};

enum class TokenVerdict {
    valid,
    unknown,   // no record: "Invalid token."
    expired,   // past its expiry: "Invalid token." as for knox
    inactive,  // the user is not active: "User inactive or deleted."
    malformed, // a record we cannot read: fail closed, as an error
};

// `now` is Unix time in seconds. A record is malformed unless uid is a
// decimal number, user is a usable user name (is_usable_user_name), active
// is "0" or "1" and expires, when present, is a decimal number (0 = never).
TokenVerdict judge_token_record(const TokenRecordView &record,
                                std::int64_t now) noexcept;

// Whether `user` may become $auth_token_user and from there an upstream
// header value: not empty, no byte below 0x20 and no 0x7f (CR/LF would
// split a header or a log line), and no leading or trailing space (Django's
// forms strip them, so no real user name has them). Bytes from 0x80 up are
// UTF-8 and allowed.
bool is_usable_user_name(std::string_view user) noexcept;

// Writes `in` into `out` (capacity `size`) the way nginx's access log
// escapes a value: bytes below 0x20, '"', '\' and bytes from 0x7f up as
// \xHH, everything else as it is. Output that does not fit is cut at a
// whole character (never half an escape). Returns the bytes written.
// log_escaped_size(n) bytes always suffice for an input of n bytes.
std::size_t log_escape(std::string_view in, char *out,
                       std::size_t size) noexcept;
constexpr std::size_t log_escaped_size(std::size_t n) noexcept
{
    return n * 4;
}

} // namespace authtoken
