// What a token record in Redis means for a request: the verdict DRF's
// authenticate_credentials() would reach.
#pragma once

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
// decimal number, user is non-empty, active is "0" or "1" and expires,
// when present, is a decimal number (0 = never).
TokenVerdict judge_token_record(const TokenRecordView &record,
                                std::int64_t now) noexcept;

} // namespace authtoken
