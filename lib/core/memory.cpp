#include "core/memory.hpp"

#include "core/error.hpp"

#include <cstdlib>
#include <fmt/format.h>
#include <unistd.h>
#include <sys/mman.h>

namespace lowrank {

namespace {
constexpr std::size_t huge_page = std::size_t{2} << 20;
}

void* allocate_large(std::size_t bytes) {
    if (bytes < huge_page) {
        void* pointer = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
        if (!pointer) throw std::bad_alloc();
        return pointer;
    }
    std::size_t rounded = (bytes + huge_page - 1) / huge_page * huge_page;
    void* pointer = std::aligned_alloc(huge_page, rounded);
    if (!pointer) throw std::bad_alloc();
    // MADV_HUGEPAGE here made page faults slower (synchronous compaction); plain pages it is.
    (void)rounded;
    return pointer;
}

void free_large(void* pointer) noexcept { std::free(pointer); }

void check_fits_in_memory(double bytes, std::string_view what) {
    double memory = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGE_SIZE));
    constexpr double gibibyte = 1024.0 * 1024 * 1024;
    if (memory > 0 && bytes > memory)
        throw error(fmt::format("{} needs {:.0f} GiB, more than this machine's {:.0f} GiB of memory", what,
                                bytes / gibibyte, memory / gibibyte));
}

}  // namespace lowrank
