#include "daemon/directory_sync.h"

#include "core/redis_keys.h"
#include "daemon/event_log.h"
#include "issuer/store/redis_url.h"
#include "issuer/store/user_store.h"

#include <algorithm>
#include <charconv>
#include <utility>

namespace authtoken
{

DirectorySync::DirectorySync(const ScriptLibrary &scripts,
                             RedisPool &user_store,
                             std::optional<RedisEndpoint> directory,
                             std::string id, std::chrono::milliseconds timeout,
                             std::chrono::milliseconds interval, bool heartbeat,
                             IssuerMetrics &metrics, unsigned min_replicas)
    : scripts_(scripts), user_store_(user_store),
      directory_(std::move(directory)), id_(std::move(id)), timeout_(timeout),
      interval_(interval), heartbeat_(heartbeat), metrics_(metrics),
      min_replicas_(min_replicas)
{
    if (directory_) {
        directory_pool_.emplace(*directory_, timeout_);
        metrics_.directory_enabled();
        thread_ = std::thread([this] { run(); });
    }
}

DirectorySync::~DirectorySync()
{
    if (thread_.joinable()) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        thread_.join();
    }
}

const std::string &DirectorySync::directory_id()
{
    if (id_.empty()) {
        RedisPool::Lease conn = user_store_.lease();
        Reply marked = conn->command({"GET", keys::kDirectoryId});
        id_ = reply_string(marked.get());
        if (id_.empty()) {
            throw std::runtime_error("directory_url is set but this user "
                                     "store feeds no token directory yet: "
                                     "run `authtokenctl directory init`");
        }
    }
    if (!replayer_) {
        replayer_.emplace(scripts_, id_);
        replayer_->set_min_replicas(
            min_replicas_,
            std::max(std::chrono::milliseconds(1), timeout_ / 2));
    }
    return id_;
}

DirectorySync::Settled DirectorySync::settle()
{
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    std::uint64_t target = 0;
    try {
        RedisPool::Lease conn = user_store_.lease();
        if (!directory_) {
            Reply marked = conn->command({"GET", keys::kDirectoryId});
            if (reply_is_nil(marked.get())) {
                return Settled::applied;
            }
            if (!unfed_logged_.exchange(true)) {
                log::error("this user store was made to feed a separate "
                           "token directory (authtokenctl directory init) "
                           "while this authtokend runs without "
                           "directory_url: its changes reach the edges "
                           "only with `authtokenctl directory sync`, and "
                           "are answered 503; restart it with "
                           "directory_url");
            }
            return Settled::unfed;
        }
        target = read_outbox_number(*conn, keys::kOutboxSequence);
        if (read_outbox_number(*conn, keys::kOutboxAcked) >= target) {
            return Settled::applied;
        }
    } catch (const RedisError &) {
        if (!directory_) {
            // One store: the write itself was confirmed a moment ago, and
            // published unless an operator marked the store in between;
            // Redis failing now is no news about the mark.
            return Settled::applied;
        }
        wake();
        return Settled::recorded;
    }
    std::unique_lock<std::timed_mutex> lock(drain_mutex_, std::defer_lock);
    if (!lock.try_lock_until(deadline) || !drain(false)) {
        wake();
        return Settled::recorded;
    }
    lock.unlock();
    try {
        RedisPool::Lease conn = user_store_.lease();
        if (read_outbox_number(*conn, keys::kOutboxAcked) >= target) {
            return Settled::applied;
        }
    } catch (const RedisError &) {
    }
    wake();
    return Settled::recorded;
}

bool DirectorySync::drain(bool rebuild_allowed)
{
    try {
        directory_id(); // read once, and the replayer made
        RedisPool::Lease user = user_store_.lease();
        RedisPool::Lease dir = directory_pool_->lease();
        if (rebuild_allowed && carries_other_id(*dir)) {
            return false;
        }
        OutboxReplayer::Progress p =
            replayer_->drain(*user, *dir, rebuild_allowed);
        metrics_.directory_drained(p.entries, p.applied, p.rebuild);
        drain_failed_ = false;
        if (p.rebuild) {
            log::info("directory: rebuilt the token directory " +
                      describe_endpoint(*directory_) + ": " +
                      std::to_string(p.rebuilt) + " token records copied, " +
                      std::to_string(p.swept) +
                      " stale records checked; applied " +
                      std::to_string(p.applied));
        }
        if (failing_) {
            failing_ = false;
            log::info("directory: the token directory " +
                      describe_endpoint(*directory_) +
                      " takes the outbox again (applied " +
                      std::to_string(p.applied) + ")");
        }
        return true;
    } catch (const OutboxReplayer::NeedsRebuild &) {
        // The thread rebuilds: not a failure of this drain's to log.
        metrics_.directory_failed();
        drain_failed_ = true;
        return false;
    } catch (const std::exception &e) {
        metrics_.directory_failed();
        drain_failed_ = true;
        if (!failing_) {
            failing_ = true;
            log::error("directory: cannot apply the outbox to the token "
                       "directory " +
                       describe_endpoint(*directory_) + ": " + e.what() +
                       "; changes are recorded and answered 503 until it "
                       "takes them");
        }
        return false;
    }
}

