// The settings authtokend and authtokenctl share, from four sources with a
// fixed precedence: command-line flags > AUTHTOKEN_* environment > config
// file > built-in defaults. Every setting has one name, spelled
// `name = value` in the file, AUTHTOKEN_NAME in the environment and
// --name (underscores as dashes) on the command line.
#pragma once

#include "issuer/password_hasher.h"
#include "issuer/store/redis_url.h"
#include "issuer/store/user_store.h"
#include "issuer/throttle_policy.h"

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace authtoken
{

// Where redis/authtoken.lua (the issuer's Redis Functions library) is when
// no scripts_dir setting says: the installed copy (AUTHTOKEN_SCRIPTS_DIR,
// CMake's <datadir>/authtoken/redis), or the source tree's redis/ when this
// program is the one in the build tree it was built in
// (AUTHTOKEN_BUILD_TREE, /proc/self/exe's directory), so that
// `make run`, `make check` and t/ use the library being worked on.
std::string default_scripts_dir();

struct IssuerSettings {
    std::string listen = "127.0.0.1:8000";
    // For `listen = unix:PATH`: the socket's permission bits and group. Any
    // peer that can connect is a trusted proxy (its forwarded-address
    // header is believed), so who may connect is set here rather than left
    // to the umask: owner and group read/write by default (nginx's user
    // joins the group). socket_group empty: the daemon's own group.
    unsigned socket_mode = 0660;
    std::string socket_group;
    std::string redis = "redis://127.0.0.1:6379/0";
    // The Redis password (AUTH) apart from the URL, so that it need not be
    // on a command line, where `ps` shows it: config file or environment
    // (AUTHTOKEN_REDIS_PASSWORD) only; the --redis-password flag is
    // refused. Giving it both here and in the URL is an error.
    std::string redis_password;
    // The token directory (docs/operations.md, "Two stores"): the Redis
    // the edges read, apart from the user store at `redis`. Empty (the
    // default): `redis` holds both, as one store. Same URL forms as
    // `redis`; its password apart, as redis_password, in
    // directory_password (file or environment only).
    std::string directory_url;
    std::string directory_password;
    // With a separate directory: a change is acknowledged (and answered
    // as done) only once at least this many of the directory's replicas
    // confirmed it (WAIT), so that neither an edge reading a replica nor
    // a failover to one misses it. 0 (the default): the directory's
    // primary applying it is enough.
    unsigned directory_min_replicas = 0;
    std::string secret_file = "/etc/authtoken/secret";
    std::string scripts_dir = default_scripts_dir();
    // For new hashes: at least 600000 (passwords::kMinPbkdf2Iterations),
    // at most the hasher's own cap (passwords::kMaxPbkdf2Iterations).
    unsigned pbkdf2_iterations = 600000;
    // Lets pbkdf2_iterations go below 600000: for test suites only, never
    // for real passwords (the daemon logs a warning when it is on).
    bool insecure_test_hashing = false;
    // The hasher for new and upgraded hashes (Django's PASSWORD_HASHERS[0]):
    // pbkdf2_sha256 (Django's default) or argon2id.
    passwords::Hasher password_hasher = passwords::Hasher::pbkdf2_sha256;
    bool auto_create_token = true;
    // Seconds from its creation after which a new token expires (the
    // record's `expires`); 0 = never, DRF's behaviour. parse_duration().
    std::int64_t token_ttl = 0;
    // Sliding renewal (knox's AUTO_REFRESH / AUTO_REFRESH_MAX_TTL): tokens
    // created with an expiry are renewed by their uses at the edge, never
    // past token_max_ttl after creation (0 = no cap). Needs token_ttl.
    bool token_auto_refresh = false;
    std::int64_t token_max_ttl = 0;
    // tokens_per_user (one | many), token_limit_per_user (1 to 1000,
    // default 100: `many` refuses an unbounded set, since every function
    // that walks a user's tokens blocks Redis while it runs) and
    // token_limit_policy (refuse | drop_oldest).
    TokenPolicy tokens;
    // Daemon: serve GET /metrics (Prometheus) on the listen address.
    bool metrics = true;
    // Failed logins (login_throttle.h): hard windows per (username,
    // address) and per address, a soft one (progressive delay) per
    // username, and attempts in flight at once.
    ThrottleRate throttle_user_addr_rate{5, 60};
    ThrottleRate throttle_addr_rate{20, 60};
    ThrottleRate throttle_user_rate{20, 3600};
    unsigned throttle_max_delay = 10; // seconds
    unsigned throttle_user_in_flight = 4;
    unsigned throttle_addr_in_flight = 16;
    // The header holding the client's address, believed only from
    // trusted_proxies (nginx's real_ip_header); "" = none, the peer.
    std::string real_ip_header;
    // Peers whose real_ip_header we believe (exact addresses).
    std::vector<std::string> trusted_proxies{"127.0.0.1", "::1"};
    std::size_t max_body_size = 16 * 1024;
    // The request head (request line + header fields): bytes in all, and
    // fields. Over either: 431 and the connection closed. A request line
    // or header line over 8192 bytes (nginx's large_client_header_buffers
    // line size) gets
    // 414 / 431. nginx's model: large_client_header_buffers 4 8k.
    std::size_t max_header_size = 32 * 1024;
    unsigned max_header_fields = 100;
    unsigned read_timeout = 5;  // seconds, per read and for a new
                                // connection's first byte
    unsigned write_timeout = 5; // seconds
    // Seconds for a whole request (line, headers, body) from its first
    // byte: the slowloris bound, which a per-read timeout is not.
    unsigned request_timeout = 10;
    unsigned keep_alive_timeout = 2; // seconds idle between requests
    // Seconds to read and drop the rest of a request answered unread (405,
    // 413, 414, 431) before closing, so the peer gets the answer and not a
    // reset.
    unsigned lingering_time = 5;
    // Connections open at once (epoll: a slow one costs no thread); more
    // are closed at once.
    unsigned max_connections = 1024;
    unsigned threads = 0; // password hashes at once; 0 = one per core
    unsigned redis_timeout_ms = 1000;
    // Seconds between writes of authtoken:heartbeat, which edges with
    // auth_token_max_lag watch; 0 = never written (daemon only).
    unsigned heartbeat_interval = 1;
    bool create_secret = false; // daemon: create the secret file if absent
    // The staff admin API's page size (DRF's PAGE_SIZE for
    // PageNumberPagination): users per GET /api-admin/users/ page.
    unsigned admin_page_size = 100;
    // Daemon: serve the staff admin API under /api-admin/.
    bool admin_api = true;
};

class SettingsError : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};

