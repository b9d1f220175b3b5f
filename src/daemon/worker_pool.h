// The worker threads that run authtokend's request handlers off
// libmicrohttpd's event loop (http_server.cpp).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace authtoken
{

// Runs handlers off the event loop. A thread starts when work comes and
// the idle threads are all spoken for by work already queued, up to `max`;
// after that work queues. (An idle thread counts as idle until it wakes
// and takes a job: a burst must not hand two jobs to one sleeping thread,
// which would run the second only after the first, a whole hash later.)
class WorkerPool
{
  public:
    explicit WorkerPool(unsigned max) : max_(std::max(1u, max)) {}
    ~WorkerPool()
    {
        join();
    }
    WorkerPool(const WorkerPool &) = delete;
    WorkerPool &operator=(const WorkerPool &) = delete;

    // Once join() has begun, runs `job` in the caller's thread: a request
    // finishing during the stop is still answered, and no thread outlives
    // the pool.
    void submit(std::function<void()> job)
    {
        std::unique_lock<std::mutex> lock(mutex_);
        if (stopping_) {
            lock.unlock();
            job();
            return;
        }
        jobs_.push_back(std::move(job));
        if (jobs_.size() > idle_ && threads_.size() < max_) {
            threads_.emplace_back([this] { run(); });
        } else {
            ready_.notify_one();
        }
    }

    // Runs what is queued, then stops the threads.
    void join()
    {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        ready_.notify_all();
        for (std::thread &t : threads_) {
            t.join();
        }
        threads_.clear();
    }

  private:
    void run()
    {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            idle_++;
            ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            idle_--;
            if (jobs_.empty()) {
                return;
            }
            std::function<void()> job = std::move(jobs_.front());
            jobs_.pop_front();
            lock.unlock();
            job();
            lock.lock();
        }
    }

    const unsigned max_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> jobs_;
    std::vector<std::thread> threads_;
    unsigned idle_ = 0;
    bool stopping_ = false;
};

} // namespace authtoken
