// A small synchronous Redis client over hiredis for the issuer: the daemon's
// pool threads and the CLI may block on Redis, the nginx module never does.
// Every argument goes through redisCommandArgv, so user input is never
// formatted into a command string.
#pragma once

#include "issuer/store/redis_url.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

struct redisContext;
struct redisReply;

namespace authtoken
{

// Redis is unreachable, timed out, or answered with an error.
class RedisError : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};

// No answer within the timeout. The command may have reached Redis, and a
// Redis that is only stalled (paused, swapping, a long script) still runs
// it when it wakes up: for a write, the outcome is unknown.
class RedisTimeout : public RedisError
{
  public:
    using RedisError::RedisError;
};

// The connection failed (reset, closed, the server died) after a command
// was sent: a write may or may not have been made.
class RedisConnectionLost : public RedisError
{
  public:
    using RedisError::RedisError;
};

// A script was sent but its reply did not come within the timeout: none
// came, or the connection was lost and the caller waited out the rest of
// the timeout before saying so. The script carries a deadline
// (redis/authtoken.lua): it ran before the caller gave up, or it will
// never run. Which one is unknown.
class ScriptTimedOut : public RedisTimeout
{
  public:
    using RedisTimeout::RedisTimeout;
};

// An error reply raised by one of our scripts with redis.error_reply(),
// e.g. "no such user": not a fault of Redis itself.
class ScriptRefused : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};

// What went wrong with Redis, for a RedisPool's failure observer (the
// daemon's metrics). Each failed connect or command is reported once, where
// it is decided; a missing function or one of another version (answered
// by loading the library, ScriptLibrary) and a function's own REFUSED:
// reply (a domain answer, ScriptRefused) are not failures.
enum class RedisFailure : std::size_t {
    connect,         // no connection: refused, unreachable, connect timed
                     // out, AUTH/SELECT refused, no Sentinel named a
                     // primary, or the node named is not a master
    timeout,         // no reply within the timeout, or a script that did
                     // not start before its deadline (LATE:)
    connection_lost, // the connection failed after the command was sent
    readonly,        // -READONLY: a primary demoted by a failover
    reply_error,     // any other error reply
    count_
};
using RedisFailureObserver = std::function<void(RedisFailure)>;

struct FreeReply {
    void operator()(redisReply *reply) const noexcept;
};
using Reply = std::unique_ptr<redisReply, FreeReply>;

// Views of a reply, so callers do not touch hiredis types.
std::string reply_string(const redisReply *reply); // "" for nil
bool reply_is_nil(const redisReply *reply);
long long reply_integer(const redisReply *reply);
std::size_t reply_size(const redisReply *reply); // array length
const redisReply *reply_element(const redisReply *reply, std::size_t i);

class RedisConnection
{
  public:
    // Connects, authenticates and selects the database, or throws
    // RedisError ("cannot connect to Redis at <addr>: <reason>") or
    // RedisTimeout ("Redis at <addr> timed out: no answer within N ms").
    //
    // For a sentinel:// endpoint it follows Redis's "Sentinel client spec"
    // (https://redis.io/docs/reference/sentinel-clients/): asks each
    // Sentinel in the endpoint's order `SENTINEL get-master-addr-by-name`
    // until one answers, connects to that address, and checks with `ROLE`
    // that it is a master (a demoted or not yet promoted node is refused
    // with RedisError, and the next connect asks again). Each Sentinel and
    // the primary get the same timeout. Such a connection turns broken()
    // on a -READONLY reply, so its owner drops it and reconnects.
    RedisConnection(const RedisEndpoint &endpoint,
                    std::chrono::milliseconds timeout);
    ~RedisConnection();
    RedisConnection(const RedisConnection &) = delete;
    RedisConnection &operator=(const RedisConnection &) = delete;

