#include "module/ngx_http_auth_token_cache.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <type_traits>

namespace ngx_auth_token
{
namespace
{

// One entry: a single slab allocation holds the entry and its strings.
//
// Entries are found through a hash table, not limit_req's rbtree: digests
// are uniformly random, so the tree's dozen or more levels are each a cache
// miss in a large zone, while a bucket costs one.
//
// The bucket is picked by SipHash-2-4 (OpenSSL's EVP_MAC "SIPHASH") of the
// digest under a random key made when the zone is created and kept in it
// (so it survives reloads). The digest alone would not do: it is the
// unkeyed SHA-256 of what the client sends, so keys that share a bucket
// could be ground offline once and replayed against every deployment with
// the same zone size, making every lookup of that bucket walk a long chain
// under the zone's mutex.
struct CacheNode {
    CacheNode *next; // in its bucket
    authtoken::TokenVerdict verdict;
    u_char user_len;
    u_char uid_len;
    std::uint32_t queued_at; // ngx_current_msec, truncated, of the last move
    std::uint32_t hash;      // keyed hash of the digest: its bucket
    // auth_token_last_used: when a hit last noted its use (Unix seconds),
    // in what was padding: see cache_find_fresh().
    std::uint32_t noted_at;
    ngx_queue_t queue;
    std::uint64_t epoch;
    ngx_msec_t valid_until;
    ngx_msec_t stale_until;
    std::int64_t token_expires;
    u_char digest[32];
    u_char data[1]; // user, then uid
};

// One note of auth_token_last_used (see the header): `at` 0 marks a free
// slot.
struct NoteSlot {
    u_char digest[32];
    std::uint32_t at;
    u_char family;
    u_char addr[16];
};

struct CacheShared {
    ngx_queue_t positive; // found tokens, most recently used first
    ngx_queue_t negative; // unknown tokens, kept apart and bounded
    ngx_uint_t negative_count;
    ngx_uint_t entries;      // for the metrics
    std::uint64_t evictions; // live entries dropped for room
    std::uint64_t epoch;
    std::uint64_t revision;
    // The highest revocation sequence number applied to this zone, valid
    // once seq_known (set by the first cache_check_sequence()).
    std::uint64_t seq;
    bool seq_known;
    ngx_pid_t subscribers[64]; // 0: free slot
    ngx_uint_t bucket_mask;
    CacheNode **buckets; // bucket_mask + 1 chains, in the zone
    u_char hash_key[16]; // SipHash key, random per zone
    // auth_token_last_used: the notes table (nullptr when no directive
    // wants it), and when the last flush was claimed.
    NoteSlot *notes;
    ngx_uint_t note_mask;
    ngx_msec_t notes_claimed_at;
    bool notes_claimed;
};

// CacheNode and CacheShared live in the shared zone: ngx_slab_alloc()ed and
// filled field by field (never constructed), freed with ngx_slab_free() or
// unmapped by nginx, never destroyed; every worker (and the next cycle's)
// reads them at the same offsets.
static_assert(std::is_standard_layout_v<CacheNode>);
static_assert(std::is_trivial_v<CacheNode>);
static_assert(std::is_trivially_destructible_v<CacheNode>);
static_assert(std::is_standard_layout_v<CacheShared>);
static_assert(std::is_trivial_v<CacheShared>);
static_assert(std::is_trivially_destructible_v<CacheShared>);
static_assert(std::is_trivial_v<NoteSlot>);

struct CacheContext {
    CacheShared *sh;
    ngx_slab_pool_t *shpool;
    // Unknown tokens may take at most a tenth of the zone, so a flood of
    // random keys cannot push the good entries out.
    ngx_uint_t negative_max;
    // This process's SipHash context under sh->hash_key, made on first use
    // (in a worker, after fork) and freed with the cycle's pool.
    EVP_MAC_CTX *mac;
    bool mac_failed;
    // Where the zone was first named, and where it was given its size,
    // for the configuration's error messages.
    ngx_str_t named_in_file;
    ngx_uint_t named_at_line;
    ngx_str_t sized_in_file;
    ngx_uint_t sized_at_line;
    // auth_token_last_used names this zone: it gets a notes table.
    bool notes_wanted;
};

// In the configuration's pool: ngx_pcalloc()ed, never constructed, freed
// with the pool without a destructor (the EVP_MAC_CTX has a pool cleanup
// of its own).
static_assert(std::is_standard_layout_v<CacheContext>);
static_assert(std::is_trivial_v<CacheContext>);
static_assert(std::is_trivially_destructible_v<CacheContext>);

// A hit moves its entry to the head of its queue at most once a second
// (memcached bumps an item at most once a minute, ITEM_UPDATE_INTERVAL, for
// the same reason): eviction stays least-recently-used to within a second,
// and most hits write nothing in the zone, so the two neighbours' cache
// lines stay clean and other workers' copies stay valid.
constexpr std::uint32_t kRequeueInterval = 1000;

constexpr std::size_t kMaxUser = 255;
constexpr std::size_t kMaxUid = 32;

// At most this many entries are evicted (oldest first, unknown tokens
// before found ones) to make room for one new entry, as limit_req's
// ngx_http_limit_req_expire() does; if that is not enough the answer is
// simply not stored. Nodes come in a few slab size classes (by the length
// of the user name), and a class that has no free slot needs a whole free
// page: evicting until one appears could empty most of the zone under the
// lock, because LRU order has nothing to do with pages.
constexpr int kEvictOnFailure = 8;

// auth_token_last_used: the notes table takes this share of the zone, a
// note looks at this many slots from its hash on, and a flush holds the
// zone's lock for at most this many slots at a time.
constexpr std::size_t kNotesShare = 8;
constexpr ngx_uint_t kNoteProbes = 8;
constexpr std::size_t kNotesScanStep = 4096;

// A pool cleanup handler: called from C.
void free_mac(void *data) noexcept
{
    EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX *>(data));
}

// The keyed hash of a digest, computed outside the zone's lock. False if
// OpenSSL cannot provide SipHash (logged once per process): the caller
// then treats the cache as empty and stores nothing.
bool keyed_hash(CacheContext *ctx, const authtoken::Sha256 &digest,
                std::uint32_t &hash)
{
    if (ctx->mac == nullptr) {
        if (ctx->mac_failed) {
            return false;
        }
        ctx->mac_failed = true;
        ngx_pool_cleanup_t *cln = ngx_pool_cleanup_add(ngx_cycle->pool, 0);
        EVP_MAC *mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
        EVP_MAC_CTX *mctx = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
        EVP_MAC_free(mac);
        std::size_t size = 8;
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
            OSSL_PARAM_construct_end()};
        if (cln == nullptr || mctx == nullptr ||
            EVP_MAC_init(mctx, ctx->sh->hash_key, sizeof(ctx->sh->hash_key),
                         params) != 1) {
            EVP_MAC_CTX_free(mctx);
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "auth token cache: SipHash unavailable, "
                          "caching nothing%s",
                          ctx->shpool->log_ctx);
            return false;
        }
        cln->handler = free_mac;
        cln->data = mctx;
        ctx->mac = mctx;
        ctx->mac_failed = false;
    }
    u_char out[8];
    std::size_t out_len = 0;
    // A NULL key restarts SipHash under the key given at creation.
    if (EVP_MAC_init(ctx->mac, nullptr, 0, nullptr) != 1 ||
        EVP_MAC_update(ctx->mac, digest.data(), digest.size()) != 1 ||
        EVP_MAC_final(ctx->mac, out, &out_len, sizeof(out)) != 1) {
        return false;
    }
    std::memcpy(&hash, out, sizeof(hash));
    return true;
}

