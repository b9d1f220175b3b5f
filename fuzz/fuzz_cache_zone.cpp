// The module's token cache zone (src/module/ngx_http_auth_token_cache.*),
// driven by a sequence of operations and checked against a reference model
// written from the header's and docs/ngx_http_auth_token_module.md's
// promises, not from the .cpp.
//
// What is real and what stands in: the cache code is the production file,
// compiled against the configured nginx tree's headers. Debian's nginx-dev
// ships headers only, no nginx .c files, so the few nginx core functions
// the cache calls are small stand-ins here (below, extern "C"):
//   - the slab allocator: a page-budgeted allocator with ngx_slab.c's size
//     classes (powers of two from 8 bytes to half a page, whole pages
//     above), so that a zone fills up, stores fail and eviction runs as in
//     nginx; it keeps the ngx_slab_pool_t fields cache_stats() reads
//     (pages, last, pfree) as ngx_slab.c does;
//   - the zone mutex: a flag that checks every lock is released before the
//     next one is taken and that *_locked calls happen under the lock;
//   - pools (ngx_pnalloc, ngx_pcalloc, cleanups), ngx_sprintf's %V/%Z,
//     the log, the clock (ngx_current_msec, ngx_time()).
//
// The input: byte 0 picks the zone size (8..71 pages), then operations, one
// command byte each, on 128 digests (so that keys repeat):
//   lookup k          cache_find_fresh(); a miss leaves a pending lookup
//                     holding the revision it returned
//   answer p verdict  cache_store() for pending lookup p, under that
//                     revision, with a user/uid, token expiry and policy
//   stale k           cache_find_stale()
//   revoke k seq      cache_remove()
//   check seq         cache_check_sequence()
//   invalidate        cache_invalidate_all()
//   tick ms           the clock moves forward (and ngx_time() with it)
//
// Invariants (misses are always allowed: it is a cache):
//   - a fresh hit is the last answer stored for the key after its last
//     revocation and after the last invalidation, by a lookup that began
//     after both (its revision was still current), not past valid= (or
//     invalid=) and not past the token's own expiry (expires <= now:
//     expired, as judge_token_record() says);
//   - a stale hit is such an answer of any epoch, never an unknown token,
//     within valid + stale and before the token's expiry;
//   - cache_check_sequence() invalidates exactly when a number above every
//     one applied is seen, never on the zone's first check;
//   - entries (stats) never exceed the keys the model holds; used bytes
//     never exceed the zone; at most 64 (or a tenth of the zone) unknown
//     tokens are fresh hits at once; one store drops at most
//     1 + 2 + 2 + 8 entries (the replaced one, limit_req-style expiry of
//     two, two forced out of the unknown share, kEvictOnFailure) and counts
//     at most 1 + 8 of them as evictions;
//   - the zone's lock is never left held nor taken twice.
#include "fuzz_support.h"
#include "module/ngx_http_auth_token_cache.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

using authtoken::TokenVerdict;
using ngx_auth_token::CachedEntry;
using ngx_auth_token::CachePolicy;
using ngx_auth_token::CacheStats;

// --- stand-ins for the nginx core functions the cache calls -------------

