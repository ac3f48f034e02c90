#include "metrics/classification.hpp"
#include "metrics/correlation.hpp"
#include "metrics/glue.hpp"
#include "metrics/metrics.hpp"

#include <cmath>
#include <doctest/doctest.h>

using namespace lowrank;

namespace {
std::vector<std::uint32_t> ids(std::initializer_list<std::uint32_t> values) { return values; }
}  // namespace

TEST_CASE("binary confusion metrics, worked by hand") {
    // gold 1 0 1 1 0 / pred 1 0 0 1 1: TP 2, TN 1, FP 1, FN 1.
    auto confusion = count_confusion(ids({1, 0, 1, 1, 0}), ids({1, 0, 0, 1, 1}), 2);
    CHECK(confusion.at(1, 1) == 2);
    CHECK(confusion.at(0, 1) == 1);
    CHECK(accuracy(confusion) == doctest::Approx(0.6));
    CHECK(f1_score(confusion, 1) == doctest::Approx(2.0 / 3));
    CHECK(matthews_correlation(confusion) == doctest::Approx(1.0 / 6));  // (2·1 − 1·1) / sqrt(3·3·2·2)
}

TEST_CASE("MCC conventions of scikit-learn") {
    CHECK(matthews_correlation(count_confusion(ids({0, 1, 0, 1}), ids({1, 1, 1, 1}), 2)) == 0.0);  // constant
    CHECK(matthews_correlation(count_confusion(ids({0, 1, 2}), ids({0, 1, 2}), 3)) == doctest::Approx(1.0));
    CHECK(matthews_correlation(count_confusion(ids({0, 1}), ids({1, 0}), 2)) == doctest::Approx(-1.0));
    // Three classes: c = 4, s = 5, t = (2, 2, 1), p = (1, 3, 1):
    // (4·5 − (2·1 + 2·3 + 1·1)) / sqrt((25 − (1+9+1))(25 − (4+4+1))) = 11 / sqrt(224).
    auto three = count_confusion(ids({0, 0, 1, 1, 2}), ids({0, 1, 1, 1, 2}), 3);
    CHECK(matthews_correlation(three) == doctest::Approx(11 / std::sqrt(224.0)));
}

TEST_CASE("F1 with no positive example is 0") {
    CHECK(f1_score(count_confusion(ids({0, 0}), ids({0, 0}), 2), 1) == 0.0);
    CHECK(f1_score(count_confusion(ids({1, 1}), ids({0, 0}), 2), 1) == 0.0);
}

TEST_CASE("Pearson and Spearman") {
    std::vector<double> x{1, 2, 3, 4, 5}, y{2, 4, 6, 8, 10}, z{5, 4, 3, 2, 1};
    CHECK(pearson(x, y) == doctest::Approx(1.0));
    CHECK(pearson(x, z) == doctest::Approx(-1.0));
    CHECK(std::isnan(pearson(x, std::vector<double>(5, 3.0))));
    CHECK(std::isnan(pearson(std::vector<double>{1}, std::vector<double>{2})));
    std::vector<double> cubes{1, 8, 27, 64, 125};
    CHECK(spearman(x, cubes) == doctest::Approx(1.0));  // monotone, not linear
    CHECK(pearson(x, cubes) < 0.99);
}

TEST_CASE("average ranks: ties share the mean of their ranks, negatives and zeros sort right") {
    std::vector<double> values{10, -1, 10, 0.0, -0.0, 3e300, -3e300};
    std::vector<double> expected{5.5, 2, 5.5, 3.5, 3.5, 7, 1};
    CHECK(average_ranks(values) == expected);
}

TEST_CASE("average ranks of values that differ only in their last bits") {
    double one = 1.0, next = std::nextafter(1.0, 2.0), after = std::nextafter(next, 2.0);
    std::vector<double> values{after, one, next, one, after, 0.5};
    CHECK(average_ranks(values) == std::vector<double>{5.5, 2.5, 4, 2.5, 5.5, 1});
}

TEST_CASE("compute_metrics on a subset and bootstrap reproducibility") {
    scored_rows rows;
    rows.labels = {"0", "1"};
    rows.gold_labels = ids({1, 0, 1, 1, 0});
    rows.predicted_labels = ids({1, 0, 0, 1, 1});
    rows.positive = 1;
    auto all = compute_metrics({metric_kind::accuracy, metric_kind::f1}, rows);
    CHECK(all[0] == doctest::Approx(0.6));
    std::vector<std::uint32_t> first_two{0, 1};
    CHECK(compute_metrics({metric_kind::accuracy}, rows, first_two)[0] == 1.0);
    auto statistic = [&](std::span<const std::uint32_t> resample) {
        return compute_metrics({metric_kind::accuracy}, rows, resample);
    };
    auto a = bootstrap(rows.size(), 200, 3, 0.95, statistic);
    auto b = bootstrap(rows.size(), 200, 3, 0.95, statistic);
    CHECK(a[0].low == b[0].low);
    CHECK(a[0].high == b[0].high);
    CHECK(a[0].low <= 0.6);
    CHECK(a[0].high >= 0.6);
}

TEST_CASE("GLUE task table and label canonical forms") {
    REQUIRE(find_glue_task("mrpc"));
    CHECK(find_glue_task("mrpc")->metrics == std::vector{metric_kind::f1, metric_kind::accuracy});
    CHECK(find_glue_task("sts-b") == find_glue_task("stsb"));
    CHECK(find_glue_task("squad") == nullptr);
    CHECK(glue_tasks().size() == 11);
    CHECK(canonical_label(" 1.0 ") == "1");
    CHECK(canonical_label("-0") == "0");
    CHECK(canonical_label("2.50") == "2.5");
    CHECK(canonical_label("entailment") == "entailment");
    CHECK(metric_from_name("accuracy") == metric_kind::accuracy);
    CHECK(!metric_from_name("auc"));
}
