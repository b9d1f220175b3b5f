#include "module/ngx_http_auth_token_metrics.h"

#include <ctime>
#include <type_traits>

namespace ngx_auth_token
{
namespace
{

constexpr ngx_uint_t kSlots = 64;

// 64 counters of 8 bytes fill whole cache lines: no two workers' slots
// share a line, so the adds of one never invalidate another's cache.
struct alignas(128) MetricsSlot {
    ngx_atomic_t counter[kMetrics];
};

struct MetricsShared {
    MetricsSlot slot[kSlots];
};

// In the shared zone: ngx_slab_calloc()ed, never constructed, and unmapped
// by nginx without destructors, by processes that may not even be this
// build's (the zone outlives a reload into another module version).
static_assert(std::is_standard_layout_v<MetricsShared>);
static_assert(std::is_trivial_v<MetricsShared>);
static_assert(std::is_trivially_destructible_v<MetricsShared>);

MetricsSlot *own_slot = nullptr;

ngx_int_t metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data) noexcept
{
    if (data != nullptr) {
        // A reload: the old cycle's counters continue.
        shm_zone->data = data;
        return NGX_OK;
    }
    // nginx 1.22 puts a slab pool in every zone; the slots are one
    // allocation from it (whole pages, so page-aligned), zeroed.
    auto *shpool = reinterpret_cast<ngx_slab_pool_t *>(shm_zone->shm.addr);
    void *sh = ngx_slab_calloc(shpool, sizeof(MetricsShared));
    if (sh == nullptr) {
        return NGX_ERROR;
    }
    shm_zone->data = sh;
    return NGX_OK;
}

} // namespace

ngx_shm_zone_t *metrics_zone_add(ngx_conf_t *cf, void *tag) noexcept
{
    static ngx_str_t name = ngx_string("ngx_http_auth_token_metrics");
    // The slots, and room for the slab pool's own pages.
    size_t size =
        ngx_align(sizeof(MetricsShared), ngx_pagesize) + 8 * ngx_pagesize;
    ngx_shm_zone_t *zone = ngx_shared_memory_add(cf, &name, size, tag);
    if (zone == nullptr) {
        return nullptr;
    }
    if (zone->data == nullptr) {
        zone->init = metrics_init_zone;
    }
    return zone;
}

void metrics_attach(ngx_shm_zone_t *zone, ngx_uint_t worker_number) noexcept
{
    if (zone == nullptr) {
        own_slot = nullptr;
        return;
    }
    auto *sh = static_cast<MetricsShared *>(zone->data);
    own_slot = &sh->slot[worker_number % kSlots];
}

void metrics_add(Metric m, std::uint64_t n) noexcept
{
    if (own_slot != nullptr) {
        ngx_atomic_fetch_add(&own_slot->counter[static_cast<unsigned>(m)],
                             static_cast<ngx_atomic_int_t>(n));
    }
}

void metrics_count_request(unsigned status, unsigned cache_result) noexcept
{
    if (own_slot != nullptr) {
        ngx_atomic_fetch_add(
            &own_slot->counter[status * kCacheResults + cache_result], 1);
    }
}

void metrics_observe_lookup(std::uint64_t us) noexcept
{
    if (own_slot == nullptr) {
        return;
    }
    unsigned bucket = 0;
    while (bucket < kBuckets && us > kBucketBoundsUs[bucket]) {
        bucket++;
    }
    constexpr auto first = static_cast<unsigned>(Metric::lookup_bucket);
    ngx_atomic_fetch_add(&own_slot->counter[first + bucket], 1);
    metrics_add(Metric::lookup_sum_us, us);
    metrics_add(Metric::lookup_count);
}

std::uint64_t metrics_now_us() noexcept
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000 +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

std::uint64_t metrics_read(ngx_shm_zone_t *zone, unsigned index) noexcept
{
    auto *sh = static_cast<MetricsShared *>(zone->data);
    std::uint64_t sum = 0;
    for (ngx_uint_t i = 0; i < kSlots; i++) {
        sum += sh->slot[i].counter[index];
    }
    return sum;
}

} // namespace ngx_auth_token
