// The daemon's metrics without the daemon: which bucket a hash time lands
// in (le is inclusive, as Prometheus defines it), the cumulative buckets
// and their _count, the queue and in-flight gauges of HashWait/HashRun, and
// that every family and labelled series is in the exposition from the
// start.
#include "daemon/issuer_metrics.h"

#include <chrono>
#include <string>

// cmocka last: its macros (fail, ...) clash with names in C++ headers.
#include "core/tests/cmocka_cpp.h"

using namespace authtoken;
using namespace std::chrono_literals;

namespace
{

// The value of the sample line `name` (the whole text before the space).
std::string value_of(const std::string &text, const std::string &name)
{
    std::string key = "\n" + name + " ";
    std::size_t at = ("\n" + text).find(key);
    if (at == std::string::npos) {
        return "absent";
    }
    std::size_t start = at + key.size() - 1;
    return text.substr(start, text.find('\n', start) - start);
}

std::string bucket(const std::string &text, const char *le)
{
    return value_of(text,
                    std::string("authtokend_password_hash_duration_seconds_"
                                "bucket{le=\"") +
                        le + "\"}");
}

void bucket_bounds_are_inclusive_and_cumulative(void **)
{
    IssuerMetrics m;
    m.observe_hash(1ms);    // le="0.001" exactly
    m.observe_hash(1001us); // just above: le="0.002"
    m.observe_hash(500ms);  // le="0.5"
    m.observe_hash(3s);     // above 2 s: only +Inf
    std::string text = m.render();
    assert_string_equal(bucket(text, "0.001").c_str(), "1");
    assert_string_equal(bucket(text, "0.002").c_str(), "2");
    assert_string_equal(bucket(text, "0.2").c_str(), "2");
    assert_string_equal(bucket(text, "0.5").c_str(), "3");
    assert_string_equal(bucket(text, "2").c_str(), "3");
    assert_string_equal(bucket(text, "+Inf").c_str(), "4");
    assert_string_equal(
        value_of(text, "authtokend_password_hash_duration_seconds_count")
            .c_str(),
        "4");
    assert_string_equal(
        value_of(text, "authtokend_password_hash_duration_seconds_sum").c_str(),
        "3.502001");
}

void hash_scopes_keep_queue_and_in_flight(void **)
{
    IssuerMetrics m;
    const char *waiting = "authtokend_password_hashes_waiting";
    const char *in_flight = "authtokend_password_hashes_in_flight";
    const char *count = "authtokend_password_hash_duration_seconds_count";
    {
        IssuerMetrics::HashWait a(m);
        IssuerMetrics::HashWait b(m);
        assert_string_equal(value_of(m.render(), waiting).c_str(), "2");
    }
    {
        IssuerMetrics::HashWait b(m);
        IssuerMetrics::HashRun a(m);
        std::string text = m.render();
        assert_string_equal(value_of(text, waiting).c_str(), "1");
        assert_string_equal(value_of(text, in_flight).c_str(), "1");
        assert_string_equal(value_of(text, count).c_str(), "0");
    }
    std::string text = m.render();
    assert_string_equal(value_of(text, waiting).c_str(), "0");
    assert_string_equal(value_of(text, in_flight).c_str(), "0");
    assert_string_equal(value_of(text, count).c_str(), "1");
}

void every_series_is_there_from_the_start(void **)
{
    IssuerMetrics m;
    m.login(LoginOutcome::inactive);
    m.redis_failure(RedisFailure::readonly);
    m.token_created();
    std::string text = "\n" + m.render();
    for (const char *o : {"ok", "wrong_credentials", "throttled", "bad_request",
                          "unavailable", "server_error"}) {
        std::string name =
            std::string("authtokend_logins_total{outcome=\"") + o + "\"}";
        assert_string_equal(value_of(text, name).c_str(), "0");
    }
    assert_string_equal(
        value_of(text, "authtokend_logins_total{outcome=\"inactive\"}").c_str(),
        "1");
    assert_string_equal(
        value_of(text, "authtokend_redis_errors_total{cause=\"readonly\"}")
            .c_str(),
        "1");
    assert_string_equal(
        value_of(text, "authtokend_redis_errors_total{cause=\"connect\"}")
            .c_str(),
        "0");
    assert_string_equal(
        value_of(text, "authtokend_tokens_created_total").c_str(), "1");
    for (const char *family :
         {"authtokend_logins_total counter",
          "authtokend_password_hash_duration_seconds histogram",
          "authtokend_password_hashes_waiting gauge",
          "authtokend_password_hashes_in_flight gauge",
          "authtokend_redis_errors_total counter",
          "authtokend_tokens_created_total counter",
          "authtokend_tokens_revoked_total counter",
          "process_cpu_seconds_total counter",
          "process_resident_memory_bytes gauge",
          "process_virtual_memory_bytes gauge", "process_open_fds gauge",
          "process_max_fds gauge", "process_start_time_seconds gauge"}) {
        std::string type = std::string("\n# TYPE ") + family + "\n";
        std::string name(family, std::string(family).find(' '));
        assert_true(text.find(type) != std::string::npos);
        assert_true(text.find("\n# HELP " + name + " ") != std::string::npos);
    }
    assert_true(text.back() == '\n');
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bucket_bounds_are_inclusive_and_cumulative),
        cmocka_unit_test(hash_scopes_keep_queue_and_in_flight),
        cmocka_unit_test(every_series_is_there_from_the_start),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
