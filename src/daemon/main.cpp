// authtokend: the issuer daemon. Reads its settings (flags > AUTHTOKEN_*
// environment > config file > defaults), opens the secret and the Lua
// scripts, and serves POST /api-token-auth/, GET /healthz and GET /metrics
// (unless the metrics setting is off) until SIGTERM,
// which lets requests in flight finish and exits 0.
#include "daemon/concurrency_limit.h"
#include "daemon/heartbeat.h"
#include "daemon/http_front.h"
#include "daemon/http_server.h"
#include "daemon/issuer_metrics.h"
#include "daemon/obtain_service.h"

#include "daemon/event_log.h"
#include "issuer/settings/issuer_settings.h"
#include "core/redis_keys.h"
#include "issuer/store/login_throttle.h"
#include "issuer/store/redis_client.h"
#include "issuer/store/user_store.h"
#include "issuer/token_sealer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>

namespace
{

using namespace authtoken;

constexpr const char *kUsage = R"(usage: authtokend [options]

  --listen ADDR          127.0.0.1:8000, [::1]:8000 or unix:/run/authtokend.sock
                         (port 0 picks a free port; the log line says which)
  --socket-mode MODE     for unix: sockets, e.g. 0660 (default): every peer
                         that can connect is trusted as a proxy
  --socket-group GROUP   group of the unix: socket (nginx's user joins it)
  --redis URL            redis://[user:@]host[:port][/db] or
                         unix:///path/redis.sock?db=N (the password goes in
                         AUTHTOKEN_REDIS_PASSWORD or the config file's
                         redis_password: on the command line `ps` shows it;
                         redis://secret@host is a password, as redis-cli
                         reads it)
  --secret-file PATH     32-byte secret that seals token keys (mode 0600)
  --create-secret        create the secret file first if it does not exist
                         (refused when Redis already holds tokens)
  --config FILE          key = value settings file (also AUTHTOKEN_CONFIG)
  --scripts-dir DIR      where redis/authtoken.lua, the Redis Functions
                         library, is
  --pbkdf2-iterations N  for new password hashes (600000, the floor, to
                         10000000)
  --password-hasher H    pbkdf2_sha256 (default) or argon2id, for new hashes
  --insecure-test-hashing  allow fewer PBKDF2 iterations: test suites only
  --auto-create-token / --no-auto-create-token
  --token-ttl D          new tokens expire D after creation (3600, 1h, 30d;
                         default off: never, as DRF)
  --token-auto-refresh / --no-token-auto-refresh
                         each use at nginx (auth_token_last_used) renews a
                         token to its lifetime after that use (needs
                         --token-ttl; default off)
  --token-max-ttl D      no renewal past D after creation (default off)
  --throttle-user-addr-rate R   failed logins per username and address,
                         then 429 (default 5/min; off disables)
  --throttle-addr-rate R failed logins per address, then 429 (20/min)
  --throttle-user-rate R failed logins per username from anywhere, then
                         each attempt is delayed 1 s, 2 s, 4 s... (20/hour)
  --throttle-max-delay S the longest such delay (10)
  --throttle-user-in-flight N, --throttle-addr-in-flight N
                         logins at once per username (4) and address (16)
  --real-ip-header NAME  the header with the client's address, e.g.
                         X-Real-IP or X-Forwarded-For (default: none)
  --trusted-proxies LIST comma-separated peers whose real-ip header is
                         believed (default 127.0.0.1,::1)
  --max-body-size BYTES  larger bodies get 413 (default 16384)
  --max-header-size BYTES  request line + headers; over it 431 (default 32768;
                         a line over 8192 bytes gets 414 or 431)
  --max-header-fields N  more header fields get 431 (default 100)
  --max-connections N    connections open at once (default 1024)
  --threads N            password hashes at once (default 0: one per core)
  --read-timeout S       idle while reading, and for a new connection's
                         first byte (5)
  --request-timeout S    for a whole request (10)
  --keep-alive-timeout S idle wait for the next request (2)
  --write-timeout S (5), --lingering-time S (5), --redis-timeout-ms MS
  --metrics / --no-metrics  serve GET /metrics, Prometheus's text format,
                         on the listen address (default: on)
  --admin-api / --no-admin-api  serve the staff admin API under /api-admin/
                         (default: on); --admin-page-size N users a page (100)
  --heartbeat-interval S seconds between writes of authtoken:heartbeat, which
                         nginx's auth_token_max_lag watches (1; 0 = off)

Every option is also a config-file key (listen = ...) and an environment
variable (AUTHTOKEN_LISTEN=...). Precedence: flags > environment > file.
)";

