#include "core/token_record.h"

namespace authtoken
{
namespace
{

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

bool is_usable_user_name(std::string_view user) noexcept
{
    if (user.empty() || user.front() == ' ' || user.back() == ' ') {
        return false;
    }
    for (char ch : user) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

std::size_t log_escape(std::string_view in, char *out,
                       std::size_t size) noexcept
{
    static const char hex[] = "0123456789ABCDEF";
    std::size_t n = 0;
    for (char ch : in) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            if (size - n < 4) {
                break;
            }
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 0xf];
        } else {
            if (size - n < 1) {
                break;
            }
            out[n++] = ch;
        }
    }
    return n;
}

TokenJudgement judge_token_record(const TokenRecordView &record,
                                  std::int64_t now) noexcept
{
    if (!record.uid && !record.user && !record.active && !record.expires) {
        return {TokenVerdict::unknown, 0};
    }

    std::int64_t uid = 0;
    if (!record.uid || !parse_decimal(*record.uid, uid) || !record.user ||
        !is_usable_user_name(*record.user) || !record.active ||
        (*record.active != "0" && *record.active != "1")) {
        return {TokenVerdict::malformed, 0};
    }

    std::int64_t expires = 0;
    if (record.expires && !parse_decimal(*record.expires, expires)) {
        return {TokenVerdict::malformed, 0};
    }

    // DRF looks the token up first and checks is_active second; an expired
    // token is simply not a token any more.
    if (expires != 0 && expires <= now) {
        return {TokenVerdict::expired, 0};
    }
    if (*record.active != "1") {
        return {TokenVerdict::inactive, expires};
    }
    return {TokenVerdict::valid, expires};
}

} // namespace authtoken
