// lib/peft: adapter_config.json, PEFT's module matching rules, adapters, and merging
// (the numbers are checked against PyTorch's in tests/e2e/lora-merge.sh; here the rules,
// the refusals, and the round trips).
#include "core/error.hpp"
#include "formats/dtype.hpp"
#include "helpers.hpp"
#include "peft/adapter.hpp"
#include "peft/adapter_config.hpp"
#include "peft/base_model.hpp"
#include "peft/merge.hpp"

#include <cmath>
#include <doctest/doctest.h>
#include <filesystem>
#include <fmt/format.h>
#include <set>

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const std::string fixtures = "tests/data/peft/";

lora_config config_from(const std::string& json) { return parse_adapter_config(json, "adapter_config.json"); }

std::string error_of(const std::function<void()>& body) {
    try {
        body();
    } catch (const std::exception& failure) {
        return failure.what();
    }
    return "";
}

std::vector<weighted_adapter> adapters_of(const std::vector<std::pair<std::string, double>>& operands) {
    std::vector<weighted_adapter> adapters;
    for (const auto& [path, weight] : operands) adapters.push_back({adapter(fixtures + path), weight});
    return adapters;
}

// The spacing of a dtype's values around `value` (one unit in the last place).
double spacing(dtype type, double value) {
    int bits = type == dtype::bf16 ? 7 : type == dtype::f16 ? 10 : 23;
    int lowest = type == dtype::f16 ? -14 : -126;
    return std::ldexp(1.0, std::max(value == 0 ? lowest : std::ilogb(value), lowest) - bits);
}

}  // namespace

// ------------------------------------------------------------------------ adapter_config.json

TEST_CASE("adapter_config.json: every field read, defaults where absent, unknown keys ignored") {
    lora_config config = config_from(R"({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "gpt2", "revision": null,
        "r": 8, "lora_alpha": 16.5, "use_rslora": true, "lora_dropout": 0.05, "fan_in_fan_out": true,
        "bias": "lora_only", "lora_bias": true, "modules_to_save": ["score"], "init_lora_weights": "gaussian",
        "layers_to_transform": [0, 2], "layers_pattern": "h", "use_dora": false, "inference_mode": false,
        "target_modules": ["c_attn"], "exclude_modules": "transformer\\.h\\.2\\..*",
        "rank_pattern": {"c_attn": 4}, "alpha_pattern": {}, "megatron_core": "megatron.core",
        "a_field_from_the_future": {"x": 1}})");
    CHECK(config.task_type == "CAUSAL_LM");
    CHECK(config.base_model_name_or_path == "gpt2");
    CHECK(!config.revision);
    CHECK(config.r == 8);
    CHECK(config.lora_alpha == 16.5);
    CHECK(config.use_rslora);
    CHECK(config.lora_dropout == doctest::Approx(0.05));
    CHECK(config.fan_in_fan_out);
    CHECK(config.bias == "lora_only");
    CHECK(config.lora_bias);
    CHECK(config.modules_to_save == std::vector<std::string>{"score"});
    CHECK(config.init_lora_weights == "gaussian");
    CHECK(config.layers_to_transform == std::vector<long>{0, 2});
    CHECK(config.layers_pattern == std::vector<std::string>{"h"});
    CHECK(!config.inference_mode);
    CHECK(config.unsupported_fields.empty());

    lora_config defaults = config_from(R"({"peft_type": "LORA"})");
    CHECK(defaults.r == 8);
    CHECK(defaults.lora_alpha == 8);
    CHECK(!defaults.fan_in_fan_out);
    CHECK(defaults.init_lora_weights == "true");
    CHECK(defaults.target_modules.form == module_selection::kind::none);
    CHECK(defaults.scale_for("anything") == 1.0);
}

