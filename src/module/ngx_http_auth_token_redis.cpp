#include "module/ngx_http_auth_token_redis.h"
#include "module/ngx_http_auth_token_metrics.h"

#include "core/redis_keys.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cstdio>
#include <cstring>

namespace ngx_auth_token
{
namespace
{

constexpr ngx_msec_t kFirstBackoff = 50;
// Lookups fail fast while disconnected, so the cap bounds how long after
// Redis comes back requests keep failing: well under a second.
constexpr ngx_msec_t kMaxBackoff = 500;
// Beyond this many lookups waiting on one connection, new ones fail at once
// instead of piling up behind a stalled server.
constexpr std::size_t kMaxInFlight = 65536;
// While setup keeps failing, one attempt's lines per this many ms.
constexpr ngx_msec_t kFailureLogInterval = 10000;
// While the schema is not version 3, how often a lookup link reads it
// again (RedisLink::legacy_keys()).
constexpr ngx_msec_t kSchemaRecheck = 1000;

RedisLink *link_of(void *privdata) noexcept
{
    return static_cast<RedisLink *>(privdata);
}

void init_event(ngx_event_t &ev, ngx_event_handler_pt handler, void *data,
                ngx_log_t *log, bool cancelable)
{
    ev.handler = handler;
    ev.data = data;
    ev.log = log;
    ev.cancelable = cancelable ? 1 : 0;
}

std::string_view as_view(const redisReply *r) noexcept
{
    return {r->str, static_cast<std::size_t>(r->len)};
}

} // namespace

// --- the C callbacks --------------------------------------------------------
//
// hiredis calls these with the context's data (the link) or the command's
// privdata (its PendingLookup slot), nginx with the timer's data (the
// link). None allocates or throws: they only pass on to the members.

void RedisLink::on_connect_cb(const redisAsyncContext *ac, int status) noexcept
{
    link_of(ac->data)->on_connected(status);
}

void RedisLink::on_disconnect_cb(const redisAsyncContext *ac,
                                 int status) noexcept
{
    link_of(ac->data)->on_disconnected(status, ac->err ? ac->errstr : nullptr);
}

void RedisLink::on_lookup_reply_cb(redisAsyncContext *, void *reply,
                                   void *privdata) noexcept
{
    auto *lookup = static_cast<PendingLookup *>(privdata);
    lookup->link->on_reply(lookup, reply);
}

void RedisLink::on_value_reply_cb(redisAsyncContext *, void *reply,
                                  void *privdata) noexcept
{
    auto *lookup = static_cast<PendingLookup *>(privdata);
    lookup->link->on_value_reply(lookup, reply);
}

void RedisLink::on_legacy_reply_cb(redisAsyncContext *, void *reply,
                                   void *privdata) noexcept
{
    auto *lookup = static_cast<PendingLookup *>(privdata);
    lookup->link->on_legacy_reply(lookup, reply);
}

void RedisLink::on_schema_recheck_cb(redisAsyncContext *ac, void *reply,
                                     void *) noexcept
{
    link_of(ac->data)->note_schema(reply);
}

void RedisLink::on_schema_reply_cb(redisAsyncContext *ac, void *reply,
                                   void *) noexcept
{
    link_of(ac->data)->on_schema_reply(reply);
}

void RedisLink::on_subscription_reply_cb(redisAsyncContext *ac, void *reply,
                                         void *) noexcept
{
    link_of(ac->data)->on_subscription_reply(reply);
}

void RedisLink::on_auth_reply_cb(redisAsyncContext *ac, void *reply,
                                 void *) noexcept
{
    link_of(ac->data)->on_setup_reply(reply, "AUTH");
}

void RedisLink::on_select_reply_cb(redisAsyncContext *ac, void *reply,
                                   void *) noexcept
{
    link_of(ac->data)->on_setup_reply(reply, "SELECT");
}

void RedisLink::on_cleanup_cb(void *data) noexcept
{
    link_of(data)->on_cleanup();
}

void RedisLink::connect_timer_handler(ngx_event_t *ev) noexcept
{
    link_of(ev->data)->connect_timed_out();
}

void RedisLink::reconnect_timer_handler(ngx_event_t *ev) noexcept
{
    link_of(ev->data)->reconnect_due();
}

RedisLink::RedisLink(RedisAddress address, ngx_msec_t connect_timeout,
                     ngx_log_t *log)
    : address_(std::move(address)), connect_timeout_(connect_timeout),
      log_(log), events_(log, address_.name.c_str(), on_cleanup_cb, this)
{
    // Neither timer may keep a gracefully exiting worker alive.
    init_event(connect_timer_, connect_timer_handler, this, log, true);
    init_event(reconnect_timer_, reconnect_timer_handler, this, log, true);
}

RedisLink::RedisLink(RedisAddress address, ngx_msec_t connect_timeout,
                     ngx_log_t *log, std::string channel,
                     const SubscriptionHandler &handler)
    : RedisLink(std::move(address), connect_timeout, log)
{
    channel_ = std::move(channel);
    ping_pattern_ = channel_ + ":ping";
    subscription_ = handler;
}

RedisLink::~RedisLink()
{
    destroying_ = true;
    if (reconnect_timer_.timer_set) {
        ngx_del_timer(&reconnect_timer_);
    }
    if (ac_ != nullptr) {
        failure_ = "worker is exiting";
        // Runs every pending callback with a NULL reply, then cleanup().
        redisAsyncFree(ac_);
    }
}

void RedisLink::start() noexcept
{
    connect();
}

void RedisLink::set_failure(const char *prefix, const char *text) noexcept
{
    std::snprintf(failure_text_, sizeof(failure_text_), "%s%s", prefix,
                  text != nullptr ? text : "");
    failure_ = failure_text_;
}

void RedisLink::connect() noexcept
{
    if (failed_attempts_ == 0 ||
        ngx_current_msec - last_logged_attempt_ >= kFailureLogInterval) {
        if (unlogged_ > 0) {
            ngx_log_error(NGX_LOG_ERR, log_, 0,
                          "auth token redis %s: %ui more failed attempts to "
                          "set up the connection were not logged",
                          address_.name.c_str(), unlogged_);
        }
        quiet_ = false;
        unlogged_ = 0;
        last_logged_attempt_ = ngx_current_msec;
    } else {
        quiet_ = true;
        unlogged_++;
    }

    redisAsyncContext *ac =
        address_.unix_path.empty()
            ? redisAsyncConnect(address_.host.c_str(), address_.port)
            : redisAsyncConnectUnix(address_.unix_path.c_str());
    if (ac == nullptr) {
        ngx_log_error(NGX_LOG_CRIT, log_, 0,
                      "auth token redis %s: cannot allocate a connection",
                      address_.name.c_str());
        failure_ = "out of memory";
        schedule_reconnect();
        return;
    }
    if (ac->err) {
        set_failure("", ac->errstr);
        if (!quiet_) {
            ngx_log_error(NGX_LOG_ERR, log_, 0,
                          "auth token redis %s: connect failed: %s",
                          address_.name.c_str(), failure_);
        }
        redisAsyncFree(ac);
        schedule_reconnect();
        return;
    }

    if (ngx_http_auth_token_redis_attach(ac, &events_) != NGX_OK) {
        failure_ = "no free worker connections";
        redisAsyncFree(ac);
        schedule_reconnect();
        return;
    }

    ac_ = ac;
    state_ = State::connecting;
    failure_ = nullptr;
    in_flight_ = 0;
    ac->data = this;

    redisAsyncSetConnectCallback(ac, on_connect_cb);
    redisAsyncSetDisconnectCallback(ac, on_disconnect_cb);

    // Queued now, written as soon as the socket connects, and answered
    // before any lookup behind them: the connection is usable at once.
    if (!address_.user.empty()) {
        const char *argv[] = {"AUTH", address_.user.c_str(),
                              address_.password.c_str()};
        const size_t lens[] = {4, address_.user.size(),
                               address_.password.size()};
        redisAsyncCommandArgv(ac, on_auth_reply_cb, nullptr, 3, argv, lens);
    } else if (!address_.password.empty()) {
        const char *argv[] = {"AUTH", address_.password.c_str()};
        const size_t lens[] = {4, address_.password.size()};
        redisAsyncCommandArgv(ac, on_auth_reply_cb, nullptr, 2, argv, lens);
    }
    if (address_.db != 0) {
        char db[16];
        int len = std::snprintf(db, sizeof(db), "%d", address_.db);
        const char *argv[] = {"SELECT", db};
        const size_t lens[] = {6, static_cast<size_t>(len)};
        redisAsyncCommandArgv(ac, on_select_reply_cb, nullptr, 2, argv, lens);
    }
    if (channel_.empty()) {
        legacy_keys_ = true;
        schema_read_at_ = ngx_current_msec;
        const char *argv[] = {"GET", authtoken::keys::kSchema.data()};
        const size_t lens[] = {3, authtoken::keys::kSchema.size()};
        redisAsyncCommandArgv(ac, on_schema_reply_cb, nullptr, 2, argv, lens);
    } else {
        // hiredis keeps this callback for every message on the channel.
        const char *argv[] = {"SUBSCRIBE", channel_.c_str()};
        const size_t lens[] = {9, channel_.size()};
        redisAsyncCommandArgv(ac, on_subscription_reply_cb, nullptr, 2, argv,
                              lens);
        // hiredis 0.14 dispatches a subscribe-mode reply by its first
        // element: one that starts with 'p' ("pong" too) goes to the
        // callback of the *pattern* named by its second element. PING's
        // argument is this pattern's name, so the pong comes back to
        // on_subscription_reply(). Nothing is published to that name.
        const char *pargv[] = {"PSUBSCRIBE", ping_pattern_.c_str()};
        const size_t plens[] = {10, ping_pattern_.size()};
        redisAsyncCommandArgv(ac, on_subscription_reply_cb, nullptr, 2, pargv,
                              plens);
    }

    ngx_add_timer(&connect_timer_, connect_timeout_);
}

void RedisLink::schedule_reconnect() noexcept
{
    if (destroying_ || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }
    failed_attempts_++;
    backoff_ = backoff_ == 0 ? kFirstBackoff
                             : std::min<ngx_msec_t>(backoff_ * 2, kMaxBackoff);
    if (!reconnect_timer_.timer_set) {
        ngx_add_timer(&reconnect_timer_, backoff_);
    }
}

void RedisLink::reconnect_due() noexcept
{
    if (ac_ == nullptr) {
        connect();
    }
}

void RedisLink::connect_timed_out() noexcept
{
    if (state_ == State::connecting && ac_ != nullptr) {
        if (!quiet_) {
            ngx_log_error(NGX_LOG_ERR, log_, 0,
                          "auth token redis %s: connect timed out after %M ms",
                          address_.name.c_str(), connect_timeout_);
        }
        reset("connect timed out");
    }
}

void RedisLink::on_connected(int status) noexcept
{
    if (connect_timer_.timer_set) {
        ngx_del_timer(&connect_timer_);
    }
    if (status != REDIS_OK) {
        // hiredis frees the context right after this returns.
        set_failure("", ac_->errstr);
        if (!quiet_) {
            ngx_log_error(NGX_LOG_ERR, log_, 0,
                          "auth token redis %s: connect failed: %s",
                          address_.name.c_str(), failure_);
        }
        return;
    }
    // Not yet a reason to reset the backoff: see setup_succeeded().
    state_ = State::connected;
    if (!quiet_) {
        ngx_log_error(NGX_LOG_INFO, log_, 0, "auth token redis %s: connected",
                      address_.name.c_str());
    }
}

// AUTH and SELECT were accepted and the first command answered (or the
// subscription confirmed): only now is the server known to work with us.
void RedisLink::setup_succeeded() noexcept
{
    if (failed_attempts_ > 1) {
        ngx_log_error(NGX_LOG_NOTICE, log_, 0,
                      "auth token redis %s: set up after %ui failed attempts",
                      address_.name.c_str(), failed_attempts_);
    }
    if (was_set_up_) {
        metrics_add(Metric::reconnects);
    }
    was_set_up_ = true;
    backoff_ = 0;
    failed_attempts_ = 0;
    unlogged_ = 0;
    quiet_ = false;
}

// Runs after cleanup(): the context is already detached from the link.
void RedisLink::on_disconnected(int status, const char *error) noexcept
{
    if (failure_ == nullptr) {
        set_failure("", error != nullptr ? error : "connection closed");
    }
    if (status != REDIS_OK && !destroying_ && !quiet_) {
        ngx_log_error(NGX_LOG_ERR, log_, 0,
                      "auth token redis %s: connection lost: %s",
                      address_.name.c_str(), failure_);
    }
}

void RedisLink::on_setup_reply(void *reply, const char *what) noexcept
{
    auto *r = static_cast<redisReply *>(reply);
    if (r != nullptr && r->type == REDIS_REPLY_ERROR) {
        // The lookups queued behind this command get error replies too
        // (NOAUTH, wrong db): they fail closed with 503 and log it. Then
        // the connection is dropped and set up again with backoff, so that
        // fixing the password in Redis needs no nginx reload.
        if (!quiet_) {
            ngx_log_error(NGX_LOG_ERR, log_, 0,
                          "auth token redis %s: %s failed: %s",
                          address_.name.c_str(), what, r->str);
        }
        if (failure_ == nullptr) { // the first failure is the cause
            set_failure(what, " failed");
            redisAsyncDisconnect(ac_);
        }
    }
}

void RedisLink::on_schema_reply(void *reply) noexcept
{
    auto *r = static_cast<redisReply *>(reply);
    if (r == nullptr || r->type == REDIS_REPLY_ERROR) {
        // An error logged elsewhere (AUTH, SELECT), or e.g. "max number of
        // clients reached": the setup did not work.
        if (r != nullptr && failure_ == nullptr) {
            if (!quiet_) {
                ngx_log_error(NGX_LOG_ERR, log_, 0,
                              "auth token redis %s: setup failed: %s",
                              address_.name.c_str(), r->str);
            }
        }
        return;
    }
    setup_succeeded();
    note_schema(r);
    if (r->type != REDIS_REPLY_STRING) {
        return; // no schema key yet (empty database)
    }
    if (as_view(r) == authtoken::keys::kSchemaMigrating) {
        return;
    }
    // Every version from kTokenRecordSchemaSince on has the token records
    // this module reads (a database being migrated holds version 1's
    // user records under version 2's mark: its token records are right).
    std::string_view version = as_view(r);
    for (int v = authtoken::keys::kTokenRecordSchemaSince;
         v <= authtoken::keys::kSchemaVersion; v++) {
        char known[24];
        int len = std::snprintf(known, sizeof(known), "%d", v);
        if (version == std::string_view(known, static_cast<size_t>(len))) {
            return;
        }
    }
    ngx_log_error(NGX_LOG_ERR, log_, 0,
                  "auth token redis %s: schema version is \"%*s\", "
                  "this module reads versions %d to %d",
                  address_.name.c_str(), static_cast<size_t>(r->len), r->str,
                  authtoken::keys::kTokenRecordSchemaSince,
                  authtoken::keys::kSchemaVersion);
}

// Only version 3 (or no schema key: an empty database, whose records
// writers of version 3 make) names every token record by base64url.
void RedisLink::note_schema(const void *reply) noexcept
{
    const auto *r = static_cast<const redisReply *>(reply);
    if (r == nullptr || r->type == REDIS_REPLY_ERROR) {
        return; // keep asking both names
    }
    char current[24];
    int len = std::snprintf(current, sizeof(current), "%d",
                            authtoken::keys::kSchemaVersion);
    legacy_keys_ =
        r->type == REDIS_REPLY_STRING &&
        as_view(r) != std::string_view(current, static_cast<size_t>(len));
}

// Called for the SUBSCRIBE confirmation, for every message, and with NULL
// when the connection goes away.
void RedisLink::on_subscription_reply(void *reply) noexcept
{
    auto *r = static_cast<redisReply *>(reply);
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->elements > 3 || r->element[0]->type != REDIS_REPLY_STRING) {
        if (r != nullptr && r->type == REDIS_REPLY_ERROR && !quiet_) {
            ngx_log_error(NGX_LOG_ERR, log_, 0,
                          "auth token redis %s: SUBSCRIBE failed: %s",
                          address_.name.c_str(), r->str);
        }
        return;
    }
    std::string_view kind = as_view(r->element[0]);
    if (kind == "pong") {
        // ["pong", <channel>]: hiredis 0.14 routes it here by the channel
        // name given as PING's argument.
        if (subscription_.on_pong != nullptr) {
            subscription_.on_pong(subscription_.data);
        }
    } else if (kind == "subscribe") {
        subscribed_ = true;
        setup_succeeded();
        ngx_log_error(NGX_LOG_INFO, log_, 0,
                      "auth token redis %s: subscribed to \"%s\"",
                      address_.name.c_str(), channel_.c_str());
        if (subscription_.on_subscribed != nullptr) {
            subscription_.on_subscribed(subscription_.data);
        }
    } else if (kind == "message" && r->elements == 3 &&
               r->element[2]->type == REDIS_REPLY_STRING) {
        if (subscription_.on_message != nullptr) {
            subscription_.on_message(subscription_.data,
                                     as_view(r->element[2]));
        }
    }
}

