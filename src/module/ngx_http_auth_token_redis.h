// One Redis connection per nginx worker, driven by nginx's event loop.
//
// hiredis's async API does the protocol and the adapter
// (ngx_http_auth_token_redis_adapter.h) plugs its socket into nginx events;
// this class sets the connection up (AUTH, SELECT, the schema check or
// SUBSCRIBE), reconnects with backoff, bounds connect time with an nginx
// timer, and hands each lookup's reply to whoever asked for it, or to
// nobody if the asker has gone away meanwhile.
//
// Ownership: the link owns the hiredis context and every in-flight lookup
// slot. A request holds a PendingLookup* only as a handle; it must call
// abandon() before it goes away, after which the reply is read and dropped.
// The reply callback is called exactly once per lookup that start_lookup()
// accepted: with the record, or with an error (including on disconnect).
#pragma once

#include "core/token_record.h"
#include "module/ngx_http_auth_token_redis_adapter.h"
#include "module/ngx_includes.h"

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisAsyncContext;

namespace ngx_auth_token
{

struct RedisAddress {
    std::string host; // numeric address, resolved at config time
    int port = 6379;
    std::string unix_path; // set for unix:/path
    std::string user;      // AUTH user password (ACL), when not empty
    std::string password;  // AUTH, when not empty
    int db = 0;            // SELECT, when not 0
    std::string name;      // as configured, for log lines
};

struct LookupReply {
    bool ok = false;
    authtoken::TokenRecordView record; // when ok; borrows the hiredis reply
    const char *error = nullptr;       // when !ok: why, for the error log
};

using LookupCallback = void (*)(void *data, const LookupReply &reply) noexcept;

// The answer to GET: ok with the value (nullopt for a missing key), or not
// ok (error reply, wrong type, connection lost).
using ValueCallback = void (*)(void *data, bool ok,
                               std::optional<std::string_view> value) noexcept;

// The answer to start_command(): on success `error` is nullptr and
// `values` holds the reply's integers (the reply itself, or the elements of
// an array of integers), on failure `error` says why (an error reply, a
// reply of another shape, the connection lost).
using IntegersCallback = void (*)(void *data, const char *error,
                                  const long long *values,
                                  std::size_t count) noexcept;

// For a link that subscribes to a channel instead of looking things up.
struct SubscriptionHandler {
    void *data = nullptr;
    // Once SUBSCRIBE is confirmed: from now on no message is missed.
    void (*on_subscribed)(void *data) noexcept = nullptr;
    void (*on_message)(void *data, std::string_view payload) noexcept = nullptr;
    // The connection is gone: messages may be missed until on_subscribed.
    void (*on_lost)(void *data) noexcept = nullptr;
    // The answer to ping(): every message published before the PING
    // reached Redis has been passed to on_message.
    void (*on_pong)(void *data) noexcept = nullptr;
};

struct PendingLookup;

class RedisLink
{
  public:
    RedisLink(RedisAddress address, ngx_msec_t connect_timeout, ngx_log_t *log);
    // A subscriber link: SUBSCRIBE `channel` on every (re)connect.
    RedisLink(RedisAddress address, ngx_msec_t connect_timeout, ngx_log_t *log,
              std::string channel, const SubscriptionHandler &handler);
    ~RedisLink();
    RedisLink(const RedisLink &) = delete;
    RedisLink &operator=(const RedisLink &) = delete;

    // Starts the first connection; later ones follow by themselves.
    void start() noexcept;

    // Queues `command`, the record's HMGET already in RESP
    // (authtoken::keys::TokenRecordLookup). While legacy_keys() it first
    // queues `legacy`, the HMGET of the record's hex name
    // (LegacyTokenRecordLookup), in the same write: the first of the two
    // replies that finds a record answers, else the second. Hex first:
    // a migration renames hex -> base64url atomically and never back, so
    // a record missing under its hex name at the first read is under its
    // new name at the second (read after it); the other order could miss
    // a rename made between the two. Returns nullptr and sets *why when
    // the lookup cannot even be queued (no connection, too many in
    // flight): the caller answers at once instead of waiting.
    PendingLookup *start_lookup(std::string_view command,
                                std::string_view legacy,
                                LookupCallback callback, void *data,
                                const char **why) noexcept;

    // The schema this connection read is not version 3 (1, 2, the
    // migration mark, or not read yet): token records may still have
    // their hex names (redis/SCHEMA.md, Versioning). Re-read once a second
    // while true, so a finished migration stops the second HMGET.
    bool legacy_keys() const noexcept
    {
        return legacy_keys_;
    }

    // The asker is gone: its callback will not be called.
    static void abandon(PendingLookup *lookup) noexcept;

    // GET `key` on a lookup link; false when it cannot be queued. The
    // callback is called exactly once otherwise.
    bool start_get(std::string_view key, ValueCallback callback,
                   void *data) noexcept;

    // Queues a command (argv of `argc` strings) on a lookup link, e.g. the
    // last-used flush's FCALL; false when it cannot be queued. The callback
    // is called exactly once otherwise.
    bool start_command(int argc, const char **argv, const std::size_t *lens,
                       IntegersCallback callback, void *data) noexcept;

    // On a subscribed link: PING <channel>:ping, which Redis answers in
    // subscribe mode (RESP2) as ["pong", <channel>:ping], after every
    // message published before it. False when not subscribed.
    bool ping() noexcept;

