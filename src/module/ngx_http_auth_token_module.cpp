// ngx_http_auth_token_module: Django REST Framework's TokenAuthentication in
// nginx's access phase.
//
//   auth_token_redis 127.0.0.1:6379;
//   location /api/ { auth_token on; proxy_pass http://app; }
//
// The access handler parses "Authorization: Token <key>" exactly as DRF does
// (src/core), hashes the key, and looks the digest up in Redis over the
// worker's one asynchronous connection (ngx_http_auth_token_redis.cpp). While
// the lookup is in flight the request is suspended (NGX_AGAIN) with a timer on
// its write event, the way limit_req delays a request; the reply, or the timer,
// resumes the phase engine and the handler turns the verdict into NGX_OK, 401
// or 503. Denials go through nginx's own error handling (satisfy any,
// auth_delay and error_page all apply); when nginx sends its built-in error
// page for our verdict, the filters below replace it with DRF's JSON body.
//
// The C boundary. Every function that nginx or hiredis calls (handlers,
// filters, directive and conf callbacks, event handlers and timers, pool
// cleanups, zone init, the RedisLink and adapter callbacks) is noexcept:
// an exception escaping one would terminate the worker. Each is either
// non-throwing by construction (nginx pools, the slab allocator, hiredis's
// malloc: failures are return values) or catches at the boundary, logs at
// "alert" and fails closed. The ones that use C++ allocation:
//   - ngx_http_auth_token_check_key(): the in-flight map and its lookup
//     (500, as for any allocation failure in an access handler);
//   - ngx_http_auth_token_metrics_handler(): the exposition text (500);
//   - ngx_http_auth_token_init_process(): the worker's state and links
//     (the worker does not start);
//   - RedisLink::acquire_slot()/release_slot(): a lookup slot (the lookup
//     is refused, 503; a slot not returned to the free list is leaked).
//   - send_touch(): the last-used flush's FCALL (its notes are counted
//     failed, as when the write itself fails).
// clang-tidy's bugprone-exception-escape checks the rest as far as it can
// see (the module_exception_escape test); it cannot see std::bad_alloc.

#include "module/ngx_includes.h"
#include "module/ngx_http_auth_token_cache.h"
#include "module/ngx_http_auth_token_metrics.h"
#include "module/ngx_http_auth_token_redis.h"

#include "core/authorization_header.h"
#include "core/drf_messages.h"
#include "core/redis_keys.h"
#include "core/token_digest.h"
#include "core/token_record.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

extern "C" {
extern ngx_module_t ngx_http_auth_token_module;
}

namespace
{

using authtoken::HeaderVerdict;
using authtoken::Sha256;
using authtoken::TokenVerdict;
using ngx_auth_token::CachedEntry;
using ngx_auth_token::CachePolicy;
using ngx_auth_token::LookupReply;
using ngx_auth_token::Metric;
using ngx_auth_token::PendingLookup;
using ngx_auth_token::RedisLink;

// --- configuration --------------------------------------------------------

// A Redis server as auth_token_redis or auth_token_redis_primary give it.
struct ngx_http_auth_token_redis_conf_t {
    ngx_str_t name; // as configured, for logs; empty when not configured
    ngx_str_t host; // numeric address or unix path
    ngx_int_t port; // 0 for unix sockets
    ngx_str_t user;
    ngx_str_t password;
    ngx_int_t db;
};

struct ngx_http_auth_token_main_conf_t {
    ngx_http_auth_token_redis_conf_t redis;
    // auth_token_redis_primary: where last-used notes are written; when
    // not set, the auth_token_redis server.
    ngx_http_auth_token_redis_conf_t primary;
    // auth_token_last_used is on in some location that checks tokens:
    // every worker flushes notes, every auth_token_last_used_interval.
    ngx_flag_t last_used_used;
    ngx_msec_t last_used_interval;
    ngx_msec_t connect_timeout;
    // Where "auth_token on" was first seen, for the config-time check that
    // a Redis address exists.
    ngx_str_t used_in_file;
    ngx_uint_t used_at_line;
    // Every auth_token_cache zone: revocations are applied to all of them.
    ngx_array_t *cache_zones; // of ngx_shm_zone_t *
    // The servers in which auth_token is on somewhere (or all of them when
    // it is on at http level), for the underscores_in_headers warning.
    ngx_array_t *servers; // of ngx_http_core_srv_conf_t *
    ngx_flag_t enabled_in_http;
    // The longest auth_token_timeout of any location: the shared connection
    // is only declared dead when no location would still be waiting.
    ngx_msec_t longest_timeout;
    // The counters' zone, when Redis or auth_token_metrics is configured.
    ngx_shm_zone_t *metrics_zone;
    ngx_flag_t metrics_used;
    // auth_token_max_lag is set (not off) in some location: every worker
    // reads the heartbeat once a second.
    ngx_flag_t max_lag_used;
};

// The configuration structs are plain C structs in the configuration's
// pool: ngx_pcalloc()ed, never constructed, freed with the pool without a
// destructor, and filled by nginx's ngx_conf_set_*_slot through offsetof.
static_assert(std::is_standard_layout_v<ngx_http_auth_token_main_conf_t>);
static_assert(std::is_trivial_v<ngx_http_auth_token_main_conf_t>);
static_assert(
    std::is_trivially_destructible_v<ngx_http_auth_token_main_conf_t>);

struct ngx_http_auth_token_loc_conf_t {
    ngx_flag_t enable;
    // auth_token_verify: this location answers 204/401/503 itself, for
    // auth_request (not inherited).
    ngx_flag_t verify;
    // Where "auth_token on" was set in this very location, for the
    // config-time warning about internal locations.
    ngx_str_t enable_file;
    ngx_uint_t enable_line;
    ngx_array_t *keywords; // of ngx_str_t; the first is the challenge
    ngx_msec_t timeout;
    // Derived at merge time: the keywords as string_views for the parser.
    std::string_view *keyword_views;
    ngx_uint_t keyword_count;
    // auth_token_cache; cache_zone is NULL for "off" (and unset when
    // cache_set is 0, so that it is inherited).
    ngx_shm_zone_t *cache_zone;
    ngx_flag_t cache_set;
    ngx_msec_t cache_valid;
    ngx_msec_t cache_invalid;
    ngx_msec_t cache_stale;
    // auth_token_max_lag: 0 for off.
    ngx_msec_t max_lag;
    // auth_token_last_used: note allowed uses in cache_zone's notes table.
    ngx_flag_t last_used;
};

// As the main conf; keyword_views points at an array in the same pool.
static_assert(std::is_standard_layout_v<ngx_http_auth_token_loc_conf_t>);
static_assert(std::is_trivial_v<ngx_http_auth_token_loc_conf_t>);
static_assert(std::is_trivially_destructible_v<ngx_http_auth_token_loc_conf_t>);
static_assert(std::is_trivially_destructible_v<std::string_view>);

// --- per request ----------------------------------------------------------

// One word per outcome, exposed as $auth_token_status.
enum class Outcome : unsigned char {
    none,      // not checked (yet)
    ok,        // allowed
    missing,   // no credentials for us: another scheme, empty, absent
    malformed, // our keyword, but a header DRF rejects
    invalid,   // unknown or expired key
    inactive,  // the user is not active
    error,     // Redis failed, timed out or answered nonsense
};

enum class LookupState : unsigned char { idle, waiting, done };

// $auth_token_cache_status
enum class CacheStatus : unsigned char { none, hit, miss, stale, bypass };

struct SharedLookup;

struct ngx_http_auth_token_ctx_t {
    ngx_http_request_t *request;
    ngx_http_auth_token_loc_conf_t *conf;
    LookupState state;
    Outcome outcome;
    CacheStatus cache_status;
    // The response we asked nginx for, and the DRF body that belongs to it.
    ngx_uint_t status;
    std::string_view detail_body;
    unsigned replace_body : 1;
    unsigned body_sent : 1;
    // Our WWW-Authenticate or Retry-After is in headers_out already: a
    // verdict given again after an internal redirect does not repeat it.
    unsigned header_added : 1;
    // The verdict is in the metrics: a verdict given again after an
    // internal redirect is not counted again.
    unsigned counted : 1;
    // auth_token_last_used: this request's use is noted (or dropped).
    unsigned noted : 1;
    // The lookup this request waits for, shared with the other requests of
    // this worker that carry the same key; `waiting` links them.
    SharedLookup *shared;
    ngx_queue_t waiting;
    Sha256 digest;
    std::uint64_t cache_revision;
    ngx_str_t user;
    ngx_str_t user_id;
    // How long this request waited for Redis (metrics_now_us), for the
    // debug log; 0 when it did not.
    std::uint64_t wait_started_us;
    std::uint64_t waited_us;
    // While waiting: `timeout` bounds the wait, `wakeup` is posted when the
    // reply is in. They are the request's own events, not its connection's
    // write event, so that nothing reaches a request that has moved on
    // meanwhile (an internal redirect, post_action after a client abort).
    ngx_event_t timeout;
    ngx_event_t wakeup;
};

// In the request pool's cleanup storage (ngx_pool_cleanup_add), built by
// placement new. nginx frees the pool without a destructor; the cleanup
// handler (ngx_http_auth_token_cleanup) detaches the request from its
// lookup and removes its events, nothing more, so the type must need no
// destructor. It survives internal redirects (nginx zeroes r->ctx, not the
// pool), as nginx-otel's and realip's contexts do.
static_assert(std::is_standard_layout_v<ngx_http_auth_token_ctx_t>);
static_assert(std::is_trivially_destructible_v<ngx_http_auth_token_ctx_t>);

// --- per worker -----------------------------------------------------------

// One Redis lookup and the requests waiting for it. Concurrent misses for
// the same key in one worker share it.
//
// Its answer is stored in the cache at most once, in the zone of the
// request that started it and under the revision that request read just
// before the HMGET was queued. A request that joins later brings nothing
// to the store: the revision it read may already count a revocation that
// this lookup's answer predates, and storing under it would make a revoked
// token a hit (or a just-created one "unknown") for valid=/invalid=.
//
// On the heap, owned by WorkerState::in_flight (as the WorkerState and its
// RedisLinks are), not in a pool: its destructor runs.
struct SharedLookup {
    Sha256 digest;
    PendingLookup *pending;
    std::uint64_t started_us; // metrics_now_us() when sent
    ngx_queue_t waiters;      // of ngx_http_auth_token_ctx_t::waiting
    // Where and under which revision to store; store_zone is nullptr when
    // the starter bypassed the cache, and once the answer is stored.
    ngx_shm_zone_t *store_zone;
    CachePolicy store_policy;
    std::uint64_t store_revision;
};

struct DigestHash {
    std::size_t operator()(const Sha256 &d) const noexcept
    {
        std::size_t h;
        std::memcpy(&h, d.data(), sizeof(h));
        return h;
    }
};

// Created in init_process, destroyed in exit_process; nullptr in the master
// and when no Redis is configured. The links come last: destroying them
// answers their pending lookups, which still use the members above.
struct WorkerState {
    authtoken::TokenDigester digester;
    std::string redis_name;
    std::unordered_map<Sha256, std::unique_ptr<SharedLookup>, DigestHash>
        in_flight;
    ngx_array_t *cache_zones = nullptr;
    // The cache is read and written only while this worker's subscription
    // to the revocation channel is up and its first sequence check (see
    // below) has passed.
    bool subscribed = false;
    bool stale_logged = false;
    // The longest auth_token_timeout configured: a silence that long means
    // the connection is dead; a shorter one only that a location is
    // impatient.
    ngx_msec_t stall_timeout = 0;
    // The subscription check, every kCheckInterval while the subscription
    // link is up: GET the revocation sequence on the lookup link, then PING
    // on the subscription; the pong proves the subscription alive and that
    // every message published before the GET has been applied, so a
    // sequence beyond what the zones applied means messages were missed.
    enum class Check : unsigned char {
        idle,
        reading,
        pinging
    } check = Check::idle;
    bool link_subscribed = false;
    ngx_msec_t check_started = 0;
    std::uint64_t check_seq = 0;
    std::uintptr_t check_id = 0; // tells a late GET answer from the current
    // The number of the last message on this subscription (0: none yet).
    std::uint64_t last_message_seq = 0;
    // auth_token_max_lag (see heartbeat_read()): the heartbeat's value as
    // last read (its first 64 bytes and its length), and the moment
    // (ngx_current_msec, monotonic) this worker saw it change, or started.
    // The lag is the time since then: no comparison with any wall clock.
    bool watch_heartbeat = false;
    bool heartbeat_reading = false;
    bool heartbeat_seen = false;    // a GET has answered
    bool heartbeat_present = false; // the key existed then
    std::size_t heartbeat_len = 0;
    std::array<char, 64> heartbeat{};
    ngx_msec_t heartbeat_changed = 0;
    bool lag_logged = false; // this episode's first refusal was logged
    ngx_event_t check_timer{};
    // auth_token_last_used: the flush timer (every
    // auth_token_last_used_interval), whether this flush's first failure
    // was logged, and the link the notes are written on: `writer` when
    // auth_token_redis_primary names another server, else `link`.
    ngx_msec_t flush_interval = 0;
    ngx_event_t flush_timer{};
    bool flush_failure_logged = false;
    std::unique_ptr<RedisLink> subscriber;
    std::unique_ptr<RedisLink> writer;
    std::unique_ptr<RedisLink> link;
};
// A plain pointer, not a smart one: a process that leaves through exit()
// without exit_process (the cache manager and loader do) must not run a
// destructor that closes links and reports lost subscriptions.
WorkerState *worker = nullptr;

ngx_http_output_header_filter_pt next_header_filter;
ngx_http_output_body_filter_pt next_body_filter;

// --- forward declarations -------------------------------------------------

ngx_int_t ngx_http_auth_token_handler(ngx_http_request_t *r) noexcept;
ngx_int_t ngx_http_auth_token_verify_handler(ngx_http_request_t *r) noexcept;
ngx_int_t
ngx_http_auth_token_check(ngx_http_request_t *r,
                          ngx_http_auth_token_loc_conf_t *alcf) noexcept;
ngx_int_t ngx_http_auth_token_verdict(ngx_http_request_t *r,
                                      ngx_http_auth_token_ctx_t *ctx) noexcept;
ngx_int_t ngx_http_auth_token_check_key(ngx_http_request_t *r,
                                        ngx_http_auth_token_ctx_t *ctx,
                                        std::string_view key) noexcept;
void ngx_http_auth_token_lookup_done(void *data,
                                     const LookupReply &reply) noexcept;
void ngx_http_auth_token_wake(ngx_http_request_t *r) noexcept;
void ngx_http_auth_token_timeout_handler(ngx_event_t *ev) noexcept;
void ngx_http_auth_token_wakeup_handler(ngx_event_t *ev) noexcept;
void ngx_http_auth_token_cleanup(void *data) noexcept;
ngx_int_t ngx_http_auth_token_header_filter(ngx_http_request_t *r) noexcept;
ngx_int_t ngx_http_auth_token_body_filter(ngx_http_request_t *r,
                                          ngx_chain_t *in) noexcept;
ngx_int_t ngx_http_auth_token_variable(ngx_http_request_t *r,
                                       ngx_http_variable_value_t *v,
                                       uintptr_t data) noexcept;

ngx_int_t ngx_http_auth_token_add_variables(ngx_conf_t *cf) noexcept;
ngx_int_t ngx_http_auth_token_init(ngx_conf_t *cf) noexcept;
void *ngx_http_auth_token_create_main_conf(ngx_conf_t *cf) noexcept;
char *ngx_http_auth_token_init_main_conf(ngx_conf_t *cf, void *conf) noexcept;
void *ngx_http_auth_token_create_loc_conf(ngx_conf_t *cf) noexcept;
char *ngx_http_auth_token_merge_loc_conf(ngx_conf_t *cf, void *parent,
                                         void *child) noexcept;
ngx_int_t ngx_http_auth_token_init_process(ngx_cycle_t *cycle) noexcept;
void ngx_http_auth_token_exit_process(ngx_cycle_t *cycle) noexcept;

char *ngx_http_auth_token(ngx_conf_t *cf, ngx_command_t *cmd,
                          void *conf) noexcept;
char *ngx_http_auth_token_redis(ngx_conf_t *cf, ngx_command_t *cmd,
                                void *conf) noexcept;
char *ngx_http_auth_token_redis_primary(ngx_conf_t *cf, ngx_command_t *cmd,
                                        void *conf) noexcept;
char *ngx_http_auth_token_keyword(ngx_conf_t *cf, ngx_command_t *cmd,
                                  void *conf) noexcept;
char *ngx_http_auth_token_cache(ngx_conf_t *cf, ngx_command_t *cmd,
                                void *conf) noexcept;
char *ngx_http_auth_token_verify(ngx_conf_t *cf, ngx_command_t *cmd,
                                 void *conf) noexcept;
char *ngx_http_auth_token_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
                                  void *conf) noexcept;
