// The methods lora-train adds to a model: Houlsby's and Lin's adapters and prefix-layer
// tuning against PyTorch (tests/data/train/make-fixtures.py: loss and the gradient of every
// trained parameter on the tiny gpt2 of tests/data/nn), the adapter layer and the replaced
// rows of the stack against finite differences, parameter counts against the LoRA paper's
// formulas, and the PEFT adapter a fused q/v LoRA is saved as.
#include "core/error.hpp"
#include "formats/npy.hpp"
#include "formats/safetensors.hpp"
#include "nn/adapter.hpp"
#include "nn/checkpoint.hpp"
#include "nn/gpt2.hpp"
#include "nn_testing.hpp"
#include "peft/adapter.hpp"
#include "train/method.hpp"

#include <cmath>
#include <cstring>
#include <doctest/doctest.h>
#include <filesystem>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const std::string nn_data = "tests/data/nn/", train_data = "tests/data/train/";

method_settings method_of(method_kind kind, std::size_t adapter_size = 8, std::size_t prefix = 10, std::size_t infix = 0) {
    method_settings settings;
    settings.kind = kind;
    settings.adapter_size = adapter_size;
    settings.prefix_length = prefix;
    settings.infix_length = infix;
    return settings;
}

std::vector<std::int32_t> ints(const std::string& path) {
    auto values = npy_array(path).to_int64();
    return {values.begin(), values.end()};
}

// The fixture's tiny gpt2 with a method's parameters, loaded; their values from
// methods.safetensors ("METHOD/NAME").
struct method_fixture {
    checkpoint file{nn_data + "gpt2-lm.safetensors"};
    model target{file.config()};
    safetensors_file expected{train_data + "methods.safetensors"};
    std::string method;

    method_fixture(const std::string& name, const method_settings& settings) : method(name) {
        apply_method(target, settings, false);
        target.parameters().allocate();
        load_parameters(target.parameters(), file, architecture::gpt2, {added_by_method});
        for (parameter& p : target.parameters())
            if (p.trainable) {
                auto values = expected.to_float(expected.at(method + "/" + p.name));
                REQUIRE(values.size() == p.size());
                std::copy(values.begin(), values.end(), p.value);
            }
    }

    // The LM loss on gpt2-lm.ids.npy (padding at gpt2-lm.lengths.npy), its gradient, and
    // both against the fixture's.
    void check() {
        gpt2_model& gpt2 = *target.gpt2;
        auto ids = ints(nn_data + "gpt2-lm.ids.npy"), labels = ints(nn_data + "gpt2-lm.labels.npy"),
             lengths = ints(nn_data + "gpt2-lm.lengths.npy");
        const std::size_t batch = 3, time = 10;
        std::vector<std::int32_t> targets(ids.size(), ignore_index);
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t t = 0; t + 1 < time; ++t) targets[b * time + t] = labels[b * time + t + 1];
        target.parameters().zero_gradients();
        const float* hidden = gpt2.forward(ids.data(), batch, time, lengths.data(), true);
        std::vector<float> d_hidden(batch * time * gpt2.width(), 0.0f);
        auto counted = gpt2.lm_loss(hidden, targets.data(), batch * time, nullptr, 0).counted;
        auto loss = gpt2.lm_loss(hidden, targets.data(), batch * time, d_hidden.data(), 1.0f / static_cast<float>(counted));
        double reference = expected.to_float(expected.at(method + "/loss"))[0];
        CHECK(loss.sum / static_cast<double>(loss.counted) == doctest::Approx(reference).epsilon(1e-5));
        gpt2.backward(d_hidden.data());
        std::size_t checked = 0;
        for (parameter& p : target.parameters()) {
            if (!p.trainable) continue;
            auto want = expected.to_float(expected.at(method + "/grad/" + p.name));
            double largest = 0, worst = 0;
            for (std::size_t i = 0; i < want.size(); ++i) {
                largest = std::max(largest, std::abs(static_cast<double>(want[i])));
                worst = std::max(worst, std::abs(static_cast<double>(p.gradient[i]) - want[i]));
            }
            INFO("gradient of " << p.name << ": max error " << worst << ", max value " << largest);
            CHECK(worst <= 1e-4 * largest + 1e-7);
            ++checked;
        }
        CHECK(checked > 0);
    }
};

}  // namespace

TEST_CASE("adapter-h (after the attention and the MLP): loss and every gradient against PyTorch") {
    method_settings settings = method_of(method_kind::adapter_h, 3);
    method_fixture f("adapter-h", settings);
    CHECK(f.target.parameters().trainable_count() == 2 * 2 * (2 * 32 * 3 + 3 + 32));
    f.check();
}

TEST_CASE("adapter-l (after the MLP, with a LayerNorm): loss and every gradient against PyTorch") {
    method_settings settings = method_of(method_kind::adapter_l, 3);
    method_fixture f("adapter-l", settings);
    CHECK(f.target.parameters().trainable_count() == 2 * (2 * 32 * 3 + 3 + 32) + 2 * 2 * 32);
    f.check();
}

