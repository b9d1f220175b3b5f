#include "issuer/throttle_policy.h"

#include <stdexcept>

namespace authtoken
{

ThrottleRate parse_throttle_rate(std::string_view text)
{
    if (text.empty() || text == "off" || text == "none") {
        return {};
    }
    std::size_t slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 ||
        slash + 1 >= text.size()) {
        throw std::invalid_argument("a rate is <number>/<s|m|h|d>, e.g. 5/min");
    }
    unsigned requests = 0;
    for (char c : text.substr(0, slash)) {
        if (c < '0' || c > '9' || requests > 1000000) {
            throw std::invalid_argument("invalid number in rate");
        }
        requests = requests * 10 + static_cast<unsigned>(c - '0');
    }
    unsigned seconds = 0;
    switch (text[slash + 1]) {
    case 's':
        seconds = 1;
        break;
    case 'm':
        seconds = 60;
        break;
    case 'h':
        seconds = 3600;
        break;
    case 'd':
        seconds = 86400;
        break;
    default:
        throw std::invalid_argument("a rate's period is s, m, h or d");
    }
    return {requests, seconds};
}

std::int64_t retry_after_seconds(std::int64_t wait_ms)
{
    std::int64_t seconds = (wait_ms + 999) / 1000;
    return seconds < 1 ? 1 : seconds;
}

std::string throttled_body(std::int64_t seconds)
{
    std::string body = "{\"detail\":\"Request was throttled. Expected "
                       "available in ";
    body += std::to_string(seconds);
    body += seconds == 1 ? " second.\"}" : " seconds.\"}";
    return body;
}

} // namespace authtoken
