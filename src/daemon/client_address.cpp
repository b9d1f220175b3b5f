#include "daemon/client_address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

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

bool equal_ignoring_case(std::string_view a, std::string_view b)
{
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(),
                      [](char x, char y) { return (x | 0x20) == (y | 0x20); });
}

// Forwarded addresses end up in Redis keys and log lines: only IP
// literals, in their canonical text form.
std::optional<std::string> canonical_ip(std::string_view s)
{
    if (s.empty() || s.size() >= INET6_ADDRSTRLEN) {
        return std::nullopt;
    }
    std::string text(s);
    std::array<unsigned char, 16> bytes{};
    char out[INET6_ADDRSTRLEN];
    int family = text.find(':') == std::string::npos ? AF_INET : AF_INET6;
    if (inet_pton(family, text.c_str(), bytes.data()) != 1 ||
        inet_ntop(family, bytes.data(), out, sizeof(out)) == nullptr) {
        return std::nullopt;
    }
    return std::string(out);
}

} // namespace

ClientAddress client_address(std::string_view peer,
                             std::string_view header_name,
                             std::string_view header_value,
                             const std::vector<std::string> &trusted_proxies)
{
    std::string fallback = peer.empty() ? "unix" : std::string(peer);
    bool from_proxy = peer.empty() || is_trusted(peer, trusted_proxies);
    if (!from_proxy || header_name.empty()) {
        return {fallback, false};
    }
    if (!equal_ignoring_case(header_name, "X-Forwarded-For")) {
        if (auto ip = canonical_ip(trim(header_value))) {
            return {*ip, false};
        }
        return {fallback, true};
    }
    std::string_view rest = header_value;
    while (!rest.empty()) {
        std::size_t comma = rest.rfind(',');
        std::string_view entry = trim(
            comma == std::string_view::npos ? rest : rest.substr(comma + 1));
        rest = comma == std::string_view::npos ? std::string_view()
                                               : rest.substr(0, comma);
        auto ip = canonical_ip(entry);
        if (!ip) {
            break;
        }
        if (!is_trusted(*ip, trusted_proxies)) {
            return {*ip, false};
        }
    }
    return {fallback, true};
}

std::string throttle_subject(std::string_view address)
{
    std::string text(address);
    std::array<unsigned char, 16> bytes{};
    if (text.find(':') == std::string::npos ||
        inet_pton(AF_INET6, text.c_str(), bytes.data()) != 1) {
        return text;
    }
    char out[INET6_ADDRSTRLEN];
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0,    0,
                                                  0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes.data(), kMapped, sizeof(kMapped)) == 0) {
        inet_ntop(AF_INET, bytes.data() + 12, out, sizeof(out));
        return out;
    }
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    inet_ntop(AF_INET6, bytes.data(), out, sizeof(out));
    return std::string(out) + "/64";
}

} // namespace authtoken
