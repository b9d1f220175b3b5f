// Failed-login throttling against Redis (redis/throttle.lua). Three
// windows, all counting failed logins only:
//   - (username, client address), hard: when full, 429 before any hashing;
//     the guesser at one address is stopped, the account's owner elsewhere
//     is not;
//   - client address, hard: one address spraying many usernames;
//   - username from anywhere, soft: when full, each further attempt is
//     delayed (1 s, 2 s, 4 s ... up to a cap) instead of refused, so slow
//     distributed guessing of one account is slowed down and nobody can
//     lock its owner out.
// An attempt is reserved in the same script that checks the windows (it
// counts as a failure while in flight), so concurrent attempts cannot all
// pass a check that only one of them should; attempts in flight per username
// and per address are capped as well. Compare django-axes (a hard lockout
// per username and/or address) and DRF (AnonRateThrottle/ScopedRateThrottle,
// which count every request, not failures, per address).
#pragma once

#include "issuer/store/redis_client.h"
#include "issuer/throttle_policy.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace authtoken
{

struct ThrottleSettings {
    ThrottleRate per_user_address{5, 60}; // hard
    ThrottleRate per_address{20, 60};     // hard
    ThrottleRate per_user{20, 3600};      // soft: progressive delay
    std::chrono::milliseconds first_delay{1000};
    std::chrono::milliseconds max_delay{10000};
    unsigned user_in_flight = 4;     // attempts at once per username; 0 = any
    unsigned address_in_flight = 16; // per client address; 0 = any
    // After this an attempt still in flight is presumed dead (its daemon
    // crashed) and stops counting as in flight; it stays a failure.
    std::chrono::milliseconds in_flight_lifetime{60000};
};

// One login attempt's reservation (from LoginThrottle::reserve).
struct ThrottleTicket {
    std::int64_t wait_ms = 0;  // > 0: refused, answer 429; nothing recorded
    std::int64_t delay_ms = 0; // wait this long before checking the password
    std::string member;        // the reservation; "" when nothing was recorded
    std::string username;
    std::string address;
};

class LoginThrottle
{
  public:
    LoginThrottle(const ScriptLibrary &scripts,
                  const ThrottleSettings &settings)
        : scripts_(scripts), settings_(settings)
    {
    }

    // Checks every window and, when all allow it, records the attempt as
    // in flight, atomically. `address` is the throttle subject of the
    // client (throttle_subject() in client_address.h).
    ThrottleTicket reserve(RedisConnection &conn, std::string_view username,
                           std::string_view address) const;
    // Ends a reservation: a success is forgotten, a failure (wrong
    // password, unknown or inactive user) stays counted.
    void finish(RedisConnection &conn, const ThrottleTicket &ticket,
                bool failed) const;

  private:
    struct Subject {
        const char *kind;
        ThrottleRate rate;
        unsigned in_flight;
        std::string window_key;
        std::string in_flight_key;
    };
    std::vector<Subject> subjects(std::string_view username,
                                  std::string_view address) const;

    const ScriptLibrary &scripts_;
    ThrottleSettings settings_;
};

} // namespace authtoken
