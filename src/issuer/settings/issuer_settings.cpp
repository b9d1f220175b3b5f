#include "issuer/settings/issuer_settings.h"

#include "core/redis_keys.h"

#include <climits>
#include <cstdlib>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <set>
#include <fstream>
#include <sstream>

#ifndef AUTHTOKEN_SCRIPTS_DIR
#define AUTHTOKEN_SCRIPTS_DIR "/usr/share/authtoken/redis"
#endif

namespace authtoken
{
namespace
{

using Setter = std::function<void(IssuerSettings &, const std::string &)>;

unsigned parse_unsigned(const std::string &value, unsigned min, unsigned max)
{
    if (value.empty() || value.size() > 10 ||
        value.find_first_not_of("0123456789") != std::string::npos) {
        throw std::invalid_argument("expected a whole number");
    }
    unsigned long n = std::stoul(value);
    if (n < min || n > max) {
        throw std::invalid_argument("expected a number from " +
                                    std::to_string(min) + " to " +
                                    std::to_string(max));
    }
    return static_cast<unsigned>(n);
}

bool parse_bool(const std::string &value)
{
    if (value == "1" || value == "true" || value == "yes" || value == "on") {
        return true;
    }
    if (value == "0" || value == "false" || value == "no" || value == "off") {
        return false;
    }
    throw std::invalid_argument("expected on or off");
}

std::vector<std::string> parse_list(const std::string &value)
{
    std::vector<std::string> out;
    std::string item;
    std::istringstream in(value);
    while (std::getline(in, item, ',')) {
        std::size_t b = item.find_first_not_of(" \t");
        std::size_t e = item.find_last_not_of(" \t");
        if (b != std::string::npos) {
            out.push_back(item.substr(b, e - b + 1));
        }
    }
    return out;
}

// A header field name (RFC 9110 token), or "none"/"" for none.
std::string parse_header_name(const std::string &value)
{
    if (value.empty() || value == "none") {
        return {};
    }
    if (value.size() > 64 ||
        value.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "abcdefghijklmnopqrstuvwxyz0123456789-_") !=
            std::string::npos) {
        throw std::invalid_argument("expected a header name, e.g. X-Real-IP");
    }
    return value;
}

std::string non_empty(const std::string &value)
{
    if (value.empty()) {
        throw std::invalid_argument("must not be empty");
    }
    return value;
}

TokensPerUser parse_tokens_per_user(const std::string &value)
{
    if (value == "one") {
        return TokensPerUser::one;
    }
    if (value == "many") {
        return TokensPerUser::many;
    }
    throw std::invalid_argument("expected one or many");
}

// No "unlimited": a user's tokens are walked inside Redis functions, which
// must stay bounded (keys::kMaxTokensPerUser).
unsigned parse_token_limit(const std::string &value)
{
    if (value == "0" || value == "off" || value == "none" ||
        value == "unlimited") {
        throw std::invalid_argument(
            "the limit must be finite, a number from 1 to " +
            std::to_string(keys::kMaxTokensPerUser) +
            " (every function that reaches all of a user's tokens runs "
            "inside Redis and must stay bounded)");
    }
    return parse_unsigned(value, 1, keys::kMaxTokensPerUser);
}

TokenLimitPolicy parse_token_limit_policy(const std::string &value)
{
    if (value == "refuse") {
        return TokenLimitPolicy::refuse;
    }
    if (value == "drop_oldest") {
        return TokenLimitPolicy::drop_oldest;
    }
    throw std::invalid_argument("expected refuse or drop_oldest");
}

// The settings of tokens_per_user = many (kept apart from the main table
// below only so that neither's layout moves when the other grows).
const std::map<std::string, Setter> &token_setters()
{
    static const std::map<std::string, Setter> table = {
        {"tokens_per_user",
         [](IssuerSettings &s, const std::string &v) {
             s.tokens.mode = parse_tokens_per_user(v);
         }},
        {"token_limit_per_user",
         [](IssuerSettings &s, const std::string &v) {
             s.tokens.limit = parse_token_limit(v);
         }},
        {"token_limit_policy",
         [](IssuerSettings &s, const std::string &v) {
             s.tokens.on_limit = parse_token_limit_policy(v);
         }},
    };
    return table;
}

// The one table of settings: adding a setting here makes it a config key,
// an environment variable and a flag at once.
// The token directory (docs/operations.md, "Two stores").
const std::map<std::string, Setter> &directory_setters()
{
    static const std::map<std::string, Setter> table = {
        {"directory_url",
         [](IssuerSettings &s, const std::string &v) { s.directory_url = v; }},
        {"directory_password",
         [](IssuerSettings &s, const std::string &v) {
             s.directory_password = v;
         }},
        {"directory_min_replicas",
         [](IssuerSettings &s, const std::string &v) {
             s.directory_min_replicas = parse_unsigned(v, 0, 100);
         }},
    };
    return table;
}

const std::map<std::string, Setter> &base_setters()
{
    static const std::
        map<std::string, Setter>
            table =
                {
                    {"listen",
                     [](IssuerSettings &s, const std::string &v) {
                         s.listen = non_empty(v);
                     }},
                    {"redis",
                     [](IssuerSettings &s, const std::string &v) {
                         s.redis = non_empty(v);
                     }},
                    {"socket_mode",
                     [](IssuerSettings &s, const std::string &v) {
                         // Octal, as chmod: 0600, 660. Never any bit for
                         // others' execute-only or set-id nonsense: rw bits
                         // only.
                         if (v.empty() || v.size() > 4 ||
                             v.find_first_not_of("01234567") !=
                                 std::string::npos) {
                             throw std::invalid_argument(
                                 "expected an octal mode such "
                                 "as 0660");
                         }
                         unsigned mode =
                             static_cast<unsigned>(std::stoul(v, nullptr, 8));
                         if ((mode & ~0666u) != 0 || (mode & 0600u) != 0600u) {
                             throw std::invalid_argument(
                                 "expected read/write bits only, owner rw at "
                                 "least "
                                 "(0600, 0660 or 0666)");
                         }
                         s.socket_mode = mode;
                     }},
                    {"socket_group",
                     [](IssuerSettings &s, const std::string &v) {
                         s.socket_group = v;
                     }},
                    {"redis_password",
                     [](IssuerSettings &s, const std::string &v) {
                         s.redis_password = v;
                     }},
                    {"secret_file",
                     [](IssuerSettings &s, const std::string &v) {
                         s.secret_file = non_empty(v);
                     }},
                    {"scripts_dir",
                     [](IssuerSettings &s, const std::string &v) {
                         s.scripts_dir = non_empty(v);
                     }},
                    {"pbkdf2_iterations",
                     [](IssuerSettings &s, const std::string &v) {
                         // The floor depends on insecure_test_hashing: checked
                         // once all settings are read (resolve_settings).
                         s.pbkdf2_iterations = parse_unsigned(
                             v, 1, passwords::kMaxPbkdf2Iterations);
                     }},
                    {"insecure_test_hashing",
                     [](IssuerSettings &s, const std::string &v) {
                         s.insecure_test_hashing = parse_bool(v);
                     }},
                    {"password_hasher",
                     [](IssuerSettings &s, const std::string &v) {
                         if (v == "pbkdf2_sha256") {
                             s.password_hasher =
                                 passwords::Hasher::pbkdf2_sha256;
                         } else if (v == "argon2id") {
                             s.password_hasher = passwords::Hasher::argon2id;
                         } else {
                             throw std::invalid_argument(
                                 "expected pbkdf2_sha256 or argon2id");
                         }
                     }},
                    {"auto_create_token",
                     [](IssuerSettings &s, const std::string &v) {
                         s.auto_create_token = parse_bool(v);
                     }},
                    {"token_ttl",
                     [](IssuerSettings &s, const std::string &v) {
                         s.token_ttl = parse_duration(v);
                     }},
                    {"token_auto_refresh",
                     [](IssuerSettings &s, const std::string &v) {
                         s.token_auto_refresh = parse_bool(v);
                     }},
                    {"token_max_ttl",
                     [](IssuerSettings &s, const std::string &v) {
                         s.token_max_ttl = parse_duration(v);
                     }},
                    {"metrics",
                     [](IssuerSettings &s, const std::string &v) {
                         s.metrics = parse_bool(v);
                     }},
                    {"throttle_user_rate",
                     [](IssuerSettings &s, const std::string &v) {
                         s.throttle_user_rate = parse_throttle_rate(v);
                     }},
                    {"throttle_addr_rate",
                     [](IssuerSettings &s, const std::string &v) {
                         s.throttle_addr_rate = parse_throttle_rate(v);
                     }},
                    {"throttle_user_addr_rate",
                     [](IssuerSettings &s, const std::string &v) {
                         s.throttle_user_addr_rate = parse_throttle_rate(v);
                     }},
                    {"throttle_max_delay",
                     [](IssuerSettings &s, const std::string &v) {
                         s.throttle_max_delay = parse_unsigned(v, 1, 60);
                     }},
                    {"throttle_user_in_flight",
                     [](IssuerSettings &s, const std::string &v) {
                         s.throttle_user_in_flight = parse_unsigned(v, 0, 1000);
                     }},
                    {"throttle_addr_in_flight",
                     [](IssuerSettings &s, const std::string &v) {
                         s.throttle_addr_in_flight = parse_unsigned(v, 0, 1000);
                     }},
                    {"real_ip_header",
                     [](IssuerSettings &s, const std::string &v) {
                         s.real_ip_header = parse_header_name(v);
                     }},
                    {"trusted_proxies",
                     [](IssuerSettings &s, const std::string &v) {
                         s.trusted_proxies = parse_list(v);
                     }},
                    {"max_body_size",
                     [](IssuerSettings &s, const std::string &v) {
                         s.max_body_size = parse_unsigned(v, 64, 64u << 20);
                     }},
                    {"max_header_size",
                     [](IssuerSettings &s, const std::string &v) {
                         s.max_header_size =
                             parse_unsigned(v, 8192 + 2, 1u << 20);
                     }},
                    {"max_header_fields",
                     [](IssuerSettings &s, const std::string &v) {
                         s.max_header_fields = parse_unsigned(v, 8, 10000);
                     }},
                    {"read_timeout",
                     [](IssuerSettings &s, const std::string &v) {
                         s.read_timeout = parse_unsigned(v, 1, 3600);
                     }},
                    {"write_timeout",
                     [](IssuerSettings &s, const std::string &v) {
                         s.write_timeout = parse_unsigned(v, 1, 3600);
                     }},
                    {"request_timeout",
                     [](IssuerSettings &s, const std::string &v) {
                         s.request_timeout = parse_unsigned(v, 1, 3600);
                     }},
                    {"keep_alive_timeout",
                     [](IssuerSettings &s, const std::string &v) {
                         s.keep_alive_timeout = parse_unsigned(v, 0, 3600);
                     }},
                    {"lingering_time",
                     [](IssuerSettings &s, const std::string &v) {
                         s.lingering_time = parse_unsigned(v, 0, 3600);
                     }},
                    // The daemon raises RLIMIT_NOFILE to fit (epoll has no
                    // FD_SETSIZE); each connection is one descriptor.
                    {"max_connections",
                     [](IssuerSettings &s, const std::string &v) {
                         s.max_connections = parse_unsigned(v, 1, 100000);
                     }},
                    {"threads",
                     [](IssuerSettings &s,
                        const std::string
                            &v) { s.threads = parse_unsigned(v, 0, 1024); }},
                    {"redis_timeout_ms",
                     [](IssuerSettings &s, const std::string &v) {
                         s.redis_timeout_ms = parse_unsigned(v, 10, 600000);
                     }},
                    {"heartbeat_interval",
                     [](IssuerSettings &s, const std::string &v) {
                         s.heartbeat_interval = parse_unsigned(v, 0, 60);
                     }},
                    {"create_secret",
                     [](IssuerSettings &s, const std::string &v) {
                         s.create_secret = parse_bool(v);
                     }},
                    {"admin_api",
                     [](IssuerSettings &s,
                        const std::string &v) { s.admin_api = parse_bool(v); }},
                    {"admin_page_size",
                     [](IssuerSettings &s, const std::string &v) {
                         s.admin_page_size = parse_unsigned(v, 1, 10000);
                     }},
                };
    return table;
}

const std::map<std::string, Setter> &setters()
{
    static const std::map<std::string, Setter> table = [] {
        std::map<std::string, Setter> all = base_setters();
        all.insert(token_setters().begin(), token_setters().end());
        all.insert(directory_setters().begin(), directory_setters().end());
        return all;
    }();
    return table;
}

std::string environment_name(const std::string &name)
{
    std::string env = "AUTHTOKEN_";
    for (char c : name) {
        env.push_back(static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c));
    }
    return env;
}

