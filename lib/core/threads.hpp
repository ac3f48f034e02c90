// How many threads the tools use, and a plain parallel loop over index ranges.
#pragma once

#include <cstddef>
#include <functional>

namespace lowrank {

// Cores this process may run on (its CPU affinity), at least 1.
int available_cores();

// Sets the thread count for our own loops and for OpenBLAS. Default: available_cores().
void set_thread_count(int threads);
int thread_count();

// Calls body(begin, end) on disjoint consecutive ranges covering [0, count), one range per
// thread, on up to thread_count() threads. The split depends only on count and the thread
// count, so results that are combined in range order are reproducible.
// The first exception thrown by any range is rethrown here.
void parallel_for(std::size_t count, const std::function<void(std::size_t begin, std::size_t end)>& body);

}  // namespace lowrank
