// The hiredis <-> nginx event adapter, written the way hiredis's own
// adapters are (adapters/libevent.h, adapters/libev.h): static functions
// that hiredis calls through ac->ev, attached to a context by one call.
//
// The context's socket is wrapped in an ngx_connection_t from the worker's
// connections (it counts against worker_connections), whose read and write
// events call redisAsyncHandleRead/Write. hiredis 0.14 has no timers
// (ev.scheduleTimer came in 1.0): the owner bounds connect time itself.
//
// Ownership: the owner keeps the RedisEvents for as long as any context is
// attached to it (one at a time; the next connection reuses it). hiredis
// calls cleanup() just before it frees the context, inside
// redisAsyncFree() or inside redisAsyncHandleRead/Write: the adapter lets
// go of the connection without closing the descriptor (hiredis closes it),
// then calls `on_cleanup`, after which nothing may touch the context.
//
// Every function here is noexcept and allocates nothing: they run inside
// hiredis's and nginx's C callbacks.
#pragma once

#include "module/ngx_includes.h"

#include <type_traits>

struct redisAsyncContext;

namespace ngx_auth_token
{

using RedisCleanupHandler = void (*)(void *data) noexcept;

// The adapter's state for one context at a time (hiredis's adapters
// allocate theirs per context; this one lives in its owner instead, so
// that attaching allocates nothing).
struct RedisEvents {
    // `name` (the server as configured) prefixes the log lines and must
    // outlive this object; `on_cleanup(data)` is called once per attached
    // context, when hiredis lets go of it.
    RedisEvents(ngx_log_t *log, const char *name,
                RedisCleanupHandler on_cleanup, void *data) noexcept;
    ~RedisEvents() = default;
    RedisEvents(const RedisEvents &) = delete;
    RedisEvents &operator=(const RedisEvents &) = delete;

    // Used by the adapter's functions only.
    redisAsyncContext *context = nullptr;
    ngx_connection_t *connection = nullptr;
    // Posted once per event-loop iteration while connected, see add_write.
    ngx_event_t flush{};
    bool flushing = false;
    ngx_log_t *log;
    const char *name;
    RedisCleanupHandler on_cleanup;
    void *data;
};

// nginx frees the event structures it holds pointers to (the posted-event
// queue, the timer tree) without destructors; the object lives inside its
// owner (RedisLink, heap) and needs none either.
static_assert(std::is_standard_layout_v<RedisEvents>);
static_assert(std::is_trivially_destructible_v<RedisEvents>);

// Attaches `ac` (just created by redisAsyncConnect*, nothing attached yet)
// to nginx's event loop through `events`. NGX_ERROR when the context
// already has an adapter or no worker connection is free (nginx has
// logged that); the caller then frees the context.
ngx_int_t ngx_http_auth_token_redis_attach(redisAsyncContext *ac,
                                           RedisEvents *events) noexcept;

} // namespace ngx_auth_token