TEST_CASE("target_modules, exclude_modules, layers_to_transform, modules_to_save: PEFT's matching") {
    lora_config names = config_from(R"({"peft_type": "LORA", "target_modules": ["c_proj", "attn.c_attn"]})");
    CHECK(names.selects("transformer.h.0.attn.c_proj"));
    CHECK(names.selects("transformer.h.0.mlp.c_proj"));  // a bare name hits every module of that name
    CHECK(names.selects("transformer.h.0.attn.c_attn"));
    CHECK(names.selects("c_proj"));
    CHECK(!names.selects("transformer.h.0.attn.xc_proj"));  // a suffix only after a dot
    CHECK(!names.selects("transformer.h.0.mlp.c_fc"));

    lora_config regex = config_from(R"({"peft_type": "LORA", "target_modules": ".*\\.(q|v)_proj"})");
    CHECK(regex.selects("text_model.encoder.layers.0.self_attn.q_proj"));
    CHECK(!regex.selects("text_model.encoder.layers.0.self_attn.k_proj"));
    CHECK(!regex.selects("q_proj"));  // the whole name must match

    lora_config excluded = config_from(
        R"({"peft_type": "LORA", "target_modules": ["q_proj"], "exclude_modules": ["vision_model.encoder.layers.0.self_attn.q_proj"]})");
    CHECK(excluded.selects("text_model.encoder.layers.0.self_attn.q_proj"));
    CHECK(!excluded.selects("vision_model.encoder.layers.0.self_attn.q_proj"));

    lora_config layers = config_from(
        R"({"peft_type": "LORA", "target_modules": ["c_attn"], "layers_to_transform": [1], "layers_pattern": "h"})");
    CHECK(layers.selects("transformer.h.1.attn.c_attn"));
    CHECK(!layers.selects("transformer.h.0.attn.c_attn"));
    lora_config any_layer = config_from(R"({"peft_type": "LORA", "target_modules": ["query"], "layers_to_transform": 3})");
    CHECK(any_layer.selects("vit.encoder.layer.3.attention.attention.query"));
    CHECK(!any_layer.selects("vit.encoder.layer.13.attention.attention.query"));

    lora_config saved = config_from(R"({"peft_type": "LORA", "target_modules": ["dense"], "modules_to_save": ["classifier"]})");
    CHECK(!saved.selects("classifier.dense"));
    CHECK(saved.selects("vit.encoder.layer.0.output.dense"));

    lora_config all = config_from(R"({"peft_type": "LORA", "target_modules": "all-linear"})");
    CHECK(all.selects("transformer.h.0.mlp.c_fc"));
    CHECK(!all.selects("lm_head"));
}

TEST_CASE("rank_pattern and alpha_pattern: a dotted suffix, the first match wins; rsLoRA scales by sqrt(r)") {
    lora_config config = config_from(R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16,
        "rank_pattern": {"h.1.attn.c_attn": 2, "c_attn": 4, "attn.c_proj": 6},
        "alpha_pattern": {"mlp\\..*": 32}})");
    CHECK(config.rank_for("transformer.h.1.attn.c_attn") == 2);  // the first key listed that matches
    CHECK(config.rank_for("transformer.h.0.attn.c_attn") == 4);
    CHECK(config.rank_for("transformer.h.11.attn.c_attn") == 4);  // "h.1.attn.c_attn" is not a suffix of it
    CHECK(config.rank_for("transformer.h.0.attn.c_proj") == 6);
    CHECK(config.rank_for("transformer.h.0.mlp.c_proj") == 8);
    CHECK(config.alpha_for("transformer.h.0.mlp.c_proj") == 32);
    CHECK(config.alpha_for("transformer.h.0.attn.c_proj") == 16);
    CHECK(config.scale_for("transformer.h.0.attn.c_attn") == 4.0);  // 16 / 4
    CHECK(config.scale_for("transformer.h.0.mlp.c_fc") == 4.0);      // 32 / 8
    config.use_rslora = true;
    CHECK(config.scale_for("transformer.h.0.attn.c_attn") == 8.0);                          // 16 / sqrt(4)
    CHECK(config.scale_for("transformer.h.0.mlp.c_fc") == doctest::Approx(32 / std::sqrt(8.0)));
}

