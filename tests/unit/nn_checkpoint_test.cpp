// Loading models: both GPT-2 spellings, F32/F16/BF16, sharded checkpoints, configs from the
// metadata or config.json, and every way a file can be wrong, reported by name.
#include "core/error.hpp"
#include "formats/safetensors.hpp"
#include "helpers.hpp"
#include "nn/checkpoint.hpp"
#include "nn/gpt2.hpp"
#include "nn_testing.hpp"

#include <cstring>
#include <doctest/doctest.h>
#include <filesystem>
#include <limits>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const std::string fixture = "tests/data/nn/gpt2-lm.safetensors";

// The message of the lowrank::error that `action` throws ("" when it throws none).
template <class Action>
std::string error_message(Action&& action) {
    try {
        action();
    } catch (const error& failure) {
        return failure.what();
    }
    return "";
}

// A gpt2 model with the fixture's config, allocated (all frozen, or all trainable).
struct loaded_model {
    explicit loaded_model(bool trainable = false) : model(checkpoint(fixture).config()) {
        for (parameter& p : model.parameters()) p.trainable = trainable;
        model.parameters().allocate();
    }
    load_result load(const std::string& path) {
        return load_parameters(model.parameters(), checkpoint(path), architecture::gpt2);
    }
    gpt2_model model;
};

// Writes the fixture's tensors again, changed by `edit` (which may drop one by returning false).
void rewrite(const std::string& target, const std::function<bool(tensor_spec&)>& edit) {
    safetensors_file source(fixture);
    std::vector<tensor_data> tensors;
    std::vector<std::vector<std::byte>> storage;
    for (const tensor_info& tensor : source.tensors()) {
        tensor_data data{{tensor.name, tensor.type, tensor.shape}, source.bytes(tensor)};
        if (edit(data.spec)) tensors.push_back(data);
    }
    output_stream out(target, output_kind::binary);
    write_safetensors(out, tensors, source.metadata());
    out.commit();
}

// The fixture's bytes with `from` replaced by `to` in the header (same length).
void patch_header(const std::string& target, const std::string& from, const std::string& to) {
    std::string bytes = read_file(fixture);
    auto position = bytes.find(from);
    REQUIRE(position != std::string::npos);
    bytes.replace(position, from.size(), to);
    write_file(target, bytes);
}

}  // namespace

TEST_CASE("checkpoint: the hub's spelling (no transformer. prefix, attn.bias buffers) in F16 and BF16") {
    loaded_model reference;
    reference.load(fixture);
    for (auto [file, precision] : {std::pair{"gpt2-lm.hub-f16.safetensors", 1.0 / 2048},
                                   std::pair{"gpt2-lm.hub-bf16.safetensors", 1.0 / 256}}) {
        INFO(file);
        loaded_model hub;
        auto result = hub.load(std::string("tests/data/nn/") + file);
        CHECK(result.warnings.empty());
        for (parameter& p : hub.model.parameters()) {
            const parameter* expected = reference.model.parameters().find(p.name);
            double worst = 0;
            for (std::size_t i = 0; i < p.size(); ++i)
                worst = std::max(worst, std::abs(p.value[i] - expected->value[i]) - precision * std::abs(expected->value[i]));
            CHECK(worst <= 1e-7);
        }
    }
}

TEST_CASE("checkpoint: a sharded checkpoint with config.json loads the same values") {
    loaded_model reference, sharded;
    reference.load(fixture);
    checkpoint folder("tests/data/nn/gpt2-sharded");
    CHECK(folder.config().arch == architecture::gpt2);
    CHECK(folder.config().text.transformer.layers == 2);
    load_parameters(sharded.model.parameters(), folder, architecture::gpt2);
    for (parameter& p : sharded.model.parameters())
        CHECK(std::memcmp(p.value, reference.model.parameters().find(p.name)->value, p.size() * sizeof(float)) == 0);
    CHECK(folder.files().is_sharded());
}

TEST_CASE("checkpoint: frozen F32 tensors are read in place, trainable ones copied") {
    checkpoint file(fixture);
    loaded_model frozen, trainable(true);
    load_parameters(frozen.model.parameters(), file, architecture::gpt2);
    load_parameters(trainable.model.parameters(), file, architecture::gpt2);
    auto located = file.files().find("transformer.wte.weight");
    const void* mapped = file.files().files()[located->file].bytes(*located->tensor).data();
    CHECK(static_cast<const void*>(frozen.model.token_embedding().table->value) == mapped);
    CHECK(static_cast<const void*>(trainable.model.token_embedding().table->value) != mapped);
    CHECK(std::memcmp(frozen.model.token_embedding().table->value, trainable.model.token_embedding().table->value,
                      frozen.model.token_embedding().table->size() * sizeof(float)) == 0);
}

TEST_CASE("checkpoint: save_parameters writes what load_parameters reads back, config included") {
    scratch_folder folder;
    loaded_model original;
    original.load(fixture);
    {
        output_stream out(folder.file("copy.safetensors"), output_kind::binary);
        save_parameters(out, original.model.parameters(), original.model.config().json);
        out.commit();
    }
    checkpoint copy(folder.file("copy.safetensors"));
    CHECK(copy.config().json == original.model.config().json);
    loaded_model reloaded;
    load_parameters(reloaded.model.parameters(), copy, architecture::gpt2);
    for (parameter& p : reloaded.model.parameters())
        CHECK(std::memcmp(p.value, original.model.parameters().find(p.name)->value, p.size() * sizeof(float)) == 0);
}

