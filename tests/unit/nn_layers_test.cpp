// Each layer: the forward pass against a plain loop in double, the backward pass against
// finite differences of the forward pass.
#include "core/threads.hpp"
#include "nn/layers.hpp"
#include "nn_testing.hpp"

#include <cmath>
#include <doctest/doctest.h>
#include <numbers>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

double worst_relative_error(const float* actual, const std::vector<double>& expected) {
    double worst = 0;
    for (std::size_t i = 0; i < expected.size(); ++i)
        worst = std::max(worst, std::abs(actual[i] - expected[i]) / (1e-3 + std::abs(expected[i])));
    return worst;
}

}  // namespace

// ------------------------------------------------------------------------------ LayerNorm

TEST_CASE("layer_norm: forward against a plain loop, backward against finite differences") {
    const std::size_t rows = 6, width = 37;
    parameter_set set;
    layer_norm norm{&set.add("ln.weight", {width}, false), &set.add("ln.bias", {width}, false), 1e-5f};
    norm.weight->trainable = norm.bias->trainable = true;
    set.allocate();
    fill_random(*norm.weight, 1);
    fill_random(*norm.bias, 2);
    auto x = random_values(rows * width, 3, 2.0f);
    for (std::size_t j = 0; j < width; ++j) x[j] += 10;  // a row far from zero mean
    std::vector<float> y(rows * width), mean(rows), rstd(rows);
    layer_norm_forward(norm, x.data(), rows, y.data(), mean.data(), rstd.data());

    std::vector<double> expected(rows * width);
    for (std::size_t r = 0; r < rows; ++r) {
        double mu = 0, var = 0;
        for (std::size_t j = 0; j < width; ++j) mu += x[r * width + j];
        mu /= width;
        for (std::size_t j = 0; j < width; ++j) var += (x[r * width + j] - mu) * (x[r * width + j] - mu);
        var /= width;
        for (std::size_t j = 0; j < width; ++j)
            expected[r * width + j] =
                (x[r * width + j] - mu) / std::sqrt(var + 1e-5) * norm.weight->value[j] + norm.bias->value[j];
    }
    CHECK(worst_relative_error(y.data(), expected) < 1e-4);

    auto w = random_values(rows * width, 4);
    std::vector<float> dx(rows * width, 0.0f);
    layer_norm_backward(norm, x.data(), mean.data(), rstd.data(), w.data(), rows, dx.data());
    auto loss = [&] {
        std::vector<float> out(rows * width), m(rows), s(rows);
        layer_norm_forward(norm, x.data(), rows, out.data(), m.data(), s.data());
        return weighted_sum(out.data(), w);
    };
    check_gradient("dx", x.data(), x.size(), dx.data(), loss);
    check_gradient("dgamma", norm.weight->value, width, norm.weight->gradient, loss);
    check_gradient("dbeta", norm.bias->value, width, norm.bias->gradient, loss);
}

TEST_CASE("layer_norm: parameter gradients accumulate and do not depend on row split order") {
    const std::size_t rows = 300, width = 16;
    parameter_set set;
    layer_norm norm{&set.add("w", {width}), &set.add("b", {width}), 1e-5f};
    norm.weight->trainable = norm.bias->trainable = true;
    set.allocate();
    fill_random(*norm.weight, 5);
    auto x = random_values(rows * width, 6), dy = random_values(rows * width, 7);
    std::vector<float> y(rows * width), mean(rows), rstd(rows);
    layer_norm_forward(norm, x.data(), rows, y.data(), mean.data(), rstd.data());
    layer_norm_backward(norm, x.data(), mean.data(), rstd.data(), dy.data(), rows, nullptr);
    std::vector<float> once(norm.bias->gradient, norm.bias->gradient + width);
    layer_norm_backward(norm, x.data(), mean.data(), rstd.data(), dy.data(), rows, nullptr);
    for (std::size_t j = 0; j < width; ++j) {
        double sum = 0;
        for (std::size_t r = 0; r < rows; ++r) sum += dy[r * width + j];
        CHECK(once[j] == doctest::Approx(sum).epsilon(1e-5));
        CHECK(norm.bias->gradient[j] == doctest::Approx(2 * sum).epsilon(1e-5));
    }
}

// ----------------------------------------------------------------------------- Activations

