#include "module/ngx_http_auth_token_redis_adapter.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

namespace ngx_auth_token
{
namespace
{

// Events are registered level-triggered: hiredis reads at most one buffer
// per call, so with edge-triggered epoll a reply left in the socket would
// never be announced again.

void redis_add_read(void *privdata) noexcept
{
    auto *e = static_cast<RedisEvents *>(privdata);
    ngx_connection_t *c = e->connection;
    if (c != nullptr && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
            ngx_log_error(NGX_LOG_ALERT, e->log, 0,
                          "auth token redis %s: cannot add read event",
                          e->name);
        }
    }
}

void redis_del_read(void *privdata) noexcept
{
    auto *e = static_cast<RedisEvents *>(privdata);
    ngx_connection_t *c = e->connection;
    if (c != nullptr && c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}

// Once connected, writes are not driven by the write event but by one
// posted event per loop iteration: every command queued while nginx handled
// this round of events goes out in one write(2), without an epoll_ctl pair
// per command. Only when the socket is full (hiredis asks again from inside
// a flush) does the write event take over.
void redis_add_write(void *privdata) noexcept
{
    auto *e = static_cast<RedisEvents *>(privdata);
    ngx_connection_t *c = e->connection;
    if (c == nullptr) {
        return;
    }
    if ((e->context->c.flags & REDIS_CONNECTED) && !e->flushing) {
        if (!e->flush.posted) {
            ngx_post_event(&e->flush, &ngx_posted_events);
        }
        return;
    }
    if (!c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT) !=
            NGX_OK) {
            ngx_log_error(NGX_LOG_ALERT, e->log, 0,
                          "auth token redis %s: cannot add write event",
                          e->name);
        }
    }
}

void redis_del_write(void *privdata) noexcept
{
    auto *e = static_cast<RedisEvents *>(privdata);
    ngx_connection_t *c = e->connection;
    if (c != nullptr && c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}

// hiredis is about to free the context (and then close the fd itself):
// give the ngx_connection_t back without closing the descriptor.
void redis_cleanup(void *privdata) noexcept
{
    auto *e = static_cast<RedisEvents *>(privdata);
    ngx_connection_t *c = e->connection;
    if (c != nullptr) {
        if (c->read->active) {
            ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
        }
        if (c->write->active) {
            ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
        }
        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }
        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }
        c->read->closed = 1;
        c->write->closed = 1;
        ngx_free_connection(c);
        c->fd = (ngx_socket_t)-1;
    }
    if (e->flush.posted) {
        ngx_delete_posted_event(&e->flush);
    }
    e->connection = nullptr;
    e->context = nullptr;
    e->on_cleanup(e->data);
}

// The three handlers below call into hiredis last: it may free the context
// (and so call redis_cleanup()) inside, and nothing of it may be touched
// after.

void redis_read_handler(ngx_event_t *ev) noexcept
{
    auto *c = static_cast<ngx_connection_t *>(ev->data);
    auto *e = static_cast<RedisEvents *>(c->data);
    if (e->context != nullptr) {
        redisAsyncHandleRead(e->context);
    }
}

void redis_write_handler(ngx_event_t *ev) noexcept
{
    auto *c = static_cast<ngx_connection_t *>(ev->data);
    auto *e = static_cast<RedisEvents *>(c->data);
    if (e->context != nullptr) {
        redisAsyncHandleWrite(e->context);
    }
}

void redis_flush_handler(ngx_event_t *ev) noexcept
{
    auto *e = static_cast<RedisEvents *>(ev->data);
    if (e->context == nullptr) {
        return;
    }
    e->flushing = true;
    redisAsyncHandleWrite(e->context);
    e->flushing = false; // `e` outlives the context
}

} // namespace

RedisEvents::RedisEvents(ngx_log_t *log, const char *name,
                         RedisCleanupHandler on_cleanup, void *data) noexcept
    : log(log), name(name), on_cleanup(on_cleanup), data(data)
{
    flush.handler = redis_flush_handler;
    flush.data = this;
    flush.log = log;
}

ngx_int_t ngx_http_auth_token_redis_attach(redisAsyncContext *ac,
                                           RedisEvents *events) noexcept
{
    if (ac->ev.data != nullptr || events->context != nullptr) {
        return NGX_ERROR;
    }

    ngx_connection_t *c = ngx_get_connection(ac->c.fd, events->log);
    if (c == nullptr) {
        return NGX_ERROR;
    }
    c->data = events;
    c->read->handler = redis_read_handler;
    c->write->handler = redis_write_handler;
    c->read->log = events->log;
    c->write->log = events->log;

    events->context = ac;
    events->connection = c;
    events->flushing = false;

    ac->ev.data = events;
    ac->ev.addRead = redis_add_read;
    ac->ev.delRead = redis_del_read;
    ac->ev.addWrite = redis_add_write;
    ac->ev.delWrite = redis_del_write;
    ac->ev.cleanup = redis_cleanup;
    return NGX_OK;
}

} // namespace ngx_auth_token