TEST_CASE("checkpoint errors: each names the file and the tensor or field") {
    scratch_folder folder;
    std::string path = folder.file("bad.safetensors");

    rewrite(path, [](tensor_spec& spec) { return spec.name != "transformer.h.1.mlp.c_fc.bias"; });
    CHECK(error_message([&] { loaded_model().load(path); }) ==
          path + ": missing tensor 'transformer.h.1.mlp.c_fc.bias'");

    rewrite(path, [](tensor_spec& spec) {
        if (spec.name == "transformer.h.0.attn.c_attn.weight") std::swap(spec.shape[0], spec.shape[1]);
        return true;
    });
    CHECK(error_message([&] { loaded_model().load(path); }) ==
          path + ": tensor 'transformer.h.0.attn.c_attn.weight' has shape [96, 32], the model needs [32, 96]");

    patch_header(path, "\"F32\"", "\"I32\"");
    CHECK(error_message([&] { loaded_model().load(path); }).find("; a parameter needs F32, F16, BF16 or F64") !=
          std::string::npos);

    patch_header(path, "\"F32\"", "\"Q32\"");
    std::string unknown = error_message([&] { checkpoint{path}; });
    CHECK(unknown.starts_with(path + ": tensor '"));
    CHECK(unknown.find("unknown dtype 'Q32'") != std::string::npos);

    {  // a NaN in the last tensor's data
        std::string bytes = read_file(fixture);
        const float nan = std::numeric_limits<float>::quiet_NaN();
        bytes.replace(bytes.size() - 8, 4, reinterpret_cast<const char*>(&nan), 4);
        write_file(path, bytes);
        std::string message = error_message([&] { loaded_model().load(path); });
        CHECK(message.starts_with(path + ": tensor '"));
        CHECK(message.find("holds NaN at element") != std::string::npos);
    }

    std::string bytes = read_file(fixture);
    write_file(path, bytes.substr(0, bytes.size() - 100));
    CHECK(error_message([&] { checkpoint{path}; }).find("(truncated file?)") != std::string::npos);

    rewrite(path, [](tensor_spec&) { return true; });  // fine, but its config is removed next
    {
        safetensors_file source(fixture);
        std::vector<tensor_data> tensors;
        for (const tensor_info& tensor : source.tensors())
            tensors.push_back({{tensor.name, tensor.type, tensor.shape}, source.bytes(tensor)});
        output_stream out(path, output_kind::binary);
        write_safetensors(out, tensors, {{"format", "pt"}});
        out.commit();
    }
    CHECK(error_message([&] { checkpoint(path).config(); }).starts_with(path + ": no model config"));

    write_file(folder.file("config.json"), R"({"model_type": "gpt2", "n_embd": 30, "n_head": 4})");
    CHECK(error_message([&] { checkpoint(path).config(); }) ==
          folder.file("config.json") + ": config field 'n_head' (4) must divide n_embd (30)");
    write_file(folder.file("config.json"), R"({"model_type": "bert"})");
    CHECK(error_message([&] { checkpoint(path).config(); }).find("model_type 'bert' is not supported") !=
          std::string::npos);
    write_file(folder.file("config.json"), R"({"model_type": "gpt2", "activation_function": "swish"})");
    CHECK(error_message([&] { checkpoint(path).config(); }).find("'activation_function' names an unsupported") !=
          std::string::npos);

    std::filesystem::create_directory(folder.file("shards"));
    write_file(folder.file("shards/model.safetensors.index.json"),
               R"({"weight_map": {"transformer.wte.weight": "model-00001-of-00002.safetensors"}})");
    CHECK(error_message([&] { checkpoint{folder.file("shards")}; }).find("model-00001-of-00002.safetensors") !=
          std::string::npos);
    CHECK(error_message([&] { checkpoint{folder.file("nothing")}; }).find("nothing") != std::string::npos);
}

TEST_CASE("config: presets, --set fields, Hugging Face defaults") {
    auto config = parse_model_config(*preset_config(architecture::gpt2, "small"), "preset");
    CHECK(config.text.vocab_size == 8192);
    CHECK(config.text.transformer.layers == 4);
    CHECK(config.text.transformer.inner == 1024);
    nlohmann::json json = *preset_config(architecture::clip, "tiny");
    set_config_field(json, architecture::clip, "text_config.num_hidden_layers=3");
    set_config_field(json, architecture::clip, "projection_dim=8");
    config = parse_model_config(json, "preset");
    CHECK(config.text.transformer.layers == 3);
    CHECK(config.projection_dim == 8);
    CHECK_THROWS_AS(set_config_field(json, architecture::clip, "text_config.n_layer=3"), usage_error);
    CHECK_THROWS_AS(set_config_field(json, architecture::gpt2, "n_layers=3"), usage_error);
    CHECK_THROWS_AS(set_config_field(json, architecture::gpt2, "n_layer"), usage_error);
    json = *preset_config(architecture::vit, "tiny");
    set_config_field(json, architecture::vit, "num_labels=3");
    CHECK(parse_model_config(json, "preset").labels == std::vector<std::string>{"LABEL_0", "LABEL_1", "LABEL_2"});
    // A bare model_type takes every default: gpt2's 124M shapes.
    config = parse_model_config({{"model_type", "gpt2"}}, "defaults");
    CHECK(config.text.vocab_size == 50257);
    CHECK(config.text.transformer.heads == 12);
    CHECK(!preset_config(architecture::vit, "gpt2"));
}