// A directory that carries another id is another deployment's (or this
// store's under an id it was marked with again): a rebuild would wipe it.
// The daemon's thread leaves it alone, says so once, and keeps answering
// writes 503; `authtokenctl directory sync` takes it over when that is
// what the operator means. An empty directory, or one rebuilding, of no id
// or this id, is rebuilt as before.
bool DirectorySync::carries_other_id(RedisConnection &dir)
{
    Reply held = dir.command({"HGET", keys::kDirectory, "id"});
    std::string other = reply_string(held.get());
    if (other.empty() || other == id_) {
        if (foreign_) {
            foreign_ = false;
            log::info("directory: the token directory " +
                      describe_endpoint(*directory_) +
                      " no longer carries another id");
        }
        return false;
    }
    metrics_.directory_failed();
    if (!foreign_) {
        foreign_ = true;
        log::error("directory: the token directory " +
                   describe_endpoint(*directory_) + " carries directory id " +
                   other + ", not this user store's " + id_ +
                   ": not taking it over (a rebuild would wipe another "
                   "deployment's directory); changes are recorded and "
                   "answered 503; `authtokenctl directory sync` takes it "
                   "over");
    }
    return true;
}

void DirectorySync::beat()
{
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    try {
        std::uint64_t acked = 0;
        {
            RedisPool::Lease user = user_store_.lease();
            acked = read_outbox_number(*user, keys::kOutboxAcked);
        }
        RedisPool::Lease dir = directory_pool_->lease();
        scripts_.run(*dir, "dir_heartbeat", {},
                     {id_, std::to_string(acked), std::to_string(ms)});
    } catch (const std::exception &e) {
        if (!heartbeat_failing_) {
            heartbeat_failing_ = true;
            log::error(std::string("heartbeat: not written to the token "
                                   "directory: ") +
                       e.what() +
                       "; edges with auth_token_max_lag will refuse lookups "
                       "(503) until it is complete again");
        }
        return;
    }
    if (heartbeat_failing_) {
        heartbeat_failing_ = false;
        log::info("heartbeat: written to the token directory again");
    }
}

void DirectorySync::wake()
{
    {
        std::lock_guard<std::mutex> lock(mutex_);
        wanted_ = true;
    }
    wake_.notify_all();
}

void DirectorySync::run()
{
    auto next = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
        wanted_ = false;
        lock.unlock();
        bool ok = false;
        {
            std::lock_guard<std::timed_mutex> drain_lock(drain_mutex_);
            ok = drain(true);
        }
        if (ok && heartbeat_) {
            beat();
        }
        Status now_status = status();
        if (now_status.known) {
            metrics_.directory_pending(now_status.pending);
        }
        lock.lock();
        next += interval_;
        auto now = std::chrono::steady_clock::now();
        if (next < now) {
            next = now;
        }
        wake_.wait_until(lock, next, [this] { return stop_ || wanted_; });
    }
}

std::optional<std::int64_t>
DirectorySync::renewed_expiry(std::string_view digest_hex)
{
    if (!directory_) {
        return std::nullopt;
    }
    RedisPool::Lease dir = directory_pool_->lease();
    return read_renewed_expiry(*dir, digest_hex);
}

UserStore::RenewedExpiry DirectorySync::renewed_expiry_source()
{
    if (!directory_) {
        return {};
    }
    return [this](const std::vector<std::string> &digests)
               -> std::optional<std::vector<std::int64_t>> {
        try {
            RedisPool::Lease dir = directory_pool_->lease();
            return read_renewed_expiries(*dir, digests);
        } catch (const RedisError &e) {
            std::string which = digests.empty()
                                    ? std::string()
                                    : digests.front().substr(0, kTokenIdLength);
            if (digests.size() > 1) {
                which += " and " + std::to_string(digests.size() - 1) + " more";
            }
            log::warn("directory " + describe_endpoint(*directory_) +
                      ": cannot read the renewed expiry of token " + which +
                      " (" + e.what() +
                      "); the user store's decides for tokens that do "
                      "not renew, and no token that renews is swept or "
                      "replaced");
            return std::nullopt;
        }
    };
}

UserStore::DirectoryFields DirectorySync::directory_fields_source()
{
    if (!directory_) {
        return {};
    }
    return [this](const std::vector<std::string> &digests)
               -> std::optional<std::vector<DirectoryTokenFields>> {
        try {
            RedisPool::Lease dir = directory_pool_->lease();
            return read_directory_fields(*dir, digests);
        } catch (const RedisError &e) {
            log::warn("directory " + describe_endpoint(*directory_) +
                      ": cannot read its token records (" + e.what() +
                      "); the user store's expiry and last use are shown");
            return std::nullopt;
        }
    };
}

DirectorySync::Status DirectorySync::status() const
{
    Status s;
    s.split = directory_.has_value();
    if (!s.split) {
        return s;
    }
    try {
        RedisPool::Lease conn = user_store_.lease();
        std::uint64_t seq = read_outbox_number(*conn, keys::kOutboxSequence);
        s.acked = read_outbox_number(*conn, keys::kOutboxAcked);
        s.pending = seq > s.acked ? seq - s.acked : 0;
        s.known = true;
    } catch (const RedisError &) {
    }
    try {
        RedisPool::Lease dir = directory_pool_->lease();
        dir->command({"PING"});
        s.reachable = true;
    } catch (const RedisError &) {
    }
    s.behind = !s.reachable || drain_failed_;
    return s;
}

} // namespace authtoken
