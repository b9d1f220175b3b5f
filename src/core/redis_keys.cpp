#include "redis_keys.h"

namespace authtoken::keys {

std::string token_record_key(std::string_view digest_hex)
{
    std::string key(kTokenPrefix);
    key.append(digest_hex);
    return key;
}

std::string user_key(std::uint64_t uid)
{
    std::string key(kUserPrefix);
    key.append(std::to_string(uid));
    return key;
}

std::string username_key(std::string_view username)
{
    std::string key(kUsernamePrefix);
    key.append(username);
    return key;
}

std::string throttle_key(std::string_view scope, std::string_view subject)
{
    std::string key(kThrottlePrefix);
    key.append(scope);
    key.push_back(':');
    key.append(subject);
    return key;
}

} // namespace authtoken::keys