TEST_CASE("activations: gelu, gelu_tanh, quick_gelu against their formulas in double, and derivatives") {
    std::vector<float> x;
    for (int i = -800; i <= 800; ++i) x.push_back(static_cast<float>(i) / 100);  // [-8, 8]
    x.push_back(-30);
    x.push_back(30);
    auto reference = [](activation kind, double v) {
        switch (kind) {
        case activation::gelu: return 0.5 * v * (1 + std::erf(v / std::numbers::sqrt2));
        case activation::gelu_tanh:
            return 0.5 * v * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (v + 0.044715 * v * v * v)));
        case activation::quick_gelu: return v / (1 + std::exp(-1.702 * v));
        }
        return 0.0;
    };
    for (activation kind : {activation::gelu, activation::gelu_tanh, activation::quick_gelu}) {
        INFO(activation_name(kind));
        std::vector<float> y(x.size());
        activation_forward(kind, x.data(), y.data(), x.size());
        // Where the value is tiny (x ≪ 0) float cancellation in 1 + erf or 1 + tanh leaves an
        // absolute error of order 1e-7, as in PyTorch's kernels: bound 1e-6 absolute + 1e-5 relative.
        double worst = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            double expected = reference(kind, x[i]);
            worst = std::max(worst, std::abs(y[i] - expected) / (1e-6 + 1e-5 * std::abs(expected)));
        }
        CHECK(worst <= 1);
        std::vector<float> ones(x.size(), 1.0f), derivative(x.size());
        activation_backward(kind, x.data(), ones.data(), derivative.data(), x.size());
        for (std::size_t i = 0; i < x.size(); i += 7) {
            double h = 1e-4;
            double numeric = (reference(kind, x[i] + h) - reference(kind, x[i] - h)) / (2 * h);
            CHECK(derivative[i] == doctest::Approx(numeric).epsilon(1e-4).scale(1));
        }
    }
    CHECK(activation_from_name("gelu_new") == activation::gelu_tanh);
    CHECK(activation_from_name("quick_gelu") == activation::quick_gelu);
    CHECK(!activation_from_name("swish"));
}

// ------------------------------------------------------------------------------ Embedding

TEST_CASE("embedding: rows of the table, positions added, gradients summed per row") {
    parameter_set set;
    parameter& table = set.add("wte", {5, 3});
    table.trainable = true;
    set.allocate();
    for (std::size_t i = 0; i < 15; ++i) table.value[i] = static_cast<float>(i);
    std::int32_t ids[] = {4, 0, 4};
    std::vector<float> y(9, 1.0f);
    embedding_forward(table, ids, 3, y.data(), false);
    CHECK(y == std::vector<float>{12, 13, 14, 0, 1, 2, 12, 13, 14});
    embedding_forward(table, ids, 3, y.data(), true);
    CHECK(y[0] == 24);
    std::vector<float> dy = {1, 2, 3, 10, 20, 30, 100, 200, 300};
    embedding_backward(table, ids, 3, dy.data());
    CHECK(std::vector<float>(table.gradient, table.gradient + 15) ==
          std::vector<float>{10, 20, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 101, 202, 303});
}

// ----------------------------------------------------------------------- Linear with LoRA

namespace {

struct linear_case {
    weight_layout layout;
    bool bias;
    std::vector<std::size_t> branch_columns;  // one LoRA branch per entry, 4 columns wide
    float dropout;
    std::vector<std::size_t> branch_routes = {};  // per branch (none: every row)
    std::vector<item_range> routes = {};          // items of 3 rows each
};

void check_linear(const linear_case& setup) {
    const std::size_t rows = 9, in = 12, out = 12, rank = 3, width = 4;
    parameter_set set;
    linear layer;
    layer.in = in;
    layer.out = out;
    layer.layout = setup.layout;
    layer.weight = &set.add("w", setup.layout == weight_layout::out_in ? std::vector<std::size_t>{out, in}
                                                                          : std::vector<std::size_t>{in, out});
    if (setup.bias) layer.bias = &set.add("b", {out}, false);
    for (std::size_t i = 0; i < setup.branch_columns.size(); ++i) {
        std::string name = "lora" + std::to_string(i);
        layer.lora.push_back({&set.add(name + ".A", {rank, in}), &set.add(name + ".B", {width, rank}), 0.75f,
                              setup.dropout, setup.branch_columns[i]});
        if (!setup.branch_routes.empty()) layer.lora.back().route = setup.branch_routes[i];
    }
    const std::size_t item_rows = 3;
    auto adds_to = [&](const lora_branch& branch, std::size_t row) {
        if (branch.route == lora_branch::every_row) return true;
        const item_range& items = setup.routes[branch.route];
        return row / item_rows >= items.begin && row / item_rows < items.end;
    };
    for (parameter& p : set) p.trainable = true;
    set.allocate();
    std::uint64_t seed = 10;
    for (parameter& p : set) fill_random(p, seed++, 0.5f);
    auto x = random_values(rows * in, 20);
    std::vector<std::vector<float>> hidden(layer.lora.size(), std::vector<float>(rows * rank));
    std::vector<float*> hidden_pointers;
    for (auto& h : hidden) hidden_pointers.push_back(h.data());
    linear_state state{hidden_pointers, setup.dropout > 0 ? 1234u : 0u, setup.routes, item_rows};

    // Forward against a plain loop (without dropout: the mask is checked by the gradients).
    std::vector<float> y(rows * out);
    linear_forward(layer, x.data(), rows, y.data(), out, false, state);
    if (setup.dropout == 0) {
        std::vector<double> expected(rows * out, 0.0);
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t o = 0; o < out; ++o) {
                double sum = setup.bias ? layer.bias->value[o] : 0.0;
                for (std::size_t i = 0; i < in; ++i) {
                    float w = setup.layout == weight_layout::out_in ? layer.weight->value[o * in + i]
                                                                    : layer.weight->value[i * out + o];
                    sum += static_cast<double>(x[r * in + i]) * w;
                }
                for (const lora_branch& branch : layer.lora) {
                    if (o < branch.column || o >= branch.column + width || !adds_to(branch, r)) continue;
                    for (std::size_t k = 0; k < rank; ++k) {
                        double ax = 0;
                        for (std::size_t i = 0; i < in; ++i) ax += static_cast<double>(branch.a->value[k * in + i]) * x[r * in + i];
                        sum += branch.scale * branch.b->value[(o - branch.column) * rank + k] * ax;
                    }
                }
                expected[r * out + o] = sum;
            }
        CHECK(worst_relative_error(y.data(), expected) < 1e-4);
        // accumulate: y += the same again
        linear_forward(layer, x.data(), rows, y.data(), out, true, state);
        for (auto& value : expected) value *= 2;
        CHECK(worst_relative_error(y.data(), expected) < 1e-4);
    }

