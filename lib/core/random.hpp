// A seeded random generator that gives the same numbers on every platform and library
// version (std:: distributions do not promise that): xoshiro256** seeded through splitmix64.
#pragma once

#include <cstdint>

namespace lowrank {

class random_generator {
public:
    explicit random_generator(std::uint64_t seed, std::uint64_t stream = 0);

    std::uint64_t next();
    // Uniform integer in [0, bound), without modulo bias (Lemire's method). bound > 0.
    std::uint64_t below(std::uint64_t bound);
    // Uniform double in [0, 1) with 53 random bits.
    double uniform();
    // Standard normal (Box-Muller).
    double normal();

private:
    std::uint64_t state_[4];
    bool has_spare_normal_ = false;
    double spare_normal_ = 0;
};

}  // namespace lowrank
