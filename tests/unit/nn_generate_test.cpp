// Choosing the next token, and incremental decoding against full forward passes.
#include "nn/checkpoint.hpp"
#include "nn/generate.hpp"
#include "nn_testing.hpp"

#include <doctest/doctest.h>
#include <set>

using namespace lowrank;
using namespace lowrank::testing;

TEST_CASE("choose_token: greedy takes the first largest; top-k samples among the k largest") {
    const float logits[] = {1, 5, 3, 5, 4, -2};
    random_generator random(1);
    CHECK(choose_token(logits, 6, {.top_k = 1}, random) == 1);
    std::set<std::int32_t> seen;
    std::size_t counts[6] = {};
    for (int i = 0; i < 3000; ++i) {
        auto token = choose_token(logits, 6, {.top_k = 3, .temperature = 1}, random);
        seen.insert(token);
        ++counts[token];
    }
    CHECK(seen == std::set<std::int32_t>{1, 3, 4});
    // p(4)/p(1) = e^(4-5): about 0.37
    CHECK(static_cast<double>(counts[4]) / counts[1] == doctest::Approx(std::exp(-1.0)).epsilon(0.2));
    seen.clear();
    for (int i = 0; i < 2000; ++i) seen.insert(choose_token(logits, 6, {.top_k = 0, .temperature = 3}, random));
    CHECK(seen.size() == 6);  // the whole vocabulary, flattened by the temperature
}

TEST_CASE("decoding with the key/value cache gives the logits of full forward passes") {
    checkpoint file("tests/data/nn/gpt2-lm.safetensors");
    gpt2_model model(file.config());
    model.parameters().allocate();
    load_parameters(model.parameters(), file, architecture::gpt2);
    const std::size_t batch = 2, time = 6, C = model.width();
    std::vector<std::int32_t> ids = {5, 9, 14, 2, 77, 31, 8, 8, 60, 13, 40, 1};
    // Full passes: the last position's hidden state for every prefix length.
    std::vector<float> full(batch * time * C);
    for (std::size_t length = 1; length <= time; ++length) {
        std::vector<std::int32_t> prefix;
        for (std::size_t b = 0; b < batch; ++b) prefix.insert(prefix.end(), ids.begin() + b * time, ids.begin() + b * time + length);
        const float* hidden = model.forward(prefix.data(), batch, length, nullptr, false);
        for (std::size_t b = 0; b < batch; ++b)
            std::copy(hidden + (b * length + length - 1) * C, hidden + (b * length + length) * C,
                      full.begin() + static_cast<std::ptrdiff_t>((b * time + length - 1) * C));
    }
    kv_cache cache;
    model.stack().start_decoding(cache, batch, time);
    for (std::size_t t = 0; t < time; ++t) {
        std::int32_t tokens[] = {ids[t], ids[time + t]}, positions[] = {static_cast<std::int32_t>(t), static_cast<std::int32_t>(t)};
        const float* hidden = model.decode(cache, tokens, positions);
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t j = 0; j < C; ++j)
                CHECK(hidden[b * C + j] == doctest::Approx(full[(b * time + t) * C + j]).epsilon(1e-4).scale(1));
    }
}