TEST_CASE("adapter_config.json: malformed files and fields are refused, naming the file and the key") {
    auto fails = [](const std::string& json) { return error_of([&] { config_from(json); }); };
    CHECK(fails("{") .starts_with("adapter_config.json: adapter_config.json is not valid JSON"));
    CHECK(fails("[]") == "adapter_config.json: adapter_config.json is not a JSON object");
    CHECK(fails(R"({"r": 8})") == "adapter_config.json: no 'peft_type'");
    CHECK(fails(R"({"peft_type": "IA3"})") ==
          "adapter_config.json: peft_type is 'IA3': only LoRA adapters (\"LORA\") are supported");
    CHECK(fails(R"({"peft_type": "LORA", "r": 0})") == "adapter_config.json: 'r' is not a positive integer");
    CHECK(fails(R"({"peft_type": "LORA", "r": 2.5})") == "adapter_config.json: 'r' is not a positive integer");
    CHECK(fails(R"({"peft_type": "LORA", "lora_alpha": "8"})") == "adapter_config.json: 'lora_alpha' is not a number");
    CHECK(fails(R"({"peft_type": "LORA", "use_rslora": 1})") == "adapter_config.json: 'use_rslora' is not true or false");
    CHECK(fails(R"({"peft_type": "LORA", "bias": "some"})") ==
          "adapter_config.json: 'bias' is not \"none\", \"all\" or \"lora_only\"");
    CHECK(fails(R"({"peft_type": "LORA", "target_modules": [1]})") ==
          "adapter_config.json: 'target_modules' holds something other than names");
    CHECK(fails(R"({"peft_type": "LORA", "rank_pattern": {"c_attn": -1}})") ==
          "adapter_config.json: 'rank_pattern' entry 'c_attn' is not a positive integer");
    CHECK(fails(R"({"peft_type": "LORA", "rank_pattern": []})") == "adapter_config.json: 'rank_pattern' is not an object");
    CHECK(fails(R"({"peft_type": "LORA", "target_modules": "(q"})")
              .starts_with("adapter_config.json: 'target_modules' '(q' is not a valid regular expression"));
    CHECK(fails(R"({"peft_type": "LORA", "layers_to_transform": [-1]})") ==
          "adapter_config.json: 'layers_to_transform' is not a layer number or a list of them");
    CHECK(fails(R"({"peft_type": "LORA", "init_lora_weights": 3})") ==
          "adapter_config.json: 'init_lora_weights' is not true, false or a method name");
    CHECK(fails(R"({"peft_type": "LORA", "r": 4, "r": 8})") == "adapter_config.json: adapter_config.json repeats the key 'r'");
}

TEST_CASE("refusals: DoRA, base-changing initialisations unless the base is the residual one, exotic fields") {
    auto refusals = [](const std::string& json, bool residual = false) {
        return lora_config_refusals(config_from(json), residual);
    };
    CHECK(refusals(R"({"peft_type": "LORA"})").empty());
    for (const char* init : {"true", "false", "\"gaussian\"", "\"eva\"", "\"orthogonal\""})
        CHECK_MESSAGE(refusals(fmt::format(R"({{"peft_type": "LORA", "init_lora_weights": {}}})", init)).empty(), init);
    for (const char* init : {"pissa", "pissa_niter_4", "olora", "loftq", "corda", "lora_ga", "something_new"}) {
        std::string json = fmt::format(R"({{"peft_type": "LORA", "init_lora_weights": "{}"}})", init);
        REQUIRE_MESSAGE(refusals(json).size() == 1, init);
        CHECK(refusals(json)[0].find("--residual-base") != std::string::npos);
        CHECK(refusals(json, true).empty());
    }
    CHECK(refusals(R"({"peft_type": "LORA", "use_dora": true})")[0].starts_with("a DoRA adapter"));
    auto exotic = refusals(R"({"peft_type": "LORA", "layer_replication": [[0, 2]], "use_qalora": true,
                               "loftq_config": {}, "megatron_config": null, "target_parameters": []})");
    CHECK(exotic == std::vector<std::string>{"'layer_replication' is set, which plain LoRA does not support",
                                             "'use_qalora' is set, which plain LoRA does not support"});
}

