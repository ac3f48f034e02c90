// The models against PyTorch: tiny random gpt2, vit and clip models made by
// tests/data/nn/make-fixtures.py with Hugging Face names; outputs, losses and the gradient
// of every parameter must agree to 1e-4, relative to each tensor's largest value.
#include "formats/npy.hpp"
#include "formats/safetensors.hpp"
#include "nn/checkpoint.hpp"
#include "nn/clip.hpp"
#include "nn/gpt2.hpp"
#include "nn/lora.hpp"
#include "nn_testing.hpp"

#include <cmath>
#include <doctest/doctest.h>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const std::string data = "tests/data/nn/";

// max |actual − expected| ≤ tolerance · max |expected| (+ 1e-7: some gradients are zero in
// exact arithmetic, the key projection's bias for one, as softmax ignores a shift of all
// scores; float32 leaves them at 1e-8, float64 at 1e-17)
void check_close(const std::string& what, const float* actual, const std::vector<float>& expected,
                 double tolerance = 1e-4) {
    double largest = 0, worst = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        largest = std::max(largest, std::abs(static_cast<double>(expected[i])));
        worst = std::max(worst, std::abs(static_cast<double>(actual[i]) - expected[i]));
    }
    INFO(what << ": max error " << worst << ", max value " << largest);
    CHECK(worst <= tolerance * largest + 1e-7);
}

std::vector<float> floats(const std::string& name) { return npy_array(data + name).to_float(); }

std::vector<std::int32_t> ints(const std::string& name) {
    auto values = npy_array(data + name).to_int64();
    return {values.begin(), values.end()};
}

double scalar(const std::string& name) { return npy_array(data + name).to_float()[0]; }

// Every trainable parameter's gradient against the fixture's gradient of the same name.
void check_gradients(parameter_set& parameters, const std::string& fixture) {
    safetensors_file expected(data + fixture);
    std::size_t checked = 0;
    for (parameter& p : parameters) {
        if (!p.trainable) continue;
        const tensor_info& tensor = expected.at(p.name);
        check_close("gradient of " + p.name, p.gradient, expected.to_float(tensor));
        ++checked;
    }
    CHECK(checked == expected.tensors().size());
}

struct gpt2_fixture {
    checkpoint file{data + "gpt2-lm.safetensors"};
    gpt2_model model{file.config()};
    std::vector<std::int32_t> ids = ints("gpt2-lm.ids.npy"), labels = ints("gpt2-lm.labels.npy"),
                              lengths = ints("gpt2-lm.lengths.npy");
    std::size_t batch = 3, time = 10;

    // GPT2LMHeadModel's loss: position t predicts the label at t + 1.
    std::vector<std::int32_t> targets() const {
        std::vector<std::int32_t> shifted(ids.size(), ignore_index);
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t t = 0; t + 1 < time; ++t) shifted[b * time + t] = labels[b * time + t + 1];
        return shifted;
    }

    // Forward, logits, loss and backward; checks them against the fixture `name`.
    void check_pass(const std::string& name) {
        const std::size_t C = model.width(), V = model.config().text.vocab_size;
        const float* hidden = model.forward(ids.data(), batch, time, lengths.data(), true);
        std::vector<float> logits(batch * time * V);
        model.lm_logits(hidden, batch * time, logits.data());
        check_close(name + " logits", logits.data(), floats(name + ".logits.npy"));
        auto shifted = targets();
        std::vector<float> d_hidden(batch * time * C, 0.0f);
        model.parameters().zero_gradients();
        auto first = model.lm_loss(hidden, shifted.data(), batch * time, nullptr, 0);
        auto loss = model.lm_loss(hidden, shifted.data(), batch * time, d_hidden.data(),
                                  1.0f / static_cast<float>(first.counted));
        CHECK(loss.sum / static_cast<double>(loss.counted) == doctest::Approx(scalar(name + ".loss.npy")).epsilon(1e-5));
        model.backward(d_hidden.data());
        check_gradients(model.parameters(), name + ".grads.safetensors");
    }
};

}  // namespace