CacheNode **bucket_of(CacheContext *ctx, std::uint32_t hash)
{
    return &ctx->sh->buckets[hash & ctx->sh->bucket_mask];
}

CacheNode *find_locked(CacheContext *ctx, const authtoken::Sha256 &digest,
                       std::uint32_t hash)
{
    ngx_uint_t walked = 0;
    for (CacheNode *cn = *bucket_of(ctx, hash); cn != nullptr; cn = cn->next) {
        walked++;
        if (std::memcmp(cn->digest, digest.data(), 32) == 0) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                           "auth token cache: found after %ui in bucket",
                           walked);
            return cn;
        }
    }
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "auth token cache: not found after %ui in bucket", walked);
    return nullptr;
}

void delete_locked(CacheContext *ctx, CacheNode *cn)
{
    ngx_queue_remove(&cn->queue);
    ctx->sh->entries--;
    if (!authtoken::names_user(cn->verdict)) {
        ctx->sh->negative_count--;
    }
    for (CacheNode **link = bucket_of(ctx, cn->hash); *link != nullptr;
         link = &(*link)->next) {
        if (*link == cn) {
            *link = cn->next;
            break;
        }
    }
    ngx_slab_free_locked(ctx->shpool, cn);
}

// Deletes an entry to make room; one still useful (within valid + stale) is
// an eviction for the metrics.
void evict_locked(CacheContext *ctx, CacheNode *cn)
{
    if (static_cast<ngx_msec_int_t>(cn->stale_until - ngx_current_msec) > 0) {
        ctx->sh->evictions++;
    }
    delete_locked(ctx, cn);
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
        evict_locked(ctx, cn);
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

// The one guard that keeps an entry from outliving its token's `expires`
// (Unix seconds, 0 for never), with the same `<=` as judge_token_record():
// valid= and stale= are not clamped to it.
bool token_expired(const CacheNode *cn)
{
    return cn->token_expires != 0 && cn->token_expires <= ngx_time();
}

// The notes table, a power of two of slots in about kNotesShare of the
// zone, if the configuration wants one and the zone has none yet. A zone
// kept across a reload may be too full for it: then the reload goes on
// without notes (logged; every note is dropped and counted) rather than
// failing.
ngx_int_t add_notes_table(ngx_shm_zone_t *shm_zone, CacheContext *ctx)
{
    if (!ctx->notes_wanted || ctx->sh->notes != nullptr) {
        return NGX_OK;
    }
    ngx_uint_t slots = 64;
    while (slots * 2 * sizeof(NoteSlot) <= shm_zone->shm.size / kNotesShare) {
        slots <<= 1;
    }
    auto *notes = static_cast<NoteSlot *>(
        ngx_slab_calloc(ctx->shpool, slots * sizeof(NoteSlot)));
    if (notes == nullptr) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "auth token cache: no room for the %ui-slot last-used "
                      "table%s, uses are not recorded",
                      slots, ctx->shpool->log_ctx);
        return NGX_OK;
    }
    ngx_shmtx_lock(&ctx->shpool->mutex);
    ctx->sh->note_mask = slots - 1;
    ctx->sh->notes = notes;
    ngx_shmtx_unlock(&ctx->shpool->mutex);
    return NGX_OK;
}