char *ngx_http_auth_token_max_lag(ngx_conf_t *cf, ngx_command_t *cmd,
                                  void *conf) noexcept;
ngx_int_t ngx_http_auth_token_metrics_handler(ngx_http_request_t *r) noexcept;
char *note_use(ngx_conf_t *cf) noexcept;
char *ngx_http_auth_token_positive_msec(ngx_conf_t *cf, void *post,
                                        void *data) noexcept;

// auth_token_timeout 0 would time every lookup out (and, as the longest
// timeout, drop the connection after each); connect_timeout 0 every connect.
ngx_conf_post_t ngx_http_auth_token_positive_msec_post = {
    ngx_http_auth_token_positive_msec};

// --- directives -----------------------------------------------------------

ngx_command_t ngx_http_auth_token_commands[] = {

    {ngx_string("auth_token"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_HTTP_LMT_CONF | NGX_CONF_FLAG,
     ngx_http_auth_token, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_auth_token_loc_conf_t, enable), nullptr},

    {ngx_string("auth_token_redis"), NGX_HTTP_MAIN_CONF | NGX_CONF_1MORE,
     ngx_http_auth_token_redis, NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},

    {ngx_string("auth_token_redis_primary"),
     NGX_HTTP_MAIN_CONF | NGX_CONF_1MORE, ngx_http_auth_token_redis_primary,
     NGX_HTTP_MAIN_CONF_OFFSET, 0, nullptr},

    {ngx_string("auth_token_last_used"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_FLAG,
     ngx_conf_set_flag_slot, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_auth_token_loc_conf_t, last_used), nullptr},

    {ngx_string("auth_token_last_used_interval"),
     NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, ngx_conf_set_msec_slot,
     NGX_HTTP_MAIN_CONF_OFFSET,
     offsetof(ngx_http_auth_token_main_conf_t, last_used_interval),
     &ngx_http_auth_token_positive_msec_post},

    {ngx_string("auth_token_connect_timeout"),
     NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE1, ngx_conf_set_msec_slot,
     NGX_HTTP_MAIN_CONF_OFFSET,
     offsetof(ngx_http_auth_token_main_conf_t, connect_timeout),
     &ngx_http_auth_token_positive_msec_post},

    {ngx_string("auth_token_keyword"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_1MORE,
     ngx_http_auth_token_keyword, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},

    {ngx_string("auth_token_timeout"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_conf_set_msec_slot, NGX_HTTP_LOC_CONF_OFFSET,
     offsetof(ngx_http_auth_token_loc_conf_t, timeout),
     &ngx_http_auth_token_positive_msec_post},

    {ngx_string("auth_token_cache"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_1MORE,
     ngx_http_auth_token_cache, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},

    {ngx_string("auth_token_max_lag"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF |
         NGX_CONF_TAKE1,
     ngx_http_auth_token_max_lag, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},

    {ngx_string("auth_token_verify"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_auth_token_verify, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},

    {ngx_string("auth_token_metrics"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS,
     ngx_http_auth_token_metrics, NGX_HTTP_LOC_CONF_OFFSET, 0, nullptr},

    ngx_null_command};

// --- variables ------------------------------------------------------------

enum VariableKind : uintptr_t {
    var_user,
    var_user_id,
    var_status,
    var_cache_status,
    var_user_escaped
};

ngx_http_variable_t ngx_http_auth_token_vars[] = {

    {ngx_string("auth_token_user"), nullptr, ngx_http_auth_token_variable,
     var_user, NGX_HTTP_VAR_NOCACHEABLE, 0},

    {ngx_string("auth_token_user_id"), nullptr, ngx_http_auth_token_variable,
     var_user_id, NGX_HTTP_VAR_NOCACHEABLE, 0},

    {ngx_string("auth_token_user_escaped"), nullptr,
     ngx_http_auth_token_variable, var_user_escaped, NGX_HTTP_VAR_NOCACHEABLE,
     0},

    {ngx_string("auth_token_status"), nullptr, ngx_http_auth_token_variable,
     var_status, NGX_HTTP_VAR_NOCACHEABLE, 0},

    {ngx_string("auth_token_cache_status"), nullptr,
     ngx_http_auth_token_variable, var_cache_status, NGX_HTTP_VAR_NOCACHEABLE,
     0},

    ngx_http_null_variable};

// --- module ---------------------------------------------------------------

ngx_http_module_t ngx_http_auth_token_module_ctx = {
    ngx_http_auth_token_add_variables,    // preconfiguration
    ngx_http_auth_token_init,             // postconfiguration
    ngx_http_auth_token_create_main_conf, // create main configuration
    ngx_http_auth_token_init_main_conf,   // init main configuration
    nullptr,                              // create server configuration
    nullptr,                              // merge server configuration
    ngx_http_auth_token_create_loc_conf,  // create location configuration
    ngx_http_auth_token_merge_loc_conf    // merge location configuration
};

} // namespace

ngx_module_t ngx_http_auth_token_module = {
    NGX_MODULE_V1,
    &ngx_http_auth_token_module_ctx,  // module context
    ngx_http_auth_token_commands,     // module directives
    NGX_HTTP_MODULE,                  // module type
    nullptr,                          // init master
    nullptr,                          // init module
    ngx_http_auth_token_init_process, // init process
    nullptr,                          // init thread
    nullptr,                          // exit thread
    ngx_http_auth_token_exit_process, // exit process
    nullptr,                          // exit master
    NGX_MODULE_V1_PADDING};

namespace
{

// --- the access handler ---------------------------------------------------

ngx_str_t status_word(Outcome outcome)
{
    static ngx_str_t words[] = {ngx_null_string,       ngx_string("ok"),
                                ngx_string("missing"), ngx_string("malformed"),
                                ngx_string("invalid"), ngx_string("inactive"),
                                ngx_string("error")};
    return words[static_cast<std::size_t>(outcome)];
}

ngx_str_t cache_status_word(CacheStatus status)
{
    static ngx_str_t words[] = {ngx_null_string, ngx_string("HIT"),
                                ngx_string("MISS"), ngx_string("STALE"),
                                ngx_string("BYPASS")};
    return words[static_cast<std::size_t>(status)];
}

// nginx zeroes r->ctx on every internal redirect (error_page, try_files
// ... @name, named locations, post_action), but the verdict and the identity
// belong to the request, not to one location. So the context lives in the
// storage of the request's pool cleanup, where it is found again, as
// ngx_http_realip_module does (ngx_http_realip_get_module_ctx). Subrequests
// share their parent's pool: the context names its own request.
ngx_http_auth_token_ctx_t *get_ctx(ngx_http_request_t *r) noexcept
{
    auto *ctx = static_cast<ngx_http_auth_token_ctx_t *>(
        ngx_http_get_module_ctx(r, ngx_http_auth_token_module));
    if (ctx != nullptr || !(r->internal || r->filter_finalize)) {
        return ctx;
    }
    for (ngx_pool_cleanup_t *cln = r->pool->cleanup; cln != nullptr;
         cln = cln->next) {
        if (cln->handler == ngx_http_auth_token_cleanup) {
            auto *found = static_cast<ngx_http_auth_token_ctx_t *>(cln->data);
            if (found->request == r) {
                return found;
            }
        }
    }
    return nullptr;
}

// A user name as a log line may show it: escaped (authtoken::log_escape),
// and cut at kMax bytes of output. Names come from Redis, and a log line
// must never be split or forged by one.
struct LogEscaped {
    static constexpr std::size_t kMax = 256;
    explicit LogEscaped(std::string_view in) noexcept
        : len(authtoken::log_escape(in, data, kMax))
    {
    }
    explicit LogEscaped(const ngx_str_t &in) noexcept
        : LogEscaped(
              std::string_view(reinterpret_cast<const char *>(in.data), in.len))
    {
    }
    char data[kMax];
    std::size_t len;
};

// The access phase handler. It is the last of the phase's handlers (see
// ngx_http_auth_token_init): allow/deny, auth_basic and auth_request answer
// first, so a denied client learns nothing about its token and costs no
// Redis command, and under "satisfy any" an allowed client passes without
// Redis.
ngx_int_t ngx_http_auth_token_handler(ngx_http_request_t *r) noexcept
{
    auto *alcf = static_cast<ngx_http_auth_token_loc_conf_t *>(
        ngx_http_get_module_loc_conf(r, ngx_http_auth_token_module));
    if (!alcf->enable) {
        return NGX_DECLINED;
    }
    return ngx_http_auth_token_check(r, alcf);
}

// auth_token_verify: the same check in the precontent phase, which
// subrequests run (they skip the access phase), so that "auth_request
// /auth;" works. The location answers by itself: 204 when the token is
// good, otherwise the 401 or 503 of the access handler.
ngx_int_t ngx_http_auth_token_verify_handler(ngx_http_request_t *r) noexcept
{
    auto *alcf = static_cast<ngx_http_auth_token_loc_conf_t *>(
        ngx_http_get_module_loc_conf(r, ngx_http_auth_token_module));
    if (!alcf->verify) {
        return NGX_DECLINED;
    }
    ngx_int_t rc = ngx_http_auth_token_check(r, alcf);
    if (rc == NGX_OK) {
        // Finalized as a special response: header only, body discarded.
        return NGX_HTTP_NO_CONTENT;
    }
    return rc;
}

ngx_int_t
ngx_http_auth_token_check(ngx_http_request_t *r,
                          ngx_http_auth_token_loc_conf_t *alcf) noexcept
{
    auto *ctx = get_ctx(r);
    if (ctx != nullptr) {
        // Resumed, or back in a phase after an internal redirect: the
        // request keeps its one verdict.
        ngx_http_set_ctx(r, ctx, ngx_http_auth_token_module);
        if (ctx->state == LookupState::waiting) {
            // Redirected while waiting (post_action after a client
            // abort): wait here instead.
            r->write_event_handler = ngx_http_auth_token_wake;
            return NGX_AGAIN;
        }
        return ngx_http_auth_token_verdict(r, ctx);
    }

    ngx_pool_cleanup_t *cln =
        ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_auth_token_ctx_t));
    if (cln == nullptr) {
        return NGX_ERROR;
    }
    // Value-initialized: every field zero. Trivially destructible (asserted
    // at the type), so the pool may free it without a destructor call.
    ctx = new (cln->data) ngx_http_auth_token_ctx_t();
    cln->handler = ngx_http_auth_token_cleanup;
    ngx_http_set_ctx(r, ctx, ngx_http_auth_token_module);
    ctx->request = r;
    ctx->conf = alcf;
    ctx->timeout.handler = ngx_http_auth_token_timeout_handler;
    ctx->timeout.data = ctx;
    ctx->timeout.log = r->connection->log;
    ctx->wakeup.handler = ngx_http_auth_token_wakeup_handler;
    ctx->wakeup.data = ctx;
    ctx->wakeup.log = r->connection->log;

    std::string_view value;
    if (r->headers_in.authorization != nullptr) {
        const ngx_str_t &v = r->headers_in.authorization->value;
        value = {reinterpret_cast<const char *>(v.data), v.len};
    }

    authtoken::ParsedAuthorization parsed = authtoken::parse_authorization(
        value, alcf->keyword_views, alcf->keyword_count);

    switch (parsed.verdict) {
    case HeaderVerdict::not_provided:
        ctx->outcome = Outcome::missing;
        ctx->detail_body = authtoken::drf::kNotProvided.body;
        break;
    case HeaderVerdict::no_credentials:
        ctx->outcome = Outcome::malformed;
        ctx->detail_body = authtoken::drf::kNoCredentials.body;
        break;
    case HeaderVerdict::contains_spaces:
        ctx->outcome = Outcome::malformed;
        ctx->detail_body = authtoken::drf::kContainsSpaces.body;
        break;
    case HeaderVerdict::invalid_characters:
        ctx->outcome = Outcome::malformed;
        ctx->detail_body = authtoken::drf::kInvalidCharacters.body;
        break;
    case HeaderVerdict::key_present:
        return ngx_http_auth_token_check_key(r, ctx, parsed.key);
    }

    ctx->state = LookupState::done;
    return ngx_http_auth_token_verdict(r, ctx);
}

// Copies a user's name and id into the request's pool.
bool set_user(ngx_http_auth_token_ctx_t *ctx, std::string_view user,
              std::string_view uid) noexcept
{
    auto *p = static_cast<u_char *>(
        ngx_pnalloc(ctx->request->pool, user.size() + uid.size()));
    if (p == nullptr) {
        return false;
    }
    ngx_memcpy(p, user.data(), user.size());
    ngx_memcpy(p + user.size(), uid.data(), uid.size());
    ctx->user = {user.size(), p};
    ctx->user_id = {uid.size(), p + user.size()};
    return true;
}

// The one translation of the core's verdict, fresh from Redis or cached,
// into the request's outcome.
Outcome outcome_of(TokenVerdict verdict)
{
    switch (verdict) {
    case TokenVerdict::valid:
        return Outcome::ok;
    case TokenVerdict::inactive:
        return Outcome::inactive;
    case TokenVerdict::unknown:
    case TokenVerdict::expired:
        return Outcome::invalid;
    case TokenVerdict::malformed:
        break;
    }
    return Outcome::error;
}

// While Redis cannot answer, a known-good cached entry may answer instead
// (auth_token_cache ... stale=). Logged once per outage, not per request.
bool answer_stale(ngx_http_auth_token_ctx_t *ctx) noexcept
{
    ngx_http_auth_token_loc_conf_t *alcf = ctx->conf;
    CachedEntry entry;
    if (alcf->cache_zone == nullptr || alcf->cache_stale == 0 ||
        !ngx_auth_token::cache_find_stale(alcf->cache_zone, ctx->digest,
                                          ctx->request->pool, entry)) {
        return false;
    }
    if (!worker->stale_logged) {
        worker->stale_logged = true;
        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "auth token redis %s unavailable, answering from "
                      "stale cache entries",
                      worker->redis_name.c_str());
    }
    ctx->cache_status = CacheStatus::stale;
    ctx->user = entry.user;
    ctx->user_id = entry.uid;
    ctx->outcome = outcome_of(entry.verdict);
    return true;
}

// Redis could not answer: fail closed, unless stale entries may answer.
void fail_lookup(ngx_http_auth_token_ctx_t *ctx) noexcept
{
    if (!answer_stale(ctx)) {
        ctx->outcome = Outcome::error;
    }
}

// auth_token_max_lag: this worker has seen no change of the heartbeat for
// longer than the location allows, so what its Redis answers may predate
// revocations made on the primary since. Logged once per episode (per
// worker), at the first refusal; heartbeat_read() logs the end.
bool lag_exceeded(ngx_http_request_t *r,
                  ngx_http_auth_token_loc_conf_t *alcf) noexcept
{
    if (alcf->max_lag == 0) {
        return false;
    }
    ngx_msec_t lag = ngx_current_msec - worker->heartbeat_changed;
    if (lag <= alcf->max_lag) {
        return false;
    }
    if (!worker->lag_logged) {
        worker->lag_logged = true;
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth token redis %s: lag of %M ms exceeds "
                      "auth_token_max_lag %M ms: %s, lookups fail until it "
                      "changes",
                      worker->redis_name.c_str(), lag, alcf->max_lag,
                      !worker->heartbeat_seen
                          ? "GET of the heartbeat never succeeded (does the "
                            "Redis user's ACL allow it?)"
                      : worker->heartbeat_present
                          ? "the heartbeat has not changed for that long"
                          : "the heartbeat key is missing (no authtokend "
                            "writes to this Redis's primary?)");
    }
    return true;
}

// auth_token_last_used: this request's use, as the notes table keeps it:
// now, and the client address $remote_addr shows (after realip). False
// for an address family other than IPv4, IPv6 and unix.
bool use_of(ngx_http_request_t *r, ngx_auth_token::UseNote &use) noexcept
{
    ngx_memzero(&use, sizeof(use));
    use.at = static_cast<std::uint32_t>(ngx_time());
    const sockaddr *sa = r->connection->sockaddr;
    use.family = static_cast<u_char>(sa->sa_family);
    switch (sa->sa_family) {
    case AF_INET:
        ngx_memcpy(use.addr,
                   &reinterpret_cast<const sockaddr_in *>(sa)->sin_addr, 4);
        return true;
#if (NGX_HAVE_INET6)
    case AF_INET6:
        ngx_memcpy(use.addr,
                   &reinterpret_cast<const sockaddr_in6 *>(sa)->sin6_addr, 16);
        return true;
#endif
#if (NGX_HAVE_UNIX_DOMAIN)
    case AF_UNIX:
        return true;
#endif
    default:
        return false;
    }
}

// How long a cache hit's note stands for the uses after it (see
// cache_find_fresh()): a sixth of auth_token_last_used_interval, at least a
// second. last_used is exact to that much.
std::uint32_t note_window() noexcept
{
    return static_cast<std::uint32_t>(
        std::max<ngx_msec_t>(1, worker->flush_interval / 6000));
}

// Notes an allowed request that the cache did not answer (a lookup, a
// stale answer): once per request, dropped (and counted) when the zone's
// table has no room.
void note_token_use(ngx_http_request_t *r,
                    ngx_http_auth_token_ctx_t *ctx) noexcept
{
    ctx->noted = 1;
    ngx_auth_token::UseNote use;
    if (ctx->conf->cache_zone == nullptr || !use_of(r, use) ||
        !ngx_auth_token::cache_note_use(ctx->conf->cache_zone, ctx->digest,
                                        use)) {
        ngx_auth_token::metrics_add(Metric::last_used_dropped);
    }
}

// Answers from the cache when it can; otherwise joins or starts the
// worker's lookup for this key and suspends the request.
ngx_int_t ngx_http_auth_token_check_key(ngx_http_request_t *r,
                                        ngx_http_auth_token_ctx_t *ctx,
                                        std::string_view key) noexcept
{
    ngx_http_auth_token_loc_conf_t *alcf = ctx->conf;
    authtoken::Sha256Hex hex;
    if (worker == nullptr || worker->link == nullptr ||
        !worker->digester.digest(key, ctx->digest, hex)) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth token lookup failed: no redis in this worker");
        ngx_auth_token::metrics_add(Metric::error_connect);
        ctx->outcome = Outcome::error;
        ctx->state = LookupState::done;
        return ngx_http_auth_token_verdict(r, ctx);
    }

    // Before the cache: its entries are kept fresh by revocation messages
    // from the same Redis, which are just as late.
    if (lag_exceeded(r, alcf)) {
        ngx_auth_token::metrics_add(Metric::error_lag);
        fail_lookup(ctx);
        ctx->state = LookupState::done;
        return ngx_http_auth_token_verdict(r, ctx);
    }

    if (alcf->cache_zone != nullptr) {
        if (!worker->subscribed) {
            ctx->cache_status = CacheStatus::bypass;
        } else {
            CachedEntry entry;
            ngx_auth_token::UseNote use;
            bool noted = false;
            bool note = alcf->last_used && use_of(r, use);
            if (ngx_auth_token::cache_find_fresh(
                    alcf->cache_zone, ctx->digest, r->pool, entry,
                    ctx->cache_revision, note ? &use : nullptr, note_window(),
                    &noted)) {
                if (note && entry.verdict == TokenVerdict::valid) {
                    ctx->noted = 1;
                    if (!noted) {
                        ngx_auth_token::metrics_add(Metric::last_used_dropped);
                    }
                }
                ctx->cache_status = CacheStatus::hit;
                ctx->user = entry.user;
                ctx->user_id = entry.uid;
                ctx->outcome = outcome_of(entry.verdict);
                ctx->state = LookupState::done;
                return ngx_http_auth_token_verdict(r, ctx);
            }
            ctx->cache_status = CacheStatus::miss;
        }
    }

    SharedLookup *shared = nullptr;
    auto found = worker->in_flight.find(ctx->digest);
    if (found != worker->in_flight.end()) {
        shared = found->second.get();

    } else {
        std::unique_ptr<SharedLookup> fresh;
        try {
            fresh = std::make_unique<SharedLookup>();
            // Reserve the map node before the lookup is queued, so that
            // nothing can fail once Redis holds the callback data.
            auto placed = worker->in_flight.emplace(ctx->digest, nullptr);
            found = placed.first;
        } catch (...) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "auth token lookup failed: out of memory");
            return NGX_ERROR;
        }
        fresh->digest = ctx->digest;
        ngx_queue_init(&fresh->waiters);
        fresh->store_zone = nullptr;
        if (ctx->cache_status == CacheStatus::miss) {
            fresh->store_zone = alcf->cache_zone;
            fresh->store_policy = {alcf->cache_valid, alcf->cache_invalid,
                                   alcf->cache_stale};
            fresh->store_revision = ctx->cache_revision;
        }
        authtoken::keys::TokenRecordLookup command(hex);
        std::string_view legacy;
        std::optional<authtoken::keys::LegacyTokenRecordLookup> hex_command;
        if (worker->link->legacy_keys()) {
            legacy = hex_command.emplace(hex).resp();
        }
        const char *why = nullptr;
        fresh->started_us = ngx_auth_token::metrics_now_us();
        fresh->pending = worker->link->start_lookup(
            command.resp(), legacy, ngx_http_auth_token_lookup_done,
            fresh.get(), &why);
        if (fresh->pending == nullptr) {
            worker->in_flight.erase(found);
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "auth token lookup failed: redis %s: %s",
                          worker->redis_name.c_str(), why);
            ngx_auth_token::metrics_add(Metric::error_connect);
            fail_lookup(ctx);
            ctx->state = LookupState::done;
            return ngx_http_auth_token_verdict(r, ctx);
        }
        ngx_auth_token::metrics_add(Metric::redis_lookups);
        shared = fresh.get();
        found->second = std::move(fresh);
    }
    ngx_queue_insert_tail(&shared->waiters, &ctx->waiting);
    ctx->shared = shared;

    // Suspended like limit_req's delay, but on the request's own events:
    // a timer bounds the wait, and reading is watched so that a client that
    // leaves is noticed.
    ctx->state = LookupState::waiting;
    ctx->wait_started_us = ngx_auth_token::metrics_now_us();
    if (r == r->main && !r->post_action) {
        r->read_event_handler = ngx_http_test_reading;
    }
    r->write_event_handler = ngx_http_auth_token_wake;
    ngx_add_timer(&ctx->timeout, alcf->timeout);
    return NGX_AGAIN;
}