std::string trim(const std::string &s)
{
    std::size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) {
        return {};
    }
    std::size_t e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

// The real path of the directory holding this program, or "".
[[maybe_unused]] std::string own_directory()
{
    std::array<char, PATH_MAX> exe{};
    ssize_t n = readlink("/proc/self/exe", exe.data(), exe.size() - 1);
    if (n <= 0) {
        return {};
    }
    std::string path(exe.data(), static_cast<std::size_t>(n));
    std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

} // namespace

std::string default_scripts_dir()
{
#if defined(AUTHTOKEN_BUILD_TREE) && defined(AUTHTOKEN_SOURCE_SCRIPTS_DIR)
    std::array<char, PATH_MAX> build_tree{};
    if (realpath(AUTHTOKEN_BUILD_TREE, build_tree.data()) != nullptr &&
        own_directory() == build_tree.data()) {
        return AUTHTOKEN_SOURCE_SCRIPTS_DIR;
    }
#endif
    return AUTHTOKEN_SCRIPTS_DIR;
}

std::vector<std::string> setting_names()
{
    std::vector<std::string> names;
    for (const auto &entry : setters()) {
        names.push_back(entry.first);
    }
    return names;
}

void apply_setting(IssuerSettings &settings, const std::string &name,
                   const std::string &value)
{
    auto it = setters().find(name);
    if (it == setters().end()) {
        throw SettingsError("unknown setting \"" + name + "\"");
    }
    try {
        it->second(settings, value);
    } catch (const std::invalid_argument &e) {
        throw SettingsError("invalid " + name + " \"" + value +
                            "\": " + e.what());
    }
}

