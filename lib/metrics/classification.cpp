#include "metrics/classification.hpp"

#include <cmath>
#include <limits>
#include <numeric>

namespace lowrank {

std::uint64_t confusion_matrix::total() const {
    return std::accumulate(counts.begin(), counts.end(), std::uint64_t{0});
}

confusion_matrix count_confusion(std::span<const std::uint32_t> gold, std::span<const std::uint32_t> predicted,
                                 std::size_t classes) {
    confusion_matrix confusion(classes);
    for (std::size_t i = 0; i < gold.size(); ++i) ++confusion.counts[gold[i] * classes + predicted[i]];
    return confusion;
}

double accuracy(const confusion_matrix& confusion) {
    std::uint64_t correct = 0;
    for (std::size_t k = 0; k < confusion.classes; ++k) correct += confusion.at(k, k);
    std::uint64_t total = confusion.total();
    if (total == 0) return std::numeric_limits<double>::quiet_NaN();
    return static_cast<double>(correct) / static_cast<double>(total);
}

double f1_score(const confusion_matrix& confusion, std::size_t positive) {
    std::uint64_t true_positive = confusion.at(positive, positive), false_positive = 0, false_negative = 0;
    for (std::size_t k = 0; k < confusion.classes; ++k) {
        if (k == positive) continue;
        false_positive += confusion.at(k, positive);
        false_negative += confusion.at(positive, k);
    }
    std::uint64_t denominator = 2 * true_positive + false_positive + false_negative;
    if (denominator == 0) return 0.0;
    return 2.0 * static_cast<double>(true_positive) / static_cast<double>(denominator);
}

double matthews_correlation(const confusion_matrix& confusion) {
    // Sums in long double: s² reaches 10^14 for 10M rows, and the numerator is a
    // difference of two such numbers.
    long double correct = 0, rows = 0, predicted_times_true = 0, predicted_squared = 0, true_squared = 0;
    for (std::size_t k = 0; k < confusion.classes; ++k) {
        long double true_k = 0, predicted_k = 0;
        for (std::size_t j = 0; j < confusion.classes; ++j) {
            true_k += static_cast<long double>(confusion.at(k, j));
            predicted_k += static_cast<long double>(confusion.at(j, k));
        }
        correct += static_cast<long double>(confusion.at(k, k));
        rows += true_k;
        predicted_times_true += predicted_k * true_k;
        predicted_squared += predicted_k * predicted_k;
        true_squared += true_k * true_k;
    }
    long double numerator = correct * rows - predicted_times_true;
    long double denominator = std::sqrt((rows * rows - predicted_squared) * (rows * rows - true_squared));
    if (denominator == 0) return 0.0;
    return static_cast<double>(numerator / denominator);
}

}  // namespace lowrank
