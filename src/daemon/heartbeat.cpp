#include "daemon/heartbeat.h"

#include "core/redis_keys.h"
#include "daemon/event_log.h"

#include <string>

namespace authtoken
{

HeartbeatWriter::HeartbeatWriter(const RedisEndpoint &endpoint,
                                 std::chrono::milliseconds timeout,
                                 std::chrono::milliseconds interval)
    : pool_(endpoint, timeout), interval_(interval), thread_([this] { run(); })
{
}

HeartbeatWriter::~HeartbeatWriter()
{
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void HeartbeatWriter::run()
{
    // On a fixed schedule: a slow write delays the next one by no more
    // than it took itself.
    auto next = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
        lock.unlock();
        beat();
        lock.lock();
        next += interval_;
        auto now = std::chrono::steady_clock::now();
        if (next < now) {
            next = now; // stalled for longer than an interval: no burst
        }
        wake_.wait_until(lock, next, [this] { return stop_; });
    }
}

bool HeartbeatWriter::beat()
{
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    std::string value = std::to_string(ms);
    try {
        RedisPool::Lease conn = pool_.lease();
        conn->command({"SET", keys::kHeartbeat, value});
    } catch (const std::exception &e) {
        if (!failing_) {
            failing_ = true;
            log::error(std::string("heartbeat: cannot write ") +
                       std::string(keys::kHeartbeat) + ": " + e.what() +
                       "; edges with auth_token_max_lag will refuse "
                       "lookups unless another authtokend writes it");
        }
        return false;
    }
    if (failing_) {
        failing_ = false;
        log::info(std::string("heartbeat: ") + std::string(keys::kHeartbeat) +
                  " written again");
    }
    return true;
}

} // namespace authtoken