PendingLookup *RedisLink::start_lookup(std::string_view command,
                                       std::string_view legacy,
                                       LookupCallback callback, void *data,
                                       const char **why) noexcept
{
    if (ac_ == nullptr) {
        *why = failure_ != nullptr ? failure_ : "not connected";
        return nullptr;
    }
    if (in_flight_ >= kMaxInFlight) {
        *why = "too many lookups in flight";
        return nullptr;
    }

    PendingLookup *lookup = acquire_slot();
    if (lookup == nullptr) {
        *why = "out of memory";
        return nullptr;
    }
    lookup->callback = callback;
    lookup->data = data;

    if (legacy_keys_ && !legacy.empty()) {
        if (state_ == State::connected &&
            ngx_current_msec - schema_read_at_ >= kSchemaRecheck) {
            schema_read_at_ = ngx_current_msec;
            const char *argv[] = {"GET", authtoken::keys::kSchema.data()};
            const size_t lens[] = {3, authtoken::keys::kSchema.size()};
            redisAsyncCommandArgv(ac_, on_schema_recheck_cb, nullptr, 2, argv,
                                  lens);
        }
        // hiredis calls both callbacks (with NULL on a disconnect) or
        // neither: the slot is released by the second, on_reply(). The
        // second call below cannot be refused once this one was taken:
        // hiredis refuses only a context that is disconnecting or being
        // freed, and nothing runs between the two calls.
        if (redisAsyncFormattedCommand(ac_, on_legacy_reply_cb, lookup,
                                       legacy.data(),
                                       legacy.size()) != REDIS_OK) {
            release_slot(lookup);
            *why = "connection is closing";
            return nullptr;
        }
    }
    if (redisAsyncFormattedCommand(ac_, on_lookup_reply_cb, lookup,
                                   command.data(),
                                   command.size()) != REDIS_OK) {
        release_slot(lookup);
        *why = "connection is closing";
        return nullptr;
    }

    if (in_flight_++ == 0) {
        last_progress_ = ngx_current_msec;
    }
    return lookup;
}

