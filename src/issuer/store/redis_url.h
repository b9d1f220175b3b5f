// Where Redis is: "redis://[[user]:password@]host[:port][/db]",
// "unix:///path/redis.sock[?db=N][&password=P]", or, through Sentinel,
// "sentinel://[[user]:password@]host[:port][,host[:port]...]/service-name[/db]"
// (Sentinel port 26379 by default; the user and password are those of the
// data nodes, as in redis://; ?sentinel_username=U&sentinel_password=P
// authenticate to the Sentinels themselves). The password may be
// percent-encoded (a "@" or "/" in it must be).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

// One Sentinel to ask where the primary is.
struct SentinelAddress {
    std::string host;
    int port = 26379;
};

struct RedisEndpoint {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string unix_path; // set for unix://, then host/port are unused
    std::string username;  // Redis 6 ACL user, optional
    std::string password;  // empty: no AUTH
    int db = 0;
    // sentinel:// only: the Sentinels, in the URL's order, and the name
    // they know the primary by (`sentinel monitor <name> ...`). host and
    // port are then unused: the primary is asked for on every connect.
    std::vector<SentinelAddress> sentinels;
    std::string service_name;
    std::string sentinel_username; // ACL user on the Sentinels, optional
    std::string sentinel_password; // empty: no AUTH to the Sentinels
    bool via_sentinel() const noexcept
    {
        return !sentinels.empty();
    }
};

// Throws std::invalid_argument with a message naming the problem.
RedisEndpoint parse_redis_url(std::string_view url);

// The URL without its passwords, for log lines.
std::string describe_endpoint(const RedisEndpoint &endpoint);

} // namespace authtoken