// Notes a use in the slot that holds the digest's note, or the first free
// one of its kNoteProbes candidates; false (dropped) when there is none.
// A note that says the same already is not written again, so that a
// token's hits within one second leave its cache line clean.
bool note_locked(CacheContext *ctx, const authtoken::Sha256 &digest,
                 std::uint32_t hash, const UseNote &use)
{
    NoteSlot *notes = ctx->sh->notes;
    if (notes == nullptr) {
        return false;
    }
    NoteSlot *slot = nullptr;
    for (ngx_uint_t i = 0; i < kNoteProbes; i++) {
        NoteSlot *s = &notes[(hash + i) & ctx->sh->note_mask];
        if (s->at == 0) {
            if (slot == nullptr) {
                slot = s;
            }
        } else if (std::memcmp(s->digest, digest.data(), 32) == 0) {
            slot = s;
            break;
        }
    }
    if (slot == nullptr) {
        return false;
    }
    if (slot->at == use.at && slot->family == use.family &&
        std::memcmp(slot->addr, use.addr, sizeof(use.addr)) == 0) {
        return true;
    }
    ngx_memcpy(slot->digest, digest.data(), 32);
    slot->at = use.at;
    slot->family = use.family;
    ngx_memcpy(slot->addr, use.addr, sizeof(use.addr));
    return true;
}

