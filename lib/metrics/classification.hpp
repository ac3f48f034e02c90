// Classification metrics from a confusion matrix, with scikit-learn's conventions for the
// cases where a formula divides by zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace lowrank {

// counts[gold · classes + predicted]: rows are gold labels, columns predictions.
struct confusion_matrix {
    std::size_t classes = 0;
    std::vector<std::uint64_t> counts;

    explicit confusion_matrix(std::size_t class_count) : classes(class_count), counts(class_count * class_count) {}
    std::uint64_t at(std::size_t gold, std::size_t predicted) const { return counts[gold * classes + predicted]; }
    std::uint64_t total() const;
};

// Labels are ids in [0, classes).
confusion_matrix count_confusion(std::span<const std::uint32_t> gold, std::span<const std::uint32_t> predicted,
                                 std::size_t classes);

// Fraction of rows where the prediction equals the gold label. NaN for no rows.
double accuracy(const confusion_matrix& confusion);

// F1 of one class against the rest: 2·TP / (2·TP + FP + FN). When that is 0/0 (the class
// is neither in the gold labels nor predicted) it is 0, as scikit-learn's zero_division
// default gives.
double f1_score(const confusion_matrix& confusion, std::size_t positive);

// Matthews correlation coefficient, multiclass (Gorodkin's R_K, as scikit-learn):
//   MCC = (c·s − Σ_k p_k·t_k) / sqrt((s² − Σ_k p_k²)(s² − Σ_k t_k²))
// with c correct predictions, s rows, t_k rows whose gold label is k, p_k rows predicted k.
// For two classes it is (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)).
// 0 when the denominator is 0 (e.g. a constant prediction), as scikit-learn.
double matthews_correlation(const confusion_matrix& confusion);

}  // namespace lowrank