bool RedisLink::start_get(std::string_view key, ValueCallback callback,
                          void *data) noexcept
{
    if (ac_ == nullptr || in_flight_ >= kMaxInFlight) {
        return false;
    }
    PendingLookup *lookup = acquire_slot();
    if (lookup == nullptr) {
        return false;
    }
    lookup->value_callback = callback;
    lookup->data = data;
    const char *argv[] = {"GET", key.data()};
    const size_t lens[] = {3, key.size()};
    if (redisAsyncCommandArgv(ac_, on_value_reply_cb, lookup, 2, argv, lens) !=
        REDIS_OK) {
        release_slot(lookup);
        return false;
    }
    if (in_flight_++ == 0) {
        last_progress_ = ngx_current_msec;
    }
    return true;
}

bool RedisLink::start_command(int argc, const char **argv,
                              const std::size_t *lens,
                              IntegersCallback callback, void *data) noexcept
{
    if (ac_ == nullptr || in_flight_ >= kMaxInFlight) {
        return false;
    }
    PendingLookup *lookup = acquire_slot();
    if (lookup == nullptr) {
        return false;
    }
    lookup->integers_callback = callback;
    lookup->data = data;
    if (redisAsyncCommandArgv(ac_, on_value_reply_cb, lookup, argc, argv,
                              lens) != REDIS_OK) {
        release_slot(lookup);
        return false;
    }
    if (in_flight_++ == 0) {
        last_progress_ = ngx_current_msec;
    }
    return true;
}