TEST_CASE("gpt2 LM: logits, loss and every gradient against PyTorch, with padding") {
    gpt2_fixture f;
    for (parameter& p : f.model.parameters()) p.trainable = true;
    f.model.parameters().allocate();
    auto loaded = load_parameters(f.model.parameters(), f.file, architecture::gpt2);
    CHECK(loaded.missing.empty());
    CHECK(loaded.warnings.empty());
    f.check_pass("gpt2-lm");
    // A second pass gives the same numbers (buffers reused, gradients reset by the caller).
    f.check_pass("gpt2-lm");
}

TEST_CASE("gpt2 LM with LoRA on the q and v slices of c_attn and on wte: every gradient against PyTorch") {
    gpt2_fixture f;
    lora_settings settings{.rank = 2, .alpha = 4};
    for (transformer_block& block : f.model.stack().blocks())
        for (const char* slice : {"q", "v"}) add_lora(f.model.parameters(), *find_lora_target(block, slice), settings);
    add_embedding_lora(f.model.parameters(), f.model.token_embedding(), settings);
    for (parameter& p : f.model.parameters()) p.trainable = true;
    f.model.parameters().allocate();
    load_parameters(f.model.parameters(), f.file, architecture::gpt2,
                    {[](const parameter& p) { return p.name.find(".lora_") != std::string::npos; }});
    safetensors_file lora(data + "gpt2-lora.safetensors");
    for (const tensor_info& tensor : lora.tensors()) {
        parameter* p = f.model.parameters().find(tensor.name);
        REQUIRE(p);
        auto values = lora.to_float(tensor);
        std::copy(values.begin(), values.end(), p->value);
    }
    f.check_pass("gpt2-lora");
}

TEST_CASE("gpt2 LoRA: frozen base weights get no gradient, B = 0 leaves the model unchanged") {
    gpt2_fixture f;
    for (transformer_block& block : f.model.stack().blocks())
        for (const char* slice : {"q", "v"}) {
            lora_branch& branch = add_lora(f.model.parameters(), *find_lora_target(block, slice), {.rank = 4, .alpha = 8});
            branch.a->trainable = branch.b->trainable = true;
        }
    f.model.parameters().allocate();
    std::uint64_t stream = 0;
    for (transformer_block& block : f.model.stack().blocks())
        for (lora_branch& branch : block.qkv.lora) initialize_lora(branch, lora_init::kaiming, 1, ++stream);
    load_parameters(f.model.parameters(), f.file, architecture::gpt2,
                    {[](const parameter& p) { return p.trainable; }});
    CHECK(f.model.parameters().trainable_count() == 2 * 2 * (4 * 32 + 32 * 4));
    CHECK(f.model.token_embedding().table->gradient == nullptr);
    const std::size_t V = f.model.config().text.vocab_size;
    const float* hidden = f.model.forward(f.ids.data(), f.batch, f.time, f.lengths.data(), true);
    std::vector<float> logits(f.batch * f.time * V);
    f.model.lm_logits(hidden, f.batch * f.time, logits.data());
    check_close("logits with B = 0", logits.data(), floats("gpt2-lm.logits.npy"));
}

