// Where Redis is: "redis://[[user]:password@]host[:port][/db]" or
// "unix:///path/redis.sock[?db=N][&password=P]". The password may be
// percent-encoded (a "@" or "/" in it must be).
#pragma once

#include <string>
#include <string_view>

namespace authtoken
{

struct RedisEndpoint {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string unix_path; // set for unix://, then host/port are unused
    std::string username;  // Redis 6 ACL user, optional
    std::string password;  // empty: no AUTH
    int db = 0;
};

// Throws std::invalid_argument with a message naming the problem.
RedisEndpoint parse_redis_url(std::string_view url);

// The URL without its password, for log lines.
std::string describe_endpoint(const RedisEndpoint &endpoint);

} // namespace authtoken
