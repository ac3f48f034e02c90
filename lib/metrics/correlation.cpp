#include "metrics/correlation.hpp"

#include "core/memory.hpp"
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

// Packed to 12 bytes: a third less memory traffic than the padded 16.
struct [[gnu::packed]] keyed_index {
    std::uint64_t key;
    std::uint32_t index;
};

constexpr int digit_bits = 11, radix_digits = 3, first_radix_bit = 64 - radix_digits * digit_bits;
constexpr std::size_t buckets = std::size_t{1} << digit_bits;

// Orders the (key, index) pairs by the top 33 bits of their keys: a least-significant-digit
// radix sort on 11-bit digits (2048 buckets keep the scattered writes within the caches),
// skipping digits where all keys agree. For doubles the top 33 bits are sign, exponent and
// 21 bits of mantissa, which already tell apart the values of real data; average_ranks
// finishes the few runs that agree on them but not on the whole key with a comparison
// sort. Three linear passes, where a full radix sort takes six and a comparison sort of
// 10 million values takes seconds.
void sort_by_key_prefix(large_vector<keyed_index>& items) {
    std::vector<std::size_t> counts(radix_digits * buckets);
    for (const auto& item : items) {
        ++counts[(item.key >> first_radix_bit) & (buckets - 1)];
        ++counts[buckets + ((item.key >> (first_radix_bit + digit_bits)) & (buckets - 1))];
        ++counts[2 * buckets + ((item.key >> (first_radix_bit + 2 * digit_bits)) & (buckets - 1))];
    }
    large_vector<keyed_index> scratch(items.size());
    for (int digit = 0; digit < radix_digits; ++digit) {
        std::size_t* count = counts.data() + digit * buckets;
        if (std::find(count, count + buckets, items.size()) != count + buckets) continue;  // all keys agree here
        std::size_t position = 0;
        for (std::size_t bucket = 0; bucket < buckets; ++bucket) position += std::exchange(count[bucket], position);
        int shift = first_radix_bit + digit * digit_bits;
        for (const auto& item : items) scratch[count[(item.key >> shift) & (buckets - 1)]++] = item;
        items.swap(scratch);
    }
}

// Sums in four interleaved partial sums: vectorisable, and with the error of a plain sum
// of a quarter of the terms (1e-13 relative for 10^7 values, far below what the 1e-9
// agreement with SciPy needs).
template <class Term>
double sum_of(std::size_t count, Term term) {
    double partial[4] = {0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 4 <= count; i += 4)
        for (std::size_t lane = 0; lane < 4; ++lane) partial[lane] += term(i + lane);
    for (; i < count; ++i) partial[0] += term(i);
    return (partial[0] + partial[1]) + (partial[2] + partial[3]);
}

}  // namespace

double pearson(std::span<const double> x, std::span<const double> y) {
    std::size_t n = x.size();
    if (n < 2 || y.size() != n) return std::numeric_limits<double>::quiet_NaN();
    double mean_x = sum_of(n, [&](std::size_t i) { return x[i]; }) / static_cast<double>(n);
    double mean_y = sum_of(n, [&](std::size_t i) { return y[i]; }) / static_cast<double>(n);
    double xy = sum_of(n, [&](std::size_t i) { return (x[i] - mean_x) * (y[i] - mean_y); });
    double xx = sum_of(n, [&](std::size_t i) { return (x[i] - mean_x) * (x[i] - mean_x); });
    double yy = sum_of(n, [&](std::size_t i) { return (y[i] - mean_y) * (y[i] - mean_y); });
    if (xx == 0 || yy == 0) return std::numeric_limits<double>::quiet_NaN();
    return std::clamp(xy / std::sqrt(xx * yy), -1.0, 1.0);
}

std::vector<double> average_ranks(std::span<const double> values) {
    large_vector<keyed_index> items(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) items[i] = {order_preserving_key(values[i]), static_cast<std::uint32_t>(i)};
    sort_by_key_prefix(items);
    std::vector<double> ranks(values.size());
    auto by_key = [](const keyed_index& a, const keyed_index& b) { return a.key < b.key; };
    for (std::size_t start = 0; start < items.size();) {
        // A run of items with equal key prefixes; sort it if the keys differ.
        std::size_t end = start + 1;
        bool sorted = true;
        while (end < items.size() && (items[end].key >> first_radix_bit) == (items[start].key >> first_radix_bit)) {
            sorted = sorted && items[end].key >= items[end - 1].key;
            ++end;
        }
        if (!sorted) std::sort(items.begin() + static_cast<std::ptrdiff_t>(start), items.begin() + static_cast<std::ptrdiff_t>(end), by_key);
        // Within the run, positions a..b-1 holding equal keys get the mean of ranks a+1..b.
        for (std::size_t a = start; a < end;) {
            std::size_t b = a + 1;
            while (b < end && items[b].key == items[a].key) ++b;
            double rank = 0.5 * static_cast<double>(a + 1 + b);
            for (std::size_t i = a; i < b; ++i) ranks[items[i].index] = rank;
            a = b;
        }
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
