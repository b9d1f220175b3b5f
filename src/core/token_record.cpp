#include "token_record.h"

namespace authtoken {
namespace {

bool parse_decimal(std::string_view text, std::int64_t &out) noexcept
{
    if (text.empty() || text.size() > 18) {
        return false;
    }
    std::int64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            return false;
        }
        value = value * 10 + (c - '0');
    }
    out = value;
    return true;
}

} // namespace

TokenVerdict judge_token_record(const TokenRecordView &record,
                                std::int64_t now) noexcept
{
    if (!record.uid && !record.user && !record.active && !record.expires) {
        return TokenVerdict::unknown;
    }

    std::int64_t uid = 0;
    if (!record.uid || !parse_decimal(*record.uid, uid) || !record.user ||
        record.user->empty() || !record.active ||
        (*record.active != "0" && *record.active != "1")) {
        return TokenVerdict::malformed;
    }

    std::int64_t expires = 0;
    if (record.expires && !parse_decimal(*record.expires, expires)) {
        return TokenVerdict::malformed;
    }

    // DRF looks the token up first and checks is_active second; an expired
    // token is simply not a token any more.
    if (expires != 0 && expires <= now) {
        return TokenVerdict::expired;
    }
    if (*record.active != "1") {
        return TokenVerdict::inactive;
    }
    return TokenVerdict::valid;
}

} // namespace authtoken
