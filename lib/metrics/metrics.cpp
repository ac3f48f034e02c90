#include "metrics/metrics.hpp"

#include "core/random.hpp"
#include "core/threads.hpp"
#include "metrics/classification.hpp"
#include "metrics/correlation.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <stdexcept>

namespace lowrank {
namespace {

struct metric_entry {
    metric_kind kind;
    std::string_view name;
    bool regression;
};

constexpr metric_entry metric_table[] = {
    {metric_kind::accuracy, "acc", false}, {metric_kind::f1, "f1", false}, {metric_kind::mcc, "mcc", false},
    {metric_kind::pearson, "pearson", true}, {metric_kind::spearman, "spearman", true},
};

const metric_entry& entry(metric_kind kind) {
    for (const auto& candidate : metric_table)
        if (candidate.kind == kind) return candidate;
    throw std::logic_error("metric missing from the table");
}

// numpy.percentile's default ("linear"): position q·(n−1) in the sorted values.
double percentile(const std::vector<double>& sorted, double fraction) {
    double position = fraction * static_cast<double>(sorted.size() - 1);
    auto below = static_cast<std::size_t>(std::floor(position));
    std::size_t above = std::min(below + 1, sorted.size() - 1);
    double weight = position - static_cast<double>(below);
    return sorted[below] + weight * (sorted[above] - sorted[below]);
}

template <class T>
std::vector<T> gather(const std::vector<T>& values, std::span<const std::uint32_t> subset) {
    std::vector<T> gathered(subset.size());
    for (std::size_t i = 0; i < subset.size(); ++i) gathered[i] = values[subset[i]];
    return gathered;
}

}  // namespace

std::string_view metric_name(metric_kind kind) { return entry(kind).name; }

std::optional<metric_kind> metric_from_name(std::string_view name) {
    for (const auto& candidate : metric_table)
        if (candidate.name == name) return candidate.kind;
    if (name == "accuracy") return metric_kind::accuracy;
    return std::nullopt;
}

bool is_regression_metric(metric_kind kind) { return entry(kind).regression; }

std::vector<double> compute_metrics(const std::vector<metric_kind>& metrics, const scored_rows& rows,
                                    std::span<const std::uint32_t> subset) {
    bool all_rows = subset.empty();
    std::optional<confusion_matrix> confusion;
    std::vector<double> gold_values, predicted_values;
    std::vector<double> values;
    for (metric_kind kind : metrics) {
        if (is_regression_metric(kind)) {
            if (!all_rows && gold_values.empty()) {
                gold_values = gather(rows.gold_values, subset);
                predicted_values = gather(rows.predicted_values, subset);
            }
            std::span<const double> gold = all_rows ? rows.gold_values : gold_values;
            std::span<const double> predicted = all_rows ? rows.predicted_values : predicted_values;
            values.push_back(kind == metric_kind::pearson ? pearson(gold, predicted) : spearman(gold, predicted));
            continue;
        }
        if (!confusion) {
            if (all_rows) {
                confusion = count_confusion(rows.gold_labels, rows.predicted_labels, rows.labels.size());
            } else {
                confusion.emplace(rows.labels.size());
                for (std::uint32_t row : subset)
                    ++confusion->counts[rows.gold_labels[row] * rows.labels.size() + rows.predicted_labels[row]];
            }
        }
        switch (kind) {
        case metric_kind::accuracy: values.push_back(accuracy(*confusion)); break;
        case metric_kind::mcc: values.push_back(matthews_correlation(*confusion)); break;
        default: values.push_back(rows.positive ? f1_score(*confusion, *rows.positive) : 0.0); break;
        }
    }
    return values;
}

std::vector<std::string> metric_warnings(const std::vector<metric_kind>& metrics, const scored_rows& rows,
                                         const std::vector<double>& values, std::string_view positive_label) {
    std::vector<std::string> warnings;
    for (std::size_t i = 0; i < metrics.size(); ++i) {
        metric_kind kind = metrics[i];
        if (kind == metric_kind::f1 && values[i] == 0.0) {
            bool in_gold = rows.positive && std::count(rows.gold_labels.begin(), rows.gold_labels.end(), *rows.positive);
            bool predicted = rows.positive &&
                             std::count(rows.predicted_labels.begin(), rows.predicted_labels.end(), *rows.positive);
            if (!in_gold || !predicted)
                warnings.push_back(fmt::format("f1 is ill-defined: the positive label '{}' is {}; reporting 0",
                                               positive_label,
                                               !in_gold && !predicted ? "neither in the gold labels nor predicted"
                                               : !in_gold             ? "not in the gold labels"
                                                                      : "never predicted"));
        }
        if (is_regression_metric(kind) && std::isnan(values[i])) {
            auto constant = [](const std::vector<double>& v) {
                return std::all_of(v.begin(), v.end(), [&](double x) { return x == v.front(); });
            };
            std::string which = constant(rows.gold_values) && constant(rows.predicted_values)
                                    ? "the gold values and the predictions are"
                                : constant(rows.gold_values) ? "the gold values are"
                                                             : "the predictions are";
            warnings.push_back(fmt::format("{} is undefined: {} constant; reporting nan",
                                           metric_name(kind), rows.size() < 2 ? "fewer than 2 rows," : which));
        }
    }
    return warnings;
}

std::vector<confidence_interval> bootstrap(
    std::size_t rows, std::size_t resamples, std::uint64_t seed, double level,
    const std::function<std::vector<double>(std::span<const std::uint32_t>)>& statistics) {
    std::vector<std::vector<double>> results(resamples);
    parallel_for(resamples, [&](std::size_t begin, std::size_t end) {
        std::vector<std::uint32_t> resample(rows);
        for (std::size_t r = begin; r < end; ++r) {
            random_generator random(seed, r);
            for (auto& row : resample) row = static_cast<std::uint32_t>(random.below(rows));
            results[r] = statistics(resample);
        }
    });
    std::size_t count = results.empty() ? 0 : results.front().size();
    std::vector<confidence_interval> intervals(count);
    double tail = (1.0 - level) / 2;
    for (std::size_t s = 0; s < count; ++s) {
        std::vector<double> values;
        for (const auto& result : results)
            if (!std::isnan(result[s])) values.push_back(result[s]);
        if (values.empty()) {
            intervals[s] = {std::nan(""), std::nan("")};
            continue;
        }
        std::sort(values.begin(), values.end());
        intervals[s] = {percentile(values, tail), percentile(values, 1 - tail)};
    }
    return intervals;
}

}  // namespace lowrank