    // Runs one command. Throws RedisTimeout when no answer came within the
    // timeout, RedisConnectionLost on other I/O errors, RedisError on error
    // replies; after an I/O error or a timeout (or, through Sentinel, a
    // -READONLY reply) the connection is broken() for good.
    Reply command(const std::vector<std::string_view> &args);
    // Sends every command of `commands` and then reads their replies, in
    // order: one round trip for all (pipelining). Once every reply is read,
    // the first error reply throws RedisError; I/O errors and timeouts
    // throw and break the connection as command() does. For bounded reads
    // (a page of token records), not for writes.
    std::vector<Reply>
    pipeline(const std::vector<std::vector<std::string>> &commands);
    // Called with each failure of command() from now on (not with those
    // of the connect, which the constructor throws). Must outlive the
    // connection; nullptr: none.
    void set_failure_observer(const RedisFailureObserver *observer) noexcept
    {
        observer_ = observer;
    }
    bool broken() const noexcept
    {
        return broken_;
    }
    // Whether an idle connection can no longer carry a command: the
    // server closed it (Redis restarted, `timeout` or CLIENT KILL: its FIN
    // or RST is already here) or bytes arrived that nothing asked for.
    // Looks without blocking and without a round trip (poll and a peek).
    bool unusable_while_idle() const noexcept;
    std::chrono::milliseconds timeout() const noexcept
    {
        return timeout_;
    }
    const std::string &address() const noexcept
    {
        return address_;
    }
    // Through Sentinel: the index in endpoint.sentinels of the Sentinel
    // that named the primary. 0 otherwise.
    std::size_t sentinel_used() const noexcept
    {
        return sentinel_used_;
    }

  private:
    void open(const RedisEndpoint &endpoint);
    void report(RedisFailure cause) const noexcept;
    // After hiredis gave no reply (errno `error`): breaks the connection,
    // reports and throws RedisTimeout or RedisConnectionLost.
    [[noreturn]] void fail_io(int error);
    struct FreeContext {
        void operator()(redisContext *c) const noexcept;
    };
    std::unique_ptr<redisContext, FreeContext> ctx_;
    std::string address_; // for messages: "127.0.0.1:6379", "unix:/path"
    std::chrono::milliseconds timeout_;
    bool broken_ = false;
    bool via_sentinel_ = false;
    const RedisFailureObserver *observer_ = nullptr;
    std::size_t sentinel_used_ = 0;
};

// The issuer's Redis Functions library, redis/authtoken.lua, read once at
// startup. Its version is the SHA-1 of the file, written into the library
// when it is loaded: `FCALL_RO authtoken_version 0` answers the version a
// Redis holds, so a loader replaces the library only when it differs.
// Functions persist in RDB and AOF and replicate to replicas; a Redis
// restarted without persistence (or flushed with FUNCTION FLUSH) has none,
// and another issuer of another version may have replaced ours: a call
// that meets either loads ours (FUNCTION LOAD REPLACE) and calls again,
// once.
class ScriptLibrary
{
  public:
    // What load() found: the library already there, none (loaded), or
    // another version (replaced).
    enum class Loaded { current, loaded, replaced };
    // What the library replaced, for the caller's log line.
    struct Replaced {
        std::string other;  // the version Redis held
        std::string schema; // authtoken:schema then, "" when there is none
        // The other library has no authtoken_migrate_tokens: it is of a
        // release before schema version 3, whose writers know only hex
        // token record names (nothing reads them at 3-partial and 3).
        bool other_before_schema_3 = false;
        // Met by load() at connect or startup (an upgrade replaces the
        // earlier release's library once), not by a call while running
        // (another issuer put its own back in the meantime).
        bool at_start = false;
        // An issuer of a release before schema version 3 writes to a
        // database marked 3-partial or 3: what it writes (hex token record
        // names, its users' token fields) nothing reads, so its
        // revocations and deactivations are lost (docs/operations.md).
        bool earlier_release_on_schema_3() const;
    };
    // Called after the library replaced another version, so two issuers
    // of different versions sharing one Redis are seen (each puts its own
    // back when it meets the other's).
    using ReplacedFn = std::function<void(const Replaced &)>;

    // Reads `dir`/authtoken.lua. Throws std::runtime_error when it cannot
    // be read.
    explicit ScriptLibrary(const std::string &dir, ReplacedFn on_replaced = {});

    // Loads the library unless Redis already has this version: one
    // FCALL_RO, then FUNCTION LOAD REPLACE when it answered another
    // version or no such function (before replacing another version: an
    // FCALL of authtoken_migrate_tokens without a version, which any
    // library of schema 3 answers STALE without running it, and an
    // earlier one "function not found"; then GET authtoken:schema, for
    // on_replaced). A library Redis refuses (a syntax error) shows here,
    // at connect, not on the first request. `at_start`: false when a call
    // met another version (run()).
    Loaded load(RedisConnection &conn, bool at_start = true) const;