// Takes one request off its shared lookup; the last one to leave abandons
// the lookup itself.
void detach(ngx_http_auth_token_ctx_t *ctx) noexcept
{
    SharedLookup *shared = ctx->shared;
    if (shared == nullptr) {
        return;
    }
    ctx->shared = nullptr;
    ngx_queue_remove(&ctx->waiting);
    if (ngx_queue_empty(&shared->waiters)) {
        RedisLink::abandon(shared->pending);
        worker->in_flight.erase(shared->digest);
    }
}

// Applies one Redis answer to one waiting request, and to the cache if
// the lookup's answer is not stored yet.
void apply_reply(ngx_http_auth_token_ctx_t *ctx, SharedLookup *shared,
                 const LookupReply &reply,
                 authtoken::TokenJudgement judgement) noexcept
{
    ngx_http_request_t *r = ctx->request;

    if (!reply.ok) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth token lookup failed: redis %s: %s",
                      worker->redis_name.c_str(), reply.error);
        ngx_auth_token::metrics_add(Metric::error_reply);
        fail_lookup(ctx);
        return;
    }

    if (judgement.verdict == TokenVerdict::malformed) {
        // Fail closed. The name is shown escaped: a CR/LF in it is exactly
        // what made the record malformed.
        LogEscaped user(reply.record.user.value_or(std::string_view()));
        LogEscaped uid(reply.record.uid.value_or(std::string_view()));
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "auth token lookup failed: redis %s: "
                      "malformed token record (uid \"%*s\", user \"%*s\")",
                      worker->redis_name.c_str(), uid.len, uid.data, user.len,
                      user.data);
        ngx_auth_token::metrics_add(Metric::error_malformed);
        ctx->outcome = Outcome::error;
        return;
    }
    if (authtoken::names_user(judgement.verdict) &&
        !set_user(ctx, *reply.record.user, *reply.record.uid)) {
        ctx->outcome = Outcome::error;
        return;
    }
    ctx->outcome = outcome_of(judgement.verdict);

    worker->stale_logged = false;
    if (shared->store_zone != nullptr && worker->subscribed) {
        ngx_auth_token::cache_store(
            shared->store_zone, shared->digest, judgement, ctx->user,
            ctx->user_id, shared->store_policy, shared->store_revision);
    }
    shared->store_zone = nullptr;
}