ngx_int_t cache_init_zone(ngx_shm_zone_t *shm_zone, void *data) noexcept
{
    auto *octx = static_cast<CacheContext *>(data);
    auto *ctx = static_cast<CacheContext *>(shm_zone->data);

    if (octx != nullptr) {
        // A reload: keep the entries the old workers built.
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return add_notes_table(shm_zone, ctx);
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
    if (RAND_bytes(ctx->sh->hash_key, sizeof(ctx->sh->hash_key)) != 1) {
        ngx_log_error(NGX_LOG_EMERG, ngx_cycle->log, 0,
                      "auth token cache: RAND_bytes() failed for zone \"%V\"",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }
    ngx_queue_init(&ctx->sh->positive);
    ngx_queue_init(&ctx->sh->negative);
    ctx->sh->negative_count = 0;
    ctx->sh->entries = 0;
    ctx->sh->evictions = 0;
    ctx->sh->epoch = 1;
    ctx->sh->revision = 0;
    ctx->sh->seq = 0;
    ctx->sh->seq_known = false;
    ngx_memzero(ctx->sh->subscribers, sizeof(ctx->sh->subscribers));
    ctx->sh->notes = nullptr;
    ctx->sh->note_mask = 0;
    ctx->sh->notes_claimed_at = 0;
    ctx->sh->notes_claimed = false;

    std::size_t len =
        sizeof(" in auth_token_cache zone \"\"") + shm_zone->shm.name.len;
    ctx->shpool->log_ctx =
        static_cast<u_char *>(ngx_slab_alloc(ctx->shpool, len));
    if (ctx->shpool->log_ctx == nullptr) {
        return NGX_ERROR;
    }
    ngx_sprintf(ctx->shpool->log_ctx, " in auth_token_cache zone \"%V\"%Z",
                &shm_zone->shm.name);
    ctx->shpool->log_nomem = 0;
    return add_notes_table(shm_zone, ctx);
}

CacheContext *context(ngx_shm_zone_t *zone)
{
    return static_cast<CacheContext *>(zone->data);
}

class ZoneLock
{
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

// The zone `name` of this cycle, or nullptr when no directive named it yet.
ngx_shm_zone_t *find_zone(ngx_conf_t *cf, const ngx_str_t &name) noexcept
{
    ngx_list_part_t *part = &cf->cycle->shared_memory.part;
    auto *zones = static_cast<ngx_shm_zone_t *>(part->elts);
    for (ngx_uint_t i = 0; /* void */; i++) {
        if (i >= part->nelts) {
            if (part->next == nullptr) {
                return nullptr;
            }
            part = part->next;
            zones = static_cast<ngx_shm_zone_t *>(part->elts);
            i = 0;
        }
        if (zones[i].shm.name.len == name.len &&
            ngx_strncmp(zones[i].shm.name.data, name.data, name.len) == 0) {
            return &zones[i];
        }
    }
}

// Where the directive being parsed is, kept for the cycle (an included
// file's name may not outlive its parse).
bool note_place(ngx_conf_t *cf, ngx_str_t &file, ngx_uint_t &line) noexcept
{
    file.len = cf->conf_file->file.name.len;
    file.data = ngx_pstrdup(cf->pool, &cf->conf_file->file.name);
    line = cf->conf_file->line;
    return file.data != nullptr || file.len == 0;
}

} // namespace

ngx_shm_zone_t *cache_zone_add(ngx_conf_t *cf, const ngx_str_t &directive,
                               ngx_str_t *name, size_t size, void *tag) noexcept
{
    // nginx's own checks (ngx_shared_memory_add) would refuse these too,
    // but without naming the directive or where the zone was sized.
    ngx_shm_zone_t *zone = find_zone(cf, *name);
    if (zone != nullptr && zone->tag != tag) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" of \"%V\" is already declared for "
                           "a different use",
                           name, &directive);
        return nullptr;
    }
    if (zone != nullptr && size != 0 && zone->shm.size != 0 &&
        size != zone->shm.size) {
        auto *ctx = context(zone);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" of \"%V\" is %uz bytes here but "
                           "%uz in %V:%ui; give its size in one place only",
                           name, &directive, size, zone->shm.size,
                           &ctx->sized_in_file, ctx->sized_at_line);
        return nullptr;
    }

    zone = ngx_shared_memory_add(cf, name, size, tag);
    if (zone == nullptr) {
        return nullptr;
    }
    if (zone->data == nullptr) {
        auto *ctx = static_cast<CacheContext *>(
            ngx_pcalloc(cf->pool, sizeof(CacheContext)));
        if (ctx == nullptr) {
            return nullptr;
        }
        if (!note_place(cf, ctx->named_in_file, ctx->named_at_line)) {
            return nullptr;
        }
        zone->init = cache_init_zone;
        zone->data = ctx;
    }
    auto *ctx = context(zone);
    if (size != 0 && ctx->sized_at_line == 0) {
        if (!note_place(cf, ctx->sized_in_file, ctx->sized_at_line)) {
            return nullptr;
        }
        // A node is about 100 bytes plus the username, in a 128-byte slab.
        ctx->negative_max = std::max<ngx_uint_t>(64, size / 10 / 128);
    }
    return zone;
}