TEST_CASE("adapter_config_json: PEFT's layout, read back the same") {
    lora_config config = config_from(R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "lora_dropout": 0.05,
        "fan_in_fan_out": true, "target_modules": ["c_attn"], "task_type": "CAUSAL_LM",
        "base_model_name_or_path": "gpt2", "rank_pattern": {"h.0.attn.c_attn": 4}, "alpha_pattern": {"c_attn": 2.5}})");
    std::string text = adapter_config_json(config);
    CHECK(text.starts_with("{\n  \"alpha_pattern\": {\n    \"c_attn\": 2.5\n  },\n  \"base_model_name_or_path\": \"gpt2\","));
    CHECK(text.find("\"lora_alpha\": 16,") != std::string::npos);  // an integer stays an integer
    CHECK(text.find("\"init_lora_weights\": true,") != std::string::npos);
    CHECK(text.find("lora_bias") == std::string::npos);  // only when set: older PEFT refuses unknown keys
    lora_config again = config_from(text);
    CHECK(adapter_config_json(again) == text);
    CHECK(again.rank_for("transformer.h.0.attn.c_attn") == 4);
    CHECK(again.alpha_for("transformer.h.3.attn.c_attn") == 2.5);
}

// ------------------------------------------------------------------------ adapters

TEST_CASE("adapter: a PEFT folder grouped by module, with each module's rank and scale") {
    adapter lora(fixtures + "gpt2-lora");
    CHECK(lora.kind() == adapter::format::peft_lora);
    CHECK(lora.method() == "lora");
    CHECK(lora.problems().empty());
    CHECK(lora.warnings().empty());
    REQUIRE(lora.lora().size() == 6);
    for (const auto& pair : lora.lora()) {
        CHECK(pair.kind == lora_pair::layer::linear);
        if (pair.module.ends_with("mlp.c_proj")) {
            CHECK(pair.rank == 2);  // rank_pattern
            CHECK(pair.scale == 4.0);
            CHECK(pair.delta_rows() == 16);
            CHECK(pair.delta_columns() == 64);
        } else if (pair.module == "transformer.h.1.attn.c_attn") {
            CHECK(pair.scale == 1.0);  // alpha_pattern: 4 / 4
        } else {
            CHECK(pair.rank == 4);
            CHECK(pair.scale == 2.0);
        }
    }
    adapter embed(fixtures + "clip-embed");
    REQUIRE(embed.lora().size() == 2);
    CHECK(embed.lora()[0].module == "text_model.embeddings.token_embedding");
    CHECK(embed.lora()[0].kind == lora_pair::layer::embedding);
    CHECK(embed.lora()[1].delta_columns() == 3 * 4 * 4);  // Conv2d: in · kh · kw
    adapter vit(fixtures + "vit-lora");
    CHECK(vit.base_model_type() == "vit");
    CHECK(vit.full_tensors().size() == 2);  // modules_to_save: the classifier
    CHECK(vit.full_tensors()[0].name == "classifier.bias");

    adapter bitfit(fixtures + "gpt2-bitfit.safetensors");
    CHECK(bitfit.kind() == adapter::format::trained_tensors);
    CHECK(bitfit.method() == "bitfit");
    CHECK(bitfit.lora().empty());
    CHECK(bitfit.full_tensors().size() == 11);
    CHECK(method_replaces_tensors("bitfit"));
    CHECK(method_adds_modules("adapter-h"));
}

TEST_CASE("adapter: what does not fit inside it is listed by module; unreadable ones are refused") {
    CHECK(adapter(fixtures + "gpt2-wrong-rank").problems() ==
          std::vector<std::string>{"module 'transformer.h.0.attn.c_attn': wrong rank: lora_A has rank 4 but lora_B has rank 3"});
    scratch_folder folder;
    std::filesystem::copy(fixtures + "gpt2-lora", folder.file("r8"));
    std::string config = read_file(folder.file("r8/adapter_config.json"));
    config.replace(config.find("\"r\": 4"), 6, "\"r\": 8");
    write_file(folder.file("r8/adapter_config.json"), config);
    adapter r8(folder.file("r8"));
    CHECK(r8.problems().size() == 4);  // mlp.c_proj keeps rank 2 from rank_pattern
    CHECK(r8.problems()[0] == "module 'transformer.h.0.attn.c_attn': wrong rank: lora_A has rank 4 but "
                              "adapter_config.json gives r = 8 for it");

    std::filesystem::create_directory(folder.file("empty"));
    CHECK(error_of([&] { adapter a(folder.file("empty")); }).ends_with("no adapter_config.json: not a PEFT adapter folder"));
    std::filesystem::copy(fixtures + "gpt2-lora/adapter_config.json", folder.file("empty/adapter_config.json"));
    write_file(folder.file("empty/adapter_model.bin"), "pickle");
    CHECK(error_of([&] { adapter a(folder.file("empty")); }).find("pickled PyTorch weights are not read") != std::string::npos);
    CHECK(error_of([&] { adapter a(fixtures + "gpt2/model.safetensors"); })
              .find("no \"lowrank_method\" in __metadata__") != std::string::npos);
}