// Resumes a request outside hiredis's read loop: the work is done by the
// request's wakeup event, posted here.
void resume(ngx_http_auth_token_ctx_t *ctx) noexcept
{
    ctx->state = LookupState::done;
    ctx->waited_us = ngx_auth_token::metrics_now_us() - ctx->wait_started_us;
    if (ctx->timeout.timer_set) {
        ngx_del_timer(&ctx->timeout);
    }
    ngx_post_event(&ctx->wakeup, &ngx_posted_events);
}

// Runs the request's phases again, if it still waits for us: a request that
// was redirected meanwhile (post_action after the client left) has a new
// write handler, and must not run its content phase a second time.
void continue_request(ngx_http_auth_token_ctx_t *ctx) noexcept
{
    ngx_http_request_t *r = ctx->request;
    if (r->write_event_handler != ngx_http_auth_token_wake) {
        return; // the verdict stays for the variables
    }
    ngx_connection_t *c = r->connection;
    ngx_http_set_log_request(c->log, r);
    r->write_event_handler(r);
    ngx_http_run_posted_requests(c);
}

void ngx_http_auth_token_wakeup_handler(ngx_event_t *ev) noexcept
{
    continue_request(static_cast<ngx_http_auth_token_ctx_t *>(ev->data));
}

// The lookup took longer than auth_token_timeout.
void ngx_http_auth_token_timeout_handler(ngx_event_t *ev) noexcept
{
    auto *ctx = static_cast<ngx_http_auth_token_ctx_t *>(ev->data);
    if (ctx->state != LookupState::waiting) {
        return;
    }
    detach(ctx);
    ctx->state = LookupState::done;
    ctx->waited_us = ngx_auth_token::metrics_now_us() - ctx->wait_started_us;
    ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                  "auth token lookup failed: redis %s: timed out after %M ms",
                  worker->redis_name.c_str(), ctx->conf->timeout);
    ngx_auth_token::metrics_add(Metric::error_timeout);
    worker->link->report_timeout(
        std::max(ctx->conf->timeout, worker->stall_timeout));
    fail_lookup(ctx);
    continue_request(ctx);
}

// The reply callback; `data` is the SharedLookup. Every request still
// waiting on it is alive: each one detaches before it can go away.
void ngx_http_auth_token_lookup_done(void *data,
                                     const LookupReply &reply) noexcept
{
    auto *shared = static_cast<SharedLookup *>(data);
    std::unique_ptr<SharedLookup> owner;
    auto found = worker->in_flight.find(shared->digest);
    if (found != worker->in_flight.end() && found->second.get() == shared) {
        owner = std::move(found->second);
        worker->in_flight.erase(found);
    }

    ngx_auth_token::metrics_observe_lookup(ngx_auth_token::metrics_now_us() -
                                           shared->started_us);
    authtoken::TokenJudgement judgement{TokenVerdict::malformed, 0};
    if (reply.ok) {
        judgement = authtoken::judge_token_record(reply.record, ngx_time());
    }
    while (!ngx_queue_empty(&shared->waiters)) {
        ngx_queue_t *q = ngx_queue_head(&shared->waiters);
        ngx_queue_remove(q);
        auto *ctx = ngx_queue_data(q, ngx_http_auth_token_ctx_t, waiting);
        ctx->shared = nullptr;
        apply_reply(ctx, shared, reply, judgement);
        resume(ctx);
    }
}

// The request's write event handler while it waits. The connection's write
// events (writable socket) are not ours; the wakeup event calls it once the
// state is done.
void ngx_http_auth_token_wake(ngx_http_request_t *r) noexcept
{
    auto *ctx = get_ctx(r);
    if (ctx != nullptr && ctx->state == LookupState::waiting) {
        return;
    }
    if (r == r->main && !r->post_action) {
        r->read_event_handler = ngx_http_block_reading;
    }
    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}

// Pool cleanup: the request is being freed (finalized, client gone, stream
// reset). A lookup still in flight must not call back into it, and its
// events must not fire.
void ngx_http_auth_token_cleanup(void *data) noexcept
{
    auto *ctx = static_cast<ngx_http_auth_token_ctx_t *>(data);
    if (ctx->shared != nullptr) {
        detach(ctx);
    }
    if (ctx->timeout.timer_set) {
        ngx_del_timer(&ctx->timeout);
    }
    if (ctx->wakeup.posted) {
        ngx_delete_posted_event(&ctx->wakeup);
    }
}

ngx_int_t add_www_authenticate(ngx_http_request_t *r,
                               ngx_http_auth_token_loc_conf_t *alcf) noexcept
{
    ngx_table_elt_t *h =
        static_cast<ngx_table_elt_t *>(ngx_list_push(&r->headers_out.headers));
    if (h == nullptr) {
        return NGX_ERROR;
    }
    // ngx_list_push memory is not zeroed: every field nginx reads is set.
    // Since 1.23 the core walks h->next (satisfy any, auth_request).
    h->hash = 1;
#if defined(nginx_version) && nginx_version >= 1023000
    h->next = nullptr;
#endif
    ngx_str_set(&h->key, "WWW-Authenticate");
    h->value = static_cast<ngx_str_t *>(alcf->keywords->elts)[0];
    r->headers_out.www_authenticate = h;
    return NGX_OK;
}

ngx_int_t add_retry_after(ngx_http_request_t *r) noexcept
{
    ngx_table_elt_t *h =
        static_cast<ngx_table_elt_t *>(ngx_list_push(&r->headers_out.headers));
    if (h == nullptr) {
        return NGX_ERROR;
    }
    h->hash = 1;
#if defined(nginx_version) && nginx_version >= 1023000
    h->next = nullptr;
#endif
    ngx_str_set(&h->key, "Retry-After");
    // A static string: nginx only reads header values.
    constexpr std::string_view retry_after =
        authtoken::drf::kUnavailableRetryAfter;
    h->value.len = retry_after.size();
    h->value.data =
        reinterpret_cast<u_char *>(const_cast<char *>(retry_after.data()));
    return NGX_OK;
}

// Turns the outcome into what the phase engine expects. A client's bad
// credentials are logged at info (as auth_basic does), never with the key.
ngx_int_t ngx_http_auth_token_verdict(ngx_http_request_t *r,
                                      ngx_http_auth_token_ctx_t *ctx) noexcept
{
    auto *alcf = static_cast<ngx_http_auth_token_loc_conf_t *>(
        ngx_http_get_module_loc_conf(r, ngx_http_auth_token_module));

    if (ctx->outcome == Outcome::none) {
        ctx->outcome = Outcome::error;
    }
    if (!ctx->counted) {
        ctx->counted = 1;
        ngx_auth_token::metrics_count_request(
            static_cast<unsigned>(ctx->outcome),
            static_cast<unsigned>(ctx->cache_status));
#if (NGX_DEBUG)
        if (r->connection->log->log_level & NGX_LOG_DEBUG_HTTP) {
            ngx_str_t status = status_word(ctx->outcome);
            ngx_str_t cache = cache_status_word(ctx->cache_status);
            if (cache.len == 0) {
                ngx_str_set(&cache, "-");
            }
            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "auth token verdict: %V, cache %V, lookup %uL us",
                           &status, &cache, ctx->waited_us);
        }
#endif
    }

    switch (ctx->outcome) {
    case Outcome::ok:
        ctx->detail_body = {};
        if (ctx->conf->last_used && !ctx->noted) {
            note_token_use(r, ctx);
        }
        return NGX_OK;

    case Outcome::missing:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "no token was provided for token authentication");
        break;
    case Outcome::malformed:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "invalid token header for token authentication");
        break;
    case Outcome::invalid:
        ctx->detail_body = authtoken::drf::kInvalidToken.body;
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "token was not found for token authentication");
        break;
    case Outcome::inactive: {
        ctx->detail_body = authtoken::drf::kInactive.body;
        LogEscaped user(ctx->user);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "user \"%*s\" of the token is inactive", user.len,
                      user.data);
        break;
    }

    case Outcome::none:
    case Outcome::error:
        // Fail closed: never a pass when the store cannot be asked.
        ctx->outcome = Outcome::error;
        ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        ctx->detail_body = authtoken::drf::kUnavailable.body;
        if (!ctx->header_added) {
            if (add_retry_after(r) != NGX_OK) {
                return NGX_ERROR;
            }
            ctx->header_added = 1;
        }
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    ctx->status = NGX_HTTP_UNAUTHORIZED;
    if (!ctx->header_added) {
        if (add_www_authenticate(r, alcf) != NGX_OK) {
            return NGX_ERROR;
        }
        ctx->header_added = 1;
    }
    return NGX_HTTP_UNAUTHORIZED;
}

// --- response filters -----------------------------------------------------
//
// When nginx itself sends the error page for the status we returned (no
// error_page redirect took over), the page becomes DRF's JSON. A response
// from anywhere else, e.g. an upstream's own 401, is left alone: that is
// what r->err_status tells apart.

ngx_int_t ngx_http_auth_token_header_filter(ngx_http_request_t *r) noexcept
{
    auto *ctx = static_cast<ngx_http_auth_token_ctx_t *>(
        ngx_http_get_module_ctx(r, ngx_http_auth_token_module));
    if (ctx == nullptr || ctx->detail_body.empty() || ctx->status == 0 ||
        r->err_status != ctx->status) {
        return next_header_filter(r);
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = nullptr;
    r->headers_out.charset.len = 0;
    r->headers_out.content_length_n =
        static_cast<off_t>(ctx->detail_body.size());
    if (r->headers_out.content_length != nullptr) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = nullptr;
    }
    ctx->replace_body = 1;
    return next_header_filter(r);
}

ngx_int_t ngx_http_auth_token_body_filter(ngx_http_request_t *r,
                                          ngx_chain_t *in) noexcept
{
    auto *ctx = static_cast<ngx_http_auth_token_ctx_t *>(
        ngx_http_get_module_ctx(r, ngx_http_auth_token_module));
    if (ctx == nullptr || !ctx->replace_body) {
        return next_body_filter(r, in);
    }

    // Swallow nginx's HTML page, whatever pieces it comes in.
    for (ngx_chain_t *cl = in; cl != nullptr; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }
    if (ctx->body_sent) {
        return NGX_OK;
    }
    ctx->body_sent = 1;

    auto *b = static_cast<ngx_buf_t *>(ngx_pcalloc(r->pool, sizeof(ngx_buf_t)));
    if (b == nullptr) {
        return NGX_ERROR;
    }
    // The bodies are constants; memory = 1 marks them read-only.
    b->pos =
        reinterpret_cast<u_char *>(const_cast<char *>(ctx->detail_body.data()));
    b->last = b->pos + ctx->detail_body.size();
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    ngx_chain_t out = {b, nullptr};
    return next_body_filter(r, &out);
}

// --- metrics --------------------------------------------------------------
//
// The Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): a HELP and
// a TYPE line per metric family, then its samples.

