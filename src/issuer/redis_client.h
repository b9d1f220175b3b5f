// A small synchronous Redis client over hiredis for the issuer: the daemon's
// pool threads and the CLI may block on Redis, the nginx module never does.
// Every argument goes through redisCommandArgv, so user input is never
// formatted into a command string.
#pragma once

#include "redis_url.h"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
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

// A script was sent but its reply did not come within the timeout. The
// script carries a deadline (redis/lib/deadline.lua): it ran before the
// caller gave up, or it will never run. Which one is unknown.
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
    RedisConnection(const RedisEndpoint &endpoint,
                    std::chrono::milliseconds timeout);
    ~RedisConnection();
    RedisConnection(const RedisConnection &) = delete;
    RedisConnection &operator=(const RedisConnection &) = delete;

    // Runs one command. Throws RedisTimeout when no answer came within the
    // timeout, RedisError on other I/O errors and on error replies; after
    // an I/O error or a timeout the connection is broken() for good.
    Reply command(const std::vector<std::string_view> &args);
    bool broken() const noexcept
    {
        return broken_;
    }
    std::chrono::milliseconds timeout() const noexcept
    {
        return timeout_;
    }
    const std::string &address() const noexcept
    {
        return address_;
    }

  private:
    struct FreeContext {
        void operator()(redisContext *c) const noexcept;
    };
    std::unique_ptr<redisContext, FreeContext> ctx_;
    std::string address_; // for messages: "127.0.0.1:6379", "unix:/path"
    std::chrono::milliseconds timeout_;
    bool broken_ = false;
};

// The Lua scripts in redis/*.lua, read once at startup, each behind the
// deadline check in redis/lib/deadline.lua. Each runs with EVALSHA; a
// server that lost its script cache (restart, SCRIPT FLUSH, failover)
// answers NOSCRIPT and gets the source once with EVAL.
class ScriptLibrary
{
  public:
    // Reads every *.lua in `dir`, and `dir`/lib/deadline.lua. Throws
    // std::runtime_error when the directory or a script cannot be read.
    explicit ScriptLibrary(const std::string &dir);

    // Sends SCRIPT LOAD for every script, so that a syntax error shows at
    // startup and not on the first request.
    void load_all(RedisConnection &conn) const;

    // Runs script `name` (file name without .lua): asks Redis for its TIME,
    // then sends the script with the deadline TIME + the connection's
    // timeout, past which the script refuses to start. Error replies from
    // the script itself come back as ScriptRefused; no reply in time as
    // ScriptTimedOut once the script was sent (RedisTimeout before).
    Reply run(RedisConnection &conn, std::string_view name,
              const std::vector<std::string_view> &keys,
              const std::vector<std::string_view> &args) const;

  private:
    struct Script {
        std::string source;
        std::string sha1;
    };
    const Script &find(std::string_view name) const;
    static long long redis_time_ms(RedisConnection &conn);
    std::map<std::string, Script, std::less<>> scripts_;
};

// A pool of connections for the daemon's worker threads. lease() reuses an
// idle connection or opens a new one; a broken connection is dropped when
// its lease ends instead of going back to the pool.
class RedisPool
{
  public:
    RedisPool(RedisEndpoint endpoint, std::chrono::milliseconds timeout);

    class Lease
    {
      public:
        Lease(RedisPool &pool, std::unique_ptr<RedisConnection> conn);
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
    };

    Lease lease();
    const RedisEndpoint &endpoint() const
    {
        return endpoint_;
    }

  private:
    void give_back(std::unique_ptr<RedisConnection> conn);

    RedisEndpoint endpoint_;
    std::chrono::milliseconds timeout_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<RedisConnection>> idle_;
};

} // namespace authtoken
