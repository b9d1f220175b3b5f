// The heartbeat for auth_token_max_lag: a thread of the daemon's own that
// writes authtoken:heartbeat on the primary every `interval` (SET, this
// host's Unix time in milliseconds, for people reading it; the module only
// looks for the value changing, never at the time in it). Several daemons
// writing the same key is harmless: each write changes it. It has a
// connection of its own (a pool of one), so it never takes or drops a
// connection a login would use, and a login never waits for it; through
// Sentinel that connection asks for the primary again once it breaks
// (including on -READONLY from a demoted primary). A failed write is
// logged once, when the writes start failing, and once when they work
// again. The destructor stops the thread within one interval's wait.
#pragma once

#include "issuer/store/redis_client.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace authtoken
{

class HeartbeatWriter
{
  public:
    HeartbeatWriter(const RedisEndpoint &endpoint,
                    std::chrono::milliseconds timeout,
                    std::chrono::milliseconds interval);
    ~HeartbeatWriter();
    HeartbeatWriter(const HeartbeatWriter &) = delete;
    HeartbeatWriter &operator=(const HeartbeatWriter &) = delete;

  private:
    void run();
    bool beat(); // one SET; false (and logged once per episode) on failure

    RedisPool pool_;
    std::chrono::milliseconds interval_;
    bool failing_ = false;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::thread thread_;
};

} // namespace authtoken
