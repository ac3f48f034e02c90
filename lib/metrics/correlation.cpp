#include "metrics/correlation.hpp"

#include "core/threads.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <utility>

namespace lowrank {
namespace {

// Maps a double to an unsigned integer with the same order (for finite values and ±inf),
// so that a radix sort on the integers sorts the doubles.
std::uint64_t order_preserving_key(double value) {
    if (value == 0) value = 0;  // -0.0 and +0.0 tie, as they compare equal
    auto bits = std::bit_cast<std::uint64_t>(value);
    return (bits >> 63) ? ~bits : bits | (std::uint64_t{1} << 63);
}

// Indices 0..n-1 ordered by key, stable: least-significant-digit radix sort on 16-bit digits,
// skipping the digits where every key agrees. Linear time: 10 million values sort in a
// fraction of a second, where a comparison sort takes seconds.
std::vector<std::uint32_t> sorted_order(const std::vector<std::uint64_t>& keys) {
    std::size_t n = keys.size();
    std::vector<std::uint32_t> order(n), scratch(n);
    std::iota(order.begin(), order.end(), 0u);
    std::vector<std::size_t> counts(1 << 16);
    for (int shift = 0; shift < 64; shift += 16) {
        std::fill(counts.begin(), counts.end(), 0);
        for (std::uint64_t key : keys) ++counts[(key >> shift) & 0xFFFF];
        if (std::find(counts.begin(), counts.end(), n) != counts.end()) continue;  // one digit value: no-op pass
        std::size_t position = 0;
        for (auto& count : counts) position += std::exchange(count, position);
        for (std::uint32_t index : order) scratch[counts[(keys[index] >> shift) & 0xFFFF]++] = index;
        order.swap(scratch);
    }
    return order;
}

double mean(std::span<const double> values) {
    // Pairwise-accurate enough: a long double accumulator keeps 10^7 terms exact to ~1e-12.
    long double sum = 0;
    for (double value : values) sum += value;
    return static_cast<double>(sum / static_cast<long double>(values.size()));
}

}  // namespace

double pearson(std::span<const double> x, std::span<const double> y) {
    std::size_t n = x.size();
    if (n < 2 || y.size() != n) return std::numeric_limits<double>::quiet_NaN();
    double mean_x = mean(x), mean_y = mean(y);
    long double xy = 0, xx = 0, yy = 0;
    for (std::size_t i = 0; i < n; ++i) {
        long double dx = x[i] - mean_x, dy = y[i] - mean_y;
        xy += dx * dy;
        xx += dx * dx;
        yy += dy * dy;
    }
    if (xx == 0 || yy == 0) return std::numeric_limits<double>::quiet_NaN();
    double r = static_cast<double>(xy / std::sqrt(xx * yy));
    return std::clamp(r, -1.0, 1.0);
}

std::vector<double> average_ranks(std::span<const double> values) {
    std::vector<std::uint64_t> keys(values.size());
    std::transform(values.begin(), values.end(), keys.begin(), order_preserving_key);
    std::vector<std::uint32_t> order = sorted_order(keys);
    std::vector<double> ranks(values.size());
    for (std::size_t start = 0; start < order.size();) {
        std::size_t end = start + 1;
        while (end < order.size() && keys[order[end]] == keys[order[start]]) ++end;
        // Positions start..end-1 hold equal values: each gets the mean of ranks start+1..end.
        double rank = 0.5 * static_cast<double>(start + 1 + end);
        for (std::size_t i = start; i < end; ++i) ranks[order[i]] = rank;
        start = end;
    }
    return ranks;
}

double spearman(std::span<const double> x, std::span<const double> y) {
    if (x.size() != y.size()) return std::numeric_limits<double>::quiet_NaN();
    std::vector<double> rank_x, rank_y;
    parallel_for(2, [&](std::size_t begin, std::size_t end) {
        for (std::size_t side = begin; side < end; ++side) (side == 0 ? rank_x : rank_y) = average_ranks(side == 0 ? x : y);
    });
    return pearson(rank_x, rank_y);
}

}  // namespace lowrank
