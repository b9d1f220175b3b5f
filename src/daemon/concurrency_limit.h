// A counting semaphore for the password hashes. Logins run on the HTTP
// server's worker threads (http_server.h), many of them, since a login
// mostly waits (Redis, a throttle delay); the hashes they run are CPU work
// and are limited to about one per core: a burst of logins queues here, in
// the workers and never in the event loop, instead of oversubscribing the
// machine. (std::counting_semaphore is C++20.)
#pragma once

#include <condition_variable>
#include <mutex>

namespace authtoken
{

class ConcurrencyLimit
{
  public:
    explicit ConcurrencyLimit(unsigned slots) : free_(slots) {}
    ConcurrencyLimit(const ConcurrencyLimit &) = delete;
    ConcurrencyLimit &operator=(const ConcurrencyLimit &) = delete;

    // Holds one slot from construction to destruction; waits for it.
    class Permit
    {
      public:
        explicit Permit(ConcurrencyLimit &limit) : limit_(limit)
        {
            std::unique_lock<std::mutex> lock(limit_.mutex_);
            limit_.freed_.wait(lock, [this] { return limit_.free_ > 0; });
            limit_.free_--;
        }
        ~Permit()
        {
            {
                std::lock_guard<std::mutex> lock(limit_.mutex_);
                limit_.free_++;
            }
            limit_.freed_.notify_one();
        }
        Permit(const Permit &) = delete;
        Permit &operator=(const Permit &) = delete;

      private:
        ConcurrencyLimit &limit_;
    };

  private:
    std::mutex mutex_;
    std::condition_variable freed_;
    unsigned free_;
};

} // namespace authtoken