struct ListenAddress {
    std::string host; // or the socket path
    int port = 0;
    bool unix_socket = false;
};

ListenAddress parse_listen(const std::string &text)
{
    ListenAddress address;
    if (text.compare(0, 5, "unix:") == 0) {
        address.host = text.substr(5);
        address.unix_socket = true;
        if (address.host.empty()) {
            throw SettingsError("listen: empty unix socket path");
        }
        return address;
    }
    std::size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
        throw SettingsError("listen: expected HOST:PORT or unix:PATH");
    }
    address.host = text.substr(0, colon);
    if (address.host.size() > 1 && address.host.front() == '[') {
        address.host = address.host.substr(1, address.host.size() - 2);
    }
    try {
        address.port = std::stoi(text.substr(colon + 1));
    } catch (const std::exception &) {
        throw SettingsError("listen: invalid port in \"" + text + "\"");
    }
    if (address.port < 0 || address.port > 65535) {
        throw SettingsError("listen: invalid port in \"" + text + "\"");
    }
    return address;
}

struct SocketOptions {
    unsigned mode = 0660;
    std::string group;
};

// A bound, listening socket, and what to print in "authtokend: listening
// on ...". The server (MHD) takes the socket over.
struct Listener {
    int fd = -1;
    std::string where;
};

int listen_or_throw(int fd, const std::string &what)
{
    if (listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        throw std::runtime_error("cannot listen on " + what + ": " +
                                 std::strerror(e));
    }
    return fd;
}