bool cache_zone_check_size(ngx_conf_t *cf, const ngx_str_t &directive,
                           ngx_shm_zone_t *zone) noexcept
{
    if (zone->shm.size != 0) {
        return true;
    }
    auto *ctx = context(zone);
    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "zone \"%V\" of \"%V\" in %V:%ui has no size; give it "
                  "one in one of its \"%V\" directives (zone=%V:10m)",
                  &zone->shm.name, &directive, &ctx->named_in_file,
                  ctx->named_at_line, &directive, &zone->shm.name);
    return false;
}

bool cache_find_fresh(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                      ngx_pool_t *pool, CachedEntry &out,
                      std::uint64_t &revision, const UseNote *use,
                      std::uint32_t note_window, bool *use_noted) noexcept
{
    CacheContext *ctx = context(zone);
    std::uint32_t hash;
    if (!keyed_hash(ctx, digest, hash)) {
        revision = 0;
        return false; // and cache_store() will store nothing
    }
    ZoneLock lock(ctx);
    CacheNode *cn = find_locked(ctx, digest, hash);
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
        ngx_queue_insert_head(authtoken::names_user(cn->verdict)
                                  ? &ctx->sh->positive
                                  : &ctx->sh->negative,
                              &cn->queue);
    }
    if (use != nullptr && cn->verdict == authtoken::TokenVerdict::valid) {
        // A use within `note_window` of the one this entry last noted is
        // taken as noted: the notes table is another random line of memory
        // per hit, which most hits of a busy token then never touch (as the
        // LRU move above, and memcached's ITEM_UPDATE_INTERVAL).
        if (use->at - cn->noted_at < note_window) {
            *use_noted = true;
        } else {
            *use_noted = note_locked(ctx, digest, hash, *use);
            if (*use_noted) {
                cn->noted_at = use->at;
            }
        }
    }
    return copy_out(pool, cn, out);
}

bool cache_find_stale(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                      ngx_pool_t *pool, CachedEntry &out) noexcept
{
    CacheContext *ctx = context(zone);
    std::uint32_t hash;
    if (!keyed_hash(ctx, digest, hash)) {
        return false;
    }
    ZoneLock lock(ctx);
    CacheNode *cn = find_locked(ctx, digest, hash);
    if (cn == nullptr || !authtoken::names_user(cn->verdict) ||
        static_cast<ngx_msec_int_t>(cn->stale_until - ngx_current_msec) <= 0 ||
        token_expired(cn)) {
        return false;
    }
    return copy_out(pool, cn, out);
}