void RedisLink::on_integers_reply(IntegersCallback callback, void *data,
                                  const void *reply) noexcept
{
    const auto *r = static_cast<const redisReply *>(reply);
    constexpr std::size_t kMaxValues = 8;
    long long values[kMaxValues];
    std::size_t count = 0;
    const char *error = nullptr;
    if (r == nullptr) {
        error = failure_ != nullptr            ? failure_
                : (ac_ != nullptr && ac_->err) ? ac_->errstr
                                               : "connection closed";
    } else if (r->type == REDIS_REPLY_ERROR) {
        error = r->str;
    } else if (r->type == REDIS_REPLY_INTEGER) {
        values[count++] = r->integer;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements <= kMaxValues) {
        for (std::size_t i = 0; i < r->elements && error == nullptr; i++) {
            if (r->element[i]->type != REDIS_REPLY_INTEGER) {
                error = "unexpected reply (not integers)";
            } else {
                values[count++] = r->element[i]->integer;
            }
        }
    } else {
        error = "unexpected reply (not integers)";
    }
    callback(data, error, error == nullptr ? values : nullptr,
             error == nullptr ? count : 0);
}

void RedisLink::on_value_reply(PendingLookup *lookup, void *reply) noexcept
{
    in_flight_--;
    last_progress_ = ngx_current_msec;
    ValueCallback callback = lookup->value_callback;
    IntegersCallback integers = lookup->integers_callback;
    void *data = lookup->data;
    release_slot(lookup);
    if (integers != nullptr) {
        on_integers_reply(integers, data, reply);
        return;
    }
    auto *r = static_cast<redisReply *>(reply);
    if (r != nullptr && r->type == REDIS_REPLY_STRING) {
        callback(data, true, as_view(r));
    } else if (r != nullptr && r->type == REDIS_REPLY_NIL) {
        callback(data, true, std::nullopt);
    } else {
        callback(data, false, std::nullopt);
    }
}