Listener listen_unix(const ListenAddress &address,
                     const SocketOptions &socket_options)
{
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (address.host.size() >= sizeof(sun.sun_path)) {
        throw SettingsError("listen: unix socket path too long");
    }
    std::memcpy(sun.sun_path, address.host.c_str(), address.host.size() + 1);
    struct stat st {
    };
    // A socket left by a previous run would make bind fail.
    if (lstat(address.host.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(address.host.c_str());
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw std::runtime_error(std::string("socket: ") +
                                 std::strerror(errno));
    }
    // Nobody may connect between bind() and the chmod below.
    mode_t umask_before = umask(0177);
    int bound = bind(fd, reinterpret_cast<sockaddr *>(&sun), sizeof(sun));
    int bind_errno = errno;
    umask(umask_before);
    if (bound != 0) {
        close(fd);
        throw std::runtime_error("cannot listen on unix:" + address.host +
                                 ": " + std::strerror(bind_errno));
    }
    if (!socket_options.group.empty()) {
        struct group *gr = getgrnam(socket_options.group.c_str());
        if (gr == nullptr) {
            close(fd);
            throw std::runtime_error("socket_group: no group \"" +
                                     socket_options.group + "\"");
        }
        if (chown(address.host.c_str(), static_cast<uid_t>(-1), gr->gr_gid) !=
            0) {
            int e = errno;
            close(fd);
            throw std::runtime_error(
                "socket_group: cannot chown " + address.host + " to " +
                socket_options.group + ": " + std::strerror(e));
        }
    }
    // Connecting needs write permission on the socket, and bind() made
    // it with the mode the umask left (0700 under systemd's
    // UMask=0077): socket_mode (0660 unless set) decides, whatever the
    // umask. Without socket_group the group is the directory's
    // business: the unit's RuntimeDirectory is setgid to nginx's
    // group, so the socket gets that group.
    if (chmod(address.host.c_str(), socket_options.mode) != 0) {
        int e = errno;
        close(fd);
        throw std::runtime_error("socket_mode: cannot chmod " + address.host +
                                 ": " + std::strerror(e));
    }
    return {listen_or_throw(fd, "unix:" + address.host),
            "unix:" + address.host};
}

Listener listen_tcp(const ListenAddress &address)
{
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo *found = nullptr;
    std::string port = std::to_string(address.port);
    const char *host = address.host.empty() ? nullptr : address.host.c_str();
    int rc = getaddrinfo(host, port.c_str(), &hints, &found);
    if (rc != 0) {
        throw std::runtime_error("cannot listen on " + address.host + ": " +
                                 gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found,
                                                             freeaddrinfo);
    int fd = socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC,
                    found->ai_protocol);
    if (fd < 0) {
        throw std::runtime_error(std::string("socket: ") +
                                 std::strerror(errno));
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
        int e = errno;
        close(fd);
        throw std::runtime_error("cannot listen on " + address.host + ":" +
                                 port + ": " + std::strerror(e));
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr *>(&bound), &len);
    int actual = ntohs(bound.ss_family == AF_INET6
                           ? reinterpret_cast<sockaddr_in6 &>(bound).sin6_port
                           : reinterpret_cast<sockaddr_in &>(bound).sin_port);
    bool v6 = address.host.find(':') != std::string::npos;
    std::string where = (v6 ? "[" + address.host + "]" : address.host) + ":" +
                        std::to_string(actual);
    return {listen_or_throw(fd, where), where};
}

Listener listen_on(const ListenAddress &address,
                   const SocketOptions &socket_options)
{
    return address.unix_socket ? listen_unix(address, socket_options)
                               : listen_tcp(address);
}

// SIGTERM/SIGINT are blocked in every thread and taken here with sigwait,
// in the main thread, which then stops the server gracefully (HttpServer::
// stop(): no new connections, the requests in flight are answered).
// SIGHUP (a closed terminal, a reflexive `kill -HUP`) is taken too, logged
// and ignored: left to its default action it killed the daemon with the
// logins in flight, and authtokend has nothing to reload (settings are
// read at startup). Blocked before any thread starts, so every thread
// inherits the mask.
class StopSignals
{
  public:
    StopSignals()
    {
        sigemptyset(&signals_);
        sigaddset(&signals_, SIGTERM);
        sigaddset(&signals_, SIGINT);
        sigaddset(&signals_, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    }
    // SIGTERM or SIGINT.
    int wait()
    {
        for (;;) {
            int sig = 0;
            sigwait(&signals_, &sig);
            if (sig != SIGHUP) {
                return sig;
            }
            log::info("SIGHUP ignored: nothing to reload; restart "
                      "authtokend to apply new settings");
        }
    }

  private:
    sigset_t signals_{};
};

unsigned hashing_slots(const IssuerSettings &settings)
{
    if (settings.threads > 0) {
        return settings.threads;
    }
    unsigned cores = std::thread::hardware_concurrency();
    return cores > 0 ? cores : 2;
}

// Each connection is a descriptor (two while it lingers): raise the soft
// limit towards the hard one to fit max_connections.
void fit_open_files(unsigned connections)
{
    rlimit nofile{};
    if (getrlimit(RLIMIT_NOFILE, &nofile) != 0) {
        return;
    }
    rlim_t want = 2 * static_cast<rlim_t>(connections) + 64;
    if (nofile.rlim_cur >= want) {
        return;
    }
    nofile.rlim_cur = std::min(want, nofile.rlim_max);
    setrlimit(RLIMIT_NOFILE, &nofile);
    if (nofile.rlim_cur < want) {
        log::warn("max_connections " + std::to_string(connections) + " needs " +
                  std::to_string(want) + " open files, the hard limit is " +
                  std::to_string(nofile.rlim_max) +
                  ": raise LimitNOFILE= (systemd) or ulimit -n");
    }
}

// Handlers running at once at most (each may wait on Redis, a throttle
// delay or a hashing slot); beyond, requests queue for a worker.
constexpr unsigned kMaxWorkers = 256;

HttpLimits http_limits(const IssuerSettings &settings)
{
    using std::chrono::seconds;
    HttpLimits limits;
    limits.read_timeout = seconds(settings.read_timeout);
    limits.write_timeout = seconds(settings.write_timeout);
    limits.request_timeout = seconds(settings.request_timeout);
    limits.keep_alive_timeout = seconds(settings.keep_alive_timeout);
    limits.lingering_time = seconds(settings.lingering_time);
    limits.max_head_size = settings.max_header_size;
    limits.max_header_fields = settings.max_header_fields;
    limits.max_body_size = settings.max_body_size;
    limits.max_connections = settings.max_connections;
    limits.workers = std::min(settings.max_connections, kMaxWorkers);
    return limits;
}

// What replacing another version of the Functions library means: at
// startup, the upgrade (an earlier release's library is still loaded
// after its issuers stopped); while running, another issuer of another
// version shares this Redis and puts its own back (a rolling upgrade's
// fight, or a forgotten one); either, when that library is of a release
// before schema version 3 and the database is marked 3-partial or 3, an
// issuer whose writes nothing reads.
void log_replaced_library(const ScriptLibrary::Replaced &r)
{
    if (r.earlier_release_on_schema_3()) {
        log::error("redis: an issuer of an earlier release is writing to "
                   "this schema-3 database: its revocations and "
                   "deactivations are lost; stop it (it loaded Functions "
                   "library authtoken " +
                   r.other +
                   ", which knows no schema version 3, while authtoken:schema "
                   "is " +
                   r.schema +
                   "; stop every authtokend and authtokenctl of the earlier "
                   "release, docs/operations.md \"Upgrading to schema version "
                   "3\")");
    } else if (r.at_start) {
        log::info("redis: replaced Functions library authtoken " + r.other +
                  " with this issuer's (an upgrade replaces the earlier "
                  "library once)");
    } else {
        log::warn("redis: replaced Functions library authtoken " + r.other +
                  " with this issuer's: an issuer of another version shares "
                  "this Redis, and each puts its own back when it meets the "
                  "other's");
    }
}

// Loads the Functions library into Redis at startup (unless Redis has
// this version already), so a library Redis refuses shows now. Redis being
// down is not fatal: /healthz says 503 and the first call that finds no
// library loads it.
void preload_library(RedisPool &pool, const ScriptLibrary &library)
{
    try {
        RedisPool::Lease conn = pool.lease();
        switch (library.load(*conn)) {
        case ScriptLibrary::Loaded::current:
            log::info("redis: Functions library authtoken " +
                      library.version() + " already loaded");
            break;
        case ScriptLibrary::Loaded::loaded:
        case ScriptLibrary::Loaded::replaced:
            log::info("redis: loaded Functions library authtoken " +
                      library.version());
            break;
        }
    } catch (const RedisError &e) {
        log::error(std::string("redis not ready at startup: ") + e.what());
    }
}

// The layout the settings name must be the one the user store holds
// (docs/operations.md "Two stores"), as authtokenctl checks it: a user
// store that feeds a separate token directory (authtoken:directory-id)
// needs directory_url, or changes would be answered before the edges have
// them; directory_url needs a store that `authtokenctl directory init`
// marked. Returns the directory id ("" for one store, or when Redis does
// not answer at startup: that is not fatal here, as for preload_library;
// the first drain reads it then, and a write meanwhile is checked by
// DirectorySync::settle).
std::string check_directory_layout(RedisPool &pool, bool directory_url)
{
    std::string id;
    try {
        RedisPool::Lease conn = pool.lease();
        Reply marked = conn->command({"GET", keys::kDirectoryId});
        id = reply_string(marked.get());
    } catch (const RedisError &) {
        return id;
    }
    if (!directory_url && !id.empty()) {
        throw SettingsError(
            "this user store feeds a separate token directory "
            "(authtoken:directory-id " +
            id +
            "): set directory_url to it, or changes would be reported done "
            "before the edges have them");
    }
    if (directory_url && id.empty()) {
        throw SettingsError("directory_url is set but this user store feeds "
                            "no token directory yet: run `authtokenctl "
                            "directory init`");
    }
    return id;
}

// Says once, at startup, what would make the records larger or leave them
// in version 1's form: a hash-max-listpack-value below what the user
// records need (they still work, in Redis's larger hashtable encoding),
// and a database not yet migrated. A CONFIG that is renamed or denied by
// the ACL (redis/users.acl gives the issuer none) says nothing: the
// operator chose that Redis's settings.
void check_redis_settings(RedisPool &pool)
{
    try {
        RedisPool::Lease conn = pool.lease();
        Reply schema = conn->command({"GET", keys::kSchema});
        if (!reply_is_nil(schema.get()) && reply_string(schema.get()) == "1") {
            log::warn("redis: the records are of schema version 1; this "
                      "issuer reads them and writes version 2: run "
                      "`authtokenctl migrate` to store the rest compactly "
                      "(docs/authtokend.md)");
        } else if (!reply_is_nil(schema.get()) &&
                   reply_string(schema.get()) !=
                       std::to_string(keys::kSchemaVersion)) {
            log::warn("redis: the records are of schema version " +
                      reply_string(schema.get()) +
                      "; token records keep their hex names until "
                      "`authtokenctl migrate` renames them (schema version " +
                      std::to_string(keys::kSchemaVersion) +
                      ", docs/operations.md: upgrade nginx first)");
        }
        // An error reply (CONFIG renamed or denied) throws RedisError too.
        Reply limit =
            conn->command({"CONFIG", "GET", "hash-max-listpack-value"});
        if (reply_size(limit.get()) != 2) {
            return;
        }
        long long value =
            std::stoll(reply_string(reply_element(limit.get(), 1)));
        if (value < kListpackValueNeeded) {
            log::warn("redis: hash-max-listpack-value is " +
                      std::to_string(value) + ", below the " +
                      std::to_string(kListpackValueNeeded) +
                      " bytes the user records need to stay in Redis's "
                      "compact listpack encoding: they work, but take "
                      "several times the memory (set it as redis/redis.conf "
                      "does; docs/capacity.md)");
        }
    } catch (const RedisError &) {
        // Redis is down (preload_library said so already), or CONFIG is
        // not this issuer's to use.
    } catch (const std::logic_error &) {
        // A value that is not a number: not ours to judge.
    }
}

// --create-secret on a Redis that already holds token records: their keys
// were sealed under a secret that is gone (or is elsewhere), and a new one
// would make every login of those users fail. Refuse, and say what to do.
// Redis not answering refuses too: the check must not be skipped.
void refuse_new_secret_over_sealed_keys(RedisPool &pool,
                                        const std::string &path)
{
    try {
        RedisPool::Lease conn = pool.lease();
        std::string cursor = "0";
        do {
            Reply reply = conn->command({"SCAN", cursor, "MATCH",
                                         "authtoken:token:*", "COUNT", "1000"});
            cursor = reply_string(reply_element(reply.get(), 0));
            if (reply_size(reply_element(reply.get(), 1)) > 0) {
                throw std::runtime_error(
                    "--create-secret: secret file " + path +
                    " does not exist, but Redis already holds tokens sealed "
                    "under a secret: a new secret would make every one of "
                    "them fail. Restore the original secret file (or start "
                    "from an empty Redis).");
            }
        } while (cursor != "0");
    } catch (const RedisError &e) {
        throw std::runtime_error(
            std::string("--create-secret: cannot check Redis for sealed "
                        "tokens before creating a secret: ") +
            e.what());
    }
}

int run(std::vector<std::string> args)
{
    auto flags = take_setting_flags(args);
    for (const std::string &arg : args) {
        if (arg == "-h" || arg == "--help") {
            std::cout << kUsage;
            return 0;
        }
        std::cerr << "authtokend: unknown argument \"" << arg << "\"\n"
                  << kUsage;
        return 2;
    }
    // Before any thread starts (Sentinel's, MHD's, the workers').
    StopSignals signals;
    IssuerSettings settings =
        resolve_settings(flags, process_environment, read_config_file);
    ListenAddress address = parse_listen(settings.listen);
    RedisEndpoint endpoint = redis_endpoint(settings);
    // The split layout (docs/operations.md, "Two stores"): a separate
    // token directory the edges read.
    std::optional<RedisEndpoint> directory = directory_endpoint(settings);

    IssuerMetrics metrics;
    ScriptLibrary scripts(settings.scripts_dir, log_replaced_library);
    RedisPool pool(
        endpoint, std::chrono::milliseconds(settings.redis_timeout_ms),
        [&metrics](RedisFailure cause) { metrics.redis_failure(cause); });
    if (settings.create_secret &&
        access(settings.secret_file.c_str(), F_OK) != 0) {
        refuse_new_secret_over_sealed_keys(pool, settings.secret_file);
        create_secret_file(settings.secret_file);
        log::info("created secret file " + settings.secret_file);
    }
    TokenSealer sealer(load_secret_file(settings.secret_file));
    preload_library(pool, scripts);
    std::string directory_id =
        check_directory_layout(pool, directory.has_value());
    check_redis_settings(pool);
    // Through Sentinel, a failover also drops the pool's connections at
    // once, not only when each one fails or meets -READONLY.
    std::optional<SentinelWatcher> failover;
    if (endpoint.via_sentinel()) {
        failover.emplace(endpoint, [&pool](const std::string &event) {
            log::info("sentinel: " + event + "; reconnecting to the primary");
            pool.invalidate();
        });
    }

    ThrottleSettings throttling;
    throttling.per_user_address = settings.throttle_user_addr_rate;
    throttling.per_address = settings.throttle_addr_rate;
    throttling.per_user = settings.throttle_user_rate;
    throttling.max_delay = std::chrono::seconds(settings.throttle_max_delay);
    throttling.first_delay =
        std::min(throttling.first_delay, throttling.max_delay);
    throttling.user_in_flight = settings.throttle_user_in_flight;
    throttling.address_in_flight = settings.throttle_addr_in_flight;
    // An attempt waits at most max_delay, then for Redis and a hash.
    throttling.in_flight_lifetime =
        throttling.max_delay + std::chrono::seconds(60);
    LoginThrottle throttle(scripts, throttling);
    passwords::HasherPolicy policy = hasher_policy(settings);
    if (settings.insecure_test_hashing) {
        log::error("insecure_test_hashing is on: new password hashes may "
                   "use fewer than 600000 PBKDF2 iterations; for test "
                   "suites only");
    }
    unsigned hashes = hashing_slots(settings);
    ConcurrencyLimit hashing(hashes);
    ObtainService obtain(pool, scripts, sealer, throttle, policy, hashing,
                         metrics);
    obtain.set_token_ttl(settings.token_ttl);
    obtain.set_token_renewal(settings.token_auto_refresh,
                             settings.token_max_ttl);
    obtain.set_token_policy(settings.tokens);
    TokenEndpoints tokens(pool, scripts, sealer, metrics);
    AdminApi admin(settings, pool, scripts, sealer, policy, hashing);
    // Applies every write to the token directory before its answer, and
    // replays (and beats) in a thread of its own; stopped after the server.
    std::chrono::milliseconds beat_every(
        std::chrono::seconds(std::max(settings.heartbeat_interval, 1U)));
    DirectorySync sync(scripts, pool, directory, directory_id,
                       std::chrono::milliseconds(settings.redis_timeout_ms),
                       beat_every, settings.heartbeat_interval > 0, metrics,
                       settings.directory_min_replicas);
    obtain.set_renewed_expiry(sync.renewed_expiry_source());
    tokens.set_directory(&sync);
    admin.set_directory(&sync);

    Listener listener =
        listen_on(address, {settings.socket_mode, settings.socket_group});
    HttpLimits limits = http_limits(settings);
    fit_open_files(limits.max_connections);
    HttpServer server(listener.fd, limits,
                      make_router(settings, obtain, tokens, pool,
                                  settings.metrics ? &metrics : nullptr,
                                  settings.admin_api ? &admin : nullptr,
                                  &sync));
    // After StopSignals blocked SIGTERM, so that this thread inherits the
    // mask (else the signal may land here and kill the process without the
    // drain); stopped before the pool it uses goes.
    // With a separate directory the heartbeat goes there, from `sync`,
    // only while the directory is complete.
    std::optional<HeartbeatWriter> heartbeat;
    if (settings.heartbeat_interval > 0 && !directory) {
        heartbeat.emplace(endpoint,
                          std::chrono::milliseconds(settings.redis_timeout_ms),
                          std::chrono::seconds(settings.heartbeat_interval));
    }
    if (!settings.directory_url.empty() && !directory) {
        log::info("directory_url names the redis store itself: one Redis "
                  "holds users and token records, nothing is split");
    }
    log::info("redis " + describe_endpoint(endpoint) +
              (directory ? ", token directory " + describe_endpoint(*directory)
                         : std::string()) +
              ", " + std::to_string(limits.max_connections) + " connections, " +
              std::to_string(hashes) + " hashes at once, pbkdf2 iterations " +
              std::to_string(settings.pbkdf2_iterations));
    std::fprintf(stderr, "authtokend: listening on %s\n",
                 listener.where.c_str());
    std::fflush(stderr);
    int sig = signals.wait();
    log::info(std::string("stopping on ") +
              (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    // A login may wait for its throttle delay, Redis and a hashing slot.
    server.stop(std::chrono::seconds(settings.request_timeout +
                                     settings.throttle_max_delay + 30));
    if (address.unix_socket) {
        unlink(address.host.c_str());
    }
    log::info("stopped");
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        if (hide_redis_password_in_argv(argc, argv)) {
            log::error("the Redis password was given in --redis, where `ps` "
                       "showed it until now: use AUTHTOKEN_REDIS_PASSWORD or "
                       "redis_password in the config file");
        }
        return run(std::move(args));
    } catch (const std::exception &e) {
        std::fprintf(stderr, "authtokend: %s\n", e.what());
        return 1;
    }
}