namespace
{

bool g_locked = false;

// One pool: every allocation and cleanup, released by pool_destroy().
struct FakePool {
    std::vector<void *> blocks;
    std::vector<ngx_pool_cleanup_t *> cleanups;
};
std::map<ngx_pool_t *, FakePool> g_pools;

// The slab stand-in's bookkeeping, per zone (one zone per input).
struct FakeSlab {
    ngx_uint_t npages = 0;
    std::map<void *, std::size_t> live;        // pointer -> size class (bytes)
    std::map<std::size_t, std::size_t> chunks; // size class -> chunks in use
    std::size_t large_pages = 0;
    std::vector<ngx_slab_page_t> pages;
};
FakeSlab g_slab;

std::size_t size_class(std::size_t size)
{
    std::size_t c = 8;
    while (c < size) {
        c <<= 1;
    }
    return c;
}

std::size_t pages_in_use()
{
    std::size_t n = g_slab.large_pages;
    for (auto &[c, used] : g_slab.chunks) {
        if (c <= ngx_pagesize / 2) {
            std::size_t per_page = ngx_pagesize / c;
            n += (used + per_page - 1) / per_page;
        }
    }
    return n;
}

void *slab_alloc(ngx_slab_pool_t *pool, std::size_t size)
{
    FUZZ_CHECK(size > 0, "zero-byte slab allocation");
    std::size_t c = size <= ngx_pagesize / 2 ? size_class(size)
                                             : (size + ngx_pagesize - 1) /
                                                   ngx_pagesize * ngx_pagesize;
    if (c <= ngx_pagesize / 2) {
        g_slab.chunks[c]++;
    } else {
        g_slab.large_pages += c / ngx_pagesize;
    }
    if (pages_in_use() > g_slab.npages) {
        if (c <= ngx_pagesize / 2) {
            g_slab.chunks[c]--;
        } else {
            g_slab.large_pages -= c / ngx_pagesize;
        }
        return nullptr;
    }
    void *p = std::malloc(c);
    FUZZ_CHECK(p != nullptr, "malloc");
    g_slab.live[p] = c;
    pool->pfree = g_slab.npages - pages_in_use();
    return p;
}

void slab_free(ngx_slab_pool_t *pool, void *p)
{
    auto it = g_slab.live.find(p);
    FUZZ_CHECK(it != g_slab.live.end(), "slab free of a pointer not allocated");
    std::size_t c = it->second;
    if (c <= ngx_pagesize / 2) {
        g_slab.chunks[c]--;
    } else {
        g_slab.large_pages -= c / ngx_pagesize;
    }
    g_slab.live.erase(it);
    std::free(p);
    pool->pfree = g_slab.npages - pages_in_use();
}

void *pool_alloc(ngx_pool_t *pool, std::size_t size)
{
    void *p = std::calloc(1, size ? size : 1);
    FUZZ_CHECK(p != nullptr, "calloc");
    g_pools[pool].blocks.push_back(p);
    return p;
}

void pool_destroy(ngx_pool_t *pool)
{
    auto it = g_pools.find(pool);
    if (it == g_pools.end()) {
        return;
    }
    for (auto c = it->second.cleanups.rbegin(); c != it->second.cleanups.rend();
         ++c) {
        if ((*c)->handler != nullptr) {
            (*c)->handler((*c)->data);
        }
    }
    for (void *p : it->second.blocks) {
        std::free(p);
    }
    g_pools.erase(it);
}

ngx_time_t g_time;
ngx_log_t g_log;
ngx_cycle_t g_cycle;
ngx_pool_t g_cycle_pool;

} // namespace

extern "C" {

volatile ngx_cycle_t *ngx_cycle = &g_cycle;
volatile ngx_msec_t ngx_current_msec;
volatile ngx_time_t *ngx_cached_time = &g_time;
ngx_uint_t ngx_pagesize = 4096;

void ngx_log_error_core(ngx_uint_t, ngx_log_t *, ngx_err_t, const char *, ...)
{
}

void ngx_shmtx_lock(ngx_shmtx_t *)
{
    FUZZ_CHECK(!g_locked, "the zone's lock taken twice");
    g_locked = true;
}

void ngx_shmtx_unlock(ngx_shmtx_t *)
{
    FUZZ_CHECK(g_locked, "the zone's lock released while not held");
    g_locked = false;
}

void *ngx_slab_alloc(ngx_slab_pool_t *pool, size_t size)
{
    FUZZ_CHECK(!g_locked, "ngx_slab_alloc() under the zone's lock");
    return slab_alloc(pool, size);
}

void *ngx_slab_calloc(ngx_slab_pool_t *pool, size_t size)
{
    FUZZ_CHECK(!g_locked, "ngx_slab_calloc() under the zone's lock");
    void *p = slab_alloc(pool, size);
    if (p != nullptr) {
        std::memset(p, 0, size);
    }
    return p;
}

void *ngx_slab_alloc_locked(ngx_slab_pool_t *pool, size_t size)
{
    FUZZ_CHECK(g_locked, "ngx_slab_alloc_locked() without the zone's lock");
    return slab_alloc(pool, size);
}

void ngx_slab_free_locked(ngx_slab_pool_t *pool, void *p)
{
    FUZZ_CHECK(g_locked, "ngx_slab_free_locked() without the zone's lock");
    slab_free(pool, p);
}

void *ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return pool_alloc(pool, size);
}

