// Losses: values against plain formulas in double, gradients against finite differences.
#include "nn/loss.hpp"
#include "nn_testing.hpp"

#include <cmath>
#include <doctest/doctest.h>

using namespace lowrank;
using namespace lowrank::testing;

TEST_CASE("cross_entropy: value, ignored rows, gradient (also in place)") {
    const std::size_t rows = 4, classes = 7;
    auto logits = random_values(rows * classes, 1, 3.0f);
    logits[5] = 80;  // a large logit: no overflow
    std::int32_t targets[] = {5, ignore_index, 0, 6};
    std::vector<float> d(rows * classes, 9.0f);
    auto result = cross_entropy(logits.data(), targets, rows, classes, d.data(), 0.5f);
    CHECK(result.counted == 3);
    double expected = 0;
    for (std::size_t r : {0, 2, 3}) {
        double m = -1e300, sum = 0;
        for (std::size_t j = 0; j < classes; ++j) m = std::max(m, static_cast<double>(logits[r * classes + j]));
        for (std::size_t j = 0; j < classes; ++j) sum += std::exp(logits[r * classes + j] - m);
        expected += m + std::log(sum) - logits[r * classes + targets[r]];
    }
    CHECK(result.sum == doctest::Approx(expected).epsilon(1e-6));
    for (std::size_t j = 0; j < classes; ++j) CHECK(d[classes + j] == 0);  // the ignored row
    check_gradient("dlogits", logits.data(), logits.size(), d.data(), [&] {
        return 0.5 * cross_entropy(logits.data(), targets, rows, classes, nullptr, 0).sum;
    });
    std::vector<float> in_place = logits;
    cross_entropy(in_place.data(), targets, rows, classes, in_place.data(), 0.5f);
    CHECK(in_place == d);
}

TEST_CASE("squared_error: sum and gradient") {
    float prediction[] = {1, 2, 3}, target[] = {1, 0, 5}, d[3];
    CHECK(squared_error(prediction, target, 3, d, 0.5f) == 8);
    CHECK(d[0] == 0);
    CHECK(d[1] == 2);
    CHECK(d[2] == -2);
}

namespace {

// Checks du, dv (and d logit_scale) of a contrastive loss against finite differences.
void check_contrastive(const std::string& name,
                       const std::function<double(const float*, const float*, const contrastive_gradients&)>& loss,
                       std::vector<float>& u, std::vector<float>& v, float* logit_scale = nullptr) {
    std::vector<float> du(u.size(), 0.0f), dv(v.size(), 0.0f);
    float d_scale = 0;
    loss(u.data(), v.data(), {du.data(), dv.data(), &d_scale, 1});
    auto value = [&] { return loss(u.data(), v.data(), {}); };
    check_gradient(name + " du", u.data(), u.size(), du.data(), value, 1e-3f);
    check_gradient(name + " dv", v.data(), v.size(), dv.data(), value, 1e-3f);
    if (logit_scale) check_gradient(name + " d logit_scale", logit_scale, 1, &d_scale, value, 1e-3f);
}

}  // namespace

TEST_CASE("contrastive losses: InfoNCE, N-pair, triplet, pairwise contrastive") {
    const std::size_t n = 5, dim = 4;
    auto u = random_values(n * dim, 2, 0.5f), v = random_values(n * dim, 3, 0.5f);
    float logit_scale = 1.2f;
    for (float lambda : {0.5f, 0.2f})
        check_contrastive(
            "info_nce",
            [&](const float* a, const float* b, const contrastive_gradients& g) {
                return info_nce_loss(a, b, n, dim, logit_scale, lambda, g);
            },
            u, v, &logit_scale);
    check_contrastive(
        "n_pair", [&](const float* a, const float* b, const contrastive_gradients& g) { return n_pair_loss(a, b, n, dim, g); },
        u, v);
    check_contrastive(
        "triplet",
        [&](const float* a, const float* b, const contrastive_gradients& g) { return triplet_loss(a, b, n, dim, 1.0f, g); },
        u, v);
    check_contrastive(
        "contrastive",
        [&](const float* a, const float* b, const contrastive_gradients& g) {
            return contrastive_loss(a, b, n, dim, 1.5f, g);
        },
        u, v);
}

TEST_CASE("contrastive losses: values on a case worked by hand") {
    // u = (1,0), (0,1); v = u: perfect pairs.
    float u[] = {1, 0, 0, 1};
    // InfoNCE with logit_scale 0: each row is softmax([1, 0]) → −log(e/(e+1)) both ways.
    double expected = -std::log(std::exp(1.0) / (std::exp(1.0) + 1));
    CHECK(info_nce_loss(u, u, 2, 2, 0, 0.5f, {}) == doctest::Approx(expected));
    CHECK(n_pair_loss(u, u, 2, 2, {}) == doctest::Approx(expected));
    // Triplet: d(positive) = 0, d(negative) = 2; margin 3 → 1 per pair.
    CHECK(triplet_loss(u, u, 2, 2, 3, {}) == doctest::Approx(1));
    CHECK(triplet_loss(u, u, 2, 2, 1, {}) == 0);
    // Pairwise: positives 0; negatives d = √2, margin 2 → ½ (2 − √2)².
    CHECK(contrastive_loss(u, u, 2, 2, 2, {}) == doctest::Approx(0.5 * (2 - std::sqrt(2.0)) * (2 - std::sqrt(2.0))));
}