TEST_CASE("save_peft_adapter and save_trained_tensors write what adapter reads back") {
    scratch_folder folder;
    lora_config config = config_from(R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]})");
    std::vector<float> a(2 * 3, 0.5f), b(4 * 2, 0.25f);
    auto bytes = [](const std::vector<float>& values) {
        return std::span<const std::byte>(reinterpret_cast<const std::byte*>(values.data()), values.size() * 4);
    };
    std::vector<tensor_data> tensors{
        {{peft_key("encoder.layers.0.q_proj", "lora_A.weight"), dtype::f32, {2, 3}}, bytes(a)},
        {{peft_key("encoder.layers.0.q_proj", "lora_B.weight"), dtype::f32, {4, 2}}, bytes(b)}};
    save_peft_adapter(folder.file("adapter"), config, tensors, "clip");
    adapter saved(folder.file("adapter"));
    CHECK(saved.problems().empty());
    REQUIRE(saved.lora().size() == 1);
    CHECK(saved.lora()[0].module == "encoder.layers.0.q_proj");
    CHECK(saved.lora()[0].scale == 2.0);
    CHECK(saved.base_model_type() == "clip");
    CHECK(saved.weights().metadata().at("format") == "pt");
    save_peft_adapter(folder.file("adapter"), config, tensors, std::nullopt);  // an adapter folder is replaced
    CHECK(!adapter(folder.file("adapter")).base_model_type());
    write_file(folder.file("other/x"), "");
    std::filesystem::create_directory(folder.file("other"));
    write_file(folder.file("other/x"), "keep");
    CHECK_THROWS_WITH_AS(save_peft_adapter(folder.file("other"), config, tensors, std::nullopt),
                         doctest::Contains("exists and is not empty"), error);

    save_trained_tensors(folder.file("bitfit.safetensors"), "bitfit", {{{"h.0.ln_1.bias", dtype::f32, {3}}, bytes(a).first(12)}},
                         "gpt2");
    adapter trained(folder.file("bitfit.safetensors"));
    CHECK(trained.method() == "bitfit");
    CHECK(trained.base_model_type() == "gpt2");
    CHECK(trained.full_tensors()[0].name == "h.0.ln_1.bias");
}

// ------------------------------------------------------------------------ base models

TEST_CASE("base tensor names across wrapper prefixes; Conv1D modules; tied heads") {
    std::set<std::string> names{"h.0.attn.c_attn.weight", "vit.encoder.layer.0.attention.attention.query.weight",
                                "model.layers.0.self_attn.q_proj.weight"};
    auto exists = [&](std::string_view name) { return names.contains(std::string(name)); };
    CHECK(find_base_tensor("transformer.h.0.attn.c_attn.weight", exists) == "h.0.attn.c_attn.weight");
    CHECK(find_base_tensor("h.0.attn.c_attn.weight", exists) == "h.0.attn.c_attn.weight");
    CHECK(find_base_tensor("encoder.layer.0.attention.attention.query.weight", exists) ==
          "vit.encoder.layer.0.attention.attention.query.weight");
    CHECK(find_base_tensor("layers.0.self_attn.q_proj.weight", exists) == "model.layers.0.self_attn.q_proj.weight");
    CHECK(!find_base_tensor("h.1.attn.c_attn.weight", exists));

    base_architecture gpt2{"gpt2", true, "", ""};
    CHECK(is_conv1d_module(gpt2, "transformer.h.0.attn.c_proj"));
    CHECK(is_conv1d_module(gpt2, "h.3.mlp.c_fc"));
    CHECK(!is_conv1d_module(gpt2, "lm_head"));
    CHECK(!is_conv1d_module({"clip", true, "", ""}, "mlp.c_proj"));
    CHECK(tied_embedding_of(gpt2, "lm_head") == "transformer.wte.weight");
    CHECK(!tied_embedding_of({"gpt2", false, "", ""}, "lm_head"));
    CHECK(!tied_embedding_of(gpt2, "score"));

    base_architecture read = read_base_architecture(safetensors_checkpoint(fixtures + "gpt2/model.safetensors"));
    CHECK(read.model_type == "gpt2");
    CHECK(read.tie_word_embeddings);  // transformers' default
    CHECK(read.config_path == fixtures + "gpt2/config.json");
}