class Exposition
{
  public:
    void family(const char *name, const char *type, const char *help)
    {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    // `labels` is written as given: label values from us are plain words,
    // a zone's name goes through label_value().
    void sample(const char *name, std::string_view labels, std::uint64_t value)
    {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
        out_ += std::to_string(value);
        out_ += '\n';
    }
    // A label value, quoted and escaped as the format requires.
    static std::string label_value(std::string_view v)
    {
        std::string q = "\"";
        for (char c : v) {
            if (c == '\\' || c == '"') {
                q += '\\';
                q += c;
            } else if (c == '\n') {
                q += "\\n";
            } else {
                q += c;
            }
        }
        q += '"';
        return q;
    }
    void raw(const std::string &line)
    {
        out_ += line;
    }
    const std::string &text() const
    {
        return out_;
    }

  private:
    std::string out_;
};

std::string seconds_label(std::uint64_t us)
{
    // le="0.00025": the shortest decimal for a whole number of microseconds.
    std::string s = std::to_string(us / 1000000);
    std::uint64_t frac = us % 1000000;
    if (frac != 0) {
        std::string f = std::to_string(1000000 + frac).substr(1);
        while (f.back() == '0') {
            f.pop_back();
        }
        s += '.';
        s += f;
    }
    return s;
}

// name="word", for the words of $auth_token_status and
// $auth_token_cache_status (plain words: nothing to escape).
std::string word_label(std::string_view name, ngx_str_t word)
{
    std::string label(name);
    label += "=\"";
    label.append(reinterpret_cast<char *>(word.data), word.len);
    label += '"';
    return label;
}

std::string render_metrics(ngx_http_auth_token_main_conf_t *amcf)
{
    using ngx_auth_token::kCacheResults;
    using ngx_auth_token::kStatuses;
    using ngx_auth_token::metrics_read;
    ngx_shm_zone_t *zone = amcf->metrics_zone;
    auto read = [zone](Metric m) {
        return metrics_read(zone, static_cast<unsigned>(m));
    };
    std::uint64_t requests[kStatuses][kCacheResults];
    for (unsigned s = 0; s < kStatuses; s++) {
        for (unsigned c = 0; c < kCacheResults; c++) {
            requests[s][c] = metrics_read(zone, s * kCacheResults + c);
        }
    }

    Exposition e;
    e.family("nginx_auth_token_requests_total", "counter",
             "Requests checked by auth_token, by verdict "
             "($auth_token_status).");
    for (unsigned s = 1; s < kStatuses; s++) {
        std::uint64_t n = 0;
        for (unsigned c = 0; c < kCacheResults; c++) {
            n += requests[s][c];
        }
        e.sample("nginx_auth_token_requests_total",
                 word_label("status", status_word(static_cast<Outcome>(s))), n);
    }

    e.family("nginx_auth_token_cache_requests_total", "counter",
             "Token checks that consulted an auth_token_cache zone, by "
             "result ($auth_token_cache_status).");
    for (unsigned c = 1; c < kCacheResults; c++) {
        std::uint64_t n = 0;
        for (unsigned s = 0; s < kStatuses; s++) {
            n += requests[s][c];
        }
        e.sample("nginx_auth_token_cache_requests_total",
                 word_label("cache_status",
                            cache_status_word(static_cast<CacheStatus>(c))),
                 n);
    }

    e.family("nginx_auth_token_redis_lookups_total", "counter",
             "Token record lookups sent to Redis (concurrent requests for "
             "one key in a worker share one).");
    e.sample("nginx_auth_token_redis_lookups_total", {},
             read(Metric::redis_lookups));

    e.family("nginx_auth_token_redis_errors_total", "counter",
             "Requests whose Redis lookup failed, by cause: timeout "
             "(auth_token_timeout), connect (no connection to Redis), reply "
             "(an error reply or the connection lost while waiting), "
             "malformed (a token record that is not valid), lag (refused "
             "without a lookup: auth_token_max_lag exceeded).");
    e.sample("nginx_auth_token_redis_errors_total", "cause=\"timeout\"",
             read(Metric::error_timeout));
    e.sample("nginx_auth_token_redis_errors_total", "cause=\"connect\"",
             read(Metric::error_connect));
    e.sample("nginx_auth_token_redis_errors_total", "cause=\"reply\"",
             read(Metric::error_reply));
    e.sample("nginx_auth_token_redis_errors_total", "cause=\"malformed\"",
             read(Metric::error_malformed));
    e.sample("nginx_auth_token_redis_errors_total", "cause=\"lag\"",
             read(Metric::error_lag));

    e.family("nginx_auth_token_redis_reconnects_total", "counter",
             "Connections to Redis (lookup and subscriber) set up again after "
             "one was lost.");
    e.sample("nginx_auth_token_redis_reconnects_total", {},
             read(Metric::reconnects));

    e.family("nginx_auth_token_subscription_losses_total", "counter",
             "Times a worker lost its subscription to the revocation "
             "channel (each invalidates the cache).");
    e.sample("nginx_auth_token_subscription_losses_total", {},
             read(Metric::subscription_losses));

    e.family("nginx_auth_token_revocations_total", "counter",
             "Revocation messages applied to the cache, counted once per "
             "worker that received them.");
    e.sample("nginx_auth_token_revocations_total", {},
             read(Metric::revocations));

    e.family("nginx_auth_token_last_used_notes_total", "counter",
             "auth_token_last_used: notes of a token's use, by result: "
             "flushed (written to the primary), dropped (no room in the "
             "zone's notes table: a missed update), failed (the write "
             "failed or could not be sent).");
    e.sample("nginx_auth_token_last_used_notes_total", "result=\"flushed\"",
             read(Metric::last_used_flushed));
    e.sample("nginx_auth_token_last_used_notes_total", "result=\"dropped\"",
             read(Metric::last_used_dropped));
    e.sample("nginx_auth_token_last_used_notes_total", "result=\"failed\"",
             read(Metric::last_used_failed));

    e.family("nginx_auth_token_last_used_renewals_total", "counter",
             "Token expiries pushed out by the last-used writes (sliding "
             "renewal, up to each token's cap).");
    e.sample("nginx_auth_token_last_used_renewals_total", {},
             read(Metric::last_used_renewed));

    constexpr const char *hist =
        "nginx_auth_token_redis_lookup_duration_seconds";
    e.family(hist, "histogram",
             "Time from sending a token record lookup to Redis to its answer "
             "or failure.");
    {
        std::string bucket = std::string(hist) + "_bucket";
        std::uint64_t cumulative = 0;
        auto first = static_cast<unsigned>(Metric::lookup_bucket);
        for (unsigned b = 0; b <= ngx_auth_token::kBuckets; b++) {
            cumulative += metrics_read(zone, first + b);
            std::string le =
                b < ngx_auth_token::kBuckets
                    ? seconds_label(ngx_auth_token::kBucketBoundsUs[b])
                    : "+Inf";
            e.sample(bucket.c_str(), "le=\"" + le + "\"", cumulative);
        }
        std::uint64_t sum_us = read(Metric::lookup_sum_us);
        std::string sum =
            std::string(hist) + "_sum " + std::to_string(sum_us / 1000000) +
            "." + std::to_string(1000000 + sum_us % 1000000).substr(1) + "\n";
        e.raw(sum);
        e.sample((std::string(hist) + "_count").c_str(), {},
                 read(Metric::lookup_count));
    }

    if (amcf->cache_zones != nullptr) {
        auto *zones = static_cast<ngx_shm_zone_t **>(amcf->cache_zones->elts);
        ngx_uint_t n = amcf->cache_zones->nelts;
        std::vector<ngx_auth_token::CacheStats> stats(n);
        std::vector<std::string> labels(n);
        for (ngx_uint_t i = 0; i < n; i++) {
            ngx_auth_token::cache_stats(zones[i], stats[i]);
            labels[i] =
                "zone=" + Exposition::label_value(std::string_view(
                              reinterpret_cast<char *>(zones[i]->shm.name.data),
                              zones[i]->shm.name.len));
        }
        // One family per CacheStats member, one sample per zone in each.
        struct ZoneFamily {
            const char *name;
            const char *type;
            const char *help;
            std::uint64_t (*value)(const ngx_auth_token::CacheStats &);
        };
        static const ZoneFamily families[] = {
            {"nginx_auth_token_cache_entries", "gauge",
             "Entries held in an auth_token_cache zone.",
             [](const ngx_auth_token::CacheStats &s) -> std::uint64_t {
                 return s.entries;
             }},
            {"nginx_auth_token_cache_used_bytes", "gauge",
             "Bytes of an auth_token_cache zone in use (whole pages of "
             "its slab allocator).",
             [](const ngx_auth_token::CacheStats &s) -> std::uint64_t {
                 return s.used_bytes;
             }},
            {"nginx_auth_token_cache_size_bytes", "gauge",
             "The size of an auth_token_cache zone.",
             [](const ngx_auth_token::CacheStats &s) -> std::uint64_t {
                 return s.size_bytes;
             }},
            {"nginx_auth_token_cache_evictions_total", "counter",
             "Entries still in use dropped from a full auth_token_cache "
             "zone to make room.",
             [](const ngx_auth_token::CacheStats &s) -> std::uint64_t {
                 return s.evictions;
             }},
        };
        for (const ZoneFamily &f : families) {
            e.family(f.name, f.type, f.help);
            for (ngx_uint_t i = 0; i < n; i++) {
                e.sample(f.name, labels[i], f.value(stats[i]));
            }
        }
    }
    return e.text();
}

ngx_int_t ngx_http_auth_token_metrics_handler(ngx_http_request_t *r) noexcept
{
    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }
    ngx_int_t rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }
    auto *amcf = static_cast<ngx_http_auth_token_main_conf_t *>(
        ngx_http_get_module_main_conf(r, ngx_http_auth_token_module));

    std::string text;
    try {
        text = render_metrics(amcf);
    } catch (...) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "auth token metrics: out of memory");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = nullptr;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = static_cast<off_t>(text.size());
    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }
    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    ngx_buf_t *b = ngx_create_temp_buf(r->pool, text.size());
    if (b == nullptr) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    b->last = ngx_cpymem(b->last, text.data(), text.size());
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    ngx_chain_t out = {b, nullptr};
    return ngx_http_output_filter(r, &out);
}

// --- variables ------------------------------------------------------------

ngx_int_t ngx_http_auth_token_variable(ngx_http_request_t *r,
                                       ngx_http_variable_value_t *v,
                                       uintptr_t data) noexcept
{
    // A subrequest that checked (auth_token_verify) has its own verdict, read
    // by auth_request_set; any other subrequest sees its main request's.
    auto *ctx = get_ctx(r);
    if (ctx == nullptr && r != r->main) {
        ctx = get_ctx(r->main);
    }

    ngx_str_t value = ngx_null_string;
    if (ctx != nullptr) {
        // The identity is given only to a request that is let in: under
        // "satisfy any" an inactive user's name must not reach the upstream.
        bool ok = ctx->outcome == Outcome::ok;
        switch (data) {
        case var_user:
            if (ok) {
                value = ctx->user;
            }
            break;
        case var_user_id:
            if (ok) {
                value = ctx->user_id;
            }
            break;
        case var_user_escaped:
            if (ok) {
                // Percent-encoded as encodeURIComponent does: ASCII for
                // header values, whatever the name's script.
                std::uintptr_t n =
                    ngx_escape_uri(nullptr, ctx->user.data, ctx->user.len,
                                   NGX_ESCAPE_URI_COMPONENT);
                if (n == 0) {
                    value = ctx->user;
                    break;
                }
                value.len = ctx->user.len + 2 * n;
                value.data =
                    static_cast<u_char *>(ngx_pnalloc(r->pool, value.len));
                if (value.data == nullptr) {
                    return NGX_ERROR;
                }
                ngx_escape_uri(value.data, ctx->user.data, ctx->user.len,
                               NGX_ESCAPE_URI_COMPONENT);
            }
            break;
        case var_status:
            value = status_word(ctx->outcome);
            break;
        case var_cache_status:
            value = cache_status_word(ctx->cache_status);
            break;
        }
    }
    if (value.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }
    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = value.data;
    return NGX_OK;
}

ngx_int_t ngx_http_auth_token_add_variables(ngx_conf_t *cf) noexcept
{
    for (ngx_http_variable_t *v = ngx_http_auth_token_vars; v->name.len; v++) {
        ngx_http_variable_t *var =
            ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == nullptr) {
            return NGX_ERROR;
        }
        var->get_handler = v->get_handler;
        var->data = v->data;
    }
    return NGX_OK;
}

// --- worker lifetime ------------------------------------------------------

// The subscriber's view of the revocation channel (see the cache's header).

// How often the subscription is checked, and how long its PING may go
// unanswered before the connection is taken for dead (half-open: a NAT or
// balancer that dropped it without a reset).
constexpr ngx_msec_t kCheckInterval = 1000;
constexpr ngx_msec_t kPingTimeout = 1000;

void invalidate_zones(const char *why) noexcept
{
    auto *zones = static_cast<ngx_shm_zone_t **>(worker->cache_zones->elts);
    for (ngx_uint_t i = 0; i < worker->cache_zones->nelts; i++) {
        ngx_auth_token::cache_invalidate_all(zones[i]);
    }
    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "auth token cache invalidated: revocation messages may "
                  "have been missed (%s)",
                  why);
}

// "<64 hex digest>" or "<64 hex digest> <sequence number>".
bool parse_revocation(std::string_view payload, Sha256 &digest,
                      std::uint64_t &seq) noexcept
{
    seq = 0;
    std::size_t space = payload.find(' ');
    if (space != std::string_view::npos) {
        std::string_view number = payload.substr(space + 1);
        if (number.empty() || number.size() > 19) {
            return false;
        }
        for (char c : number) {
            if (c < '0' || c > '9') {
                return false;
            }
            seq = seq * 10 + static_cast<std::uint64_t>(c - '0');
        }
        payload = payload.substr(0, space);
    }
    return authtoken::digest_from_hex(payload, digest);
}

