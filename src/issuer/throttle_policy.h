// Failed-login throttling, the pure part: DRF's rate strings and the wait
// (DRF's Throttled message is drf::throttled_detail() in
// core/drf_messages.h). The counting itself is redis/throttle.lua, so every
// daemon instance shares one sliding window per username and per address.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace authtoken
{

struct ThrottleRate {
    unsigned requests = 0; // 0 = no throttling
    unsigned seconds = 0;
    bool enabled() const
    {
        return requests > 0;
    }
};

// DRF's SimpleRateThrottle.parse_rate(): "<n>/<period>", where only the
// period's first letter counts (s, m, h, d: "5/min" = "5/m"). "off" or ""
// disables. Throws std::invalid_argument.
ThrottleRate parse_throttle_rate(std::string_view text);

// The whole seconds a client is told to wait: DRF rounds up (math.ceil),
// and we never say 0 while still refusing.
std::int64_t retry_after_seconds(std::int64_t wait_ms);

} // namespace authtoken
