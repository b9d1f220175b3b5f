#include "issuer/store/redis_url.h"

#include "core/digit_values.h"

#include <stdexcept>

namespace authtoken
{
namespace
{

std::string percent_decode(std::string_view text)
{
    std::string out;
    for (std::size_t i = 0; i < text.size(); i++) {
        if (text[i] == '%' && i + 2 < text.size() &&
            hex_digit_value(text[i + 1]) >= 0 &&
            hex_digit_value(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_digit_value(text[i + 1]) * 16 +
                                            hex_digit_value(text[i + 2])));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

int parse_number(std::string_view text, int max, const char *what)
{
    if (text.empty() || text.size() > 9) {
        throw std::invalid_argument(std::string("invalid ") + what);
    }
    int value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            throw std::invalid_argument(std::string("invalid ") + what);
        }
        value = value * 10 + (c - '0');
    }
    if (value > max) {
        throw std::invalid_argument(std::string("invalid ") + what);
    }
    return value;
}

void parse_userinfo(std::string_view userinfo, RedisEndpoint &endpoint)
{
    std::size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
        // "redis://secret@host" is how many clients spell a bare password.
        endpoint.password = percent_decode(userinfo);
        return;
    }
    endpoint.username = percent_decode(userinfo.substr(0, colon));
    endpoint.password = percent_decode(userinfo.substr(colon + 1));
}

void parse_query(std::string_view query, RedisEndpoint &endpoint)
{
    while (!query.empty()) {
        std::size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view()
                                              : query.substr(amp + 1);
        std::size_t eq = pair.find('=');
        std::string_view name = pair.substr(0, eq);
        std::string_view value = eq == std::string_view::npos
                                     ? std::string_view()
                                     : pair.substr(eq + 1);
        if (name == "db") {
            endpoint.db = parse_number(value, 1 << 20, "database number");
        } else if (name == "password") {
            endpoint.password = percent_decode(value);
        } else if (name == "sentinel_username" && endpoint.via_sentinel()) {
            endpoint.sentinel_username = percent_decode(value);
        } else if (name == "sentinel_password" && endpoint.via_sentinel()) {
            endpoint.sentinel_password = percent_decode(value);
        } else {
            throw std::invalid_argument("unknown parameter \"" +
                                        std::string(name) + "\"");
        }
    }
}

RedisEndpoint parse_unix_url(std::string_view rest)
{
    RedisEndpoint endpoint;
    std::size_t q = rest.find('?');
    endpoint.unix_path = std::string(rest.substr(0, q));
    if (endpoint.unix_path.empty() || endpoint.unix_path[0] != '/') {
        throw std::invalid_argument("a unix socket path must be absolute");
    }
    if (q != std::string_view::npos) {
        parse_query(rest.substr(q + 1), endpoint);
    }
    return endpoint;
}

void parse_host_port(std::string_view hostport, RedisEndpoint &endpoint)
{
    std::string_view host = hostport;
    std::string_view port;
    if (!hostport.empty() && hostport[0] == '[') { // [::1]:6379
        std::size_t close = hostport.find(']');
        if (close == std::string_view::npos) {
            throw std::invalid_argument("unclosed [ in host");
        }
        host = hostport.substr(1, close - 1);
        if (close + 1 < hostport.size()) {
            if (hostport[close + 1] != ':') {
                throw std::invalid_argument("invalid host");
            }
            port = hostport.substr(close + 2);
        }
    } else if (std::size_t colon = hostport.rfind(':');
               colon != std::string_view::npos) {
        host = hostport.substr(0, colon);
        port = hostport.substr(colon + 1);
    }
    if (!host.empty()) {
        endpoint.host = std::string(host);
    }
    if (!port.empty()) {
        endpoint.port = parse_number(port, 65535, "port");
        if (endpoint.port == 0) {
            throw std::invalid_argument("invalid port");
        }
    }
}

// The parts of "[userinfo@]authority[/path][?query]" (what follows the
// scheme), the userinfo parsed into `endpoint` already.
struct UrlParts {
    std::string_view authority;
    std::string_view path;
    std::string_view query;
    bool has_path = false; // a '/' after the authority
};

UrlParts split_url(std::string_view rest, RedisEndpoint &endpoint)
{
    UrlParts parts;
    std::size_t q = rest.find('?');
    if (q != std::string_view::npos) {
        parts.query = rest.substr(q + 1);
    }
    rest = rest.substr(0, q);

    std::size_t slash = rest.find('/');
    parts.authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
        parts.path = rest.substr(slash + 1);
        parts.has_path = true;
    }