bool RedisLink::ping() noexcept
{
    if (ac_ == nullptr || !subscribed_) {
        return false;
    }
    // Appended without a callback: hiredis 0.14 would queue one among the
    // "invalid" subscribe-mode callbacks, where the pong (an array) never
    // finds it, and the queue would grow by one per PING. The pong is
    // routed by its second element to the ping pattern's callback (see
    // connect()): on_subscription_reply().
    const char *argv[] = {"PING", ping_pattern_.c_str()}; // see connect()
    const size_t lens[] = {4, ping_pattern_.size()};
    if (redisAppendCommandArgv(&ac_->c, 2, argv, lens) != REDIS_OK) {
        return false;
    }
    ac_->ev.addWrite(ac_->ev.data); // what hiredis's _EL_ADD_WRITE does
    return true;
}

void RedisLink::drop(const char *why) noexcept
{
    if (ac_ != nullptr) {
        reset(why);
    }
}

void RedisLink::abandon(PendingLookup *lookup) noexcept
{
    lookup->callback = nullptr;
    lookup->data = nullptr;
}

void RedisLink::on_reply(PendingLookup *lookup, void *reply) noexcept
{
    in_flight_--;
    last_progress_ = ngx_current_msec;

    LookupCallback callback = lookup->callback;
    void *data = lookup->data;
    release_slot(lookup);
    if (callback == nullptr) {
        return; // the request went away, or on_legacy_reply() answered
    }
    deliver(callback, data, reply);
}

