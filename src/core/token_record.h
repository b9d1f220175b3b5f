// What a token record in Redis means for a request: the verdict DRF's
// authenticate_credentials() would reach.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace authtoken
{

// The fields of one record as Redis answered HMGET (nullopt = nil), in the
// order of keys::kTokenRecordFields. The views borrow the reply.
struct TokenRecordView {
    std::optional<std::string_view> uid;
    std::optional<std::string_view> user;
    std::optional<std::string_view> active;
    std::optional<std::string_view> expires;
};

// The one verdict vocabulary from the record to the response: the module
// caches it as it is (in shared memory, hence the fixed type and values)
// and turns it into $auth_token_status and the status code in one place.
enum class TokenVerdict : unsigned char {
    valid = 1,
    inactive = 2,  // the user is not active: "User inactive or deleted."
    unknown = 3,   // no record: "Invalid token."
    expired = 4,   // past its expiry: "Invalid token." as for knox
    malformed = 5, // a record we cannot read: fail closed, as an error
};

// Whether a verdict names a user (the record's uid and user are usable):
// a token that is one, active or not.
constexpr bool names_user(TokenVerdict verdict) noexcept
{
    return verdict == TokenVerdict::valid || verdict == TokenVerdict::inactive;
}

struct TokenJudgement {
    TokenVerdict verdict;
    // Unix seconds after which `verdict` no longer holds without the
    // record changing: the record's `expires` for a token that names a
    // user, 0 (never) for the others and for a token that never expires.
    std::int64_t expires;
};

// `now` is Unix time in seconds. A record is malformed unless uid is a
// decimal number, user is a usable user name (is_usable_user_name), active
// is "0" or "1" and expires, when present, is a decimal number (0 = never).
TokenJudgement judge_token_record(const TokenRecordView &record,
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
