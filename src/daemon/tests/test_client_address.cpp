// The client address behind trusted proxies (nginx's real_ip module rules)
// and the throttle subject made from it.
#include "daemon/client_address.h"

#include <string>
#include <string_view>
#include <vector>

// cmocka last: its macros (fail, ...) clash with names in C++ headers.
#include "core/tests/cmocka_cpp.h"

using namespace authtoken;

namespace
{

std::string address_of(std::string_view peer, std::string_view header,
                       std::string_view value)
{
    static const std::vector<std::string> trusted = {"127.0.0.1"};
    return client_address(peer, header, value, trusted).address;
}

void client_address_trusts_only_proxies(void **)
{
    // Untrusted peers cannot pick their address.
    assert_string_equal(
        address_of("203.0.113.9", "X-Real-IP", "1.2.3.4").c_str(),
        "203.0.113.9");
    assert_string_equal(
        address_of("127.0.0.1", "X-Real-IP", "198.51.100.7").c_str(),
        "198.51.100.7");
    // Right-most untrusted entry: the left ones are the client's to forge.
    assert_string_equal(address_of("127.0.0.1", "x-forwarded-for",
                                   "6.6.6.6, 198.51.100.7, 127.0.0.1")
                            .c_str(),
                        "198.51.100.7");
    assert_string_equal(address_of("127.0.0.1", "X-Real-IP", "").c_str(),
                        "127.0.0.1");
    assert_string_equal(
        address_of("127.0.0.1", "X-Real-IP", "evil key\r\n").c_str(),
        "127.0.0.1");
    assert_string_equal(address_of("", "X-Real-IP", "2001:DB8::1").c_str(),
                        "2001:db8::1");
}

void client_address_believes_no_header_unless_configured(void **)
{
    // nginx's real_ip_header: nothing by default, whatever the peer.
    assert_string_equal(address_of("127.0.0.1", "", "198.51.100.7").c_str(),
                        "127.0.0.1");
    assert_string_equal(address_of("", "", "198.51.100.7").c_str(), "unix");
    std::vector<std::string> trusted = {"127.0.0.1"};
    assert_true(
        client_address("127.0.0.1", "X-Real-IP", "", trusted).header_missing);
    assert_false(client_address("127.0.0.1", "X-Real-IP", "192.0.2.1", trusted)
                     .header_missing);
    assert_false(
        client_address("192.0.2.9", "X-Real-IP", "", trusted).header_missing);
}

void ipv6_clients_are_throttled_by_their_64(void **)
{
    assert_string_equal(
        throttle_subject("2001:db8:1:2:aaaa:bbbb:cccc:dddd").c_str(),
        "2001:db8:1:2::/64");
    assert_string_equal(throttle_subject("2001:db8:1:2::1").c_str(),
                        "2001:db8:1:2::/64");
    assert_string_equal(throttle_subject("::ffff:192.0.2.7").c_str(),
                        "192.0.2.7");
    assert_string_equal(throttle_subject("192.0.2.7").c_str(), "192.0.2.7");
    assert_string_equal(throttle_subject("unix").c_str(), "unix");
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(client_address_trusts_only_proxies),
        cmocka_unit_test(client_address_believes_no_header_unless_configured),
        cmocka_unit_test(ipv6_clients_are_throttled_by_their_64),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