    // Runs function authtoken_<name>: asks Redis for its TIME, then calls
    // it with this library's version and the deadline TIME + the
    // connection's timeout, past which the function refuses to start.
    // Error replies from the function itself come back as ScriptRefused;
    // no reply in time as ScriptTimedOut once the call was sent
    // (RedisTimeout before).
    Reply run(RedisConnection &conn, std::string_view name,
              const std::vector<std::string_view> &keys,
              const std::vector<std::string_view> &args) const;

    const std::string &version() const noexcept
    {
        return version_;
    }

  private:
    Reply call(RedisConnection &conn, std::string_view name,
               const std::vector<std::string_view> &keys,
               const std::vector<std::string_view> &args) const;
    static long long redis_time_ms(RedisConnection &conn);
    std::string source_; // with its version written in
    std::string version_;
    ReplacedFn on_replaced_;
};

// A pool of connections for the daemon's worker threads. lease() reuses an
// idle connection or opens a new one; a broken connection is dropped when
// its lease ends instead of going back to the pool. Through Sentinel, a
// broken connection (the primary died, or answered -READONLY after being
// demoted) or invalidate() (a +switch-master event) drops every idle
// connection and every leased one when it comes back, so the next lease
// asks Sentinel again; the Sentinel that answered moves to the front of
// the list, as the Sentinel client spec asks.
class RedisPool
{
  public:
    // `on_failure`, if set, is called (on the failing thread, so it must be
    // cheap and thread-safe) with each failed connect of lease() and each
    // failed command on a leased connection.
    RedisPool(RedisEndpoint endpoint, std::chrono::milliseconds timeout,
              RedisFailureObserver on_failure = nullptr);

    class Lease
    {
      public:
        Lease(RedisPool &pool, std::unique_ptr<RedisConnection> conn,
              std::uint64_t generation);
        ~Lease();
        Lease(Lease &&) = default;
        Lease(const Lease &) = delete;
        Lease &operator=(const Lease &) = delete;
        Lease &operator=(Lease &&) = delete;
        RedisConnection &operator*() const
        {
            return *conn_;
        }
        RedisConnection *operator->() const
        {
            return conn_.get();
        }

      private:
        RedisPool *pool_;
        std::unique_ptr<RedisConnection> conn_;
        std::uint64_t generation_;
    };

    Lease lease();
    const RedisEndpoint &endpoint() const
    {
        return endpoint_;
    }
    // Forgets every connection: the next lease connects afresh.
    void invalidate();

  private:
    void give_back(std::unique_ptr<RedisConnection> conn,
                   std::uint64_t generation);

    RedisEndpoint endpoint_; // sentinels reordered under mutex_
    std::chrono::milliseconds timeout_;
    RedisFailureObserver on_failure_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<RedisConnection>> idle_;
    std::uint64_t generation_ = 0; // bumped by invalidate()
};

// Listens to the Sentinels of a sentinel:// endpoint for `+switch-master`
// of its service, on a thread of its own: SUBSCRIBE on the first Sentinel
// that answers, the next one when it goes away. Calls on_event (on that
// thread) with the event's text on a switch of this service, and with
// "resubscribed" after a lost subscription came back, since a switch may
// have been missed meanwhile. The destructor stops the thread within
// about 200 ms.
class SentinelWatcher
{
  public:
    SentinelWatcher(RedisEndpoint endpoint,
                    std::function<void(const std::string &)> on_event);
    ~SentinelWatcher();
    SentinelWatcher(const SentinelWatcher &) = delete;
    SentinelWatcher &operator=(const SentinelWatcher &) = delete;

  private:
    void run();
    void listen(const SentinelAddress &sentinel, bool &subscribed_before);

    RedisEndpoint endpoint_;
    std::function<void(const std::string &)> on_event_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// The run_id of the redis-server behind `conn` (INFO server): the one name
// of a server that an address cannot hide (localhost and 127.0.0.1, a
// hostname, a Unix socket, a Sentinel's answer all name the same server
// by it). Empty when INFO is refused (an ACL user without +info); throws
// RedisError when Redis cannot be asked at all.
std::string server_run_id(RedisConnection &conn);

} // namespace authtoken