TEST_CASE("gpt2 sequence classification and regression: pooled logits, loss, gradients against PyTorch") {
    for (bool regression : {false, true}) {
        std::string name = regression ? "gpt2-regress" : "gpt2-classify";
        INFO(name);
        checkpoint file(data + name + ".safetensors");
        gpt2_model model(file.config());
        CHECK(model.config().head == (regression ? head_kind::regression : head_kind::classification));
        for (parameter& p : model.parameters()) p.trainable = true;
        model.parameters().allocate();
        load_parameters(model.parameters(), file, architecture::gpt2);
        auto ids = ints(name + ".ids.npy");
        const std::size_t batch = 4, time = 9, labels = model.config().label_count();
        auto lengths = token_lengths(ids, time, model.config().text.pad_token_id);
        CHECK(lengths == std::vector<std::int32_t>{9, 5, 1, 7});
        const float* hidden = model.forward(ids.data(), batch, time, lengths.data(), true);
        std::vector<float> logits(batch * labels), d_logits(batch * labels);
        model.score_forward(hidden, batch, time, lengths.data(), logits.data());
        check_close(name + " logits", logits.data(), floats(name + ".logits.npy"));
        double loss = 0;
        if (regression) {
            auto targets = floats(name + ".targets.npy");
            loss = squared_error(logits.data(), targets.data(), batch, d_logits.data(), 1.0f / batch) / batch;
        } else {
            auto targets = ints(name + ".targets.npy");
            loss = cross_entropy(logits.data(), targets.data(), batch, labels, d_logits.data(), 1.0f / batch).sum / batch;
        }
        CHECK(loss == doctest::Approx(scalar(name + ".loss.npy")).epsilon(1e-5));
        std::vector<float> d_hidden(batch * time * model.width(), 0.0f);
        model.score_backward(hidden, batch, time, lengths.data(), d_logits.data(), d_hidden.data());
        model.backward(d_hidden.data());
        check_gradients(model.parameters(), name + ".grads.safetensors");
    }
}

TEST_CASE("vit (CLIP vision tower + classifier, exact gelu): logits, loss, gradients against PyTorch") {
    checkpoint file(data + "vit.safetensors");
    vit_model model(file.config());
    CHECK(model.config().labels == std::vector<std::string>{"class 0", "class 1", "class 2", "class 3", "class 4"});
    for (parameter& p : model.parameters()) p.trainable = true;
    model.parameters().allocate();
    load_parameters(model.parameters(), file, architecture::vit);
    auto patches = floats("vit.patches.npy");
    auto targets = ints("vit.targets.npy");
    const std::size_t batch = 3, labels = 5;
    const float* logits = model.forward(patches.data(), batch, true);
    check_close("vit logits", logits, floats("vit.logits.npy"));
    std::vector<float> d_logits(batch * labels);
    double loss = cross_entropy(logits, targets.data(), batch, labels, d_logits.data(), 1.0f / batch).sum / batch;
    CHECK(loss == doctest::Approx(scalar("vit.loss.npy")).epsilon(1e-5));
    model.backward(d_logits.data());
    check_gradients(model.parameters(), "vit.grads.safetensors");
}

TEST_CASE("clip: embeddings, logits, InfoNCE loss and every gradient against PyTorch") {
    checkpoint file(data + "clip.safetensors");
    clip_model model(file.config());
    for (parameter& p : model.parameters()) p.trainable = true;
    model.parameters().allocate();
    load_parameters(model.parameters(), file, architecture::clip);
    auto ids = ints("clip.ids.npy");
    auto patches = floats("clip.patches.npy");
    const std::size_t batch = 4, time = 10, P = model.config().projection_dim;
    const float* text = model.encode_text(ids.data(), batch, time, true);
    const float* image = model.encode_image(patches.data(), batch, true);
    std::vector<float> u(batch * P), v(batch * P), u_norm(batch), v_norm(batch);
    l2_normalize_forward(text, batch, P, u.data(), u_norm.data());
    l2_normalize_forward(image, batch, P, v.data(), v_norm.data());
    check_close("text embeddings", u.data(), floats("clip.text-embeds.npy"));
    check_close("image embeddings", v.data(), floats("clip.image-embeds.npy"));
    std::vector<float> du(batch * P, 0.0f), dv(batch * P, 0.0f), d_text(batch * P, 0.0f), d_image(batch * P, 0.0f);
    parameter& scale = model.logit_scale();
    double loss = info_nce_loss(u.data(), v.data(), batch, P, scale.value[0], 0.5f,
                                {du.data(), dv.data(), scale.gradient, 1});
    CHECK(loss == doctest::Approx(scalar("clip.loss.npy")).epsilon(1e-5));
    l2_normalize_backward(u.data(), u_norm.data(), du.data(), batch, P, d_text.data());
    l2_normalize_backward(v.data(), v_norm.data(), dv.data(), batch, P, d_image.data());
    model.backward_text(d_text.data());
    model.backward_image(d_image.data());
    check_gradients(model.parameters(), "clip.grads.safetensors");
}