void cache_store(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                 authtoken::TokenJudgement judgement, ngx_str_t user,
                 ngx_str_t uid, const CachePolicy &policy,
                 std::uint64_t revision) noexcept
{
    if (judgement.verdict == authtoken::TokenVerdict::malformed) {
        return; // an error, not an answer
    }
    if (user.len > kMaxUser || uid.len > kMaxUid) {
        return; // not worth a special case: such users are simply not cached
    }
    std::int64_t token_expires = judgement.expires;
    bool negative = !authtoken::names_user(judgement.verdict);
    ngx_msec_t ttl = negative ? policy.invalid : policy.valid;
    if (ttl == 0) {
        return;
    }
    if (token_expires != 0 && token_expires <= ngx_time()) {
        return; // see token_expired()
    }

    CacheContext *ctx = context(zone);
    std::uint32_t hash;
    if (!keyed_hash(ctx, digest, hash)) {
        return;
    }
    ZoneLock lock(ctx);
    if (ctx->sh->revision != revision) {
        return; // a revocation arrived while this lookup was in flight
    }

    if (CacheNode *old = find_locked(ctx, digest, hash)) {
        delete_locked(ctx, old);
    }
    ngx_queue_t *queue = negative ? &ctx->sh->negative : &ctx->sh->positive;
    expire_locked(ctx, queue, false);
    if (negative && ctx->sh->negative_count >= ctx->negative_max) {
        expire_locked(ctx, queue, true);
    }

    std::size_t size = offsetof(CacheNode, data) + user.len + uid.len;
    auto *cn =
        static_cast<CacheNode *>(ngx_slab_alloc_locked(ctx->shpool, size));
    for (int evicted = 0; cn == nullptr && evicted < kEvictOnFailure;) {
        // Out of memory: unknown tokens go first, then the oldest found one.
        ngx_queue_t *victims = !ngx_queue_empty(&ctx->sh->negative)
                                   ? &ctx->sh->negative
                                   : &ctx->sh->positive;
        if (ngx_queue_empty(victims)) {
            break;
        }
        evict_locked(ctx,
                     ngx_queue_data(ngx_queue_last(victims), CacheNode, queue));
        evicted++;
        cn = static_cast<CacheNode *>(ngx_slab_alloc_locked(ctx->shpool, size));
    }
    if (cn == nullptr) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "auth token cache: no room for a %uz-byte entry after "
                      "evicting %d%s",
                      size, kEvictOnFailure, ctx->shpool->log_ctx);
        return;
    }

    cn->verdict = judgement.verdict;
    cn->user_len = static_cast<u_char>(user.len);
    cn->uid_len = static_cast<u_char>(uid.len);
    cn->queued_at = static_cast<std::uint32_t>(ngx_current_msec);
    cn->hash = hash;
    cn->noted_at = 0;
    cn->epoch = ctx->sh->epoch;
    cn->valid_until = ngx_current_msec + ttl;
    cn->stale_until = cn->valid_until + (negative ? 0 : policy.stale);
    cn->token_expires = token_expires;
    ngx_memcpy(cn->digest, digest.data(), 32);
    ngx_memcpy(cn->data, user.data, user.len);
    ngx_memcpy(cn->data + user.len, uid.data, uid.len);

    CacheNode **bucket = bucket_of(ctx, hash);
    cn->next = *bucket;
    *bucket = cn;
    ngx_queue_insert_head(queue, &cn->queue);
    ctx->sh->entries++;
    if (negative) {
        ctx->sh->negative_count++;
    }
}

void cache_remove(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                  std::uint64_t seq) noexcept
{
    CacheContext *ctx = context(zone);
    std::uint32_t hash;
    bool hashed = keyed_hash(ctx, digest, hash);
    ZoneLock lock(ctx);
    ctx->sh->revision++;
    if (seq > ctx->sh->seq) {
        ctx->sh->seq = seq;
    }
    if (!hashed) {
        ctx->sh->epoch++; // cannot find it: let nothing be a hit
        return;
    }
    if (CacheNode *cn = find_locked(ctx, digest, hash)) {
        delete_locked(ctx, cn);
    }
}

bool cache_check_sequence(ngx_shm_zone_t *zone, std::uint64_t current) noexcept
{
    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    if (!ctx->sh->seq_known) {
        ctx->sh->seq_known = true;
        ctx->sh->seq = current;
        return false;
    }
    // A sequence below the zone's is not a gap: messages published after
    // the read may have been applied before the PING's answer.
    if (current <= ctx->sh->seq) {
        return false;
    }
    ctx->sh->seq = current;
    ctx->sh->revision++;
    ctx->sh->epoch++;
    return true;
}

