// Large buffers. Memory from malloc arrives in 4 KiB pages, each a page fault at first
// touch: a few hundred thousand faults for the arrays of a 10-million-row evaluation or a
// model's activations. large_vector asks the kernel for 2 MiB pages where it can
// (transparent huge pages), 512 times fewer faults.
#pragma once

#include <cstddef>
#include <new>
#include <string_view>
#include <vector>

namespace lowrank {

// Memory for `bytes`, 64-byte aligned; huge-page backed when it is at least 2 MiB.
void* allocate_large(std::size_t bytes);
void free_large(void* pointer) noexcept;

// Throws lowrank::error when `bytes` exceed this machine's physical memory, for sizes that
// come from what a file claims (a config's layer widths): a clear message instead of an
// allocation failure or the kernel's out-of-memory killer. `what` names what needs them:
// "config.json: a model of 1.2e12 parameters" gives "... needs 4470 GiB, more than this
// machine's 24 GiB of memory".
void check_fits_in_memory(double bytes, std::string_view what);

template <class T>
struct large_allocator {
    using value_type = T;
    large_allocator() = default;
    template <class U>
    large_allocator(const large_allocator<U>&) noexcept {}
    T* allocate(std::size_t count) { return static_cast<T*>(allocate_large(count * sizeof(T))); }
    void deallocate(T* pointer, std::size_t) noexcept { free_large(pointer); }
    template <class U>
    bool operator==(const large_allocator<U>&) const noexcept { return true; }
};

template <class T>
using large_vector = std::vector<T, large_allocator<T>>;

}  // namespace lowrank