void on_revocation(void *, std::string_view payload) noexcept
{
    Sha256 digest;
    std::uint64_t seq;
    if (!parse_revocation(payload, digest, seq)) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "auth token cache: ignored a revocation message that "
                      "is not a digest");
        return;
    }
    auto *zones = static_cast<ngx_shm_zone_t **>(worker->cache_zones->elts);
    for (ngx_uint_t i = 0; i < worker->cache_zones->nelts; i++) {
        ngx_auth_token::cache_remove(zones[i], digest, seq);
    }
    ngx_auth_token::metrics_add(Metric::revocations);
    if (seq == 0) {
        return;
    }
    // One subscription sees every number in order: a jump means this
    // subscription skipped messages (a replica's full resync), which the
    // other workers, subscribed to the same server, skipped too.
    if (worker->last_message_seq != 0 && seq != worker->last_message_seq + 1 &&
        worker->subscribed) {
        invalidate_zones("the revocation sequence jumped");
    }
    worker->last_message_seq = seq;
}

void check_subscription_start() noexcept;

void leave_zones() noexcept
{
    auto *zones = static_cast<ngx_shm_zone_t **>(worker->cache_zones->elts);
    for (ngx_uint_t i = 0; i < worker->cache_zones->nelts; i++) {
        ngx_auth_token::cache_subscriber_leave(zones[i], ngx_pid);
    }
}

void on_pong(void *) noexcept
{
    if (worker->check != WorkerState::Check::pinging) {
        return;
    }
    worker->check = WorkerState::Check::idle;
    bool missed = false;
    auto *zones = static_cast<ngx_shm_zone_t **>(worker->cache_zones->elts);
    for (ngx_uint_t i = 0; i < worker->cache_zones->nelts; i++) {
        missed |=
            ngx_auth_token::cache_check_sequence(zones[i], worker->check_seq);
    }
    if (missed) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "auth token cache invalidated: revocation messages "
                      "were missed (the sequence is at %uL)",
                      worker->check_seq);
    }
    // Every number up to check_seq was published before the pong: the
    // next message on this subscription is check_seq + 1 or later.
    if (worker->last_message_seq < worker->check_seq) {
        worker->last_message_seq = worker->check_seq;
    }
    if (!worker->subscribed) {
        for (ngx_uint_t i = 0; i < worker->cache_zones->nelts; i++) {
            ngx_pid_t dead =
                ngx_auth_token::cache_subscriber_join(zones[i], ngx_pid);
            if (dead != 0) {
                ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                              "auth token cache invalidated: worker %P "
                              "died while subscribed, revocation messages "
                              "may have been missed",
                              dead);
            }
        }
    }
    worker->subscribed = true;
}

void on_sequence(void *data, bool ok,
                 std::optional<std::string_view> value) noexcept
{
    if (worker == nullptr || worker->check != WorkerState::Check::reading ||
        reinterpret_cast<std::uintptr_t>(data) != worker->check_id) {
        return;
    }
    std::uint64_t seq = 0;
    if (ok && value) {
        for (char c : *value) {
            if (c < '0' || c > '9' || seq > UINT64_MAX / 10) {
                ok = false;
                break;
            }
            seq = seq * 10 + static_cast<std::uint64_t>(c - '0');
        }
    }
    if (!ok) {
        worker->check = WorkerState::Check::idle; // again at the next tick
        return;
    }
    worker->check_seq = seq;
    worker->check = WorkerState::Check::pinging;
    worker->check_started = ngx_current_msec;
    if (!worker->subscriber->ping()) {
        worker->check = WorkerState::Check::idle;
    }
}

void check_subscription_start() noexcept
{
    if (!worker->link_subscribed || worker->check != WorkerState::Check::idle) {
        return;
    }
    worker->check = WorkerState::Check::reading;
    worker->check_started = ngx_current_msec;
    worker->check_id++;
    if (!worker->link->start_get(authtoken::keys::kRevocationSequence,
                                 on_sequence,
                                 reinterpret_cast<void *>(worker->check_id))) {
        worker->check = WorkerState::Check::idle;
    }
}

// The heartbeat's GET answered: a value that differs from the last one is
// news from the primary. The first value read only starts the comparison:
// the worker has been counting since it started.
void heartbeat_read(void *, bool ok,
                    std::optional<std::string_view> value) noexcept
{
    if (worker == nullptr) {
        return;
    }
    worker->heartbeat_reading = false;
    if (!ok) {
        return; // no news; lookups on this link fail on their own
    }
    std::string_view v = value.value_or(std::string_view());
    std::size_t keep = std::min(v.size(), worker->heartbeat.size());
    bool same = worker->heartbeat_seen &&
                worker->heartbeat_present == value.has_value() &&
                worker->heartbeat_len == v.size() &&
                std::memcmp(worker->heartbeat.data(), v.data(), keep) == 0;
    if (same) {
        return;
    }
    bool first = !worker->heartbeat_seen;
    worker->heartbeat_seen = true;
    worker->heartbeat_present = value.has_value();
    worker->heartbeat_len = v.size();
    std::memcpy(worker->heartbeat.data(), v.data(), keep);
    if (first) {
        return;
    }
    if (worker->lag_logged) {
        worker->lag_logged = false;
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "auth token redis %s: the heartbeat changed again "
                      "after %M ms, lookups resume",
                      worker->redis_name.c_str(),
                      ngx_current_msec - worker->heartbeat_changed);
    }
    worker->heartbeat_changed = ngx_current_msec;
}

void heartbeat_start() noexcept
{
    if (!worker->watch_heartbeat || worker->heartbeat_reading) {
        return;
    }
    worker->heartbeat_reading = true;
    if (!worker->link->start_get(authtoken::keys::kHeartbeat, heartbeat_read,
                                 nullptr)) {
        worker->heartbeat_reading = false;
    }
}

// Every kCheckInterval: the heartbeat and the subscription check.
void check_subscription_tick(ngx_event_t *ev) noexcept
{
    heartbeat_start();
    if (worker->check != WorkerState::Check::idle &&
        ngx_current_msec - worker->check_started >= kPingTimeout) {
        if (worker->check == WorkerState::Check::pinging) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "auth token redis %s: no answer to PING on the "
                          "revocation subscription for %M ms, reconnecting",
                          worker->redis_name.c_str(),
                          ngx_current_msec - worker->check_started);
            worker->check = WorkerState::Check::idle;
            worker->subscriber->drop("no answer to PING");
        } else {
            worker->check = WorkerState::Check::idle;
        }
    }
    check_subscription_start();
    ngx_add_timer(ev, kCheckInterval);
}

void on_subscribed(void *) noexcept
{
    // Not trusted yet: first the sequence check (on_pong).
    worker->link_subscribed = true;
    worker->last_message_seq = 0;
    worker->check = WorkerState::Check::idle;
    check_subscription_start();
}

void on_subscription_lost(void *) noexcept
{
    if (worker == nullptr) {
        return;
    }
    worker->link_subscribed = false;
    worker->check = WorkerState::Check::idle;
    if (!worker->subscribed) {
        return;
    }
    worker->subscribed = false;
    ngx_auth_token::metrics_add(Metric::subscription_losses);
    invalidate_zones("the subscription was lost");
    leave_zones();
}

// --- auth_token_last_used: the flush ----------------------------------------
//
// Every worker runs the flush timer; for each zone, the one worker that
// claims the interval (cache_notes_claim) takes the notes out of the zone
// and writes them to the primary, kTouchBatch tokens per FCALL
// authtoken_touch (redis/authtoken.lua), without waiting for the answers.
// Helper processes never get here (init_process returns before). A note
// taken out is written once, or counted failed: never sent twice.

// authtoken_touch's limit per call (TOUCH_MAX) and its arguments' version.
constexpr std::size_t kTouchBatch = 256;
constexpr std::string_view kTouchVersion = "1";

void touch_done(void *data, const char *error, const long long *values,
                std::size_t count) noexcept
{
    auto notes = reinterpret_cast<std::uintptr_t>(data);
    if (worker == nullptr) {
        return;
    }
    if (error != nullptr) {
        ngx_auth_token::metrics_add(Metric::last_used_failed, notes);
        if (!worker->flush_failure_logged) {
            worker->flush_failure_logged = true;
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "auth token last used: writing %uz notes to redis "
                          "%s failed: %s",
                          static_cast<std::size_t>(notes),
                          (worker->writer ? worker->writer : worker->link)
                              ->name()
                              .c_str(),
                          error);
        }
        return;
    }
    ngx_auth_token::metrics_add(Metric::last_used_flushed, notes);
    if (count >= 2 && values[1] > 0) {
        ngx_auth_token::metrics_add(Metric::last_used_renewed,
                                    static_cast<std::uint64_t>(values[1]));
    }
}

// Sends one batch; the notes are counted failed when it cannot be sent.
void send_touch(const ngx_auth_token::TakenNote *notes, std::size_t n) noexcept
{
    RedisLink *link =
        worker->writer ? worker->writer.get() : worker->link.get();
    bool sent = false;
    try {
        std::vector<std::string> args;
        args.reserve(3 + 3 * n);
        args.emplace_back("FCALL");
        args.emplace_back("authtoken_touch");
        args.emplace_back(std::to_string(n));
        for (std::size_t i = 0; i < n; i++) {
            authtoken::Sha256Hex hex;
            authtoken::digest_to_hex(notes[i].digest, hex);
            // The hex name while the schema is not 3: authtoken_touch
            // finds the record under either name then (and an issuer's
            // library of version 2 knows only that one).
            if (link->legacy_keys()) {
                args.emplace_back(hex.data(), hex.size());
                args.back().insert(0, authtoken::keys::kTokenPrefix);
            } else {
                authtoken::keys::TokenRecordKey key(hex);
                args.emplace_back(key.view());
            }
        }
        args.emplace_back(kTouchVersion);
        for (std::size_t i = 0; i < n; i++) {
            const ngx_auth_token::UseNote &use = notes[i].use;
            args.emplace_back(std::to_string(use.at));
            // The text $remote_addr shows: ngx_sock_ntop() without the
            // port, as ngx_http_init_connection() and realip make it.
            if (use.family == AF_UNIX) {
                args.emplace_back("unix:");
                continue;
            }
            ngx_sockaddr_t sa;
            ngx_memzero(&sa, sizeof(sa));
            socklen_t len = sizeof(sockaddr_in);
            if (use.family == AF_INET) {
                sa.sockaddr_in.sin_family = AF_INET;
                ngx_memcpy(&sa.sockaddr_in.sin_addr, use.addr, 4);
#if (NGX_HAVE_INET6)
            } else {
                sa.sockaddr_in6.sin6_family = AF_INET6;
                ngx_memcpy(&sa.sockaddr_in6.sin6_addr, use.addr, 16);
                len = sizeof(sockaddr_in6);
#endif
            }
            u_char text[NGX_SOCKADDR_STRLEN];
            std::size_t tlen =
                ngx_sock_ntop(&sa.sockaddr, len, text, sizeof(text), 0);
            args.emplace_back(reinterpret_cast<char *>(text), tlen);
        }
        std::vector<const char *> argv(args.size());
        std::vector<std::size_t> lens(args.size());
        for (std::size_t i = 0; i < args.size(); i++) {
            argv[i] = args[i].data();
            lens[i] = args[i].size();
        }
        sent = link->start_command(
            static_cast<int>(argv.size()), argv.data(), lens.data(), touch_done,
            reinterpret_cast<void *>(static_cast<std::uintptr_t>(n)));
    } catch (...) {
        sent = false;
    }
    if (!sent) {
        touch_done(reinterpret_cast<void *>(static_cast<std::uintptr_t>(n)),
                   "not sent (no connection, or out of memory)", nullptr, 0);
    }
}

void flush_tick(ngx_event_t *ev) noexcept
{
    worker->flush_failure_logged = false;
    auto *zones = static_cast<ngx_shm_zone_t **>(worker->cache_zones->elts);
    std::array<ngx_auth_token::TakenNote, kTouchBatch> batch;
    for (ngx_uint_t z = 0; z < worker->cache_zones->nelts; z++) {
        if (!ngx_auth_token::cache_notes_claim(zones[z],
                                               worker->flush_interval)) {
            continue;
        }
        std::size_t slots = ngx_auth_token::cache_notes_slots(zones[z]);
        std::size_t n = 0;
        for (std::size_t cursor = 0; cursor < slots;) {
            std::size_t from = cursor;
            n += ngx_auth_token::cache_notes_take(
                zones[z], cursor, batch.data() + n, batch.size() - n);
            if (cursor == from) {
                break; // only without a table, which is never removed
            }
            if (n == batch.size()) {
                send_touch(batch.data(), n);
                n = 0;
            }
        }
        if (n > 0) {
            send_touch(batch.data(), n);
        }
    }
    ngx_add_timer(ev, worker->flush_interval);
}

ngx_auth_token::RedisAddress
redis_address(const ngx_http_auth_token_redis_conf_t &rc)
{
    ngx_auth_token::RedisAddress address;
    address.name.assign(reinterpret_cast<char *>(rc.name.data), rc.name.len);
    std::string host(reinterpret_cast<char *>(rc.host.data), rc.host.len);
    if (rc.port == 0) {
        address.unix_path = std::move(host);
    } else {
        address.host = std::move(host);
        address.port = static_cast<int>(rc.port);
    }
    address.user.assign(reinterpret_cast<char *>(rc.user.data), rc.user.len);
    address.password.assign(reinterpret_cast<char *>(rc.password.data),
                            rc.password.len);
    address.db = static_cast<int>(rc.db);
    return address;
}