void *ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    return pool_alloc(pool, size);
}

ngx_pool_cleanup_t *ngx_pool_cleanup_add(ngx_pool_t *p, size_t size)
{
    auto *c = static_cast<ngx_pool_cleanup_t *>(
        pool_alloc(p, sizeof(ngx_pool_cleanup_t)));
    c->data = size ? pool_alloc(p, size) : nullptr;
    g_pools[p].cleanups.push_back(c);
    return c;
}

// Only the conversions the cache uses: %V (ngx_str_t *) and %Z (NUL).
u_char *ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    for (const char *f = fmt; *f != '\0'; f++) {
        if (*f != '%') {
            *buf++ = static_cast<u_char>(*f);
            continue;
        }
        f++;
        if (*f == 'V') {
            auto *s = va_arg(args, ngx_str_t *);
            buf = static_cast<u_char *>(std::memcpy(buf, s->data, s->len)) +
                  s->len;
        } else if (*f == 'Z') {
            *buf++ = '\0';
        } else {
            fuzz::fail("ngx_sprintf stand-in",
                       std::string("unsupported %") + *f);
        }
    }
    va_end(args);
    return buf;
}

u_char *ngx_pstrdup(ngx_pool_t *pool, ngx_str_t *src)
{
    auto *dst = static_cast<u_char *>(pool_alloc(pool, src->len + 1));
    std::memcpy(dst, src->data, src->len);
    return dst;
}

// cache_zone_add()'s refusals; the run names one zone once, so any call
// is a fault.
void ngx_conf_log_error(ngx_uint_t, ngx_conf_t *, ngx_err_t, const char *fmt,
                        ...)
{
    fuzz::fail("cache_zone_add", std::string("refused: ") + fmt);
}

ngx_shm_zone_t *ngx_shared_memory_add(ngx_conf_t *cf, ngx_str_t *name,
                                      size_t size, void *tag)
{
    auto *zone = static_cast<ngx_shm_zone_t *>(
        pool_alloc(cf->pool, sizeof(ngx_shm_zone_t)));
    zone->shm.size = size;
    zone->shm.name = *name;
    zone->tag = tag;
    return zone;
}

} // extern "C"

// --- the reference model -------------------------------------------------