// ------------------------------------------------------------------------ plans

TEST_CASE("parse_adapter_operand: a weight after the last colon") {
    CHECK(parse_adapter_operand("adapter") == std::pair<std::string, double>{"adapter", 1.0});
    CHECK(parse_adapter_operand("adapter:0.5") == std::pair<std::string, double>{"adapter", 0.5});
    CHECK(parse_adapter_operand("a:b:-2") == std::pair<std::string, double>{"a:b", -2.0});
    CHECK(parse_adapter_operand("run:final") == std::pair<std::string, double>{"run:final", 1.0});
    CHECK_THROWS_AS(parse_adapter_operand("adapter:nan"), usage_error);
    CHECK_THROWS_AS(parse_adapter_operand(":2"), usage_error);
    CHECK_THROWS_AS(parse_adapter_operand(""), usage_error);
}

TEST_CASE("plan_merge: orientation from the architecture, terms per tensor, in file order") {
    safetensors_checkpoint base(fixtures + "gpt2/model.safetensors");
    auto adapters = adapters_of({{"gpt2-lora", 0.5}, {"gpt2-rslora", -1.5}});
    merge_plan plan = plan_merge(base, adapters, {});
    CHECK(plan.warnings.empty());
    REQUIRE(plan.changes.size() == 8);
    for (std::size_t i = 1; i < plan.changes.size(); ++i) CHECK(plan.changes[i - 1].start->begin < plan.changes[i].start->begin);
    for (const auto& change : plan.changes) {
        for (const auto& term : change.terms) {
            CHECK(term.transposed);  // GPT-2's Conv1D
            double weight = term.source == 0 ? 0.5 : -1.5;
            CHECK(term.factor == doctest::Approx(weight * term.pair->scale));
        }
        if (change.name == "h.0.attn.c_proj.weight") CHECK(change.terms.size() == 2);  // both adapters
    }
    merge_plan unmerge = plan_merge(base, adapters_of({{"gpt2-lora", 1}}), {true, false});
    CHECK(unmerge.changes[0].terms[0].factor < 0);
}

TEST_CASE("plan_merge: every mismatch reported by name in one error") {
    safetensors_checkpoint gpt2(fixtures + "gpt2/model.safetensors");
    std::string message = error_of([&] {
        plan_merge(gpt2, adapters_of({{"gpt2-wrong-rank", 1}, {"gpt2-missing", 1}, {"gpt2-wrong-shape", 1}}), {});
    });
    CHECK(message.starts_with("3 problems: tests/data/peft/gpt2-wrong-rank: module 'transformer.h.0.attn.c_attn': "
                              "wrong rank: lora_A has rank 4 but lora_B has rank 3; "));
    CHECK(message.find("tests/data/peft/gpt2-missing: module 'transformer.h.7.attn.c_attn': the base "
                       "tests/data/peft/gpt2/model.safetensors has no tensor for it") !=
          std::string::npos);
    CHECK(message.find("tests/data/peft/gpt2-wrong-shape: module 'transformer.h.0.attn.c_attn': B A is [48, 20] (added "
                       "transposed), base tensor 'h.0.attn.c_attn.weight' in tests/data/peft/gpt2/model.safetensors is [16, 48]") != std::string::npos);

    std::string architecture = error_of([&] { plan_merge(gpt2, adapters_of({{"vit-lora", 1}}), {}); });
    CHECK(architecture.starts_with("2 problems: tests/data/peft/vit-lora: made for a vit model, but the base is a gpt2 model"));
    CHECK(architecture.find("none of its 6 modules and tensors is in the base") != std::string::npos);

    std::string refused = error_of([&] {
        plan_merge(gpt2, adapters_of({{"gpt2-adapter-h.safetensors", 1}, {"gpt2-bitfit.safetensors", 1}}), {true, false});
    });
    CHECK(refused.find("method 'adapter-h' adds modules to the model") != std::string::npos);
    CHECK(refused.find("replaces a base tensor, which --unmerge cannot undo") != std::string::npos);
}

