// The module's counters, for Prometheus (auth_token_metrics).
//
// They live in a shared zone of their own ("ngx_http_auth_token_metrics"),
// kept across reloads as limit_req's and the cache's zones are, so that
// every counter only ever grows for the life of the master process. The
// zone holds one slot of counters per worker (ngx_worker modulo kSlots),
// each on cache lines of its own: a worker adds to its slot only, with a
// relaxed atomic add (no zone mutex), and a scrape sums the slots. The add
// is atomic because a slot is shared for a moment by an old worker that
// finishes its requests after a reload and the new worker with the same
// number; a respawned worker continues its predecessor's slot.
#pragma once

#include "module/ngx_includes.h"

#include <cstdint>
#include <string>

namespace ngx_auth_token
{

// One counter each. The first block is indexed by
// (status * kCacheResults + cache result): a request costs one add whatever
// its verdict, and both the per-status and the per-cache-result totals are
// sums of it.
enum class Metric : unsigned {
    requests = 0, // kStatuses * kCacheResults of them
    redis_lookups = 7 * 5,
    error_timeout,
    error_connect,
    error_reply,
    error_malformed,
    error_lag, // refused: auth_token_max_lag exceeded (no lookup made)
    reconnects,
    subscription_losses,
    revocations,
    // auth_token_last_used: notes written to the primary by a flush,
    // dropped (no room in the zone's notes table), failed (in a flush whose
    // write failed or was not sent), and expiries renewed by the writes.
    last_used_flushed,
    last_used_dropped,
    last_used_failed,
    last_used_renewed,
    lookup_count,  // the histogram's _count
    lookup_sum_us, // its _sum, in microseconds
    lookup_bucket, // kBuckets + 1 of them (the last is +Inf)
};

constexpr unsigned kStatuses = 7;     // Outcome: none, ok ... error
constexpr unsigned kCacheResults = 5; // CacheStatus: none, HIT ... BYPASS

// The histogram's upper bounds, in microseconds (Prometheus's le= in
// seconds): Redis answers in well under a millisecond on a LAN, and
// auth_token_timeout bounds the rest.
constexpr std::uint64_t kBucketBoundsUs[] = {
    100,   250,   500,    1000,   2500,   5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2500000};
constexpr unsigned kBuckets =
    sizeof(kBucketBoundsUs) / sizeof(kBucketBoundsUs[0]);
constexpr unsigned kMetrics =
    static_cast<unsigned>(Metric::lookup_bucket) + kBuckets + 1;

// Registers the zone (once per configuration).
ngx_shm_zone_t *metrics_zone_add(ngx_conf_t *cf, void *tag) noexcept;

// Called in each worker's init_process: from now on this process counts
// into its slot. Until then (the master, helper processes) counting is a
// no-op.
void metrics_attach(ngx_shm_zone_t *zone, ngx_uint_t worker_number) noexcept;

// Adds to this worker's slot: one relaxed atomic add, no lock.
void metrics_add(Metric m, std::uint64_t n = 1) noexcept;
void metrics_count_request(unsigned status, unsigned cache_result) noexcept;

// A Redis lookup answered (or failed) after `us` microseconds.
void metrics_observe_lookup(std::uint64_t us) noexcept;

// Monotonic microseconds, for lookup durations.
std::uint64_t metrics_now_us() noexcept;

// The sum over all slots of one counter.
std::uint64_t metrics_read(ngx_shm_zone_t *zone, unsigned index) noexcept;

} // namespace ngx_auth_token
