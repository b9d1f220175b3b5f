// Which address a login comes from, for per-address throttling and logs.
// Forwarding headers are believed only from a configured trusted proxy
// (e.g. nginx on 127.0.0.1); from anyone else they are ignored, or a
// client could pick a fresh address for every guess.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

// `peer` is the TCP peer (empty for a unix socket, which only a local
// proxy can reach and so is trusted). From a trusted peer: X-Real-IP if
// set, else the right-most X-Forwarded-For entry that is not itself a
// trusted proxy, else the peer.
std::string client_address(std::string_view peer, std::string_view x_real_ip,
                           std::string_view x_forwarded_for,
                           const std::vector<std::string> &trusted_proxies);

} // namespace authtoken