void apply_config_text(IssuerSettings &settings, const std::string &text,
                       const std::string &origin)
{
    std::istringstream in(text);
    std::string line;
    for (int number = 1; std::getline(in, line); number++) {
        std::string content = trim(line.substr(0, line.find('#')));
        if (content.empty()) {
            continue;
        }
        std::size_t eq = content.find('=');
        if (eq == std::string::npos) {
            throw SettingsError(origin + ":" + std::to_string(number) +
                                ": expected name = value");
        }
        try {
            apply_setting(settings, trim(content.substr(0, eq)),
                          trim(content.substr(eq + 1)));
        } catch (const SettingsError &e) {
            throw SettingsError(origin + ":" + std::to_string(number) + ": " +
                                e.what());
        }
    }
}

IssuerSettings resolve_settings(const std::map<std::string, std::string> &flags,
                                const EnvironmentLookup &environment,
                                const FileReader &read_file)
{
    IssuerSettings settings;

    std::optional<std::string> config_path;
    if (auto it = flags.find("config"); it != flags.end()) {
        config_path = it->second;
    } else {
        config_path = environment("AUTHTOKEN_CONFIG");
    }
    if (config_path && !config_path->empty()) {
        apply_config_text(settings, read_file(*config_path), *config_path);
    }

    for (const auto &entry : setters()) {
        if (auto value = environment(environment_name(entry.first))) {
            try {
                apply_setting(settings, entry.first, *value);
            } catch (const SettingsError &e) {
                throw SettingsError(environment_name(entry.first) + ": " +
                                    e.what());
            }
        }
    }

    for (const auto &[name, value] : flags) {
        if (name != "config") {
            apply_setting(settings, name, value);
        }
    }
    if (settings.token_auto_refresh && settings.token_ttl == 0) {
        throw SettingsError("token_auto_refresh needs token_ttl: a token "
                            "that never expires has nothing to renew");
    }
    if (settings.token_max_ttl != 0 && !settings.token_auto_refresh) {
        throw SettingsError("token_max_ttl caps token_auto_refresh, which "
                            "is off; set token_ttl for a fixed lifetime");
    }
    if (settings.token_max_ttl != 0 &&
        settings.token_max_ttl < settings.token_ttl) {
        throw SettingsError("token_max_ttl (" +
                            std::to_string(settings.token_max_ttl) +
                            " s) is shorter than token_ttl (" +
                            std::to_string(settings.token_ttl) + " s)");
    }
    try {
        passwords::check_policy(hasher_policy(settings));
    } catch (const std::invalid_argument &e) {
        throw SettingsError(
            "invalid pbkdf2_iterations \"" +
            std::to_string(settings.pbkdf2_iterations) + "\": " + e.what() +
            (settings.insecure_test_hashing
                 ? std::string()
                 : std::string(" (fewer only with insecure_test_hashing, "
                               "for test suites)")));
    }
    return settings;
}

