// authtokend's own metrics, served at GET /metrics in the Prometheus text
// exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). No HTTP
// library here: the front calls render() and sends its bytes with
// kContentType.
//
// Every counter is a relaxed std::atomic, written by the pool threads where
// an outcome is decided (obtain_service.cpp, the Redis pool's failure
// observer) and read by render(): no lock on the login path, and a scrape
// never waits for a login. A scrape taken while logins run may see one
// counter updated and another not yet (as with every Prometheus client);
// a histogram's _count is the sum of its buckets, so the +Inf bucket and
// _count always agree.
//
// The process_* families are the ones the official client libraries export
// (client_golang's process collector, client_python's ProcessCollector),
// read from /proc/self at each scrape: Linux only.
#pragma once

#include "issuer/store/redis_client.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace authtoken
{

// How a POST /api-token-auth/ ended (docs/observability.md, the label
// `outcome` of authtokend_logins_total).
enum class LoginOutcome : std::size_t {
    ok,                // 200, a token
    wrong_credentials, // 400 "Unable to log in with provided credentials."
                       // for an unknown user, a wrong or unusable password,
                       // or a user changed during the login
    inactive,          // the same 400, for a right password of an
                       // inactive user (is_active false)
    throttled,         // 429
    bad_request,       // the body did not validate (400, 415): no hash ran
    unavailable,       // 503: Redis failed
    server_error,      // 500
    token_limit,       // 403: tokens_per_user = many, the user holds
                       // token_limit_per_user tokens (policy refuse)
    withheld,          // 503: the login succeeded, but the separate token
                       // directory did not take it in time (the answer
                       // was withheld; in many mode its token revoked)
    count_
};

class IssuerMetrics
{
  public:
    // "text/plain; version=0.0.4; charset=utf-8", what Prometheus's own
    // clients send.
    static const char *const kContentType;

    // Upper bounds, in seconds, of the password-hash histogram: 1 ms (the
    // test suites' 1000 PBKDF2 iterations) to 2 s (argon2id with a large
    // memory cost, PBKDF2 over 2 million iterations on a slow core);
    // Django's default PBKDF2 (600000 to 1000000 iterations) and argon2id
    // land in 0.1 to 1 s. +Inf is implied.
    static constexpr std::array<double, 11> kHashBuckets = {
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0};

    IssuerMetrics();
    IssuerMetrics(const IssuerMetrics &) = delete;
    IssuerMetrics &operator=(const IssuerMetrics &) = delete;

    void login(LoginOutcome outcome) noexcept;
    void redis_failure(RedisFailure cause) noexcept;
    void token_created() noexcept;
    // An existing token the daemon replaced (and so revoked) at a login.
    void token_revoked() noexcept;

    // One password hash (check, dummy check or new hash) in two scopes:
    //
    //   std::optional<ConcurrencyLimit::Permit> slot;
    //   { IssuerMetrics::HashWait wait(metrics); slot.emplace(limit); }
    //   IssuerMetrics::HashRun run(metrics);   // ends before slot does
    //   ... hash ...
    //
    // HashWait counts the hash as waiting while a slot is awaited; HashRun
    // counts it in flight and observes its own time (not the wait) in the
    // histogram. A HashRun must end before its slot is released, or the
    // in-flight gauge can show more hashes than there are slots.
    class HashWait
    {
      public:
        explicit HashWait(IssuerMetrics &metrics) noexcept;
        ~HashWait();
        HashWait(const HashWait &) = delete;
        HashWait &operator=(const HashWait &) = delete;

      private:
        IssuerMetrics &metrics_;
    };
    class HashRun
    {
      public:
        explicit HashRun(IssuerMetrics &metrics) noexcept;
        ~HashRun();
        HashRun(const HashRun &) = delete;
        HashRun &operator=(const HashRun &) = delete;

      private:
        IssuerMetrics &metrics_;
        std::chrono::steady_clock::time_point start_;
    };

    void observe_hash(std::chrono::nanoseconds duration) noexcept;

    // The split layout (directory_sync.h): the authtokend_directory_*
    // families are rendered only once directory_enabled() was called.
    void directory_enabled() noexcept;
    // A drain that applied `entries` outbox entries, leaving the
    // directory's applied number at `applied`, with or without a rebuild.
    void directory_drained(std::uint64_t entries, std::uint64_t applied,
                           bool rebuilt) noexcept;
    void directory_failed() noexcept;
    // Entries not yet applied, as the replayer thread last saw them.
    void directory_pending(std::uint64_t pending) noexcept;

    // The whole exposition: every family with its # HELP and # TYPE, each
    // labelled series present from the start (at 0), then process_*.
    std::string render() const;

  private:
    using Counter = std::atomic<std::uint64_t>;
    std::array<Counter, static_cast<std::size_t>(LoginOutcome::count_)>
        logins_{};
    std::array<Counter, static_cast<std::size_t>(RedisFailure::count_)>
        redis_failures_{};
    Counter tokens_created_{0};
    Counter tokens_revoked_{0};
    // Per bucket, not cumulative: bucket i counts le kHashBuckets[i] and
    // above the bound before it; the last one is +Inf. render() sums.
    std::array<Counter, kHashBuckets.size() + 1> hash_buckets_{};
    Counter hash_sum_ns_{0};
    std::atomic<std::int64_t> hashes_waiting_{0};
    std::atomic<std::int64_t> hashes_running_{0};
    std::atomic<bool> directory_{false};
    Counter directory_entries_{0};
    Counter directory_rebuilds_{0};
    Counter directory_failures_{0};
    Counter directory_applied_{0};  // a gauge
    Counter directory_pending_{0};  // a gauge
    double start_time_seconds_ = 0; // from /proc/self/stat, at construction
};

} // namespace authtoken
