// The worker pool behind authtokend's handlers: a burst of jobs arriving
// while fewer threads are idle than jobs queued starts threads, so no job
// waits behind another that may hash a password for a second.
#include "daemon/worker_pool.h"

#include <atomic>
#include <chrono>
#include <thread>

// cmocka last: its macros (fail, ...) clash with names in C++ headers.
#include "core/tests/cmocka_cpp.h"

using namespace authtoken;
using namespace std::chrono_literals;

namespace
{

template <typename Predicate> bool wait_for(Predicate done)
{
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// With one idle thread, three jobs submitted at once, each holding its
// thread until released, must all be running together. A pool that hands
// them all to the sleeping thread runs them one after the other, unless
// that thread happens to wake between two submits; five rounds make such
// luck (about 3 in 10 a round here) all but impossible.
bool burst_runs_at_once()
{
    WorkerPool pool(8);
    std::atomic<bool> first_done{false};
    pool.submit([&] { first_done = true; });
    if (!wait_for([&] { return first_done.load(); })) {
        return false;
    }
    std::this_thread::sleep_for(20ms); // the thread back to idle

    std::atomic<int> running{0};
    std::atomic<bool> release{false};
    for (int i = 0; i < 3; i++) {
        pool.submit([&] {
            running++;
            while (!release) {
                std::this_thread::sleep_for(1ms);
            }
        });
    }
    bool together = wait_for([&] { return running.load() == 3; });
    release = true;
    pool.join();
    return together;
}

void burst_runs_at_once_beside_one_idle_thread(void **)
{
    for (int round = 0; round < 5; round++) {
        assert_true(burst_runs_at_once());
    }
}

void jobs_queue_past_the_thread_limit_and_all_run(void **)
{
    WorkerPool pool(2);
    std::atomic<int> done{0};
    for (int i = 0; i < 20; i++) {
        pool.submit([&] {
            std::this_thread::sleep_for(1ms);
            done++;
        });
    }
    assert_true(wait_for([&] { return done.load() == 20; }));
    pool.join();
}

void after_join_a_job_runs_in_the_caller(void **)
{
    WorkerPool pool(2);
    pool.join();
    std::thread::id ran_on;
    pool.submit([&] { ran_on = std::this_thread::get_id(); });
    assert_true(ran_on == std::this_thread::get_id());
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_runs_at_once_beside_one_idle_thread),
        cmocka_unit_test(jobs_queue_past_the_thread_limit_and_all_run),
        cmocka_unit_test(after_join_a_job_runs_in_the_caller),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
