// A fast 64-bit hash of short byte strings (words, pieces), eight bytes at a time, with the
// splitmix64 finalizer. Never 0, so hash tables can mark empty slots with 0.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace lowrank {

inline std::uint64_t string_hash(std::string_view key) {
    std::uint64_t hash = key.size() * 0x9E3779B97F4A7C15ull;
    auto mix = [&](std::uint64_t word) {
        hash = (hash ^ word) * 0xBF58476D1CE4E5B9ull;
        hash ^= hash >> 31;
    };
    std::size_t i = 0;
    for (; i + 8 <= key.size(); i += 8) {
        std::uint64_t word;
        std::memcpy(&word, key.data() + i, 8);
        mix(word);
    }
    if (i < key.size()) {
        std::uint64_t word = 0;
        std::memcpy(&word, key.data() + i, key.size() - i);
        mix(word);
    }
    hash ^= hash >> 29;
    hash *= 0x94D049BB133111EBull;
    hash ^= hash >> 32;
    return hash | 1;
}

}  // namespace lowrank