TEST_CASE("prefix-layer with an infix: loss and every vector's gradient against PyTorch") {
    method_settings settings = method_of(method_kind::prefix_layer, 8, 2, 3);
    method_fixture f("prefix-layer", settings);
    CHECK(f.target.parameters().trainable_count() == 2 * 32 * (2 + 3));
    f.check();
    f.check();  // buffers reused
}

TEST_CASE("parameter counts: the LoRA paper's formulas for adapters and prefix tuning") {
    checkpoint file(nn_data + "gpt2-lm.safetensors");
    const std::size_t L = 2, d = 32;
    auto count = [&](const method_settings& settings) {
        model target(file.config());
        apply_method(target, settings, false);
        return target.parameters().trainable_count();
    };
    for (std::size_t r : {1, 4, 16}) {
        // |Θ| = L_adpt·(2·d·r + r + d) + 2·L_LN·d
        CHECK(count(method_of(method_kind::adapter_h, r)) == 2 * L * (2 * d * r + r + d));
        CHECK(count(method_of(method_kind::adapter_l, r)) == L * (2 * d * r + r + d) + 2 * L * d);
    }
    // |Θ| = L·d·(l_p + l_i), and d·(l_p + l_i) for the embeddings alone
    CHECK(count(method_of(method_kind::prefix_layer, 8, 5, 2)) == L * d * 7);
    CHECK(count(method_of(method_kind::prefix_embed, 8, 5, 2)) == d * 7);
    method_settings lora = method_of(method_kind::lora);
    lora.lora.rank = 4;
    CHECK(count(lora) == L * 2 * (4 * d + d * 4));
    lora.targets = {"q", "k", "v", "o", "fc1", "fc2"};
    CHECK(count(lora) == L * (3 * (4 * d + d * 4) + (4 * d + d * 4) + (4 * d + 4 * 4 * d) + (4 * 4 * d + d * 4)));
    // per block ln_1, c_attn (3d), attn.c_proj, ln_2, c_fc (4d), mlp.c_proj; and ln_f
    CHECK(count(method_of(method_kind::bitfit)) == L * 11 * d + d);
    model whole(file.config());
    CHECK(count(method_of(method_kind::full)) == whole.parameters().count());
    lora.targets = {"x"};
    CHECK_THROWS_AS(count(lora), usage_error);
    lora.targets = {"q", "c_attn"};
    CHECK_THROWS_AS(count(lora), usage_error);
}

TEST_CASE("trainable_parameters_line: PEFT's print_trainable_parameters") {
    parameter_set set;
    set.add("a", {1000, 1000}).trainable = true;
    set.add("b", {2000, 1000});
    CHECK(trainable_parameters_line(set) ==
          "trainable params: 1,000,000 || all params: 3,000,000 || trainable%: 33.3333");
}

TEST_CASE("adapter layer: forward against a plain loop, backward against finite differences") {
    for (bool with_norm : {false, true}) {
        INFO("LayerNorm: " << with_norm);
        const std::size_t rows = 5, C = 6, r = 3;
        parameter_set set;
        bottleneck_adapter adapter = declare_adapter(set, "block", C, r, with_norm, 1e-5f);
        for (parameter& p : set) p.trainable = true;
        set.allocate();
        std::uint64_t seed = 1;
        for (parameter& p : set) fill_random(p, ++seed, 0.5f);
        auto h = random_values(rows * C, 50), w = random_values(rows * C, 21);
        std::vector<float> normed(rows * C), mean(rows), rstd(rows), hidden(rows * r);
        adapter_activations kept{normed.data(), mean.data(), rstd.data(), hidden.data()};
        auto forward = [&] {
            std::vector<float> y(rows * C, 0.0f);
            adapter_forward(adapter, h.data(), rows, y.data(), kept);
            return y;
        };
        auto y = forward();
        for (std::size_t row = 0; row < rows; ++row) {  // h + up(relu(down(LN h)))
            std::vector<double> x(h.begin() + row * C, h.begin() + (row + 1) * C);
            if (with_norm) {
                double mu = 0, var = 0;
                for (double v : x) mu += v / C;
                for (double v : x) var += (v - mu) * (v - mu) / C;
                for (std::size_t j = 0; j < C; ++j)
                    x[j] = (x[j] - mu) / std::sqrt(var + 1e-5) * adapter.norm->weight->value[j] + adapter.norm->bias->value[j];
            }
            for (std::size_t j = 0; j < C; ++j) {
                double out = h[row * C + j] + adapter.up.bias->value[j];
                for (std::size_t k = 0; k < r; ++k) {
                    double z = adapter.down.bias->value[k];
                    for (std::size_t i = 0; i < C; ++i) z += adapter.down.weight->value[k * C + i] * x[i];
                    out += adapter.up.weight->value[j * r + k] * std::max(z, 0.0);
                }
                CHECK(y[row * C + j] == doctest::Approx(out).epsilon(1e-5));
            }
        }
        std::vector<float> dh(rows * C), scratch(adapter_scratch_size(adapter, rows));
        forward();
        adapter_backward(adapter, h.data(), rows, w.data(), dh.data(), kept, scratch.data());
        auto loss = [&] { return weighted_sum(forward().data(), w); };
        check_gradient("dh", h.data(), h.size(), dh.data(), loss, 1e-3f);
        for (parameter& p : set) check_gradient(p.name, p.value, p.size(), p.gradient, loss, 1e-3f);
    }
}

