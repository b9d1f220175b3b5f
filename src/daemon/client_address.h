// Which address a login comes from, for per-address throttling and logs.
// As nginx's ngx_http_realip_module: the TCP peer, unless the peer is a
// trusted proxy AND a forwarded-address header is configured
// (`real_ip_header`, like nginx's directive of that name; none by
// default). A header nobody configured is never believed, or a client
// could pick a fresh address for every guess by sending it through a proxy
// that passes it on.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace authtoken
{

struct ClientAddress {
    std::string address; // an IP literal, or "unix" for an unnamed peer
    // The peer is a trusted proxy and a header is configured, but the
    // request does not carry a usable address in it: the peer is used.
    bool header_missing = false;
};

// `peer`: the TCP peer, empty for a unix socket (which only a local proxy
// can reach, and so is trusted). `header_name`: the configured header, ""
// for none. `header_value`: that header's value in the request ("" when
// absent). With "X-Forwarded-For" (any case) the value is a list and the
// right-most entry that is not itself a trusted proxy is the client
// (nginx's real_ip_recursive on); any other header holds one address.
// Only IP literals are accepted.
ClientAddress client_address(std::string_view peer,
                             std::string_view header_name,
                             std::string_view header_value,
                             const std::vector<std::string> &trusted_proxies);

// The throttle's subject for an address: IPv4 as is; IPv6 by its /64
// prefix ("2001:db8:1:2::/64"), since one host or one customer commonly
// holds a whole /64; IPv4-mapped IPv6 as the IPv4 address. Anything else
// (e.g. "unix") as is.
std::string throttle_subject(std::string_view address);

} // namespace authtoken
