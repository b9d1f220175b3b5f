#include "module/ngx_http_auth_token_cache.h"

#include <cstring>

namespace ngx_auth_token {
namespace {

// One entry: a single slab allocation holds the entry and its strings.
//
// Entries are found through a hash table, not limit_req's rbtree: digests
// are uniformly random, so the tree's dozen or more levels are each a cache
// miss in a large zone, while a bucket costs one. The bucket is picked by
// the digest's first bytes.
struct CacheNode {
    CacheNode *next; // in its bucket
    CachedVerdict verdict;
    u_char user_len;
    u_char uid_len;
    std::uint32_t queued_at; // ngx_current_msec, truncated, of the last move
    ngx_queue_t queue;
    std::uint64_t epoch;
    ngx_msec_t valid_until;
    ngx_msec_t stale_until;
    std::int64_t token_expires;
    u_char digest[32];
    u_char data[1]; // user, then uid
};

struct CacheShared {
    ngx_queue_t positive; // found tokens, most recently used first
    ngx_queue_t negative; // unknown tokens, kept apart and bounded
    ngx_uint_t negative_count;
    std::uint64_t epoch;
    std::uint64_t revision;
    ngx_uint_t bucket_mask;
    CacheNode **buckets; // bucket_mask + 1 chains, in the zone
};

struct CacheContext {
    CacheShared *sh;
    ngx_slab_pool_t *shpool;
    // Unknown tokens may take at most a tenth of the zone, so a flood of
    // random keys cannot push the good entries out.
    ngx_uint_t negative_max;
};

// A hit moves its entry to the head of its queue at most once a second
// (memcached bumps an item at most once a minute, ITEM_UPDATE_INTERVAL, for
// the same reason): eviction stays least-recently-used to within a second,
// and most hits write nothing in the zone, so the two neighbours' cache
// lines stay clean and other workers' copies stay valid.
constexpr std::uint32_t kRequeueInterval = 1000;

constexpr std::size_t kMaxUser = 255;
constexpr std::size_t kMaxUid = 32;

CacheNode **bucket_of(CacheContext *ctx, const u_char *digest)
{
    ngx_uint_t hash;
    std::memcpy(&hash, digest, sizeof(hash));
    return &ctx->sh->buckets[hash & ctx->sh->bucket_mask];
}

CacheNode *find_locked(CacheContext *ctx, const authtoken::Sha256 &digest)
{
    for (CacheNode *cn = *bucket_of(ctx, digest.data()); cn != nullptr;
         cn = cn->next) {
        if (std::memcmp(cn->digest, digest.data(), 32) == 0) {
            return cn;
        }
    }
    return nullptr;
}

void delete_locked(CacheContext *ctx, CacheNode *cn)
{
    ngx_queue_remove(&cn->queue);
    if (cn->verdict == CachedVerdict::unknown) {
        ctx->sh->negative_count--;
    }
    for (CacheNode **link = bucket_of(ctx, cn->digest); *link != nullptr;
         link = &(*link)->next) {
        if (*link == cn) {
            *link = cn->next;
            break;
        }
    }
    ngx_slab_free_locked(ctx->shpool, cn);
}

// Drops up to two entries past their usefulness from the tail of `queue`,
// or, with `force`, its oldest entry whatever its age.
bool expire_locked(CacheContext *ctx, ngx_queue_t *queue, bool force)
{
    bool freed = false;
    for (int n = 0; n < 2 && !ngx_queue_empty(queue); n++) {
        ngx_queue_t *q = ngx_queue_last(queue);
        CacheNode *cn = ngx_queue_data(q, CacheNode, queue);
        if (!force && static_cast<ngx_msec_int_t>(cn->stale_until -
                                                  ngx_current_msec) > 0) {
            break;
        }
        delete_locked(ctx, cn);
        freed = true;
        force = false;
    }
    return freed;
}

bool copy_out(ngx_pool_t *pool, CacheNode *cn, CachedEntry &out)
{
    out.verdict = cn->verdict;
    std::size_t len = cn->user_len + cn->uid_len;
    if (len == 0) {
        out.user = ngx_null_string;
        out.uid = ngx_null_string;
        return true;
    }
    auto *p = static_cast<u_char *>(ngx_pnalloc(pool, len));
    if (p == nullptr) {
        return false;
    }
    ngx_memcpy(p, cn->data, len);
    out.user.data = p;
    out.user.len = cn->user_len;
    out.uid.data = p + cn->user_len;
    out.uid.len = cn->uid_len;
    return true;
}

bool token_expired(const CacheNode *cn)
{
    return cn->token_expires != 0 && cn->token_expires <= ngx_time();
}

ngx_int_t cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    auto *octx = static_cast<CacheContext *>(data);
    auto *ctx = static_cast<CacheContext *>(shm_zone->data);