TEST_CASE("stack with replaced rows: the gradient goes to the vectors and stops there") {
    const std::size_t batch = 2, time = 5, C = 8;
    transformer_config config{.width = C, .layers = 2, .heads = 2, .inner = 12, .act = activation::gelu_tanh};
    block_names names;
    names.prefix = "layers.{}.";
    names.ln1 = "ln1", names.ln2 = "ln2", names.q = "q", names.k = "k", names.v = "v";
    names.attention_output = "o", names.fc1 = "fc1", names.fc2 = "fc2";
    parameter_set parameters;
    transformer_stack stack(parameters, config, names, {.causal = true, .pre_norm = true});
    stack.add_prefix(parameters, 2, 1, true);
    for (parameter& p : parameters) p.trainable = true;
    parameters.allocate();
    std::uint64_t seed = 1;
    for (parameter& p : parameters) fill_random(p, ++seed, 0.3f);
    CHECK(parameters.find("layers.1.prefix")->shape == std::vector<std::size_t>{2, C});
    stack.replace_rows({{0, 0, false}, {1, 1, false}, {3, 0, true}, {5, 0, false}, {6, 1, false}, {8, 0, true}});
    auto x = random_values(batch * time * C, 50), w = random_values(batch * time * C, 51);
    auto run = [&](bool training) {
        std::memcpy(stack.input(batch, time, training), x.data(), x.size() * sizeof(float));
        return stack.forward(nullptr);
    };
    auto loss = [&] { return weighted_sum(run(false), w); };
    run(true);
    parameters.zero_gradients();
    std::vector<float> d(w);
    stack.backward(d.data());
    for (std::size_t row : {0, 1, 3, 5, 6, 8})
        for (std::size_t j = 0; j < C; ++j) CHECK(d[row * C + j] == 0.0f);  // replaced: no gradient below
    check_gradient("dx", x.data(), x.size(), d.data(), loss);
    for (parameter& p : parameters) check_gradient(p.name, p.value, p.size(), p.gradient, loss);
}

TEST_CASE("LoRA on the q and v slices of c_attn is saved as one PEFT pair of rank 2r: the same ΔW") {
    checkpoint file(nn_data + "gpt2-lm.safetensors");
    model target(file.config());
    method_settings settings = method_of(method_kind::lora);
    settings.lora.rank = 2;
    settings.lora.alpha = 3;
    apply_method(target, settings, false);
    target.parameters().allocate();
    load_parameters(target.parameters(), file, architecture::gpt2, {added_by_method});
    std::uint64_t seed = 5;
    for (parameter& p : target.parameters())
        if (p.trainable) fill_random(p, ++seed);
    const std::string folder = (std::filesystem::temp_directory_path() / "lowrank-train-test-adapter").string();
    std::filesystem::remove_all(folder);
    for (bool rslora : {false, true}) {
        INFO("rsLoRA: " << rslora);
        settings.lora.rslora = rslora;
        for (linear* layer : target.gpt2->stack().blocks()[0].linears())
            for (lora_branch& branch : layer->lora) branch.scale = settings.lora.scale();
        save_method_output(folder, target, settings, {"gpt2-lm.safetensors", task_kind::lm});
        adapter saved(folder);
        CHECK(saved.problems().empty());
        REQUIRE(saved.lora().size() == 2);
        const lora_pair& pair = saved.lora()[0];
        CHECK(pair.module == "transformer.h.0.attn.c_attn");
        CHECK(pair.rank == 4);
        CHECK(pair.scale == doctest::Approx(settings.lora.scale()));
        // ΔW = s·B A of the pair against the branches' s·B_q A_q and s·B_v A_v, zero for k.
        auto a = saved.to_float(*pair.a), b = saved.to_float(*pair.b);
        const linear& qkv = target.gpt2->stack().blocks()[0].qkv;
        const std::size_t in = qkv.in, out = qkv.out, C = out / 3;
        double worst = 0;
        for (std::size_t row = 0; row < out; ++row)
            for (std::size_t col = 0; col < in; ++col) {
                double merged = 0, branches = 0;
                for (std::size_t k = 0; k < 4; ++k) merged += b[row * 4 + k] * a[k * in + col];
                merged *= pair.scale;
                for (const lora_branch& branch : qkv.lora) {
                    if (row < branch.column || row >= branch.column + C) continue;
                    double sum = 0;
                    for (std::size_t k = 0; k < 2; ++k)
                        sum += branch.b->value[(row - branch.column) * 2 + k] * branch.a->value[k * in + col];
                    branches += branch.scale * sum;
                }
                worst = std::max(worst, std::abs(merged - branches));
            }
        CHECK(worst < 1e-5);
    }
    std::filesystem::remove_all(folder);
}
