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
// If ranges throw, the exception of the first of them (in range order, whatever the
// timing) is rethrown here.
void parallel_for(std::size_t count, const std::function<void(std::size_t begin, std::size_t end)>& body);

// Streams items 0 .. count-1 through up to thread_count() workers and hands them back in
// order, for work whose results are written in input order with bounded memory:
//   take(index, slot)     one at a time, in increasing index order (for sequential input);
//   work(index, slot)     in parallel;
//   deliver(index, slot)  on the calling thread, in increasing index order.
// slot = index % slots: at most `slots` items are between take and deliver, so buffers
// indexed by slot belong to one item at a time. The first exception, in index order, stops
// the workers and is rethrown here. With one thread everything runs on the calling thread.
void ordered_parallel(std::size_t count, std::size_t slots, const std::function<void(std::size_t, std::size_t)>& take,
                      const std::function<void(std::size_t, std::size_t)>& work,
                      const std::function<void(std::size_t, std::size_t)>& deliver);

}  // namespace lowrank
