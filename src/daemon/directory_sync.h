// authtokend's side of the split layout (docs/operations.md and
// redis/SCHEMA.md, "Two stores"): every write the daemon answers as done
// has reached the token directory the edges read, and a replayer thread
// keeps applying what a write could not.
//
// After each writing call the front calls settle() on its worker thread:
// it drains the user store's outbox into the directory (OutboxReplayer,
// never a rebuild: that is the thread's) within the reply timeout
// (redis_timeout_ms), and says whether everything recorded until then is
// applied. Drains are serialised by one mutex, so writes that finish
// together share one drain (a writer that finds its entry acknowledged by
// another's drain returns at once). The thread drains every `interval` and
// on demand (a settle() that failed wakes it), rebuilds the directory when
// it cannot continue, and writes the heartbeat into the directory while it
// is complete (authtoken_dir_heartbeat).
//
// Without directory_url (one store), settle() only checks that the store
// was not marked meanwhile by `authtokenctl directory init`: a write
// there went to the outbox, not to the edges, and must not be answered
// as done.
#pragma once

#include "daemon/issuer_metrics.h"
#include "issuer/store/outbox_replayer.h"
#include "issuer/store/user_store.h"
#include "issuer/store/redis_client.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace authtoken
{

class DirectorySync
{
  public:
    // `directory`: directory_url's endpoint, or none (one store). `id`: the
    // user store's authtoken:directory-id as read at startup ("" when Redis
    // did not answer then: read at the first drain). `interval`: the
    // thread's period (heartbeat_interval; 1 s when that is 0), and
    // `heartbeat` whether it writes authtoken:heartbeat. The references
    // must outlive this object. `min_replicas`: directory_min_replicas (a
    // drain acknowledges only what that many directory replicas confirmed,
    // waiting at most half of `timeout` for them). Starts the thread in
    // split mode.
    DirectorySync(const ScriptLibrary &scripts, RedisPool &user_store,
                  std::optional<RedisEndpoint> directory, std::string id,
                  std::chrono::milliseconds timeout,
                  std::chrono::milliseconds interval, bool heartbeat,
                  IssuerMetrics &metrics, unsigned min_replicas = 0);
    ~DirectorySync();
    DirectorySync(const DirectorySync &) = delete;
    DirectorySync &operator=(const DirectorySync &) = delete;

    enum class Settled {
        applied,  // the directory has every change recorded until now
        recorded, // in the outbox; the thread applies it when it can
        unfed,    // one store marked under this daemon: nobody applies it
    };
    // After a write (worker thread; waits at most the reply timeout).
    Settled settle();

    struct Status {
        bool split = false;
        bool known = false;        // the user store answered
        std::uint64_t pending = 0; // outbox entries not yet applied
        std::uint64_t acked = 0;   // the last one applied
        bool reachable = false;    // the directory answered PING
        // Changes do not reach the edges: the directory does not answer,
        // or the replayer's last attempt to apply the outbox failed.
        bool behind = false;
    };
    // For /healthz: reads the outbox numbers from the user store and PINGs
    // the directory (each bounded by redis_timeout_ms).
    Status status() const;

    bool split() const noexcept
    {
        return directory_.has_value();
    }

    // The `expires` the directory holds for the token record of
    // `digest_hex` (Unix seconds), where sliding renewal pushes it
    // (authtoken_touch) without the user store learning it; nullopt in one
    // store, for a record the directory lacks, or one without a number.
    // Throws RedisError when the directory does not answer.
    std::optional<std::int64_t> renewed_expiry(std::string_view digest_hex);

    // read_renewed_expiries() as UserStore::set_renewed_expiry() takes it,
    // for a login, any other 'get' of a token and a many-mode sweep of
    // expired tokens: a directory that does not answer is logged and
    // leaves the user store's expiry to decide, sweeping no token that
    // renews (the login goes on; a token it makes reaches the edges with
    // the outbox). Empty in one store.
    UserStore::RenewedExpiry renewed_expiry_source();

    // read_directory_fields() as UserStore::set_directory_fields() takes
    // it, for what GET /api-tokens/ and the admin API show: a directory
    // that does not answer is logged, and the user store's values are
    // shown. Empty in one store.
    UserStore::DirectoryFields directory_fields_source();

  private:
    void run();
    // One drain; false (logged once per episode) when it failed.
    bool drain(bool rebuild_allowed);
    bool carries_other_id(RedisConnection &dir);
    void beat();
    void wake();
    const std::string &directory_id();

    const ScriptLibrary &scripts_;
    RedisPool &user_store_;
    std::optional<RedisEndpoint> directory_;
    mutable std::optional<RedisPool> directory_pool_; // status() leases
    std::string id_;
    std::optional<OutboxReplayer> replayer_;
    std::chrono::milliseconds timeout_;
    std::chrono::milliseconds interval_;
    bool heartbeat_;
    IssuerMetrics &metrics_;
    unsigned min_replicas_;

    std::timed_mutex drain_mutex_;          // one drain at a time
    bool failing_ = false;                  // under drain_mutex_
    std::atomic<bool> drain_failed_{false}; // the last drain, for status()
    bool foreign_ = false;                  // under drain_mutex_
    bool heartbeat_failing_ = false;
    std::atomic<bool> unfed_logged_{false};

    std::mutex mutex_; // stop_ and wanted_
    std::condition_variable wake_;
    bool stop_ = false;
    bool wanted_ = false;
    std::thread thread_;
};

} // namespace authtoken