    // Drops the connection (and reconnects with backoff), e.g. when a
    // PING went unanswered: a half-open connection never closes by itself.
    void drop(const char *why) noexcept;

    // A lookup waited `timeout` without an answer. If nothing at all has
    // come back on this connection for that long, the connection is
    // treated as dead and replaced (a stopped or blackholed server never
    // closes it for us).
    void report_timeout(ngx_msec_t timeout) noexcept;

    const std::string &name() const noexcept
    {
        return address_.name;
    }

  private:
    enum class State { idle, connecting, connected };

    // hiredis's and nginx's C callbacks (see the .cpp): each is noexcept,
    // allocates nothing, and passes on to the member of the same name.
    static void on_connect_cb(const redisAsyncContext *ac, int status) noexcept;
    static void on_disconnect_cb(const redisAsyncContext *ac,
                                 int status) noexcept;
    static void on_lookup_reply_cb(redisAsyncContext *ac, void *reply,
                                   void *privdata) noexcept;
    static void on_value_reply_cb(redisAsyncContext *ac, void *reply,
                                  void *privdata) noexcept;
    static void on_schema_reply_cb(redisAsyncContext *ac, void *reply,
                                   void *privdata) noexcept;
    static void on_legacy_reply_cb(redisAsyncContext *ac, void *reply,
                                   void *privdata) noexcept;
    static void on_schema_recheck_cb(redisAsyncContext *ac, void *reply,
                                     void *privdata) noexcept;
    static void on_subscription_reply_cb(redisAsyncContext *ac, void *reply,
                                         void *privdata) noexcept;
    static void on_auth_reply_cb(redisAsyncContext *ac, void *reply,
                                 void *privdata) noexcept;
    static void on_select_reply_cb(redisAsyncContext *ac, void *reply,
                                   void *privdata) noexcept;
    static void on_cleanup_cb(void *data) noexcept;
    static void connect_timer_handler(ngx_event_t *ev) noexcept;
    static void reconnect_timer_handler(ngx_event_t *ev) noexcept;

    void on_connected(int status) noexcept;
    void on_disconnected(int status, const char *error) noexcept;
    void on_reply(PendingLookup *lookup, void *reply) noexcept;
    void on_legacy_reply(PendingLookup *lookup, void *reply) noexcept;
    void deliver(LookupCallback callback, void *data, void *reply) noexcept;
    void note_schema(const void *reply) noexcept;
    void on_value_reply(PendingLookup *lookup, void *reply) noexcept;
    void on_integers_reply(IntegersCallback callback, void *data,
                           const void *reply) noexcept;
    void on_schema_reply(void *reply) noexcept;
    void on_subscription_reply(void *reply) noexcept;
    void on_setup_reply(void *reply, const char *what) noexcept;
    void on_cleanup() noexcept;
    void connect_timed_out() noexcept;
    void reconnect_due() noexcept;

    void connect() noexcept;
    void schedule_reconnect() noexcept;
    void setup_succeeded() noexcept;
    void set_failure(const char *prefix, const char *text) noexcept;
    void reset(const char *why) noexcept;
    PendingLookup *acquire_slot() noexcept;
    void release_slot(PendingLookup *lookup) noexcept;

    RedisAddress address_;
    ngx_msec_t connect_timeout_;
    ngx_log_t *log_;
    std::string channel_;      // empty for a lookup link
    std::string ping_pattern_; // channel_ + ":ping", see connect()
    SubscriptionHandler subscription_;
    bool subscribed_ = false;
    // Set up once already: the next setup is a reconnect (for the metrics).
    bool was_set_up_ = false;

    redisAsyncContext *ac_ = nullptr;
    // hiredis's socket in nginx's event loop (the adapter's state).
    RedisEvents events_;
    State state_ = State::idle;
    bool destroying_ = false;

    ngx_event_t connect_timer_{};
    ngx_event_t reconnect_timer_{};
    // Grows with every attempt that did not get as far as a working setup
    // (AUTH, SELECT and the first reply, or the SUBSCRIBE confirmation):
    // a TCP connect alone proves nothing (wrong password, maxclients).
    ngx_msec_t backoff_ = 0;

    // Failed attempts since the last working setup. Only one attempt per
    // kFailureLogInterval logs its lines; `quiet_` marks the others, and
    // `unlogged_` counts them for the next line that is logged.
    ngx_uint_t failed_attempts_ = 0;
    ngx_uint_t unlogged_ = 0;
    ngx_msec_t last_logged_attempt_ = 0;
    bool quiet_ = false;

    // Why the connection went away, for the lookups failed by it. A fixed
    // buffer: the callbacks that fill it are noexcept and must not allocate.
    const char *failure_ = nullptr;
    char failure_text_[160] = {};

    std::size_t in_flight_ = 0;
    ngx_msec_t last_progress_ = 0;

    // See legacy_keys(). True from each connect until the schema is read.
    bool legacy_keys_ = true;
    ngx_msec_t schema_read_at_ = 0;

    // Slots live in a deque so their addresses stay valid while hiredis
    // holds them as callback data; free ones are reused.
    std::deque<PendingLookup> slots_;
    std::vector<PendingLookup *> free_slots_;
};

struct PendingLookup {
    RedisLink *link = nullptr;
    LookupCallback callback = nullptr;            // nullptr once abandoned
    ValueCallback value_callback = nullptr;       // for start_get() instead
    IntegersCallback integers_callback = nullptr; // for start_command()
    void *data = nullptr;
};

} // namespace ngx_auth_token
