#include "client_address.h"

#include <algorithm>

namespace authtoken
{
namespace
{

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

bool is_trusted(std::string_view address,
                const std::vector<std::string> &trusted)
{
    return std::find(trusted.begin(), trusted.end(), address) != trusted.end();
}

// Forwarded addresses end up in Redis keys and log lines: accept only the
// characters of IPv4/IPv6 literals.
bool looks_like_ip(std::string_view s)
{
    if (s.empty() || s.size() > 45) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
               (c >= 'A' && c <= 'F') || c == '.' || c == ':';
    });
}

} // namespace

std::string client_address(std::string_view peer, std::string_view x_real_ip,
                           std::string_view x_forwarded_for,
                           const std::vector<std::string> &trusted_proxies)
{
    bool from_proxy = peer.empty() || is_trusted(peer, trusted_proxies);
    if (!from_proxy) {
        return std::string(peer);
    }
    std::string_view real_ip = trim(x_real_ip);
    if (looks_like_ip(real_ip)) {
        return std::string(real_ip);
    }
    std::string_view rest = x_forwarded_for;
    while (!rest.empty()) {
        std::size_t comma = rest.rfind(',');
        std::string_view entry = trim(
            comma == std::string_view::npos ? rest : rest.substr(comma + 1));
        rest = comma == std::string_view::npos ? std::string_view()
                                               : rest.substr(0, comma);
        if (!looks_like_ip(entry)) {
            break;
        }
        if (!is_trusted(entry, trusted_proxies)) {
            return std::string(entry);
        }
    }
    return peer.empty() ? std::string("unix") : std::string(peer);
}

} // namespace authtoken
