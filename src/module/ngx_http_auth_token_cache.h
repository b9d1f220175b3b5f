// The token cache: one shared-memory zone for all workers of an nginx, in
// limit_req's idiom (slab allocator, entries found by token digest, LRU
// queues, evict-and-retry when memory runs out, reused across reloads).
//
// Correctness against revocation does not rest on TTLs: the issuer
// publishes every changed token digest, each worker's subscriber removes
// the entry at once, and when a subscription drops the whole cache is
// invalidated (an epoch bump) because messages may have been missed. The
// issuer also numbers its messages (authtoken:revocation-seq); a number
// the zone never saw applied means missed messages too (see
// cache_check_sequence()).
// Entries from an older epoch are never served as hits, but may still be
// served as stale answers while Redis is down, if `stale=` allows it.
#pragma once

#include "core/token_digest.h"
#include "core/token_record.h"
#include "module/ngx_includes.h"

#include <cstdint>

namespace ngx_auth_token
{

struct CachePolicy {
    ngx_msec_t valid;   // how long a found token is trusted
    ngx_msec_t invalid; // how long an unknown token is remembered
    ngx_msec_t stale;   // how long past `valid` an entry may answer on error
};

struct CachedEntry {
    authtoken::TokenVerdict verdict; // names_user(), unknown or expired
    ngx_str_t user;                  // copied into the caller's pool
    ngx_str_t uid;
};

// Registers (or references, when size is 0) the zone `name` for the
// directive being parsed, named `directive` in error messages. nullptr,
// with the error logged, when the zone is declared for another use or with
// another size, or memory runs out.
ngx_shm_zone_t *cache_zone_add(ngx_conf_t *cf, const ngx_str_t &directive,
                               ngx_str_t *name, size_t size,
                               void *tag) noexcept;

// Once the configuration is read: false, with the error logged, when no
// directive gave `zone` a size.
bool cache_zone_check_size(ngx_conf_t *cf, const ngx_str_t &directive,
                           ngx_shm_zone_t *zone) noexcept;

// A hit: an entry of the current epoch, within `valid` (or `invalid`), whose
// token has not expired. Copies the strings into `pool`. On a miss, sets
// `revision` to the cache's count of changes (revocations, invalidations),
// read under the same lock: a lookup that began before a change must not
// store its (possibly revoked) answer, see cache_store().
//
// With `use` (auth_token_last_used), a hit whose token is valid also notes
// the use under the same lock, and sets *use_noted to whether it was kept
// (see cache_note_use()); unless the entry noted one less than
// `note_window` seconds before (1 = every second), which then stands for
// this one.
struct UseNote;
bool cache_find_fresh(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                      ngx_pool_t *pool, CachedEntry &out,
                      std::uint64_t &revision, const UseNote *use = nullptr,
                      std::uint32_t note_window = 1,
                      bool *use_noted = nullptr) noexcept;

// A known-good entry, whatever its epoch, still within valid + stale and
// before the token's own expiry.
bool cache_find_stale(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                      ngx_pool_t *pool, CachedEntry &out) noexcept;

// Stores a judgement unless the cache changed since `revision` was read:
// one that names a user (names_user()) for `valid`, an unknown or expired
// token for `invalid`. Its `expires` (Unix seconds, 0 for never) bounds the
// entry. A malformed verdict is never stored.
void cache_store(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                 authtoken::TokenJudgement judgement, ngx_str_t user,
                 ngx_str_t uid, const CachePolicy &policy,
                 std::uint64_t revision) noexcept;

// A revocation message: drops the digest's entry. `seq` is the message's
// number in the revocation sequence (0 when it had none); the zone keeps
// the highest one applied, for cache_check_sequence().
void cache_remove(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                  std::uint64_t seq) noexcept;

// `current` is the revocation sequence read from Redis, after a PING on the
// subscription confirmed that every message published before that read
// has been applied (by this worker, or by another). If the zone applied
// fewer, messages were missed (a replica's full resync, a gap with no
// subscriber in any worker): every entry stops being a hit. The first
// check of a new zone only records `current`. Returns true when it
// invalidated.
bool cache_check_sequence(ngx_shm_zone_t *zone, std::uint64_t current) noexcept;

// For auth_token_metrics, read under the zone's lock.
struct CacheStats {
    ngx_uint_t entries;      // entries held, of any epoch
    std::uint64_t evictions; // live entries dropped to make room
    std::size_t used_bytes;  // the slab allocator's pages in use
    std::size_t size_bytes;  // the zone's size
};
void cache_stats(ngx_shm_zone_t *zone, CacheStats &out) noexcept;

// Every entry stops being a hit (it may still serve as stale).
void cache_invalidate_all(ngx_shm_zone_t *zone) noexcept;

// The zone's record of the workers whose subscription is up (by pid, at
// most 64; more are not recorded). A worker that joins and finds a
// recorded worker that no longer exists (killed while subscribed, e.g.
// SIGKILL or a crash) cannot know what that worker's death made everyone
// miss, whoever published it: it invalidates the zone and returns the dead
// worker's pid, 0 otherwise. A worker leaves when its subscription drops
// or it exits.
ngx_pid_t cache_subscriber_join(ngx_shm_zone_t *zone, ngx_pid_t pid) noexcept;
void cache_subscriber_leave(ngx_shm_zone_t *zone, ngx_pid_t pid) noexcept;

// --- auth_token_last_used --------------------------------------------------
//
// A zone used by auth_token_last_used also holds a table of notes: per
// token digest, when it was last allowed (Unix seconds) and from which
// client address, not yet written to Redis. The table is a fixed eighth of
// the zone (about 2000 notes per megabyte), made when the zone is created
// (or, for a zone kept across a reload, at the first reload that wants it),
// open-addressed by the same keyed hash as the entries and independent of
// them: evicting or revoking an entry does not lose its note. A note that
// finds no free slot among its few candidates is dropped (a missed update,
// counted), never a wrong one. Flushing takes the notes out of the table,
// so a token has at most one note, hence one write, per flush.

// One use, as the access handler saw it.
struct UseNote {
    std::uint32_t at; // Unix seconds, not 0
    // The client address ($remote_addr's, after realip): AF_INET (4 bytes
    // of addr), AF_INET6 (16) or AF_UNIX (none; written as "unix:").
    u_char family;
    u_char addr[16];
};

// A note taken out of the table for a flush.
struct TakenNote {
    authtoken::Sha256 digest;
    UseNote use;
};

// At config time: the zone is to carry notes (auth_token_last_used).
void cache_zone_want_notes(ngx_shm_zone_t *zone) noexcept;

// Notes a use. False when the note was dropped (no table, no free slot, or
// no keyed hash). Writes nothing in the zone when the token's note already
// says the same second and address.
bool cache_note_use(ngx_shm_zone_t *zone, const authtoken::Sha256 &digest,
                    const UseNote &use) noexcept;

// Claims this interval's flush for the calling worker: true for exactly one
// caller per `interval` (ms, on nginx's monotonic clock, shared by the
// workers), false for the others and when the zone has no notes table.
bool cache_notes_claim(ngx_shm_zone_t *zone, ngx_msec_t interval) noexcept;

// Takes up to `max` notes out of the table into `out`, scanning from slot
// `cursor` on (advanced; the scan holds the zone's lock for a bounded
// number of slots at a time). Returns how many were taken; the scan is
// complete when `cursor` reaches cache_notes_slots().
std::size_t cache_notes_take(ngx_shm_zone_t *zone, std::size_t &cursor,
                             TakenNote *out, std::size_t max) noexcept;
std::size_t cache_notes_slots(ngx_shm_zone_t *zone) noexcept;

} // namespace ngx_auth_token