// The reply to the HMGET of the record's hex name (see start_lookup()): a
// record found there (or an error) answers the lookup now, and the reply
// to the second HMGET is then dropped; all nil waits for that one.
void RedisLink::on_legacy_reply(PendingLookup *lookup, void *reply) noexcept
{
    last_progress_ = ngx_current_msec;
    LookupCallback callback = lookup->callback;
    void *data = lookup->data;
    if (callback == nullptr) {
        return;
    }
    auto *r = static_cast<redisReply *>(reply);
    if (r != nullptr && r->type == REDIS_REPLY_ARRAY) {
        bool all_nil = true;
        for (std::size_t i = 0; i < r->elements; i++) {
            if (r->element[i]->type != REDIS_REPLY_NIL) {
                all_nil = false;
            }
        }
        if (all_nil) {
            return;
        }
    }
    lookup->callback = nullptr;
    lookup->data = nullptr;
    deliver(callback, data, reply);
}

void RedisLink::deliver(LookupCallback callback, void *data,
                        void *reply) noexcept
{
    LookupReply result;
    auto *r = static_cast<redisReply *>(reply);
    if (r == nullptr) {
        result.error = failure_ != nullptr            ? failure_
                       : (ac_ != nullptr && ac_->err) ? ac_->errstr
                                                      : "connection closed";
    } else if (r->type == REDIS_REPLY_ERROR) {
        result.error = r->str;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        result.error = "unexpected reply to HMGET";
    } else {
        std::optional<std::string_view> *fields[] = {
            &result.record.uid, &result.record.user, &result.record.active,
            &result.record.expires};
        for (std::size_t i = 0; i < 4; i++) {
            const redisReply *e = r->element[i];
            if (e->type == REDIS_REPLY_STRING) {
                *fields[i] = as_view(e);
            } else if (e->type != REDIS_REPLY_NIL) {
                result.error = "unexpected reply to HMGET";
            }
        }
        result.ok = result.error == nullptr;
    }
    callback(data, result);
}