ngx_pid_t cache_subscriber_join(ngx_shm_zone_t *zone, ngx_pid_t pid) noexcept
{
    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    ngx_pid_t dead = 0;
    ngx_pid_t *free_slot = nullptr;
    for (ngx_pid_t &slot : ctx->sh->subscribers) {
        if (slot != 0 && slot != pid && kill(slot, 0) == -1 &&
            ngx_errno == NGX_ESRCH) {
            dead = slot;
            slot = 0;
        }
        if (slot == pid) {
            free_slot = &slot;
        } else if (slot == 0 && free_slot == nullptr) {
            free_slot = &slot;
        }
    }
    if (free_slot != nullptr) {
        *free_slot = pid;
    }
    if (dead != 0) {
        ctx->sh->revision++;
        ctx->sh->epoch++;
    }
    return dead;
}

void cache_subscriber_leave(ngx_shm_zone_t *zone, ngx_pid_t pid) noexcept
{
    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    for (ngx_pid_t &slot : ctx->sh->subscribers) {
        if (slot == pid) {
            slot = 0;
        }
    }
}

void cache_stats(ngx_shm_zone_t *zone, CacheStats &out) noexcept
{
    CacheContext *ctx = context(zone);
    ngx_slab_pool_t *shpool = ctx->shpool;
    ZoneLock lock(ctx);
    out.entries = ctx->sh->entries;
    out.evictions = ctx->sh->evictions;
    out.size_bytes = zone->shm.size;
    std::size_t pages = shpool->last - shpool->pages;
    out.used_bytes = (pages - shpool->pfree) * ngx_pagesize;
}

void cache_zone_want_notes(ngx_shm_zone_t *zone) noexcept
{
    context(zone)->notes_wanted = true;
}

bool cache_note_use(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                    const UseNote &use) noexcept
{
    CacheContext *ctx = context(zone);
    std::uint32_t hash;
    if (!keyed_hash(ctx, digest, hash)) {
        return false;
    }
    ZoneLock lock(ctx);
    return note_locked(ctx, digest, hash, use);
}

bool cache_notes_claim(ngx_shm_zone_t *zone, ngx_msec_t interval) noexcept
{
    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    if (ctx->sh->notes == nullptr) {
        return false;
    }
    if (ctx->sh->notes_claimed &&
        ngx_current_msec - ctx->sh->notes_claimed_at < interval) {
        return false;
    }
    ctx->sh->notes_claimed = true;
    ctx->sh->notes_claimed_at = ngx_current_msec;
    return true;
}

std::size_t cache_notes_slots(ngx_shm_zone_t *zone) noexcept
{
    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    return ctx->sh->notes != nullptr ? ctx->sh->note_mask + 1 : 0;
}

std::size_t cache_notes_take(ngx_shm_zone_t *zone, std::size_t &cursor,
                             TakenNote *out, std::size_t max) noexcept
{
    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    NoteSlot *notes = ctx->sh->notes;
    if (notes == nullptr) {
        return 0;
    }
    std::size_t end =
        std::min<std::size_t>(ctx->sh->note_mask + 1, cursor + kNotesScanStep);
    std::size_t n = 0;
    for (; cursor < end && n < max; cursor++) {
        NoteSlot &s = notes[cursor];
        if (s.at == 0) {
            continue;
        }
        ngx_memcpy(out[n].digest.data(), s.digest, 32);
        out[n].use.at = s.at;
        out[n].use.family = s.family;
        ngx_memcpy(out[n].use.addr, s.addr, sizeof(s.addr));
        s.at = 0;
        n++;
    }
    return n;
}

void cache_invalidate_all(ngx_shm_zone_t *zone) noexcept
{
    CacheContext *ctx = context(zone);
    ZoneLock lock(ctx);
    ctx->sh->revision++;
    ctx->sh->epoch++;
}

} // namespace ngx_auth_token
