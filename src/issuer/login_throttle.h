// Failed-login throttling against Redis (redis/throttle.lua): one sliding
// window per username and one per client address. Only failures count, so
// a user who types the password right is never slowed down by others'
// successes; an attacker guessing one account or spraying from one address
// is.
#pragma once

#include "redis_client.h"
#include "throttle_policy.h"

#include <cstdint>
#include <string_view>

namespace authtoken
{

class LoginThrottle
{
  public:
    LoginThrottle(const ScriptLibrary &scripts, ThrottleRate per_user,
                  ThrottleRate per_address)
        : scripts_(scripts), per_user_(per_user), per_address_(per_address)
    {
    }

    // Milliseconds until both windows allow another attempt; 0 = go.
    std::int64_t wait_ms(RedisConnection &conn, std::string_view username,
                         std::string_view address) const;
    void record_failure(RedisConnection &conn, std::string_view username,
                        std::string_view address) const;

  private:
    std::int64_t run(RedisConnection &conn, const char *mode,
                     std::string_view username, std::string_view address) const;

    const ScriptLibrary &scripts_;
    ThrottleRate per_user_;
    ThrottleRate per_address_;
};

} // namespace authtoken
