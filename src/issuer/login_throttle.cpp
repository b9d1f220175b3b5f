#include "login_throttle.h"

#include "core/redis_keys.h"
#include "token_key.h"

#include <string>
#include <vector>

namespace authtoken
{

std::int64_t LoginThrottle::run(RedisConnection &conn, const char *mode,
                                std::string_view username,
                                std::string_view address) const
{
    std::vector<std::string> keys, args;
    args.emplace_back(mode);
    auto add = [&](ThrottleRate rate, std::string_view scope,
                   std::string_view subject) {
        if (!rate.enabled() || subject.empty()) {
            return;
        }
        keys.push_back(keys::throttle_key(scope, subject));
        args.push_back(std::to_string(rate.requests));
        args.push_back(std::to_string(rate.seconds * 1000ULL));
    };
    add(per_user_, "user", username);
    add(per_address_, "addr", address);
    if (keys.empty()) {
        return 0;
    }
    // Distinct members for failures in the same millisecond.
    args.push_back(generate_token_key().substr(0, 12));

    std::vector<std::string_view> key_views(keys.begin(), keys.end());
    std::vector<std::string_view> arg_views(args.begin(), args.end());
    Reply reply = scripts_.run(conn, "throttle", key_views, arg_views);
    return reply_integer(reply.get());
}

std::int64_t LoginThrottle::wait_ms(RedisConnection &conn,
                                    std::string_view username,
                                    std::string_view address) const
{
    return run(conn, "check", username, address);
}

void LoginThrottle::record_failure(RedisConnection &conn,
                                   std::string_view username,
                                   std::string_view address) const
{
    run(conn, "hit", username, address);
}

} // namespace authtoken