TEST_CASE("clip: the legacy pooling rule (eos_token_id 2) takes the largest id") {
    checkpoint file(data + "clip.safetensors");
    model_config config = file.config();
    config.text.eos_token_id = 2;
    clip_model model(config);
    model.parameters().allocate();
    load_parameters(model.parameters(), file, architecture::clip);
    auto ids = ints("clip.ids.npy");
    const std::size_t batch = 4, P = model.config().projection_dim;
    std::vector<float> u(batch * P), norms(batch);
    l2_normalize_forward(model.encode_text(ids.data(), batch, 10, false), batch, P, u.data(), norms.data());
    check_close("legacy text embeddings", u.data(), floats("clip.legacy-text-embeds.npy"));
}

namespace {

// Mean and standard deviation of a parameter's values.
std::pair<double, double> moments(const parameter& p) {
    double sum = 0, squares = 0;
    for (std::size_t i = 0; i < p.size(); ++i) sum += p.value[i];
    double mean = sum / static_cast<double>(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) squares += (p.value[i] - mean) * (p.value[i] - mean);
    return {mean, std::sqrt(squares / static_cast<double>(p.size()))};
}

// Checks every parameter against the distribution `expected_std` gives for its name:
// 0 means constant (its value: 0 for biases, 1 for LayerNorm weights).
void check_initialisation(parameter_set& parameters, const std::function<double(const std::string&)>& expected_std) {
    for (parameter& p : parameters) {
        INFO(p.name);
        auto [mean, std] = moments(p);
        double expected = expected_std(p.name);
        if (expected == 0) {
            CHECK(std == 0);
            continue;
        }
        CHECK(std::abs(mean) < 5 * expected / std::sqrt(static_cast<double>(p.size())) + 1e-9);
        if (p.size() >= 1000) CHECK(std == doctest::Approx(expected).epsilon(0.05));
    }
}

}  // namespace

TEST_CASE("initialisation: Hugging Face's schemes for gpt2 and clip, seeded") {
    model_config config = parse_model_config(*preset_config(architecture::gpt2, "small"), "preset");
    gpt2_model gpt2(config);
    gpt2.parameters().allocate();
    gpt2.initialize(7);
    check_initialisation(gpt2.parameters(), [](const std::string& name) {
        if (name.ends_with(".bias") || name.find(".ln_") != std::string::npos) return 0.0;
        return name.ends_with("c_proj.weight") ? 0.02 / std::sqrt(8.0) : 0.02;
    });
    CHECK(gpt2.parameters().find("transformer.ln_f.weight")->value[0] == 1);

    config = parse_model_config(*preset_config(architecture::clip, "small"), "preset");
    clip_model clip(config);
    clip.parameters().allocate();
    clip.initialize(7);
    check_initialisation(clip.parameters(), [](const std::string& name) {
        const double D = 256, L = 4;
        if (name.ends_with(".bias") || name.find("norm") != std::string::npos || name == "logit_scale") return 0.0;
        if (name.find("_proj.weight") != std::string::npos && name.find("out_proj") == std::string::npos &&
            name.find("projection") == std::string::npos)
            return 1 / std::sqrt(D) / std::sqrt(2 * L);  // q, k, v
        if (name.find("out_proj") != std::string::npos || name.find("projection") != std::string::npos ||
            name.find("class_embedding") != std::string::npos)
            return 1 / std::sqrt(D);
        if (name.find("fc1") != std::string::npos) return 1 / std::sqrt(2 * D);
        if (name.find("fc2") != std::string::npos) return 1 / std::sqrt(D) / std::sqrt(2 * L);
        return 0.02;  // embeddings
    });
    CHECK(clip.logit_scale().value[0] == doctest::Approx(2.6592));
    // Another model with the same seed is the same.
    clip_model again(config);
    again.parameters().allocate();
    again.initialize(7);
    CHECK(std::equal(clip.parameters().find("text_projection.weight")->value,
                     clip.parameters().find("text_projection.weight")->value + 256 * 256,
                     again.parameters().find("text_projection.weight")->value));
}
