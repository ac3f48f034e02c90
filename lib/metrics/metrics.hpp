// The GLUE metrics by name, computed on gold and predicted rows, with bootstrap intervals.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

enum class metric_kind { accuracy, f1, mcc, pearson, spearman };

// "acc", "f1", "mcc", "pearson", "spearman".
std::string_view metric_name(metric_kind kind);
std::optional<metric_kind> metric_from_name(std::string_view name);
// Pearson and Spearman read numbers; the others compare labels.
bool is_regression_metric(metric_kind kind);

// Gold and predicted rows, row i of one matching row i of the other: as label ids (for
// classification metrics) and as numbers (for regression metrics), as the metrics need.
struct scored_rows {
    std::vector<std::string> labels;  // label id → text, in display order
    std::vector<std::uint32_t> gold_labels, predicted_labels;
    std::vector<double> gold_values, predicted_values;
    std::optional<std::uint32_t> positive;  // F1's positive label, when it occurs at all

    std::size_t size() const { return gold_labels.empty() ? gold_values.size() : gold_labels.size(); }
};

// The metrics on all rows, or on the listed rows (a bootstrap resample, rows may repeat).
std::vector<double> compute_metrics(const std::vector<metric_kind>& metrics, const scored_rows& rows,
                                    std::span<const std::uint32_t> subset = {});

// Why a metric's value is a convention rather than a measurement (F1 with no positive
// example, a correlation of constant values), for the tool to warn about; empty if none.
std::vector<std::string> metric_warnings(const std::vector<metric_kind>& metrics, const scored_rows& rows,
                                         const std::vector<double>& values, std::string_view positive_label);

struct confidence_interval {
    double low = 0, high = 0;
};

// Percentile bootstrap: `resamples` resamples of the rows with replacement, each drawn from
// its own stream of `seed`, so the result does not depend on the thread count. Returns, for
// each statistic, the interval holding the central `level` of its resampled values
// (percentiles interpolated linearly, as numpy.percentile; NaN values left out).
// `statistics` maps a resample (row indices) to the statistics' values.
std::vector<confidence_interval> bootstrap(
    std::size_t rows, std::size_t resamples, std::uint64_t seed, double level,
    const std::function<std::vector<double>(std::span<const std::uint32_t>)>& statistics);

}  // namespace lowrank