ngx_int_t ngx_http_auth_token_init_process(ngx_cycle_t *cycle) noexcept
{
    auto *amcf = static_cast<ngx_http_auth_token_main_conf_t *>(
        ngx_http_cycle_get_module_main_conf(cycle, ngx_http_auth_token_module));
    if (amcf == nullptr) {
        return NGX_OK;
    }
    // Helper processes (cache manager and loader) run init_process too, but
    // serve no request: no connection, no subscription, no counters.
    if (ngx_process != NGX_PROCESS_WORKER &&
        ngx_process != NGX_PROCESS_SINGLE) {
        return NGX_OK;
    }
    ngx_auth_token::metrics_attach(amcf->metrics_zone, ngx_worker);
    if (amcf->redis.name.len == 0) {
        return NGX_OK;
    }

    try {
        ngx_auth_token::RedisAddress address = redis_address(amcf->redis);

        worker = new WorkerState();
        worker->redis_name = address.name;
        worker->stall_timeout = amcf->longest_timeout;
        if (amcf->cache_zones != nullptr && amcf->cache_zones->nelts > 0) {
            worker->cache_zones = amcf->cache_zones;
            ngx_auth_token::SubscriptionHandler handler;
            handler.on_subscribed = on_subscribed;
            handler.on_message = on_revocation;
            handler.on_lost = on_subscription_lost;
            handler.on_pong = on_pong;
            worker->subscriber = std::make_unique<RedisLink>(
                address, amcf->connect_timeout, cycle->log,
                std::string(authtoken::keys::kRevocationChannel), handler);
        }
        if (amcf->last_used_used && amcf->primary.name.len != 0) {
            worker->writer =
                std::make_unique<RedisLink>(redis_address(amcf->primary),
                                            amcf->connect_timeout, cycle->log);
        }
        worker->link = std::make_unique<RedisLink>(
            std::move(address), amcf->connect_timeout, cycle->log);
    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "auth token: cannot set up the worker: %s", e.what());
        delete worker;
        worker = nullptr;
        return NGX_ERROR;
    } catch (...) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "auth token: cannot set up the worker");
        delete worker;
        worker = nullptr;
        return NGX_ERROR;
    }
    worker->watch_heartbeat = amcf->max_lag_used;
    worker->heartbeat_changed = ngx_current_msec;
    if (worker->subscriber != nullptr) {
        worker->subscriber->start();
    }
    if (worker->subscriber != nullptr || worker->watch_heartbeat) {
        ngx_event_t *ev = &worker->check_timer;
        ev->handler = check_subscription_tick;
        ev->log = cycle->log;
        ev->data = worker;
        ev->cancelable = 1;
        ngx_add_timer(ev, kCheckInterval);
    }
    if (amcf->last_used_used && worker->cache_zones != nullptr) {
        worker->flush_interval = amcf->last_used_interval;
        ngx_event_t *ev = &worker->flush_timer;
        ev->handler = flush_tick;
        ev->log = cycle->log;
        ev->data = worker;
        ev->cancelable = 1;
        ngx_add_timer(ev, worker->flush_interval);
    }
    if (worker->writer != nullptr) {
        worker->writer->start();
    }
    worker->link->start();
    return NGX_OK;
}

void ngx_http_auth_token_exit_process(ngx_cycle_t *) noexcept
{
    if (worker == nullptr) {
        return;
    }
    // Links first, while `worker` still points at the state their last
    // callbacks use. A worker that exits misses nothing the others need.
    if (worker->subscribed) {
        leave_zones();
    }
    worker->subscribed = false;
    if (worker->check_timer.timer_set) {
        ngx_del_timer(&worker->check_timer);
    }
    if (worker->flush_timer.timer_set) {
        ngx_del_timer(&worker->flush_timer);
    }
    worker->link.reset();
    worker->writer.reset();
    worker->subscriber.reset();
    delete worker;
    worker = nullptr;
}

// --- directives -----------------------------------------------------------

char *ngx_http_auth_token(ngx_conf_t *cf, ngx_command_t *cmd,
                          void *conf) noexcept
{
    char *rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    auto *alcf = static_cast<ngx_http_auth_token_loc_conf_t *>(conf);
    if (!alcf->enable) {
        return NGX_CONF_OK;
    }
    alcf->enable_file = cf->conf_file->file.name;
    alcf->enable_line = cf->conf_file->line;
    return note_use(cf);
}

// The post handler of the timeouts: "nginx -t" refuses 0.
char *ngx_http_auth_token_positive_msec(ngx_conf_t *, void *,
                                        void *data) noexcept
{
    if (*static_cast<ngx_msec_t *>(data) == 0) {
        return const_cast<char *>("must be more than 0");
    }
    return NGX_CONF_OK;
}

// Records that the check is used here: for the check that a Redis address
// exists, and for the underscores_in_headers warning of this server.
char *note_use(ngx_conf_t *cf) noexcept
{
    auto *amcf = static_cast<ngx_http_auth_token_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_auth_token_module));
    if (amcf->used_at_line == 0) {
        amcf->used_in_file = cf->conf_file->file.name;
        amcf->used_at_line = cf->conf_file->line;
    }
    if (cf->cmd_type & NGX_HTTP_MAIN_CONF) {
        amcf->enabled_in_http = 1;
        return NGX_CONF_OK;
    }
    auto *cscf = static_cast<ngx_http_core_srv_conf_t *>(
        ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module));
    if (amcf->servers == nullptr) {
        amcf->servers = ngx_array_create(cf->pool, 4, sizeof(cscf));
        if (amcf->servers == nullptr) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }
    auto *seen = static_cast<ngx_http_core_srv_conf_t **>(amcf->servers->elts);
    for (ngx_uint_t i = 0; i < amcf->servers->nelts; i++) {
        if (seen[i] == cscf) {
            return NGX_CONF_OK;
        }
    }
    auto *slot =
        static_cast<ngx_http_core_srv_conf_t **>(ngx_array_push(amcf->servers));
    if (slot == nullptr) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    *slot = cscf;
    return NGX_CONF_OK;
}

// auth_token_verify;
char *ngx_http_auth_token_verify(ngx_conf_t *cf, ngx_command_t *,
                                 void *conf) noexcept
{
    auto *alcf = static_cast<ngx_http_auth_token_loc_conf_t *>(conf);
    if (alcf->verify) {
        return const_cast<char *>("is duplicate");
    }
    alcf->verify = 1;
    return note_use(cf);
}

// auth_token_metrics: the location answers with the counters, as
// stub_status does.
char *ngx_http_auth_token_metrics(ngx_conf_t *cf, ngx_command_t *,
                                  void *) noexcept
{
    auto *clcf = static_cast<ngx_http_core_loc_conf_t *>(
        ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
    clcf->handler = ngx_http_auth_token_metrics_handler;
    auto *amcf = static_cast<ngx_http_auth_token_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_auth_token_module));
    amcf->metrics_used = 1;
    return NGX_CONF_OK;
}

// auth_token_redis address [user=...] [password=...] [db=N];
// auth_token_max_lag time | off; below kMinMaxLag a healthy edge would
// refuse now and then: the heartbeat is written once a second and read once
// a second, so the time between two changes a worker sees reaches 2 s.
constexpr ngx_msec_t kMinMaxLag = 3000;

char *ngx_http_auth_token_max_lag(ngx_conf_t *cf, ngx_command_t *,
                                  void *conf) noexcept
{
    auto *alcf = static_cast<ngx_http_auth_token_loc_conf_t *>(conf);
    if (alcf->max_lag != NGX_CONF_UNSET_MSEC) {
        return const_cast<char *>("is duplicate");
    }
    auto *value = static_cast<ngx_str_t *>(cf->args->elts);
    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        alcf->max_lag = 0;
        return NGX_CONF_OK;
    }
    ngx_msec_t lag = ngx_parse_time(&value[1], 0);
    if (lag == static_cast<ngx_msec_t>(NGX_ERROR)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"auth_token_max_lag\", "
                           "expected a time such as 5s, or off",
                           &value[1]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    if (lag < kMinMaxLag) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"auth_token_max_lag %V\" is too short: the "
                           "heartbeat is written and read once a second, so "
                           "a healthy edge sees lags of up to 2s; use at "
                           "least 3s, or off",
                           &value[1]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    alcf->max_lag = lag;
    return NGX_CONF_OK;
}

// auth_token_redis and auth_token_redis_primary: an address and its
// user=, password=, db= into `rc`.
char *parse_redis_server(ngx_conf_t *cf, ngx_command_t *cmd,
                         ngx_http_auth_token_redis_conf_t *rc) noexcept
{
    if (rc->name.len) {
        return const_cast<char *>("is duplicate");
    }

    ngx_str_t *value = static_cast<ngx_str_t *>(cf->args->elts);

    ngx_url_t u;
    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = value[1];
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in \"%V\" of the \"%V\" directive", u.err,
                               &u.url, &cmd->name);
        }
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    if (u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no address for \"%V\" in \"%V\"", &u.url,
                           &cmd->name);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    rc->name = value[1];
    ngx_addr_t &addr = u.addrs[0];

    if (addr.sockaddr->sa_family == AF_UNIX) {
        // nginx keeps "unix:" in front of the path in addr.name.
        ngx_str_t path = u.host;
        rc->host.data =
            static_cast<u_char *>(ngx_pnalloc(cf->pool, path.len + 1));
        if (rc->host.data == nullptr) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
        ngx_memcpy(rc->host.data, path.data, path.len);
        rc->host.len = path.len;
        rc->port = 0;

    } else {
        u_char text[NGX_SOCKADDR_STRLEN];
        size_t len = ngx_sock_ntop(addr.sockaddr, addr.socklen, text,
                                   NGX_SOCKADDR_STRLEN, 0);
        rc->host.data = static_cast<u_char *>(ngx_pnalloc(cf->pool, len));
        if (rc->host.data == nullptr) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
        ngx_memcpy(rc->host.data, text, len);
        rc->host.len = len;
        rc->port = ngx_inet_get_port(addr.sockaddr);
    }

    for (ngx_uint_t i = 2; i < cf->args->nelts; i++) {
        // An ACL user (Redis 6+: AUTH user password), e.g. the shipped
        // redis/users.acl's read-only "authtoken-edge".
        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            rc->user.data = value[i].data + 5;
            rc->user.len = value[i].len - 5;
            if (rc->user.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "empty user in \"%V\"",
                                   &cmd->name);
                return static_cast<char *>(NGX_CONF_ERROR);
            }
            continue;
        }
        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rc->password.data = value[i].data + 9;
            rc->password.len = value[i].len - 9;
            if (rc->password.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty password in \"%V\"", &cmd->name);
                return static_cast<char *>(NGX_CONF_ERROR);
            }
            continue;
        }
        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            rc->db = ngx_atoi(value[i].data + 3, value[i].len - 3);
            // SELECT takes an int; ngx_atoi stops only at NGX_MAX_INT_T.
            if (rc->db == NGX_ERROR || rc->db > NGX_MAX_INT32_VALUE) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid db \"%V\" in \"%V\"", &value[i],
                                   &cmd->name);
                return static_cast<char *>(NGX_CONF_ERROR);
            }
            continue;
        }
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\"", &value[i],
                           &cmd->name);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    if (rc->user.len && rc->password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"user=\" needs \"password=\" in \"%V\"",
                           &cmd->name);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    return NGX_CONF_OK;
}

char *ngx_http_auth_token_redis(ngx_conf_t *cf, ngx_command_t *cmd,
                                void *conf) noexcept
{
    auto *amcf = static_cast<ngx_http_auth_token_main_conf_t *>(conf);
    return parse_redis_server(cf, cmd, &amcf->redis);
}

char *ngx_http_auth_token_redis_primary(ngx_conf_t *cf, ngx_command_t *cmd,
                                        void *conf) noexcept
{
    auto *amcf = static_cast<ngx_http_auth_token_main_conf_t *>(conf);
    return parse_redis_server(cf, cmd, &amcf->primary);
}

// A keyword is an HTTP auth-scheme: a token, so no separators or spaces.
bool is_auth_scheme(const ngx_str_t &word)
{
    if (word.len == 0) {
        return false;
    }
    for (size_t i = 0; i < word.len; i++) {
        u_char c = word.data[i];
        if (c <= 0x20 || c >= 0x7f ||
            ngx_strchr("()<>@,;:\\\"/[]?={}", c) != nullptr) {
            return false;
        }
    }
    return true;
}

char *ngx_http_auth_token_keyword(ngx_conf_t *cf, ngx_command_t *cmd,
                                  void *conf) noexcept
{
    auto *alcf = static_cast<ngx_http_auth_token_loc_conf_t *>(conf);
    if (alcf->keywords != NGX_CONF_UNSET_PTR) {
        return const_cast<char *>("is duplicate");
    }

    ngx_str_t *value = static_cast<ngx_str_t *>(cf->args->elts);
    alcf->keywords =
        ngx_array_create(cf->pool, cf->args->nelts - 1, sizeof(ngx_str_t));
    if (alcf->keywords == nullptr) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    for (ngx_uint_t i = 1; i < cf->args->nelts; i++) {
        if (!is_auth_scheme(value[i])) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid keyword \"%V\" in \"%V\"", &value[i],
                               &cmd->name);
            return static_cast<char *>(NGX_CONF_ERROR);
        }
        auto *word = static_cast<ngx_str_t *>(ngx_array_push(alcf->keywords));
        if (word == nullptr) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
        *word = value[i];
    }
    return NGX_CONF_OK;
}