TEST_CASE("plan_merge: an LM head tied to the embedding gets a tensor of its own") {
    safetensors_checkpoint base(fixtures + "gpt2/model.safetensors");
    auto adapters = adapters_of({{"gpt2-head", 1}});
    merge_plan plan = plan_merge(base, adapters, {});
    CHECK(plan.untied_embedding == "wte.weight");
    REQUIRE(plan.changes.size() == 2);
    CHECK(plan.changes.back().name == "lm_head.weight");
    CHECK(plan.changes.back().added);
    CHECK(plan.changes.back().start->name == "wte.weight");
    CHECK(!plan.changes.back().terms[0].transposed);  // lm_head is a Linear layer
    REQUIRE(plan.warnings.size() == 3);
    CHECK(plan.warnings[0].find("fan_in_fan_out is true but the base (gpt2) stores lm_head as Linear") != std::string::npos);
}

// ------------------------------------------------------------------------ merging

TEST_CASE("tensor_merger: W0 + factor · B A, and its transpose, as a plain loop computes them") {
    safetensors_checkpoint base(fixtures + "gpt2/model.safetensors");
    auto adapters = adapters_of({{"gpt2-lora", 0.75}});
    merge_plan plan = plan_merge(base, adapters, {});
    tensor_merger merger(base, adapters);
    for (const auto& change : plan.changes) {
        merger.compute(change);
        std::vector<std::byte> encoded(change.start->end - change.start->begin);
        merger.encode(change.start->type, encoded);
        std::vector<float> decoded(change.start->element_count());
        convert_to_float(change.start->type, encoded.data(), decoded.size(), decoded.data());
        for (std::size_t i = 0; i < decoded.size(); ++i)
            REQUIRE(decoded[i] == merger.base_values()[i] + merger.delta()[i]);  // F32: W0 + ΔW as it is
        const merge_term& term = change.terms[0];
        std::vector<float> a = adapters[0].source.to_float(*term.pair->a), b = adapters[0].source.to_float(*term.pair->b);
        std::size_t rows = term.pair->delta_rows(), columns = term.pair->delta_columns(), rank = term.pair->rank;
        std::vector<float> w0 = base.files()[0].to_float(*change.start);
        double worst = 0;
        for (std::size_t row = 0; row < rows; ++row)
            for (std::size_t column = 0; column < columns; ++column) {
                double sum = 0;
                for (std::size_t k = 0; k < rank; ++k) sum += double(b[row * rank + k]) * a[k * columns + column];
                std::size_t at = column * rows + row;  // Conv1D: (B A)ᵀ
                float merged = merger.base_values()[at] + merger.delta()[at];
                worst = std::max(worst, std::fabs(merged - (w0[at] + term.factor * sum)));
                CHECK(merger.base_values()[at] == w0[at]);
            }
        CHECK_MESSAGE(worst < 1e-6, change.name);
    }
}

// The LoRA tensors of the ViT fixture alone (its classifier replacement cannot be unmerged).
std::string vit_lora_only(const scratch_folder& folder) {
    adapter vit(fixtures + "vit-lora");
    std::vector<tensor_data> tensors;
    for (const auto& tensor : vit.weights().tensors())
        if (tensor.name.find(".lora_") != std::string::npos)
            tensors.push_back({{tensor.name, tensor.type, tensor.shape}, vit.weights().bytes(tensor)});
    save_peft_adapter(folder.file("vit-lora-only"), vit.config(), tensors, "vit");
    return folder.file("vit-lora-only");
}