    if (octx != nullptr) {
        // A reload: keep the entries the old workers built.
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = reinterpret_cast<ngx_slab_pool_t *>(shm_zone->shm.addr);
    if (shm_zone->shm.exists) {
        ctx->sh = static_cast<CacheShared *>(ctx->shpool->data);
        return NGX_OK;
    }

    ctx->sh = static_cast<CacheShared *>(
        ngx_slab_alloc(ctx->shpool, sizeof(CacheShared)));
    if (ctx->sh == nullptr) {
        return NGX_ERROR;
    }
    ctx->shpool->data = ctx->sh;

    // About one bucket per entry the zone can hold (~128 bytes each).
    ngx_uint_t buckets = 64;
    while (buckets < shm_zone->shm.size / 128) {
        buckets <<= 1;
    }
    ctx->sh->buckets = static_cast<CacheNode **>(
        ngx_slab_calloc(ctx->shpool, buckets * sizeof(CacheNode *)));
    if (ctx->sh->buckets == nullptr) {
        return NGX_ERROR;
    }
    ctx->sh->bucket_mask = buckets - 1;
    ngx_queue_init(&ctx->sh->positive);
    ngx_queue_init(&ctx->sh->negative);
    ctx->sh->negative_count = 0;
    ctx->sh->epoch = 1;
    ctx->sh->revision = 0;

    std::size_t len = sizeof(" in auth_token_cache zone \"\"") +
                      shm_zone->shm.name.len;
    ctx->shpool->log_ctx = static_cast<u_char *>(ngx_slab_alloc(ctx->shpool, len));
    if (ctx->shpool->log_ctx == nullptr) {
        return NGX_ERROR;
    }
    ngx_sprintf(ctx->shpool->log_ctx, " in auth_token_cache zone \"%V\"%Z",
                &shm_zone->shm.name);
    ctx->shpool->log_nomem = 0;
    return NGX_OK;
}

CacheContext *context(ngx_shm_zone_t *zone)
{
    return static_cast<CacheContext *>(zone->data);
}

class ZoneLock {
  public:
    explicit ZoneLock(CacheContext *ctx) : ctx_(ctx)
    {
        ngx_shmtx_lock(&ctx_->shpool->mutex);
    }
    ~ZoneLock()
    {
        ngx_shmtx_unlock(&ctx_->shpool->mutex);
    }
    ZoneLock(const ZoneLock &) = delete;
    ZoneLock &operator=(const ZoneLock &) = delete;