// Parses "valid=30s"-style parameters of auth_token_cache.
bool parse_cache_time(ngx_str_t *value, const char *prefix, ngx_msec_t *field,
                      bool *bad) noexcept
{
    size_t len = std::strlen(prefix);
    if (value->len < len || ngx_strncmp(value->data, prefix, len) != 0) {
        return false;
    }
    ngx_str_t s = {value->len - len, value->data + len};
    ngx_int_t ms = ngx_parse_time(&s, 0);
    if (ms == NGX_ERROR) {
        *bad = true;
    } else {
        *field = static_cast<ngx_msec_t>(ms);
    }
    return true;
}

// auth_token_cache zone=name[:size] [valid=time] [invalid=time] [stale=time];
// auth_token_cache off;
char *ngx_http_auth_token_cache(ngx_conf_t *cf, ngx_command_t *cmd,
                                void *conf) noexcept
{
    auto *alcf = static_cast<ngx_http_auth_token_loc_conf_t *>(conf);
    if (alcf->cache_set) {
        return const_cast<char *>("is duplicate");
    }
    alcf->cache_set = 1;

    ngx_str_t *value = static_cast<ngx_str_t *>(cf->args->elts);
    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        alcf->cache_zone = nullptr;
        return NGX_CONF_OK;
    }

    ngx_str_t name = ngx_null_string;
    ssize_t size = 0;
    alcf->cache_valid = 30000;
    alcf->cache_invalid = 5000;
    alcf->cache_stale = 0;

    for (ngx_uint_t i = 1; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            name.data = value[i].data + 5;
            auto *colon = static_cast<u_char *>(
                std::memchr(name.data, ':', value[i].len - 5));
            if (colon == nullptr) {
                name.len = value[i].len - 5;
            } else {
                name.len = colon - name.data;
                ngx_str_t s = {static_cast<size_t>(value[i].data +
                                                   value[i].len - colon - 1),
                               colon + 1};
                size = ngx_parse_size(&s);
                if (size == NGX_ERROR) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "invalid zone size \"%V\" in \"%V\"",
                                       &value[i], &cmd->name);
                    return static_cast<char *>(NGX_CONF_ERROR);
                }
                if (size < static_cast<ssize_t>(8 * ngx_pagesize)) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "zone \"%V\" is too small in \"%V\", "
                                       "the least is %uz bytes",
                                       &value[i], &cmd->name,
                                       static_cast<size_t>(8 * ngx_pagesize));
                    return static_cast<char *>(NGX_CONF_ERROR);
                }
            }
            if (name.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone name \"%V\" in \"%V\"",
                                   &value[i], &cmd->name);
                return static_cast<char *>(NGX_CONF_ERROR);
            }
            continue;
        }

        bool bad = false;
        if (parse_cache_time(&value[i], "valid=", &alcf->cache_valid, &bad) ||
            parse_cache_time(&value[i], "invalid=", &alcf->cache_invalid,
                             &bad) ||
            parse_cache_time(&value[i], "stale=", &alcf->cache_stale, &bad)) {
            if (bad) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid time \"%V\" in \"%V\"", &value[i],
                                   &cmd->name);
                return static_cast<char *>(NGX_CONF_ERROR);
            }
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\"", &value[i],
                           &cmd->name);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter", &cmd->name);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    alcf->cache_zone = ngx_auth_token::cache_zone_add(
        cf, cmd->name, &name, static_cast<size_t>(size),
        &ngx_http_auth_token_module);
    if (alcf->cache_zone == nullptr) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    auto *amcf = static_cast<ngx_http_auth_token_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_auth_token_module));
    if (amcf->cache_zones == nullptr) {
        amcf->cache_zones =
            ngx_array_create(cf->pool, 2, sizeof(ngx_shm_zone_t *));
        if (amcf->cache_zones == nullptr) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }
    auto *zones = static_cast<ngx_shm_zone_t **>(amcf->cache_zones->elts);
    for (ngx_uint_t i = 0; i < amcf->cache_zones->nelts; i++) {
        if (zones[i] == alcf->cache_zone) {
            return NGX_CONF_OK;
        }
    }
    auto *slot =
        static_cast<ngx_shm_zone_t **>(ngx_array_push(amcf->cache_zones));
    if (slot == nullptr) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    *slot = alcf->cache_zone;
    return NGX_CONF_OK;
}

// --- configuration --------------------------------------------------------

void *ngx_http_auth_token_create_main_conf(ngx_conf_t *cf) noexcept
{
    auto *amcf = static_cast<ngx_http_auth_token_main_conf_t *>(
        ngx_pcalloc(cf->pool, sizeof(ngx_http_auth_token_main_conf_t)));
    if (amcf == nullptr) {
        return nullptr;
    }
    amcf->connect_timeout = NGX_CONF_UNSET_MSEC;
    amcf->last_used_interval = NGX_CONF_UNSET_MSEC;
    return amcf;
}

char *ngx_http_auth_token_init_main_conf(ngx_conf_t *cf, void *conf) noexcept
{
    auto *amcf = static_cast<ngx_http_auth_token_main_conf_t *>(conf);
    ngx_conf_init_msec_value(amcf->connect_timeout, 1000);
    ngx_conf_init_msec_value(amcf->last_used_interval, 60000);

    if (amcf->used_at_line != 0 && amcf->redis.name.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"auth_token\" is enabled in %V:%ui, but no "
                      "\"auth_token_redis\" is set in the http block",
                      &amcf->used_in_file, amcf->used_at_line);
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    if (amcf->cache_zones != nullptr) {
        static const ngx_str_t directive = ngx_string("auth_token_cache");
        auto *zones = static_cast<ngx_shm_zone_t **>(amcf->cache_zones->elts);
        for (ngx_uint_t i = 0; i < amcf->cache_zones->nelts; i++) {
            if (!ngx_auth_token::cache_zone_check_size(cf, directive,
                                                       zones[i])) {
                return static_cast<char *>(NGX_CONF_ERROR);
            }
        }
    }
    if (amcf->redis.name.len != 0 || amcf->metrics_used) {
        amcf->metrics_zone =
            ngx_auth_token::metrics_zone_add(cf, &ngx_http_auth_token_module);
        if (amcf->metrics_zone == nullptr) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }
    return NGX_CONF_OK;
}

void *ngx_http_auth_token_create_loc_conf(ngx_conf_t *cf) noexcept
{
    auto *alcf = static_cast<ngx_http_auth_token_loc_conf_t *>(
        ngx_pcalloc(cf->pool, sizeof(ngx_http_auth_token_loc_conf_t)));
    if (alcf == nullptr) {
        return nullptr;
    }
    alcf->enable = NGX_CONF_UNSET;
    alcf->keywords = static_cast<ngx_array_t *>(NGX_CONF_UNSET_PTR);
    alcf->timeout = NGX_CONF_UNSET_MSEC;
    alcf->max_lag = NGX_CONF_UNSET_MSEC;
    alcf->last_used = NGX_CONF_UNSET;
    return alcf;
}

char *ngx_http_auth_token_merge_loc_conf(ngx_conf_t *cf, void *parent,
                                         void *child) noexcept
{
    auto *prev = static_cast<ngx_http_auth_token_loc_conf_t *>(parent);
    auto *conf = static_cast<ngx_http_auth_token_loc_conf_t *>(child);

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 1000);
    ngx_conf_merge_msec_value(conf->max_lag, prev->max_lag, 0);

    auto *amcf = static_cast<ngx_http_auth_token_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_auth_token_module));
    if ((conf->enable || conf->verify) && conf->max_lag != 0) {
        amcf->max_lag_used = 1;
    }
    if ((conf->enable || conf->verify) &&
        conf->timeout > amcf->longest_timeout) {
        amcf->longest_timeout = conf->timeout;
    }

    // Subrequests skip the access phase: "auth_token on" set in a location
    // that only they reach (auth_request's target is typically "internal")
    // never runs there.
    auto *clcf = static_cast<ngx_http_core_loc_conf_t *>(
        ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
    if (conf->enable_line != 0 && conf->enable && clcf->internal &&
        !conf->verify) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "\"auth_token\" in %V:%ui is in the internal location "
                      "\"%V\"; a subrequest (auth_request) skips the access "
                      "phase and never runs it, use \"auth_token_verify\" "
                      "there",
                      &conf->enable_file, conf->enable_line, &clcf->name);
    }
    if (!conf->cache_set) {
        conf->cache_zone = prev->cache_zone;
        conf->cache_valid = prev->cache_valid;
        conf->cache_invalid = prev->cache_invalid;
        conf->cache_stale = prev->cache_stale;
    }
    ngx_conf_merge_value(conf->last_used, prev->last_used, 0);
    if ((conf->enable || conf->verify) && conf->last_used) {
        // The notes live in the cache zone's shared memory, the one place
        // all workers see (and the flush's claim with them).
        if (conf->cache_zone == nullptr) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"auth_token_last_used\" in location \"%V\" "
                               "needs an \"auth_token_cache zone=...\" there "
                               "(the uses are noted in its shared memory)",
                               &clcf->name);
            return static_cast<char *>(NGX_CONF_ERROR);
        }
        ngx_auth_token::cache_zone_want_notes(conf->cache_zone);
        amcf->last_used_used = 1;
    }
    ngx_conf_merge_ptr_value(conf->keywords, prev->keywords, nullptr);

    if (conf->keywords == nullptr) {
        conf->keywords = ngx_array_create(cf->pool, 1, sizeof(ngx_str_t));
        if (conf->keywords == nullptr) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
        auto *word = static_cast<ngx_str_t *>(ngx_array_push(conf->keywords));
        if (word == nullptr) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
        ngx_str_set(word, "Token");
        // Let the parent share the default, so children inherit one array.
        if (prev->keywords == nullptr) {
            prev->keywords = conf->keywords;
        }
    }

    if (prev->keywords == conf->keywords && prev->keyword_views != nullptr) {
        conf->keyword_views = prev->keyword_views;
        conf->keyword_count = prev->keyword_count;
        return NGX_CONF_OK;
    }

    conf->keyword_count = conf->keywords->nelts;
    conf->keyword_views = static_cast<std::string_view *>(
        ngx_palloc(cf->pool, conf->keyword_count * sizeof(std::string_view)));
    if (conf->keyword_views == nullptr) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    auto *words = static_cast<ngx_str_t *>(conf->keywords->elts);
    for (ngx_uint_t i = 0; i < conf->keyword_count; i++) {
        // std::string_view is trivially destructible (asserted at the
        // loc conf): fine in pool memory.
        new (&conf->keyword_views[i]) std::string_view(
            reinterpret_cast<const char *>(words[i].data), words[i].len);
    }
    return NGX_CONF_OK;
}

// With underscores_in_headers on, a client's "X_Auth_User: admin" reaches
// the upstream next to the real X-Auth-User, and WSGI servers fold "_" and
// "-" into one name. A warning at "nginx -t", not an error: some setups
// need the directive and clear such headers themselves.
void warn_underscores(ngx_conf_t *cf, ngx_http_core_main_conf_t *cmcf) noexcept
{
    auto *amcf = static_cast<ngx_http_auth_token_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_auth_token_module));
    ngx_array_t *list = amcf->enabled_in_http ? &cmcf->servers : amcf->servers;
    if (list == nullptr) {
        return;
    }
    auto *servers = static_cast<ngx_http_core_srv_conf_t **>(list->elts);
    for (ngx_uint_t i = 0; i < list->nelts; i++) {
        ngx_http_core_srv_conf_t *cscf = servers[i];
        if (!cscf->underscores_in_headers) {
            continue;
        }
        ngx_str_t name = ngx_null_string;
        if (cscf->server_names.nelts > 0) {
            name = static_cast<ngx_http_server_name_t *>(
                       cscf->server_names.elts)[0]
                       .name;
        }
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "\"auth_token\" is used in server \"%V\" "
                      "(%s:%ui) with \"underscores_in_headers on\": a client "
                      "can send identity headers spelt with \"_\" that "
                      "many upstreams read as the real ones; clear them",
                      &name, cscf->file_name, cscf->line);
    }
}

ngx_int_t ngx_http_auth_token_init(ngx_conf_t *cf) noexcept
{
    auto *cmcf = static_cast<ngx_http_core_main_conf_t *>(
        ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module));

    // nginx runs a phase's handlers from the last registered to the first:
    // pushing at the end (what postconfiguration usually does) would run
    // before access, auth_basic and auth_request, registered earlier.
    // Placed first, the handler runs after them, as access_by_lua does by
    // default (lua-nginx-module moves its handler to the end of the phase
    // at run time).
    ngx_array_t *access = &cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers;
    auto *h = static_cast<ngx_http_handler_pt *>(ngx_array_push(access));
    if (h == nullptr) {
        return NGX_ERROR;
    }
    auto *handlers = static_cast<ngx_http_handler_pt *>(access->elts);
    ngx_memmove(&handlers[1], &handlers[0],
                (access->nelts - 1) * sizeof(ngx_http_handler_pt));
    handlers[0] = ngx_http_auth_token_handler;

    h = static_cast<ngx_http_handler_pt *>(
        ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers));
    if (h == nullptr) {
        return NGX_ERROR;
    }
    *h = ngx_http_auth_token_verify_handler;

    warn_underscores(cf, cmcf);

    next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_auth_token_header_filter;
    next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_auth_token_body_filter;
    return NGX_OK;
}

} // namespace
