#include "formats/safetensors.hpp"
#include "nn/optimizer.hpp"
#include "nn_testing.hpp"

#include <cmath>
#include <doctest/doctest.h>

using namespace lowrank;
using namespace lowrank::testing;

TEST_CASE("adamw: two steps against the formulas, decay only where asked, frozen untouched") {
    parameter_set set;
    parameter& w = set.add("w", {2});
    parameter& b = set.add("b", {2}, false);
    parameter& frozen = set.add("frozen", {1});
    w.trainable = b.trainable = true;
    set.allocate();
    w.value[0] = 1, w.value[1] = -2, b.value[0] = 0.5f, b.value[1] = 3, frozen.value[0] = 7;
    adamw optimizer(set, {.beta1 = 0.9f, .beta2 = 0.99f, .epsilon = 1e-8f, .weight_decay = 0.1f});
    double expected_w[] = {1, -2}, expected_b[] = {0.5, 3}, m[4] = {}, v[4] = {};
    float gradients[2][4] = {{0.1f, -0.2f, 0.3f, 0}, {-0.4f, 0.5f, 0.05f, 1}};
    for (int t = 1; t <= 2; ++t) {
        w.gradient[0] = gradients[t - 1][0], w.gradient[1] = gradients[t - 1][1];
        b.gradient[0] = gradients[t - 1][2], b.gradient[1] = gradients[t - 1][3];
        optimizer.step(0.01f);
        for (int i = 0; i < 4; ++i) {
            double g = gradients[t - 1][i];
            double& p = i < 2 ? expected_w[i] : expected_b[i - 2];
            if (i < 2) p *= 1 - 0.01 * 0.1;
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.99 * v[i] + 0.01 * g * g;
            p -= 0.01 / (1 - std::pow(0.9, t)) * m[i] / (std::sqrt(v[i]) / std::sqrt(1 - std::pow(0.99, t)) + 1e-8);
        }
    }
    CHECK(w.value[0] == doctest::Approx(expected_w[0]).epsilon(1e-6));
    CHECK(w.value[1] == doctest::Approx(expected_w[1]).epsilon(1e-6));
    CHECK(b.value[0] == doctest::Approx(expected_b[0]).epsilon(1e-6));
    CHECK(b.value[1] == doctest::Approx(expected_b[1]).epsilon(1e-6));
    CHECK(frozen.value[0] == 7);
    CHECK(optimizer.steps() == 2);
}

TEST_CASE("learning-rate schedules: warm-up, then constant, linear or cosine") {
    CHECK(scheduled_learning_rate(1, 0, 10, 110, lr_decay::linear) == 0);
    CHECK(scheduled_learning_rate(1, 5, 10, 110, lr_decay::linear) == doctest::Approx(0.5));
    CHECK(scheduled_learning_rate(1, 10, 10, 110, lr_decay::linear) == doctest::Approx(1));
    CHECK(scheduled_learning_rate(1, 60, 10, 110, lr_decay::linear) == doctest::Approx(0.5));
    CHECK(scheduled_learning_rate(1, 60, 10, 110, lr_decay::cosine) == doctest::Approx(0.5));
    CHECK(scheduled_learning_rate(1, 35, 10, 110, lr_decay::cosine) == doctest::Approx(0.5 * (1 + std::cos(M_PI / 4))));
    CHECK(scheduled_learning_rate(1, 110, 10, 110, lr_decay::cosine) == 0);
    CHECK(scheduled_learning_rate(2, 500, 0, 10, lr_decay::constant) == 2);
    CHECK(lr_decay_from_name("cosine") == lr_decay::cosine);
    CHECK(!lr_decay_from_name("step"));
}

TEST_CASE("clip_gradient_norm: global norm over every trainable gradient") {
    parameter_set set;
    parameter& a = set.add("a", {2});
    parameter& b = set.add("b", {1});
    a.trainable = b.trainable = true;
    set.allocate();
    a.gradient[0] = 3, a.gradient[1] = 0, b.gradient[0] = 4;
    CHECK(clip_gradient_norm(set, 10) == doctest::Approx(5));
    CHECK(a.gradient[0] == 3);
    CHECK(clip_gradient_norm(set, 1) == doctest::Approx(5));
    CHECK(a.gradient[0] == doctest::Approx(3 / (5 + 1e-6)));
    CHECK(b.gradient[0] == doctest::Approx(4 / (5 + 1e-6)));
}

TEST_CASE("parameter_set: trainable values and gradients contiguous, frozen ones without gradients") {
    parameter_set set;
    parameter& frozen = set.add("frozen", {1000});
    parameter& first = set.add("first", {3});
    parameter& second = set.add("second", {2, 2});
    first.trainable = second.trainable = true;
    set.allocate();
    CHECK(set.count() == 1007);
    CHECK(set.trainable_count() == 7);
    CHECK(frozen.gradient == nullptr);
    CHECK(frozen.value[999] == 0);
    CHECK(first.value == set.trainable_values().data());
    CHECK(first.gradient == set.gradients().data());
    CHECK(second.value - first.value == second.gradient - first.gradient);
    CHECK(set.find("second") == &second);
    CHECK(set.find("third") == nullptr);
    CHECK_THROWS(set.add("late", {1}));
    CHECK(shape_text(second.shape) == "[2, 2]");
}

TEST_CASE("adamw and clip_gradient_norm: three steps as torch.optim.AdamW and clip_grad_norm_ take them") {
    safetensors_file fixture("tests/data/nn/adamw.safetensors");
    auto tensor = [&](const std::string& name) { return fixture.to_float(fixture.at(name)); };
    parameter_set set;
    parameter& matrix = set.add("matrix", {3, 4});
    parameter& vector = set.add("vector", {4}, false);
    matrix.trainable = vector.trainable = true;
    set.allocate();
    auto copy_into = [](const std::vector<float>& values, float* target) { std::copy(values.begin(), values.end(), target); };
    copy_into(tensor("matrix.start"), matrix.value);
    copy_into(tensor("vector.start"), vector.value);
    adamw optimizer(set, {.beta1 = 0.9f, .beta2 = 0.99f, .epsilon = 1e-8f, .weight_decay = 0.1f});
    auto norms = tensor("norms");
    for (int step = 0; step < 3; ++step) {
        copy_into(tensor("matrix.gradient." + std::to_string(step)), matrix.gradient);
        copy_into(tensor("vector.gradient." + std::to_string(step)), vector.gradient);
        CHECK(clip_gradient_norm(set, 0.5) == doctest::Approx(norms[static_cast<std::size_t>(step)]).epsilon(1e-6));
        optimizer.step(0.01f);
    }
    auto matrix_end = tensor("matrix.end"), vector_end = tensor("vector.end");
    for (std::size_t i = 0; i < 12; ++i) CHECK(matrix.value[i] == doctest::Approx(matrix_end[i]).epsilon(1e-6));
    for (std::size_t i = 0; i < 4; ++i) CHECK(vector.value[i] == doctest::Approx(vector_end[i]).epsilon(1e-6));
}