    auto w = random_values(rows * out, 21);
    std::vector<float> dx(rows * in, 0.0f);
    linear_forward(layer, x.data(), rows, y.data(), out, false, state);
    linear_backward(layer, x.data(), rows, w.data(), out, dx.data(), state);
    auto loss = [&] {
        std::vector<float> out_values(rows * out);
        linear_forward(layer, x.data(), rows, out_values.data(), out, false, state);
        return weighted_sum(out_values.data(), w);
    };
    check_gradient("dx", x.data(), x.size(), dx.data(), loss);
    for (parameter& p : set) check_gradient("d" + p.name, p.value, p.size(), p.gradient, loss);
}

}  // namespace

TEST_CASE("linear: nn.Linear and Conv1D layouts, bias, LoRA branches on output slices, dropout") {
    SUBCASE("nn.Linear with bias") { check_linear({weight_layout::out_in, true, {}, 0}); }
    SUBCASE("Conv1D without bias") { check_linear({weight_layout::in_out, false, {}, 0}); }
    SUBCASE("LoRA on two slices (q and v of a fused projection)") {
        check_linear({weight_layout::in_out, true, {0, 8}, 0});
    }
    SUBCASE("LoRA on nn.Linear, overlapping branches") { check_linear({weight_layout::out_in, true, {2, 4}, 0}); }
    SUBCASE("LoRA with dropout") { check_linear({weight_layout::out_in, true, {0}, 0.3f}); }
    SUBCASE("routed branches: each on its items' rows, one on every row, one route empty") {
        check_linear({weight_layout::in_out, true, {0, 8, 4, 2}, 0, {1, 0, lora_branch::every_row, 2},
                      {{0, 1}, {1, 3}, {2, 2}}});
    }
    SUBCASE("routed branches with dropout") {
        check_linear({weight_layout::out_in, false, {0, 4}, 0.3f, {0, 1}, {{0, 2}, {2, 3}}});
    }
}

TEST_CASE("linear: a routed branch called without routes is a logic error") {
    parameter_set set;
    linear layer{&set.add("w", {2, 2}), nullptr, 2, 2, weight_layout::out_in, {}};
    layer.lora.push_back({&set.add("A", {1, 2}), &set.add("B", {2, 1}), 1, 0, 0, 0});
    set.allocate();
    std::vector<float> x(4, 1.0f), y(4), hidden(2);
    float* hidden_pointer = hidden.data();
    CHECK_THROWS_AS(linear_forward(layer, x.data(), 2, y.data(), 2, false, {{&hidden_pointer, 1}}), std::logic_error);
}

TEST_CASE("linear: a frozen weight gets no gradient, dx is optional") {
    parameter_set set;
    linear layer{&set.add("w", {3, 2}), &set.add("b", {3}), 2, 3, weight_layout::out_in, {}};
    layer.bias->trainable = true;
    set.allocate();
    CHECK(layer.weight->gradient == nullptr);
    std::vector<float> x = {1, 2, 3, 4}, dy = {1, 1, 1, 2, 2, 2};
    linear_backward(layer, x.data(), 2, dy.data(), 3, nullptr, {});
    CHECK(std::vector<float>(layer.bias->gradient, layer.bias->gradient + 3) == std::vector<float>{3, 3, 3});
}

