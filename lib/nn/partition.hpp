// Splitting rows over the threads in a fixed way, so that sums over rows come out the same
// for the same thread count (inside the library only).
#pragma once

#include "core/threads.hpp"

#include <algorithm>
#include <cstddef>

namespace lowrank {

// How many parts to cut `count` items into: one per thread, each at least `minimum` items.
inline std::size_t part_count(std::size_t count, std::size_t minimum) {
    std::size_t by_size = std::max<std::size_t>(1, count / std::max<std::size_t>(1, minimum));
    return std::max<std::size_t>(1, std::min(static_cast<std::size_t>(thread_count()), by_size));
}

// Runs body(part, begin, end) for part 0..parts-1 over consecutive ranges covering
// [0, count), on the threads.
template <class Body>
void for_each_part(std::size_t count, std::size_t parts, Body&& body) {
    parallel_for(parts, [&](std::size_t first, std::size_t last) {
        for (std::size_t part = first; part < last; ++part)
            body(part, count * part / parts, count * (part + 1) / parts);
    });
}

// Runs body(begin, end) over ranges of [0, count) on the threads, each range at least
// `minimum` items (small work stays on one thread).
template <class Body>
void for_rows(std::size_t count, std::size_t minimum, Body&& body) {
    for_each_part(count, part_count(count, minimum),
                  [&](std::size_t, std::size_t begin, std::size_t end) { body(begin, end); });
}

}  // namespace lowrank