namespace
{

// The error for a password both in a URL and in its password setting. A
// URL whose user information has no colon, "redis://NAME@host", is a
// password alone, as redis-cli (parseRedisUri) and parse_redis_url read
// it; an operator who meant NAME as the ACL user (with the password in the
// setting, where `ps` does not show it) is told how to write that, in the
// URL's own scheme.
SettingsError password_given_twice(std::string_view what,
                                   std::string_view url_setting,
                                   std::string_view password_setting,
                                   std::string_view url)
{
    std::string message = std::string("the ") + std::string(what) +
                          " is given twice: in " + std::string(url_setting) +
                          " and in " + std::string(password_setting);
    std::size_t scheme_end = url.find("://");
    if (scheme_end != std::string_view::npos) {
        std::string_view scheme = url.substr(0, scheme_end);
        std::string_view rest = url.substr(scheme_end + 3);
        std::size_t at = rest.find('@');
        bool bare =
            at != std::string_view::npos &&
            rest.substr(0, at).find_first_of(":/") == std::string_view::npos;
        if (bare) {
            std::string s(scheme);
            message += " (\"" + s +
                       "://NAME@host\" is a password, as redis-cli reads "
                       "it: write \"" +
                       s +
                       "://NAME:@host\" for the ACL user NAME whose "
                       "password is in " +
                       std::string(password_setting) + ")";
        }
    }
    return SettingsError(message);
}

} // namespace