  private:
    CacheContext *ctx_;
};

} // namespace

ngx_shm_zone_t *cache_zone_add(ngx_conf_t *cf, ngx_str_t *name, size_t size,
                               void *tag)
{
    ngx_shm_zone_t *zone = ngx_shared_memory_add(cf, name, size, tag);
    if (zone == nullptr) {
        return nullptr;
    }
    if (zone->data == nullptr) {
        auto *ctx = static_cast<CacheContext *>(
            ngx_pcalloc(cf->pool, sizeof(CacheContext)));
        if (ctx == nullptr) {
            return nullptr;
        }
        zone->init = cache_init_zone;
        zone->data = ctx;
    }
    if (size != 0) {
        // A node is about 100 bytes plus the username, in a 128-byte slab.
        context(zone)->negative_max = std::max<ngx_uint_t>(64, size / 10 / 128);
    }
    return zone;
}

bool cache_find_fresh(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                      ngx_pool_t *pool, CachedEntry &out,
                      std::uint64_t &revision)
{
    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    CacheNode *cn = find_locked(ctx, digest);
    if (cn == nullptr || cn->epoch != ctx->sh->epoch ||
        static_cast<ngx_msec_int_t>(cn->valid_until - ngx_current_msec) <= 0 ||
        token_expired(cn)) {
        revision = ctx->sh->revision;
        return false;
    }
    auto now = static_cast<std::uint32_t>(ngx_current_msec);
    if (now - cn->queued_at >= kRequeueInterval) {
        cn->queued_at = now;
        ngx_queue_remove(&cn->queue);
        ngx_queue_insert_head(cn->verdict == CachedVerdict::unknown
                                  ? &ctx->sh->negative
                                  : &ctx->sh->positive,
                              &cn->queue);
    }
    return copy_out(pool, cn, out);
}

bool cache_find_stale(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                      ngx_pool_t *pool, CachedEntry &out)
{
    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    CacheNode *cn = find_locked(ctx, digest);
    if (cn == nullptr || cn->verdict == CachedVerdict::unknown ||
        static_cast<ngx_msec_int_t>(cn->stale_until - ngx_current_msec) <= 0 ||
        token_expired(cn)) {
        return false;
    }
    return copy_out(pool, cn, out);
}

void cache_store(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                 CachedVerdict verdict, ngx_str_t user, ngx_str_t uid,
                 std::int64_t token_expires, const CachePolicy &policy,
                 std::uint64_t revision)
{
    if (user.len > kMaxUser || uid.len > kMaxUid) {
        return; // not worth a special case: such users are simply not cached
    }
    bool negative = verdict == CachedVerdict::unknown;
    ngx_msec_t ttl = negative ? policy.invalid : policy.valid;
    if (ttl == 0) {
        return;
    }
    if (token_expires != 0) {
        // An entry never outlives its token.
        std::int64_t left = token_expires - ngx_time();
        if (left <= 0) {
            return;
        }
        // Compared in seconds: left * 1000 overflows for far-off expiries
        // (up to 18 digits are valid).
        if (left <= static_cast<std::int64_t>(ttl / 1000)) {
            ttl = static_cast<ngx_msec_t>(left) * 1000;
        }
    }

    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    if (ctx->sh->revision != revision) {
        return; // a revocation arrived while this lookup was in flight
    }

    if (CacheNode *old = find_locked(ctx, digest)) {
        delete_locked(ctx, old);
    }
    ngx_queue_t *queue = negative ? &ctx->sh->negative : &ctx->sh->positive;
    expire_locked(ctx, queue, false);
    if (negative && ctx->sh->negative_count >= ctx->negative_max) {
        expire_locked(ctx, queue, true);
    }

    std::size_t size = offsetof(CacheNode, data) + user.len + uid.len;
    auto *cn = static_cast<CacheNode *>(ngx_slab_alloc_locked(ctx->shpool, size));
    while (cn == nullptr) {
        // Out of memory: unknown tokens go first, then the oldest found one.
        if (!expire_locked(ctx, &ctx->sh->negative, true) &&
            !expire_locked(ctx, &ctx->sh->positive, true)) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "could not allocate node%s", ctx->shpool->log_ctx);
            return;
        }
        cn = static_cast<CacheNode *>(ngx_slab_alloc_locked(ctx->shpool, size));
    }

    cn->verdict = verdict;
    cn->user_len = static_cast<u_char>(user.len);
    cn->uid_len = static_cast<u_char>(uid.len);
    cn->queued_at = static_cast<std::uint32_t>(ngx_current_msec);
    cn->epoch = ctx->sh->epoch;
    cn->valid_until = ngx_current_msec + ttl;
    cn->stale_until = cn->valid_until + (negative ? 0 : policy.stale);
    cn->token_expires = token_expires;
    ngx_memcpy(cn->digest, digest.data(), 32);
    ngx_memcpy(cn->data, user.data, user.len);
    ngx_memcpy(cn->data + user.len, uid.data, uid.len);

    CacheNode **bucket = bucket_of(ctx, cn->digest);
    cn->next = *bucket;
    *bucket = cn;
    ngx_queue_insert_head(queue, &cn->queue);
    if (negative) {
        ctx->sh->negative_count++;
    }
}

void cache_remove(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest)
{
    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    ctx->sh->revision++;
    if (CacheNode *cn = find_locked(ctx, digest)) {
        delete_locked(ctx, cn);
    }
}

void cache_invalidate_all(ngx_shm_zone_t *zone)
{
    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    ctx->sh->revision++;
    ctx->sh->epoch++;
}

} // namespace ngx_auth_token