    std::size_t at = parts.authority.rfind('@');
    if (at != std::string_view::npos) {
        parse_userinfo(parts.authority.substr(0, at), endpoint);
        parts.authority = parts.authority.substr(at + 1);
    }
    return parts;
}

RedisEndpoint parse_tcp_url(std::string_view rest)
{
    RedisEndpoint endpoint;
    UrlParts parts = split_url(rest, endpoint);
    parse_host_port(parts.authority, endpoint);
    if (!parts.path.empty()) {
        endpoint.db = parse_number(parts.path, 1 << 20, "database number");
    }
    parse_query(parts.query, endpoint);
    return endpoint;
}

// sentinel://[userinfo@]host[:port][,host[:port]...]/service-name[/db][?query]
RedisEndpoint parse_sentinel_url(std::string_view rest)
{
    RedisEndpoint endpoint;
    UrlParts parts = split_url(rest, endpoint);
    if (!parts.has_path) {
        throw std::invalid_argument(
            "a sentinel:// URL needs a service name: "
            "sentinel://host:port[,host:port...]/service-name");
    }
    std::string_view authority = parts.authority;
    std::string_view path = parts.path;
    std::string_view query = parts.query;
    while (true) {
        std::size_t comma = authority.find(',');
        std::string_view one = authority.substr(0, comma);
        RedisEndpoint address;
        address.host.clear();
        address.port = 26379;
        parse_host_port(one, address);
        if (address.host.empty()) {
            throw std::invalid_argument("empty Sentinel address");
        }
        endpoint.sentinels.push_back({address.host, address.port});
        if (comma == std::string_view::npos) {
            break;
        }
        authority = authority.substr(comma + 1);
    }

    std::size_t db_slash = path.find('/');
    std::string_view name = path.substr(0, db_slash);
    if (name.empty()) {
        throw std::invalid_argument("empty Sentinel service name");
    }
    endpoint.service_name = percent_decode(name);
    if (db_slash != std::string_view::npos) {
        endpoint.db =
            parse_number(path.substr(db_slash + 1), 1 << 20, "database number");
    }
    parse_query(query, endpoint);
    return endpoint;
}

} // namespace

RedisEndpoint parse_redis_url(std::string_view url)
{
    constexpr std::string_view redis_scheme = "redis://";
    constexpr std::string_view unix_scheme = "unix://";
    if (url.substr(0, redis_scheme.size()) == redis_scheme) {
        return parse_tcp_url(url.substr(redis_scheme.size()));
    }
    if (url.substr(0, unix_scheme.size()) == unix_scheme) {
        return parse_unix_url(url.substr(unix_scheme.size()));
    }
    constexpr std::string_view sentinel_scheme = "sentinel://";
    if (url.substr(0, sentinel_scheme.size()) == sentinel_scheme) {
        return parse_sentinel_url(url.substr(sentinel_scheme.size()));
    }
    throw std::invalid_argument(
        "a Redis URL starts with redis://, unix:// or sentinel://");
}

std::string describe_endpoint(const RedisEndpoint &endpoint)
{
    if (endpoint.via_sentinel()) {
        std::string out = "sentinel://";
        for (const SentinelAddress &s : endpoint.sentinels) {
            bool v6 = s.host.find(':') != std::string::npos;
            out += (out.size() > 11 ? "," : "") +
                   (v6 ? "[" + s.host + "]" : s.host) + ":" +
                   std::to_string(s.port);
        }
        return out + "/" + endpoint.service_name + "/" +
               std::to_string(endpoint.db);
    }
    std::string out =
        endpoint.unix_path.empty()
            ? "redis://" + endpoint.host + ":" + std::to_string(endpoint.port)
            : "unix://" + endpoint.unix_path;
    out += endpoint.unix_path.empty() ? "/" : "?db=";
    out += std::to_string(endpoint.db);
    return out;
}

} // namespace authtoken
