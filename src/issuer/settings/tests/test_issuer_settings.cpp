// Settings precedence (flags > environment > file > defaults), the config
// file format, flag spelling, Redis URLs and throttle rates.
#include "issuer/settings/issuer_settings.h"
#include "issuer/store/redis_url.h"
#include "issuer/throttle_policy.h"

#include <cstring>
#include <map>
#include <string>

// cmocka last: its macros (fail, ...) clash with names in C++ headers.
#include "core/tests/cmocka_cpp.h"

using namespace authtoken;

namespace
{

std::map<std::string, std::string> g_env;
std::map<std::string, std::string> g_files;

std::optional<std::string> fake_env(const std::string &name)
{
    auto it = g_env.find(name);
    if (it == g_env.end()) {
        return std::nullopt;
    }
    return it->second;
}

std::string fake_read(const std::string &path)
{
    return g_files.at(path);
}

int reset(void **)
{
    g_env.clear();
    g_files.clear();
    return 0;
}

void defaults_without_any_source(void **)
{
    IssuerSettings s = resolve_settings({}, fake_env, fake_read);
    assert_string_equal(s.listen.c_str(), "127.0.0.1:8000");
    assert_int_equal(s.pbkdf2_iterations, 600000);
    assert_true(s.auto_create_token);
    assert_int_equal(s.throttle_user_addr_rate.requests, 5);
    assert_int_equal(s.throttle_user_rate.seconds, 3600);
    assert_string_equal(s.real_ip_header.c_str(), "");
}

// heartbeat_interval: seconds, 1 by default, 0 turns the writer off, and
// more than a minute would make any useful auth_token_max_lag impossible.
void heartbeat_interval_default_off_and_cap(void **)
{
    assert_int_equal(
        resolve_settings({}, fake_env, fake_read).heartbeat_interval, 1);
    assert_int_equal(
        resolve_settings({{"heartbeat_interval", "0"}}, fake_env, fake_read)
            .heartbeat_interval,
        0);
    for (const char *bad : {"61", "-1", "1s", ""}) {
        try {
            resolve_settings({{"heartbeat_interval", bad}}, fake_env,
                             fake_read);
            fail_msg("accepted heartbeat_interval \"%s\"", bad);
        } catch (const SettingsError &e) {
            assert_non_null(strstr(e.what(), "heartbeat_interval"));
        }
    }
}

void flags_beat_environment_beat_file(void **)
{
    g_files["/etc/a.conf"] = "# comment\n"
                             "listen = 127.0.0.1:1\n"
                             "redis = redis://file:1/0\n"
                             "pbkdf2_iterations = 10  # trailing comment\n"
                             "\n"
                             "auto_create_token = off\n";
    g_env["AUTHTOKEN_CONFIG"] = "/etc/a.conf";
    g_env["AUTHTOKEN_REDIS"] = "redis://env:2/0";
    g_env["AUTHTOKEN_PBKDF2_ITERATIONS"] = "20";
    g_env["AUTHTOKEN_INSECURE_TEST_HASHING"] = "on";
    IssuerSettings s =
        resolve_settings({{"pbkdf2_iterations", "30"}}, fake_env, fake_read);
    assert_string_equal(s.listen.c_str(), "127.0.0.1:1");    // file
    assert_string_equal(s.redis.c_str(), "redis://env:2/0"); // env
    assert_int_equal(s.pbkdf2_iterations, 30);               // flag
    assert_false(s.auto_create_token);
}

void config_flag_beats_config_env(void **)
{
    g_files["/a"] = "listen = a:1\n";
    g_files["/b"] = "listen = b:1\n";
    g_env["AUTHTOKEN_CONFIG"] = "/a";
    IssuerSettings s =
        resolve_settings({{"config", "/b"}}, fake_env, fake_read);
    assert_string_equal(s.listen.c_str(), "b:1");
}

void config_errors_name_file_and_line(void **)
{
    g_files["/c"] = "listen = x:1\nbogus = 1\n";
    try {
        resolve_settings({{"config", "/c"}}, fake_env, fake_read);
        fail();
    } catch (const SettingsError &e) {
        assert_non_null(strstr(e.what(), "/c:2"));
        assert_non_null(strstr(e.what(), "bogus"));
    }
}

void bad_environment_value_is_named(void **)
{
    g_env["AUTHTOKEN_THROTTLE_USER_RATE"] = "5/fortnight";
    try {
        resolve_settings({}, fake_env, fake_read);
        fail();
    } catch (const SettingsError &e) {
        assert_non_null(strstr(e.what(), "AUTHTOKEN_THROTTLE_USER_RATE"));
    }
}

// Below 600000 only with the insecure test setting named; above the
// hasher's own cap never (it made every login answer 500).
void pbkdf2_iterations_floor_and_cap(void **)
{
    for (const char *low : {"1", "1000", "599999"}) {
        try {
            resolve_settings({{"pbkdf2_iterations", low}}, fake_env, fake_read);
            fail_msg("accepted pbkdf2_iterations %s", low);
        } catch (const SettingsError &e) {
            assert_non_null(strstr(e.what(), "insecure_test_hashing"));
        }
    }
    IssuerSettings s = resolve_settings(
        {{"pbkdf2_iterations", "1000"}, {"insecure_test_hashing", "on"}},
        fake_env, fake_read);
    assert_int_equal(hasher_policy(s).pbkdf2_iterations, 1000);
    assert_true(hasher_policy(s).allow_insecure_iterations);
    s = resolve_settings({{"pbkdf2_iterations", "10000000"}}, fake_env,
                         fake_read);
    assert_int_equal(s.pbkdf2_iterations, 10000000);
    for (const char *high : {"10000001", "100000000"}) {
        try {
            resolve_settings(
                {{"pbkdf2_iterations", high}, {"insecure_test_hashing", "on"}},
                fake_env, fake_read);
            fail_msg("accepted pbkdf2_iterations %s", high);
        } catch (const SettingsError &) {
        }
    }
    s = resolve_settings({{"password_hasher", "argon2id"}}, fake_env,
                         fake_read);
    assert_true(hasher_policy(s).hasher == passwords::Hasher::argon2id);
    try {
        resolve_settings({{"password_hasher", "md5"}}, fake_env, fake_read);
        fail();
    } catch (const SettingsError &) {
    }
}

// A password given on the command line is masked in argv once read: in
// every URL form (redis://, sentinel://, the query's password= and
// sentinel_password=), and nothing else is touched.
void redis_passwords_are_masked_in_argv(void **)
{
    std::string a = "redis://:pw1@h:1/0";
    std::string b =
        "sentinel://u:pw2@s1:26379,s2:26379/svc/0?sentinel_password=pw3";
    std::string c = "unix:///run/r.sock?db=1&password=pw4";
    std::string d = "redis://h:1/0";
    std::string flag_a = "--redis", flag_b = "--redis=" + b, flag_c = "--redis";
    char *argv[] = {nullptr,       flag_a.data(), a.data(),
                    flag_b.data(), flag_c.data(), c.data()};
    assert_true(hide_redis_password_in_argv(6, argv));
    assert_string_equal(a.c_str(), "redis://:xxx@h:1/0");
    assert_string_equal(flag_b.c_str(),
                        "--redis=sentinel://u:xxx@s1:26379,s2:26379/svc/"
                        "0?sentinel_password=xxx");
    assert_string_equal(c.c_str(), "unix:///run/r.sock?db=1&password=xxx");
    char *plain[] = {nullptr, flag_a.data(), d.data()};
    assert_false(hide_redis_password_in_argv(3, plain));
    assert_string_equal(d.c_str(), "redis://h:1/0");
}

// directory_url (docs/operations.md, "Two stores"): unset, or naming the
// user store's own Redis and database, is one store (nullopt); another
// address or database is a directory; its password apart as for redis,
// never on the command line, and masked in argv when in the URL.
// directory_min_replicas: 0 (no WAIT) unless set; 0 to 100.
void directory_min_replicas_default_zero_and_bounded(void **)
{
    IssuerSettings s = resolve_settings({}, fake_env, fake_read);
    assert_int_equal(s.directory_min_replicas, 0);
    s = resolve_settings({{"directory_min_replicas", "2"}}, fake_env,
                         fake_read);
    assert_int_equal(s.directory_min_replicas, 2);
    for (const char *bad : {"-1", "101", "x", ""}) {
        try {
            resolve_settings({{"directory_min_replicas", bad}}, fake_env,
                             fake_read);
            fail_msg("directory_min_replicas %s was accepted", bad);
        } catch (const SettingsError &) {
        }
    }
}

// "redis://NAME@host" is a password (as redis-cli reads it); an ACL user
// whose password is in redis_password is "redis://NAME:@host", and the
// error for the first form with redis_password set says so.
void redis_url_user_with_password_setting(void **)
{
    g_env["AUTHTOKEN_REDIS_PASSWORD"] = "pw";
    IssuerSettings s = resolve_settings(
        {{"redis", "redis://authtoken-issuer:@10.0.0.1:6379/0"}}, fake_env,
        fake_read);
    RedisEndpoint e = redis_endpoint(s);
    assert_string_equal(e.username.c_str(), "authtoken-issuer");
    assert_string_equal(e.password.c_str(), "pw");

    s.redis = "redis://authtoken-issuer@10.0.0.1:6379/0";
    try {
        redis_endpoint(s);
        fail_msg("a password given twice was accepted");
    } catch (const SettingsError &err) {
        assert_non_null(std::strstr(err.what(),
                                    "write \"redis://NAME:@host\" for the "
                                    "ACL user NAME whose password is in "
                                    "redis_password"));
    }
    s.redis = "sentinel://authtoken-issuer@10.0.0.1:26379/mymaster";
    try {
        redis_endpoint(s);
        fail_msg("a password given twice was accepted");
    } catch (const SettingsError &err) {
        assert_non_null(std::strstr(err.what(), "write \"sentinel://NAME:@"));
    }
    // A user named, or a password written as one: no hint.
    for (const char *url : {"redis://user:inurl@10.0.0.1:6379/0",
                            "redis://:inurl@10.0.0.1:6379/0",
                            "redis://10.0.0.1:6379/0?password=inurl"}) {
        s.redis = url;
        try {
            redis_endpoint(s);
            fail_msg("a password given twice was accepted");
        } catch (const SettingsError &err) {
            assert_null(std::strstr(err.what(), "NAME:@host"));
        }
    }
}

void directory_url_default_one_store(void **)
{
    IssuerSettings s = resolve_settings({}, fake_env, fake_read);
    assert_true(s.directory_url.empty());
    assert_false(directory_endpoint(s).has_value());

    s = resolve_settings({{"redis", "redis://10.0.0.1:6379/0"},
                          {"directory_url", "redis://10.0.0.1:6379/0"}},
                         fake_env, fake_read);
    assert_false(directory_endpoint(s).has_value());

    g_env["AUTHTOKEN_DIRECTORY_PASSWORD"] = "dpw";
    s = resolve_settings({{"redis", "redis://10.0.0.1:6379/0"},
                          {"directory_url", "redis://10.0.0.2:6380/1"}},
                         fake_env, fake_read);
    auto d = directory_endpoint(s);
    assert_true(d.has_value());
    assert_string_equal(d->host.c_str(), "10.0.0.2");
    assert_int_equal(d->port, 6380);
    assert_int_equal(d->db, 1);
    assert_string_equal(d->password.c_str(), "dpw");

    s = resolve_settings({{"redis", "redis://10.0.0.1:6379/0"},
                          {"directory_url", "redis://10.0.0.1:6379/3"}},
                         fake_env, fake_read);
    assert_true(directory_endpoint(s).has_value());

    s.directory_url = "redis://:inurl@10.0.0.2:6380/1";
    try {
        directory_endpoint(s);
        fail_msg("a password given twice was accepted");
    } catch (const SettingsError &) {
    }
    s.directory_url.clear();
    try {
        directory_endpoint(s);
        fail_msg("directory_password without directory_url was accepted");
    } catch (const SettingsError &) {
    }
    s.directory_password.clear();
    s.directory_min_replicas = 1;
    try {
        directory_endpoint(s);
        fail_msg("directory_min_replicas without directory_url was accepted");
    } catch (const SettingsError &) {
    }
    s.directory_min_replicas = 0;
    s.directory_url = "ftp://x";
    try {
        directory_endpoint(s);
        fail_msg("a bad directory_url was accepted");
    } catch (const SettingsError &) {
    }

    std::vector<std::string> args = {"--directory-password", "x"};
    try {
        take_setting_flags(args);
        fail_msg("--directory-password was accepted");
    } catch (const SettingsError &) {
    }
    std::string url = "redis://:dpw@h:1/0";
    std::string flag = "--directory-url";
    std::string joined = "--directory-url=redis://:dpw@h:1/0";
    char *argv[] = {nullptr, flag.data(), url.data(), joined.data()};
    assert_true(hide_redis_password_in_argv(4, argv));
    assert_string_equal(url.c_str(), "redis://:xxx@h:1/0");
    assert_string_equal(joined.c_str(), "--directory-url=redis://:xxx@h:1/0");
}

void flags_are_taken_out_of_argv(void **)
{
    std::vector<std::string> args = {"--redis",
                                     "redis://h:1/2",
                                     "createuser",
                                     "bob",
                                     "--superuser",
                                     "--pbkdf2-iterations=7",
                                     "--no-auto-create-token"};
    auto flags = take_setting_flags(args);
    assert_string_equal(flags.at("redis").c_str(), "redis://h:1/2");
    assert_string_equal(flags.at("pbkdf2_iterations").c_str(), "7");
    assert_string_equal(flags.at("auto_create_token").c_str(), "0");
    assert_int_equal(args.size(), 3);
    assert_string_equal(args[2].c_str(), "--superuser");
}

void redis_urls(void **)
{
    RedisEndpoint e = parse_redis_url("redis://:s%40cret@db.local:6380/3");
    assert_string_equal(e.host.c_str(), "db.local");
    assert_int_equal(e.port, 6380);
    assert_string_equal(e.password.c_str(), "s@cret");
    assert_int_equal(e.db, 3);

    e = parse_redis_url("redis://127.0.0.1");
    assert_int_equal(e.port, 6379);
    assert_int_equal(e.db, 0);

    e = parse_redis_url("redis://user:pw@[::1]:7000");
    assert_string_equal(e.host.c_str(), "::1");
    assert_string_equal(e.username.c_str(), "user");
    assert_int_equal(e.port, 7000);

    e = parse_redis_url("unix:///run/redis.sock?db=2&password=pw");
    assert_string_equal(e.unix_path.c_str(), "/run/redis.sock");
    assert_int_equal(e.db, 2);
    assert_string_equal(e.password.c_str(), "pw");

    for (const char *bad :
         {"http://x", "redis://h:99999", "redis://h:x", "redis://h/abc",
          "unix://relative.sock", "unix:///s?foo=1"}) {
        try {
            parse_redis_url(bad);
            fail_msg("accepted %s", bad);
        } catch (const std::invalid_argument &) {
        }
    }
    assert_null(strstr(
        describe_endpoint(parse_redis_url("redis://:pw@h:1/0")).c_str(), "pw"));
}

void throttle_rates_and_waits(void **)
{
    ThrottleRate r = parse_throttle_rate("5/min");
    assert_int_equal(r.requests, 5);
    assert_int_equal(r.seconds, 60);
    assert_int_equal(parse_throttle_rate("100/day").seconds, 86400);
    assert_int_equal(parse_throttle_rate("3/s").seconds, 1);
    assert_false(parse_throttle_rate("off").enabled());
    assert_int_equal(retry_after_seconds(1), 1);
    assert_int_equal(retry_after_seconds(1000), 1);
    assert_int_equal(retry_after_seconds(1001), 2);
}

// token_ttl is off by default (DRF: tokens never expire) and reads nginx's
// time units; what does not parse is refused, never read as "never".
void token_ttl_default_off_and_durations(void **)
{
    assert_int_equal(resolve_settings({}, fake_env, fake_read).token_ttl, 0);
    assert_int_equal(parse_duration("off"), 0);
    assert_int_equal(parse_duration("0"), 0);
    assert_int_equal(parse_duration("90"), 90);
    assert_int_equal(parse_duration("90s"), 90);
    assert_int_equal(parse_duration("2m"), 120);
    assert_int_equal(parse_duration("1h30m"), 5400);
    assert_int_equal(parse_duration("30d"), 30 * 86400);
    assert_int_equal(parse_duration("2w"), 14 * 86400);
    assert_int_equal(parse_duration("1M"), 30 * 86400);
    assert_int_equal(parse_duration("10y"), 10LL * 365 * 86400);
    for (const char *bad : {"", "soon", "1x", "h", "1h30", "-5", "1.5h", "11y",
                            "99999999999", " 5"}) {
        try {
            parse_duration(bad);
            fail_msg("accepted \"%s\"", bad);
        } catch (const std::invalid_argument &) {
        }
    }
}

// token_auto_refresh and token_max_ttl are off by default and checked
// together: a renewal needs a lifetime to renew, a cap needs a renewal to
// cap and may not be shorter than the lifetime. Each mistake stops the
// program with a message that names the settings.
void token_renewal_settings_checked_together(void **)
{
    IssuerSettings s = resolve_settings({}, fake_env, fake_read);
    assert_false(s.token_auto_refresh);
    assert_int_equal(s.token_max_ttl, 0);
    s = resolve_settings({{"token_ttl", "1h"},
                          {"token_auto_refresh", "on"},
                          {"token_max_ttl", "30d"}},
                         fake_env, fake_read);
    assert_true(s.token_auto_refresh);
    assert_int_equal(s.token_max_ttl, 30 * 86400);
    // On the command line it is a switch, as --metrics is.
    std::vector<std::string> args = {"--token-auto-refresh", "--token-ttl",
                                     "1h", "x"};
    auto flags = take_setting_flags(args);
    assert_string_equal(flags["token_auto_refresh"].c_str(), "1");
    assert_int_equal(args.size(), 1);
    args = {"--no-token-auto-refresh"};
    assert_string_equal(take_setting_flags(args)["token_auto_refresh"].c_str(),
                        "0");
    const std::pair<std::map<std::string, std::string>, const char *> bad[] = {
        {{{"token_auto_refresh", "on"}}, "token_auto_refresh needs token_ttl"},
        {{{"token_ttl", "1h"}, {"token_max_ttl", "1d"}},
         "token_max_ttl caps token_auto_refresh, which is off"},
        {{{"token_ttl", "1h"},
          {"token_auto_refresh", "on"},
          {"token_max_ttl", "30m"}},
         "token_max_ttl (1800 s) is shorter than token_ttl (3600 s)"},
    };
    for (const auto &[flags, message] : bad) {
        try {
            resolve_settings(flags, fake_env, fake_read);
            fail_msg("accepted, expected \"%s\"", message);
        } catch (const SettingsError &e) {
            assert_non_null(std::strstr(e.what(), message));
        }
    }
}

// tokens_per_user is DRF's one by default; many's limit is finite (1 to
// 1000, default 100) and refuse is the default at it: "unlimited" in any
// spelling is refused, never read as no limit.
void token_settings_default_one_and_finite_limit(void **)
{
    IssuerSettings d = resolve_settings({}, fake_env, fake_read);
    assert_true(d.tokens.mode == TokensPerUser::one);
    assert_int_equal(d.tokens.limit, 100);
    assert_true(d.tokens.on_limit == TokenLimitPolicy::refuse);

    g_env["AUTHTOKEN_TOKENS_PER_USER"] = "many";
    g_env["AUTHTOKEN_TOKEN_LIMIT_PER_USER"] = "1000";
    g_env["AUTHTOKEN_TOKEN_LIMIT_POLICY"] = "drop_oldest";
    IssuerSettings m = resolve_settings({}, fake_env, fake_read);
    assert_true(m.tokens.mode == TokensPerUser::many);
    assert_int_equal(m.tokens.limit, 1000);
    assert_true(m.tokens.on_limit == TokenLimitPolicy::drop_oldest);

    for (const char *bad :
         {"0", "off", "none", "unlimited", "1001", "-1", ""}) {
        IssuerSettings s;
        try {
            apply_setting(s, "token_limit_per_user", bad);
            fail_msg("token_limit_per_user accepted \"%s\"", bad);
        } catch (const SettingsError &) {
        }
    }
    for (const auto &[name, bad] :
         {std::pair{"tokens_per_user", "several"},
          std::pair{"token_limit_policy", "drop_newest"}}) {
        IssuerSettings s;
        try {
            apply_setting(s, name, bad);
            fail_msg("%s accepted \"%s\"", name, bad);
        } catch (const SettingsError &) {
        }
    }
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults_without_any_source, reset),
        cmocka_unit_test_setup(flags_beat_environment_beat_file, reset),
        cmocka_unit_test_setup(config_flag_beats_config_env, reset),
        cmocka_unit_test_setup(config_errors_name_file_and_line, reset),
        cmocka_unit_test_setup(bad_environment_value_is_named, reset),
        cmocka_unit_test_setup(flags_are_taken_out_of_argv, reset),
        cmocka_unit_test_setup(pbkdf2_iterations_floor_and_cap, reset),
        cmocka_unit_test_setup(heartbeat_interval_default_off_and_cap, reset),
        cmocka_unit_test(redis_passwords_are_masked_in_argv),
        cmocka_unit_test_setup(redis_url_user_with_password_setting, reset),
        cmocka_unit_test_setup(directory_url_default_one_store, reset),
        cmocka_unit_test_setup(directory_min_replicas_default_zero_and_bounded,
                               reset),
        cmocka_unit_test(redis_urls),
        cmocka_unit_test(throttle_rates_and_waits),
        cmocka_unit_test_setup(token_ttl_default_off_and_durations, reset),
        cmocka_unit_test_setup(token_settings_default_one_and_finite_limit,
                               reset),
        cmocka_unit_test_setup(token_renewal_settings_checked_together, reset),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
