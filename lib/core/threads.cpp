#include "core/threads.hpp"

#include <algorithm>
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
    std::exception_ptr failure;
    std::mutex failure_mutex;
    auto run_range = [&](std::size_t worker) {
        std::size_t begin = count * worker / workers, end = count * (worker + 1) / workers;
        inside_parallel_for = true;
        try {
            body(begin, end);
        } catch (...) {
            std::lock_guard lock(failure_mutex);
            if (!failure) failure = std::current_exception();
        }
        inside_parallel_for = false;
    };
    std::vector<std::thread> threads;
    for (std::size_t worker = 1; worker < workers; ++worker) threads.emplace_back(run_range, worker);
    run_range(0);
    for (auto& thread : threads) thread.join();
    if (failure) std::rethrow_exception(failure);
}

}  // namespace lowrank
