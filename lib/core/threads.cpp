#include "core/threads.hpp"

#include <algorithm>
#include <condition_variable>
#include <stdexcept>
#include <exception>
#include <mutex>
#include <sched.h>
#include <thread>
#include <vector>

// Weak: tools that do no matrix products are linked without OpenBLAS (whose worker threads
// would otherwise start with the process and spin), and then this is null.
extern "C" void openblas_set_num_threads(int threads) __attribute__((weak));

namespace lowrank {
namespace {
int configured_threads = 0;  // 0: not set yet, use available_cores()
// Set inside parallel_for's workers: a nested parallel_for runs on the calling thread
// instead of multiplying the threads.
thread_local bool inside_parallel_for = false;
}

int available_cores() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
    return std::max(1u, std::thread::hardware_concurrency());
}

void set_thread_count(int threads) {
    configured_threads = std::max(1, threads);
    if (openblas_set_num_threads) openblas_set_num_threads(configured_threads);
}

int thread_count() {
    return configured_threads > 0 ? configured_threads : available_cores();
}

void parallel_for(std::size_t count, const std::function<void(std::size_t, std::size_t)>& body) {
    std::size_t workers = inside_parallel_for ? 1 : std::min<std::size_t>(static_cast<std::size_t>(thread_count()), count);
    if (workers <= 1) {
        if (count > 0) body(0, count);
        return;
    }
    // One slot per range: the failure reported is that of the first range, whichever
    // thread failed first, so the same input always gives the same message.
    std::vector<std::exception_ptr> failures(workers);
    auto run_range = [&](std::size_t worker) {
        std::size_t begin = count * worker / workers, end = count * (worker + 1) / workers;
        inside_parallel_for = true;
        try {
            body(begin, end);
        } catch (...) {
            failures[worker] = std::current_exception();
        }
        inside_parallel_for = false;
    };
    std::vector<std::thread> threads;
    for (std::size_t worker = 1; worker < workers; ++worker) threads.emplace_back(run_range, worker);
    run_range(0);
    for (auto& thread : threads) thread.join();
    for (const auto& failure : failures)
        if (failure) std::rethrow_exception(failure);
}

namespace {

// The shared state of ordered_parallel, guarded by `lock`.
struct ordered_state {
    std::mutex lock;
    std::condition_variable changed;
    std::size_t next_take = 0, next_deliver = 0;
    std::vector<char> ready;
    std::vector<std::exception_ptr> failures;
    bool stop = false;
};

}  // namespace

void ordered_parallel(std::size_t count, std::size_t slots, const std::function<void(std::size_t, std::size_t)>& take,
                      const std::function<void(std::size_t, std::size_t)>& work,
                      const std::function<void(std::size_t, std::size_t)>& deliver) {
    if (slots == 0) throw std::invalid_argument("ordered_parallel: no slots");
    std::size_t workers = inside_parallel_for ? 1 : std::min<std::size_t>(static_cast<std::size_t>(thread_count()), count);
    if (workers <= 1) {
        for (std::size_t index = 0; index < count; ++index) {
            take(index, index % slots);
            work(index, index % slots);
            deliver(index, index % slots);
        }
        return;
    }
    ordered_state state;
    state.ready.assign(slots, 0);
    state.failures.assign(slots, nullptr);
    auto run_worker = [&] {
        inside_parallel_for = true;
        std::unique_lock guard(state.lock);
        for (;;) {
            state.changed.wait(guard, [&] {
                return state.stop || state.next_take >= count || state.next_take < state.next_deliver + slots;
            });
            if (state.stop || state.next_take >= count) break;
            std::size_t index = state.next_take++, slot = index % slots;
            std::exception_ptr failure;
            try {
                take(index, slot);  // under the lock: takes happen one at a time, in order
            } catch (...) {
                failure = std::current_exception();
            }
            guard.unlock();
            if (!failure) try {
                    work(index, slot);
                } catch (...) {
                    failure = std::current_exception();
                }
            guard.lock();
            state.failures[slot] = failure;
            state.ready[slot] = 1;
            state.changed.notify_all();
        }
        inside_parallel_for = false;
    };
    std::vector<std::thread> threads;
    auto stop_all = [&] {
        {
            std::lock_guard guard(state.lock);
            state.stop = true;
        }
        state.changed.notify_all();
        for (auto& thread : threads) thread.join();
    };
    for (std::size_t worker = 0; worker < workers; ++worker) threads.emplace_back(run_worker);
    for (std::size_t index = 0; index < count; ++index) {
        std::size_t slot = index % slots;
        {
            std::unique_lock guard(state.lock);
            state.changed.wait(guard, [&] { return state.ready[slot] != 0; });
        }
        try {
            if (state.failures[slot]) std::rethrow_exception(state.failures[slot]);
            deliver(index, slot);
        } catch (...) {
            stop_all();
            throw;
        }
        {
            std::lock_guard guard(state.lock);
            state.ready[slot] = 0;
            ++state.next_deliver;
        }
        state.changed.notify_all();
    }
    stop_all();
}

}  // namespace lowrank