RedisEndpoint redis_endpoint(const IssuerSettings &settings)
{
    RedisEndpoint endpoint;
    try {
        endpoint = parse_redis_url(settings.redis);
    } catch (const std::invalid_argument &e) {
        throw SettingsError(std::string("invalid redis: ") + e.what());
    }
    if (!settings.redis_password.empty()) {
        if (!endpoint.password.empty()) {
            throw password_given_twice("Redis password", "the redis URL",
                                       "redis_password", settings.redis);
        }
        endpoint.password = settings.redis_password;
    }
    return endpoint;
}

std::optional<RedisEndpoint> directory_endpoint(const IssuerSettings &settings)
{
    if (settings.directory_url.empty()) {
        if (!settings.directory_password.empty()) {
            throw SettingsError("directory_password is set without "
                                "directory_url");
        }
        if (settings.directory_min_replicas > 0) {
            throw SettingsError("directory_min_replicas is set without "
                                "directory_url");
        }
        return std::nullopt;
    }
    RedisEndpoint endpoint;
    try {
        endpoint = parse_redis_url(settings.directory_url);
    } catch (const std::invalid_argument &e) {
        throw SettingsError(std::string("invalid directory_url: ") + e.what());
    }
    if (!settings.directory_password.empty()) {
        if (!endpoint.password.empty()) {
            throw password_given_twice("directory's password", "directory_url",
                                       "directory_password",
                                       settings.directory_url);
        }
        endpoint.password = settings.directory_password;
    }
    // The same Redis and database as the user store: one store, nothing
    // to split (the default layout spelled out, not an error).
    RedisEndpoint store = redis_endpoint(settings);
    bool same_server = endpoint.via_sentinel()
                           ? store.via_sentinel() &&
                                 endpoint.service_name == store.service_name
                           : !store.via_sentinel() &&
                                 endpoint.unix_path == store.unix_path &&
                                 (!endpoint.unix_path.empty() ||
                                  (endpoint.host == store.host &&
                                   endpoint.port == store.port));
    if (same_server && endpoint.db == store.db) {
        return std::nullopt;
    }
    return endpoint;
}

