// The block stack against finite differences: post-LN blocks (no PyTorch fixture has them),
// pre-LN with separate q/k/v, a causal mask and padding; inference reuses one block's
// buffers and gives the training pass's output.
#include "nn/transformer.hpp"
#include "nn_testing.hpp"

#include <cstring>
#include <doctest/doctest.h>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

block_names names(bool fused) {
    block_names n;
    n.prefix = "layers.{}.";
    n.ln1 = "ln1";
    n.ln2 = "ln2";
    if (fused) {
        n.qkv = "qkv";
        n.layout = weight_layout::in_out;
    } else {
        n.q = "q", n.k = "k", n.v = "v";
    }
    n.attention_output = "o";
    n.fc1 = "fc1";
    n.fc2 = "fc2";
    return n;
}

void check_stack(bool fused, stack_options options, bool padded) {
    const std::size_t batch = 2, time = 4, C = 8;
    transformer_config config{.width = C, .layers = 2, .heads = 2, .inner = 12, .act = activation::gelu_tanh};
    parameter_set parameters;
    transformer_stack stack(parameters, config, names(fused), options);
    for (parameter& p : parameters) p.trainable = true;
    parameters.allocate();
    std::uint64_t seed = 1;
    for (parameter& p : parameters) fill_random(p, ++seed, 0.3f);
    for (transformer_block& block : stack.blocks())
        for (layer_norm* norm : {&block.ln1, &block.ln2})
            for (std::size_t j = 0; j < C; ++j) norm->weight->value[j] += 1;
    std::int32_t lengths[] = {4, 2};
    const std::int32_t* mask = padded ? lengths : nullptr;
    auto x = random_values(batch * time * C, 100);
    auto w = random_values(batch * time * C, 101);
    auto run = [&](bool training) {
        std::memcpy(stack.input(batch, time, training), x.data(), x.size() * sizeof(float));
        return stack.forward(mask);
    };
    auto loss = [&] { return weighted_sum(run(false), w); };

    const float* out = run(true);
    std::vector<float> trained(out, out + x.size());
    out = run(false);
    std::vector<float> inferred(out, out + x.size());
    CHECK(std::memcmp(trained.data(), inferred.data(), x.size() * sizeof(float)) == 0);

    run(true);
    std::vector<float> d = w;
    parameters.zero_gradients();
    stack.backward(d.data());
    check_gradient("d input", x.data(), x.size(), d.data(), loss);
    for (parameter& p : parameters) check_gradient("d " + p.name, p.value, p.size(), p.gradient, loss);

    // Without the input's gradient (nothing below trains), the same parameter gradients.
    std::vector<float> with_input(parameters.gradients().begin(), parameters.gradients().end());
    run(true);
    d = w;
    parameters.zero_gradients();
    stack.backward(d.data(), false);
    CHECK(std::equal(with_input.begin(), with_input.end(), parameters.gradients().begin()));
}

}  // namespace

TEST_CASE("transformer stack: gradients of input and parameters against finite differences") {
    SUBCASE("pre-LN, fused q/k/v (Conv1D), causal, padding") { check_stack(true, {.causal = true, .pre_norm = true}, true); }
    SUBCASE("pre-LN, separate q/k/v, no mask") { check_stack(false, {.causal = false, .pre_norm = true}, false); }
    SUBCASE("post-LN, separate q/k/v, padding") { check_stack(false, {.causal = false, .pre_norm = false}, true); }
}