TEST_CASE("merge then unmerge gives the base back within the dtype's rounding: F32, F16, BF16 sharded") {
    scratch_folder folder;
    struct round_trip {
        std::string base;
        std::vector<std::pair<std::string, double>> adapters;
    };
    for (const auto& trip : {round_trip{"gpt2/model.safetensors", {{fixtures + "gpt2-lora", 1}, {fixtures + "gpt2-rslora", 0.5}}},
                             round_trip{"vit.safetensors", {{vit_lora_only(folder), 1}}},
                             round_trip{"clip-sharded", {{fixtures + "clip-lora", 1}, {fixtures + "clip-embed", -2}}}}) {
        safetensors_checkpoint base(fixtures + trip.base);
        std::vector<weighted_adapter> adapters;
        for (const auto& [path, weight] : trip.adapters) adapters.push_back({adapter(path), weight});
        std::string merged_path = folder.file("merged-" + std::filesystem::path(trip.base).filename().string());
        std::string back_path = folder.file("back-" + std::filesystem::path(trip.base).filename().string());
        merge_plan plan = plan_merge(base, adapters, {});
        auto checked = write_merged(base, adapters, plan, {merged_path, true, true});
        REQUIRE(checked);
        CHECK(checked->changed == plan.changes.size());

        safetensors_checkpoint merged(merged_path);
        write_merged(merged, adapters, plan_merge(merged, adapters, {true, false}), {back_path, false, true});
        safetensors_checkpoint back(back_path);
        for (const auto& change : plan.changes) {
            const tensor_info& original = *change.start;
            std::vector<float> w0 = base.files()[change.file].to_float(original);
            std::vector<float> w1 = merged.files()[change.file].to_float(*merged.find(change.name)->tensor);
            std::vector<float> w2 = back.files()[change.file].to_float(*back.find(change.name)->tensor);
            double slack = original.type == dtype::f32 ? 1e-6 : 0;  // float32 products for F32 tensors
            bool changed = false;
            for (std::size_t i = 0; i < w0.size(); ++i) {
                changed = changed || w1[i] != w0[i];
                // Two roundings: half a unit at the merged value, half a unit where it came back.
                double back_magnitude = std::max(std::fabs(w0[i]), std::fabs(w2[i]));
                double allowed = 0.5 * spacing(original.type, w1[i]) + 0.5 * spacing(original.type, back_magnitude) + slack;
                if (std::fabs(w2[i] - w0[i]) > allowed) {
                    FAIL_CHECK(fmt::format("{}[{}]: {} came back as {} (merged: {})", change.name, i, w0[i], w2[i], w1[i]));
                    break;
                }
            }
            CHECK_MESSAGE(changed, change.name);  // the merge did change it
        }
    }
}

TEST_CASE("write_merged is deterministic and keeps unchanged tensors byte for byte") {
    scratch_folder folder;
    safetensors_checkpoint base(fixtures + "clip-sharded", page_loading::lazy);
    auto adapters = adapters_of({{"clip-lora", 1}});
    merge_plan plan = plan_merge(base, adapters, {});
    write_merged(base, adapters, plan, {folder.file("one"), false, true});
    write_merged(base, adapters, plan, {folder.file("two"), false, true});
    for (const auto& name : base.file_names())
        CHECK(read_file(folder.file("one/" + name)) == read_file(folder.file("two/" + name)));
    CHECK(read_file(folder.file("one/model.safetensors.index.json")) ==
          read_file(fixtures + "clip-sharded/model.safetensors.index.json"));
    CHECK(!std::filesystem::exists(folder.file("one/pytorch_model.bin")));
    CHECK(read_file(folder.file("one/tokenizer_config.json")) == read_file(fixtures + "clip-sharded/tokenizer_config.json"));
    // The header of every shard is the base's own, byte for byte (no tensor added).
    for (std::size_t file = 0; file < base.files().size(); ++file) {
        std::string written = read_file(folder.file("one/" + base.file_names()[file]));
        std::string original = read_file(base.files()[file].path());
        CHECK(written.substr(0, base.files()[file].data_offset()) == original.substr(0, base.files()[file].data_offset()));
        CHECK(written.size() == original.size());
    }
}