void RedisLink::report_timeout(ngx_msec_t timeout) noexcept
{
    if (ac_ == nullptr || in_flight_ == 0 ||
        ngx_current_msec - last_progress_ < timeout) {
        return;
    }
    ngx_log_error(NGX_LOG_ERR, log_, 0,
                  "auth token redis %s: no reply for %M ms, reconnecting",
                  address_.name.c_str(), ngx_current_msec - last_progress_);
    reset("timed out");
}

// Drops the connection from outside hiredis's callbacks: every pending
// lookup is answered with `why`, then cleanup() schedules a reconnect.
void RedisLink::reset(const char *why) noexcept
{
    failure_ = why;
    redisAsyncFree(ac_);
}

PendingLookup *RedisLink::acquire_slot() noexcept
{
    try {
        if (free_slots_.empty()) {
            slots_.emplace_back();
            slots_.back().link = this;
            return &slots_.back();
        }
        PendingLookup *lookup = free_slots_.back();
        free_slots_.pop_back();
        return lookup;
    } catch (...) {
        // Called from request handlers and timers: nothing may escape.
        ngx_log_error(NGX_LOG_ALERT, log_, 0,
                      "auth token redis %s: no memory for a lookup slot",
                      address_.name.c_str());
        return nullptr;
    }
}

void RedisLink::release_slot(PendingLookup *lookup) noexcept
{
    lookup->callback = nullptr;
    lookup->value_callback = nullptr;
    lookup->integers_callback = nullptr;
    lookup->data = nullptr;
    try {
        free_slots_.push_back(lookup);
    } catch (...) {
        // Called from hiredis's reply callbacks: nothing may escape. The
        // slot is leaked until the worker exits; harmless.
        ngx_log_error(NGX_LOG_ALERT, log_, 0,
                      "auth token redis %s: no memory to reuse a lookup slot",
                      address_.name.c_str());
    }
}

// The adapter has let go of the context, which hiredis frees next (from
// redisAsyncFree() or from inside redisAsyncHandleRead/Write): every
// pending callback has run.
void RedisLink::on_cleanup() noexcept
{
    if (connect_timer_.timer_set) {
        ngx_del_timer(&connect_timer_);
    }

    ac_ = nullptr;
    state_ = State::idle;
    in_flight_ = 0;
    if (!channel_.empty()) {
        subscribed_ = false;
        if (subscription_.on_lost != nullptr) {
            subscription_.on_lost(subscription_.data);
        }
    }
    schedule_reconnect();
}

} // namespace ngx_auth_token