namespace
{

// The passwords' places in a Redis URL: between "user:" and "@" of
// redis:// and sentinel://, and after every "password=" of the query
// (password=, sentinel_password=), until "&" or the end.
bool mask_url_password(char *url)
{
    std::string_view text(url);
    bool masked = false;
    auto mask = [&](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; i++) {
            url[i] = 'x';
        }
        masked = masked || to > from;
    };
    std::size_t scheme_end = text.find("://");
    if (scheme_end != std::string_view::npos) {
        std::size_t start = scheme_end + 3;
        std::size_t authority_end = text.find('/', start);
        std::size_t at = text.rfind('@', authority_end);
        std::size_t colon = text.find(':', start);
        if (at != std::string_view::npos && at >= start &&
            colon != std::string_view::npos && colon < at) {
            mask(colon + 1, at);
        }
    }
    for (std::size_t key = text.find("password=");
         key != std::string_view::npos; key = text.find("password=", key + 1)) {
        std::size_t from = key + 9;
        std::size_t to = text.find('&', from);
        mask(from, to == std::string_view::npos ? text.size() : to);
    }
    return masked;
}

} // namespace

bool hide_redis_password_in_argv(int argc, char **argv)
{
    bool hidden = false;
    for (int i = 1; i < argc; i++) {
        std::string_view arg(argv[i]);
        if ((arg == "--redis" || arg == "--directory-url") && i + 1 < argc) {
            hidden = mask_url_password(argv[++i]) || hidden;
        } else if (arg.compare(0, 8, "--redis=") == 0) {
            hidden = mask_url_password(argv[i] + 8) || hidden;
        } else if (arg.compare(0, 16, "--directory-url=") == 0) {
            hidden = mask_url_password(argv[i] + 16) || hidden;
        }
    }
    return hidden;
}

