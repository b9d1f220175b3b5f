// sentinel:// URLs: the Sentinels in order with their default port, the
// service name, the data nodes' user and password, the database, the
// Sentinels' own credentials, and the mistakes that must be refused.
#include "issuer/store/redis_url.h"

#include <cstring>
#include <stdexcept>
#include <string>

// cmocka last: its macros (fail, ...) clash with names in C++ headers.
#include "core/tests/cmocka_cpp.h"

using namespace authtoken;

namespace
{

void sentinel_url_lists_sentinels_in_order_with_default_port(void **)
{
    RedisEndpoint e = parse_redis_url(
        "sentinel://10.0.0.1:26380,10.0.0.2,[::1]:26381/authtoken");
    assert_true(e.via_sentinel());
    assert_int_equal(e.sentinels.size(), 3);
    assert_string_equal(e.sentinels[0].host.c_str(), "10.0.0.1");
    assert_int_equal(e.sentinels[0].port, 26380);
    assert_string_equal(e.sentinels[1].host.c_str(), "10.0.0.2");
    assert_int_equal(e.sentinels[1].port, 26379);
    assert_string_equal(e.sentinels[2].host.c_str(), "::1");
    assert_int_equal(e.sentinels[2].port, 26381);
    assert_string_equal(e.service_name.c_str(), "authtoken");
    assert_int_equal(e.db, 0);
    assert_true(e.username.empty());
    assert_true(e.password.empty());
}

void sentinel_url_takes_data_node_credentials_and_db(void **)
{
    RedisEndpoint e =
        parse_redis_url("sentinel://issuer:s%40cret@h1:1,h2:2/mymaster/3");
    assert_string_equal(e.username.c_str(), "issuer");
    assert_string_equal(e.password.c_str(), "s@cret");
    assert_int_equal(e.db, 3);
    assert_string_equal(e.service_name.c_str(), "mymaster");
    assert_true(e.sentinel_password.empty());

    e = parse_redis_url("sentinel://pw@h1/m?db=2&sentinel_username=watch"
                        "&sentinel_password=s%2Fp");
    assert_string_equal(e.password.c_str(), "pw");
    assert_true(e.username.empty());
    assert_int_equal(e.db, 2);
    assert_string_equal(e.sentinel_username.c_str(), "watch");
    assert_string_equal(e.sentinel_password.c_str(), "s/p");
}

void plain_urls_are_not_sentinel_urls(void **)
{
    assert_false(parse_redis_url("redis://h:1").via_sentinel());
    assert_false(parse_redis_url("unix:///run/redis.sock").via_sentinel());
    // The Sentinels' credentials mean nothing without Sentinels.
    try {
        parse_redis_url("redis://h:1?sentinel_password=x");
        fail_msg("accepted sentinel_password in redis://");
    } catch (const std::invalid_argument &) {
    }
}

void bad_sentinel_urls_are_refused(void **)
{
    for (const char *bad :
         {"sentinel://h1:26379", "sentinel://h1:26379/", "sentinel:///m",
          "sentinel://h1,,h2/m", "sentinel://h1:0/m", "sentinel://h1:x/m",
          "sentinel://h1:99999/m", "sentinel://h1/m/x", "sentinel://h1/m?x=1",
          "sentinels://h1/m"}) {
        try {
            parse_redis_url(bad);
            fail_msg("accepted %s", bad);
        } catch (const std::invalid_argument &) {
        }
    }
}

void sentinel_url_description_has_no_password(void **)
{
    std::string d = describe_endpoint(parse_redis_url(
        "sentinel://u:datapw@h1:1,[::1]:2/m/4?sentinel_password=sentpw"));
    assert_string_equal(d.c_str(), "sentinel://h1:1,[::1]:2/m/4");
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            sentinel_url_lists_sentinels_in_order_with_default_port),
        cmocka_unit_test(sentinel_url_takes_data_node_credentials_and_db),
        cmocka_unit_test(plain_urls_are_not_sentinel_urls),
        cmocka_unit_test(bad_sentinel_urls_are_refused),
        cmocka_unit_test(sentinel_url_description_has_no_password),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