namespace
{

constexpr int kKeys = 128;
constexpr time_t kStartSec = 1'700'000'000;

struct Answer {
    TokenVerdict verdict;
    std::string user;
    std::string uid;
    ngx_msec_t valid_until;
    ngx_msec_t stale_until;
    std::int64_t token_expires;
    std::uint64_t epoch; // the model's epoch when stored
};

struct Pending {
    int key;
    std::uint64_t revision; // what cache_find_fresh() said
    std::uint64_t changes;  // the model's count of changes at that time
};

struct Model {
    std::map<int, Answer> answers; // removed on revocation only
    std::uint64_t epoch = 0;
    std::uint64_t changes = 0; // revocations and invalidations
    bool seq_known = false;
    std::uint64_t seq = 0;
};

authtoken::Sha256 digest_of(int key)
{
    authtoken::Sha256 d{};
    // Digests that share a prefix and differ late, as real ones never do.
    d[31] = static_cast<unsigned char>(key);
    d[0] = static_cast<unsigned char>(key % 3);
    return d;
}

std::string str(const ngx_str_t &s)
{
    return std::string(reinterpret_cast<const char *>(s.data), s.len);
}

bool before(ngx_msec_t now, ngx_msec_t until)
{
    return static_cast<ngx_msec_int_t>(until - now) > 0;
}

bool token_live(const Answer &a, time_t now)
{
    return a.token_expires == 0 || a.token_expires > now;
}

std::string describe(int key, const CachedEntry &got, const Model &m)
{
    std::string s = "key " + std::to_string(key) + " answered verdict " +
                    std::to_string(static_cast<int>(got.verdict)) + " user " +
                    fuzz::repr(str(got.user)) + " uid " +
                    fuzz::repr(str(got.uid)) + " at msec " +
                    std::to_string(ngx_current_msec) + " sec " +
                    std::to_string(ngx_time()) + "; model: ";
    auto it = m.answers.find(key);
    if (it == m.answers.end()) {
        return s + "no answer allowed (never stored, or revoked)";
    }
    const Answer &a = it->second;
    return s + "verdict " + std::to_string(static_cast<int>(a.verdict)) +
           " user " + fuzz::repr(a.user) + " valid_until " +
           std::to_string(a.valid_until) + " stale_until " +
           std::to_string(a.stale_until) + " token_expires " +
           std::to_string(a.token_expires) + " epoch " +
           std::to_string(a.epoch) + " (current " + std::to_string(m.epoch) +
           ")";
}

bool same(const CachedEntry &got, const Answer &a)
{
    return got.verdict == a.verdict && str(got.user) == a.user &&
           str(got.uid) == a.uid;
}

void run(const std::uint8_t *data, std::size_t size)
{
    fuzz::Input in(data, size);

    g_time.sec = kStartSec;
    g_time.msec = 0;
    ngx_current_msec = 5'000'000;
    ngx_memzero(&g_log, sizeof(g_log));
    g_log.log_level = NGX_LOG_EMERG; // nothing reaches the (empty) writer
    g_cycle.log = &g_log;
    g_cycle.pool = &g_cycle_pool;
    ngx_pool_t conf_pool{};
    // No zone declared yet (cache_zone_add looks for one of the same
    // name), and a place for its messages.
    g_cycle.shared_memory = ngx_list_t{};
    ngx_conf_file_t conf_file{};
    conf_file.file.name = ngx_string("fuzz.conf");
    conf_file.line = 1;
    ngx_conf_t cf{};
    cf.pool = &conf_pool;
    cf.log = &g_log;
    cf.cycle = &g_cycle;
    cf.conf_file = &conf_file;

    // The zone, laid out as ngx_init_zone_pool() leaves it: the slab pool
    // header at the start of the shared memory, its data free for the
    // cache.
    ngx_uint_t zone_pages = 8 + in.byte() % 64;
    std::size_t zone_size = zone_pages * ngx_pagesize;
    ngx_str_t name = ngx_string("fuzz");
    static const ngx_str_t directive = ngx_string("auth_token_cache");
    static int tag;
    ngx_shm_zone_t *zone =
        ngx_auth_token::cache_zone_add(&cf, directive, &name, zone_size, &tag);
    FUZZ_CHECK(zone != nullptr && zone->init != nullptr, "cache_zone_add");
    std::vector<u_char> shm(zone_size);
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(shm.data());
    ngx_memzero(shpool, sizeof(*shpool));
    g_slab = FakeSlab{};
    // As ngx_slab_init(): the header and the page descriptors take their
    // share of the zone before the first page.
    g_slab.npages = (zone_size - sizeof(ngx_slab_pool_t)) /
                        (ngx_pagesize + sizeof(ngx_slab_page_t)) -
                    1;
    g_slab.pages.resize(g_slab.npages);
    shpool->pages = g_slab.pages.data();
    shpool->last = shpool->pages + g_slab.npages;
    shpool->pfree = g_slab.npages;
    shpool->addr = shm.data();
    shpool->end = shm.data() + zone_size;
    zone->shm.addr = shm.data();
    zone->shm.exists = 0;
    FUZZ_CHECK(zone->init(zone, nullptr) == NGX_OK, "the zone's init");
    // cache_zone_add()'s share for unknown tokens, as documented there.
    std::size_t negative_max = std::max<std::size_t>(64, zone_size / 10 / 128);

    Model m;
    std::vector<Pending> pending;
    ngx_pool_t request_pool{};

    while (!in.empty()) {
        FUZZ_CHECK(!g_locked, "the zone's lock left held");
        std::uint8_t op = in.byte();
        switch (op % 8) {
        case 0:
        case 1: { // lookup
            int key = in.byte() % kKeys;
            CachedEntry got{};
            std::uint64_t revision = 0;
            if (ngx_auth_token::cache_find_fresh(
                    zone, digest_of(key), &request_pool, got, revision)) {
                auto it = m.answers.find(key);
                bool ok = it != m.answers.end() && same(got, it->second) &&
                          it->second.epoch == m.epoch &&
                          before(ngx_current_msec, it->second.valid_until) &&
                          token_live(it->second, ngx_time());
                FUZZ_CHECK(ok,
                           "fresh hit not allowed: " + describe(key, got, m));
            } else if (pending.size() < 16) {
                pending.push_back({key, revision, m.changes});
            }
            break;
        }
        case 2:
        case 3: { // the answer of a pending lookup arrives
            if (pending.empty()) {
                break;
            }
            std::size_t p = in.byte() % pending.size();
            Pending pl = pending[p];
            pending.erase(pending.begin() + p);
            std::uint8_t v = in.byte();
            // valid, inactive, unknown or expired: what the module stores
            auto verdict = static_cast<TokenVerdict>(1 + (v & 0x7f) % 4);
            bool unknown = !authtoken::names_user(verdict);
            std::string user = unknown ? std::string() : in.short_string();
            if (v & 0x80) {
                user.append(200 + in.byte(), 'u'); // past kMaxUser sometimes
            }
            std::string uid =
                unknown ? std::string()
                        : std::to_string(in.byte() * 1000 + in.byte());
            std::uint8_t e = in.byte();
            // 0: never expires; else within a few seconds of now, either way
            std::int64_t token_expires =
                e == 0 ? 0 : ngx_time() + static_cast<std::int64_t>(e % 16) - 4;
            CachePolicy policy{};
            std::uint8_t t = in.byte();
            policy.valid = (t % 8) * 1000 + (t & 0x80 ? 1 : 0);
            policy.invalid = (t / 8 % 8) * 500;
            policy.stale = (in.byte() % 8) * 2000;

            CacheStats before_stats{};
            ngx_auth_token::cache_stats(zone, before_stats);
            ngx_str_t u{user.size(), reinterpret_cast<u_char *>(user.data())};
            ngx_str_t d{uid.size(), reinterpret_cast<u_char *>(uid.data())};
            ngx_auth_token::cache_store(zone, digest_of(pl.key),
                                        {verdict, token_expires}, u, d, policy,
                                        pl.revision);
            CacheStats after{};
            ngx_auth_token::cache_stats(zone, after);
            FUZZ_CHECK(
                after.entries + 13 >= before_stats.entries,
                "one store dropped " +
                    std::to_string(before_stats.entries - after.entries) +
                    " entries");
            FUZZ_CHECK(
                after.evictions <= before_stats.evictions + 9,
                "one store evicted " +
                    std::to_string(after.evictions - before_stats.evictions));

            // The model stores what the header promises to store: only
            // when nothing changed since the lookup began, with a nonzero
            // ttl, a token not yet expired, strings within the entry's
            // limits (a user of at most 255 bytes, a uid of at most 32).
            // Otherwise the key's earlier answer stays allowed.
            ngx_msec_t ttl = unknown ? policy.invalid : policy.valid;
            if (pl.changes == m.changes && ttl != 0 &&
                (token_expires == 0 || token_expires > ngx_time()) &&
                user.size() <= 255 && uid.size() <= 32) {
                Answer a{verdict,
                         user,
                         uid,
                         ngx_current_msec + ttl,
                         ngx_current_msec + ttl + (unknown ? 0 : policy.stale),
                         token_expires,
                         m.epoch};
                m.answers[pl.key] = a;
            }
            break;
        }
        case 4: { // stale answer, while Redis is down
            int key = in.byte() % kKeys;
            CachedEntry got{};
            if (ngx_auth_token::cache_find_stale(zone, digest_of(key),
                                                 &request_pool, got)) {
                auto it = m.answers.find(key);
                bool ok = it != m.answers.end() && same(got, it->second) &&
                          authtoken::names_user(got.verdict) &&
                          before(ngx_current_msec, it->second.stale_until) &&
                          token_live(it->second, ngx_time());
                FUZZ_CHECK(ok,
                           "stale hit not allowed: " + describe(key, got, m));
            }
            break;
        }
        case 5: { // a revocation message
            int key = in.byte() % kKeys;
            std::uint64_t seq = in.byte();
            ngx_auth_token::cache_remove(zone, digest_of(key), seq);
            m.answers.erase(key);
            m.changes++;
            if (seq > m.seq) {
                m.seq = seq;
            }
            break;
        }
        case 6: { // the sequence check, or a lost subscription
            std::uint8_t s = in.byte();
            if (s == 0xff) {
                ngx_auth_token::cache_invalidate_all(zone);
                m.epoch++;
                m.changes++;
                break;
            }
            bool invalidated = ngx_auth_token::cache_check_sequence(zone, s);
            bool expect = m.seq_known && s > m.seq;
            FUZZ_CHECK(invalidated == expect,
                       "cache_check_sequence(" + std::to_string(s) +
                           ") returned " + std::to_string(invalidated) +
                           ", the zone applied up to " + std::to_string(m.seq) +
                           (m.seq_known ? "" : " (first check)"));
            if (!m.seq_known) {
                m.seq_known = true;
                m.seq = s;
            } else if (s > m.seq) {
                m.seq = s;
                m.epoch++;
                m.changes++;
            }
            break;
        }
        case 7: { // time passes: up to ~16 s, in ms or whole seconds
            std::uint8_t t = in.byte();
            ngx_msec_t step = t & 0x80 ? (t & 0x0f) * 1000 : (t & 0x7f) * 37;
            ngx_current_msec += step;
            ngx_msec_t ms = g_time.msec + step;
            g_time.sec += ms / 1000;
            g_time.msec = ms % 1000;
            break;
        }
        }

        CacheStats st{};
        ngx_auth_token::cache_stats(zone, st);
        FUZZ_CHECK(st.entries <= m.answers.size(),
                   "the zone holds " + std::to_string(st.entries) +
                       " entries, the model allows " +
                       std::to_string(m.answers.size()));
        FUZZ_CHECK(st.used_bytes <= st.size_bytes && st.size_bytes == zone_size,
                   "used " + std::to_string(st.used_bytes) + " of " +
                       std::to_string(st.size_bytes));
        pool_destroy(&request_pool);
    }

    // The unknown-token share: count the unknown tokens that are hits now.
    std::size_t negative_hits = 0;
    for (int key = 0; key < kKeys; key++) {
        CachedEntry got{};
        std::uint64_t revision = 0;
        if (ngx_auth_token::cache_find_fresh(zone, digest_of(key),
                                             &request_pool, got, revision) &&
            !authtoken::names_user(got.verdict)) {
            negative_hits++;
        }
    }
    FUZZ_CHECK(negative_hits <= negative_max,
               std::to_string(negative_hits) +
                   " unknown tokens cached, the share is " +
                   std::to_string(negative_max));
    pool_destroy(&request_pool);

    FUZZ_CHECK(!g_locked, "the zone's lock left held");
    pool_destroy(&g_cycle_pool); // the cache's SipHash context
    pool_destroy(&conf_pool);
    for (auto &[p, c] : g_slab.live) {
        std::free(p);
    }
    g_slab = FakeSlab{};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    run(data, size);
    return 0;
}