// The Redis endpoint: `redis` parsed, with redis_password applied. Throws
// SettingsError.
RedisEndpoint redis_endpoint(const IssuerSettings &settings);

// A duration in whole seconds, spelled as nginx's time values
// (ngx_parse_time() with is_sec, nginx 1.22): a number with an optional
// unit, s (the default), m, h, d, w, M (30 days) or y (365 days), several
// in a row adding up ("1h30m"); "off" is 0. Throws std::invalid_argument,
// saying what was expected.
std::int64_t parse_duration(const std::string &value);

// The token directory's endpoint, when directory_url is set and names
// another Redis than `redis` (another address or database); nullopt: one
// Redis holds both stores. Throws SettingsError.
std::optional<RedisEndpoint> directory_endpoint(const IssuerSettings &settings);

// Overwrites with 'x' the password of a `--redis URL` / `--redis=URL`
// (and of `--directory-url`) in the process's own argv, so that `ps` stops
// showing it once the
// settings are read (it was visible until then: say so). True when there
// was one.
bool hide_redis_password_in_argv(int argc, char **argv);

// The password hashing policy the settings describe.
passwords::HasherPolicy hasher_policy(const IssuerSettings &settings);

// Names of every setting, for --help and the docs.
std::vector<std::string> setting_names();

// Sets one setting from its text form; throws SettingsError naming the
// setting. Booleans accept 1/0, true/false, yes/no, on/off.
void apply_setting(IssuerSettings &settings, const std::string &name,
                   const std::string &value);

// `name = value` lines; '#' starts a comment; blank lines are ignored.
// Throws SettingsError with "<origin>:<line>: ..." on an unknown name or
// a bad value.
void apply_config_text(IssuerSettings &settings, const std::string &text,
                       const std::string &origin);

using EnvironmentLookup =
    std::function<std::optional<std::string>(const std::string &)>;
using FileReader = std::function<std::string(const std::string &)>;

// Resolves the settings from flags (name -> value, names as in the file;
// "config" names the config file, else AUTHTOKEN_CONFIG does), the
// environment and the file. Throws SettingsError.
IssuerSettings resolve_settings(const std::map<std::string, std::string> &flags,
                                const EnvironmentLookup &environment,
                                const FileReader &read_file);

// Takes the settings flags out of `args` (argv without the program name):
// "--name value", "--name=value", and for the on/off settings also
// "--name" alone (on) and "--no-name" (off); "--config FILE" too. Other
// arguments stay in `args`, in order. Throws SettingsError on a setting
// flag without its value.
std::map<std::string, std::string>
take_setting_flags(std::vector<std::string> &args);

// The process's real environment and file system.
std::optional<std::string> process_environment(const std::string &name);
std::string read_config_file(const std::string &path);

} // namespace authtoken