// ------------------------------------------------------------------------------ Attention

namespace {

void check_attention(bool causal, bool padded, std::size_t threads) {
    int saved = thread_count();
    set_thread_count(static_cast<int>(threads));
    attention_shape shape{.batch = 2, .time = 5, .heads = 3, .head_dim = 4, .causal = causal};
    std::int32_t lengths[] = {5, 3};
    if (padded) shape.lengths = lengths;
    shape.scale = 1 / std::sqrt(4.0f);
    const std::size_t B = 2, T = 5, H = 3, D = 4, C = H * D;
    auto qkv = random_values(B * T * 3 * C, 30);
    std::vector<float> probabilities(B * H * T * T), y(B * T * C);
    attention_forward(shape, qkv.data(), probabilities.data(), y.data());

    std::vector<double> expected(B * T * C, 0.0);
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t h = 0; h < H; ++h)
            for (std::size_t t = 0; t < T; ++t) {
                std::size_t keys = padded ? static_cast<std::size_t>(lengths[b]) : T;
                if (causal) keys = std::min(keys, t + 1);
                std::vector<double> scores(keys);
                double maximum = -1e300, total = 0;
                for (std::size_t j = 0; j < keys; ++j) {
                    double dot = 0;
                    for (std::size_t d = 0; d < D; ++d)
                        dot += static_cast<double>(qkv[(b * T + t) * 3 * C + h * D + d]) *
                               qkv[(b * T + j) * 3 * C + C + h * D + d];
                    scores[j] = dot * shape.scale;
                    maximum = std::max(maximum, scores[j]);
                }
                for (double& s : scores) total += (s = std::exp(s - maximum));
                for (std::size_t d = 0; d < D; ++d) {
                    double sum = 0;
                    for (std::size_t j = 0; j < keys; ++j)
                        sum += scores[j] / total * qkv[(b * T + j) * 3 * C + 2 * C + h * D + d];
                    expected[(b * T + t) * C + h * D + d] = sum;
                }
            }
    CHECK(worst_relative_error(y.data(), expected) < 1e-4);

    auto w = random_values(B * T * C, 31);
    std::vector<float> dqkv(qkv.size(), 7.0f);  // written, not added: the 7s must go
    attention_backward(shape, qkv.data(), probabilities.data(), w.data(), dqkv.data());
    auto loss = [&] {
        std::vector<float> p(probabilities.size()), out(y.size());
        attention_forward(shape, qkv.data(), p.data(), out.data());
        return weighted_sum(out.data(), w);
    };
    check_gradient("dqkv", qkv.data(), qkv.size(), dqkv.data(), loss, 5e-3f, 5e-3, 1000);
    set_thread_count(saved);
}

}  // namespace

TEST_CASE("attention: causal or not, padding, one or two threads") {
    for (bool causal : {false, true})
        for (bool padded : {false, true})
            for (std::size_t threads : {1, 2}) {
                INFO("causal=" << causal << " padded=" << padded << " threads=" << threads);
                check_attention(causal, padded, threads);
            }
}

TEST_CASE("attention: a query that sees no key outputs zeros") {
    attention_shape shape{.batch = 1, .time = 2, .heads = 1, .head_dim = 2, .causal = true};
    std::int32_t lengths[] = {0};
    shape.lengths = lengths;
    auto qkv = random_values(2 * 6, 32);
    std::vector<float> p(4), y(4, 9.0f);
    attention_forward(shape, qkv.data(), p.data(), y.data());
    CHECK(y == std::vector<float>(4, 0.0f));
}

// ------------------------------------------------------------------------ L2 normalisation

TEST_CASE("l2_normalize: unit rows, gradient against finite differences") {
    const std::size_t rows = 4, width = 6;
    auto x = random_values(rows * width, 40);
    std::vector<float> y(x.size()), norms(rows);
    l2_normalize_forward(x.data(), rows, width, y.data(), norms.data());
    for (std::size_t r = 0; r < rows; ++r) {
        double sum = 0;
        for (std::size_t j = 0; j < width; ++j) sum += static_cast<double>(y[r * width + j]) * y[r * width + j];
        CHECK(sum == doctest::Approx(1).epsilon(1e-6));
    }
    auto w = random_values(rows * width, 41);
    std::vector<float> dx(x.size(), 0.0f);
    l2_normalize_backward(y.data(), norms.data(), w.data(), rows, width, dx.data());
    check_gradient("dx", x.data(), x.size(), dx.data(), [&] {
        std::vector<float> out(x.size()), n(rows);
        l2_normalize_forward(x.data(), rows, width, out.data(), n.data());
        return weighted_sum(out.data(), w);
    });
}
