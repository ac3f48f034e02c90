// Shared by the nn unit tests: random values, and gradients checked against central finite
// differences of a scalar loss.
#pragma once

#include "core/random.hpp"
#include "nn/parameters.hpp"

#include <algorithm>
#include <cmath>
#include <doctest/doctest.h>
#include <functional>
#include <string>
#include <vector>

namespace lowrank::testing {

inline std::vector<float> random_values(std::size_t count, std::uint64_t seed, float scale = 1) {
    random_generator random(seed);
    std::vector<float> values(count);
    for (float& value : values) value = static_cast<float>(random.normal()) * scale;
    return values;
}

inline void fill_random(parameter& p, std::uint64_t seed, float scale = 1) {
    auto values = random_values(p.size(), seed, scale);
    std::copy(values.begin(), values.end(), p.value);
}

// Σ w ⊙ y in double: the scalar loss whose gradient with respect to y is w.
inline double weighted_sum(const float* y, const std::vector<float>& w) {
    double sum = 0;
    for (std::size_t i = 0; i < w.size(); ++i) sum += static_cast<double>(y[i]) * w[i];
    return sum;
}

// Compares analytic[i] with (loss(x_i + h) − loss(x_i − h)) / 2h for every element of
// `values` (up to `limit` of them, spread over the array).
inline void check_gradient(const std::string& what, float* values, std::size_t count, const float* analytic,
                           const std::function<double()>& loss, float h = 5e-3f, double tolerance = 5e-3,
                           std::size_t limit = 200) {
    std::size_t step = std::max<std::size_t>(1, count / limit);
    double worst = 0;
    std::size_t worst_index = 0;
    for (std::size_t i = 0; i < count; i += step) {
        float saved = values[i];
        values[i] = saved + h;
        double plus = loss();
        values[i] = saved - h;
        double minus = loss();
        values[i] = saved;
        double numeric = (plus - minus) / (2.0 * static_cast<double>(h));
        double error = std::abs(numeric - analytic[i]) / (1.0 + std::abs(numeric));
        if (error > worst) {
            worst = error;
            worst_index = i;
        }
    }
    INFO(what << ": worst element " << worst_index << " of " << count << ", relative error " << worst);
    CHECK(worst <= tolerance);
}

}  // namespace lowrank::testing