std::int64_t parse_duration(const std::string &value)
{
    static const char *const expected =
        "expected a duration: seconds, or a number with a unit s, m, h, d, "
        "w, M or y (\"30d\", \"1h30m\"), or off";
    if (value == "off") {
        return 0;
    }
    // Ten years in seconds bounds every part and the sum: no overflow,
    // and a token that outlives that is a token that never expires.
    constexpr std::int64_t kMax = 10LL * 365 * 24 * 3600;
    std::int64_t total = 0;
    std::size_t i = 0;
    if (value.empty()) {
        throw std::invalid_argument(expected);
    }
    while (i < value.size()) {
        std::int64_t n = 0;
        std::size_t start = i;
        while (i < value.size() && value[i] >= '0' && value[i] <= '9') {
            n = n * 10 + (value[i] - '0');
            if (n > kMax) {
                throw std::invalid_argument(expected);
            }
            i++;
        }
        if (i == start) {
            throw std::invalid_argument(expected);
        }
        std::int64_t unit = 1;
        if (i < value.size()) {
            switch (value[i]) {
            case 's':
                unit = 1;
                break;
            case 'm':
                unit = 60;
                break;
            case 'h':
                unit = 3600;
                break;
            case 'd':
                unit = 86400;
                break;
            case 'w':
                unit = 7 * 86400;
                break;
            case 'M':
                unit = 30 * 86400;
                break;
            case 'y':
                unit = 365 * 86400;
                break;
            default:
                throw std::invalid_argument(expected);
            }
            i++;
        } else if (start != 0) {
            // "1h30": minutes or seconds? Refused rather than guessed.
            throw std::invalid_argument(expected);
        }
        total += n * unit;
        if (total > kMax) {
            throw std::invalid_argument(
                "expected a duration of at most ten years (315360000 s)");
        }
    }
    return total;
}

passwords::HasherPolicy hasher_policy(const IssuerSettings &settings)
{
    passwords::HasherPolicy policy;
    policy.pbkdf2_iterations = settings.pbkdf2_iterations;
    policy.allow_insecure_iterations = settings.insecure_test_hashing;
    policy.hasher = settings.password_hasher;
    return policy;
}

std::map<std::string, std::string>
take_setting_flags(std::vector<std::string> &args)
{
    static const std::set<std::string> on_off = {
        "admin_api",     "auto_create_token",
        "create_secret", "insecure_test_hashing",
        "metrics",       "token_auto_refresh"};
    std::map<std::string, std::string> flags;
    std::vector<std::string> rest;
    for (std::size_t i = 0; i < args.size(); i++) {
        const std::string &arg = args[i];
        if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
            rest.push_back(arg);
            continue;
        }
        std::string name = arg.substr(2);
        std::optional<std::string> value;
        if (std::size_t eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        }
        std::replace(name.begin(), name.end(), '-', '_');
        if (!value && name.compare(0, 3, "no_") == 0 &&
            on_off.count(name.substr(3)) != 0) {
            flags[name.substr(3)] = "0";
            continue;
        }
        if (name != "config" && setters().count(name) == 0) {
            rest.push_back(arg);
            continue;
        }
        if (name == "redis_password") {
            throw SettingsError("--redis-password would show the password "
                                "in `ps`: set AUTHTOKEN_REDIS_PASSWORD or "
                                "redis_password in the config file");
        }
        if (name == "directory_password") {
            throw SettingsError("--directory-password would show the "
                                "password in `ps`: set "
                                "AUTHTOKEN_DIRECTORY_PASSWORD or "
                                "directory_password in the config file");
        }
        if (!value && on_off.count(name) != 0) {
            value = "1";
        }
        if (!value) {
            if (i + 1 >= args.size()) {
                throw SettingsError("--" + arg.substr(2) + " needs a value");
            }
            value = args[++i];
        }
        flags[name] = *value;
    }
    args = std::move(rest);
    return flags;
}

std::optional<std::string> process_environment(const std::string &name)
{
    const char *value = std::getenv(name.c_str());
    if (value == nullptr) {
        return std::nullopt;
    }
    return std::string(value);
}

std::string read_config_file(const std::string &path)
{
    std::ifstream in(path);
    if (!in) {
        throw SettingsError("cannot read config file " + path);
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace authtoken
