#include "peft/base_model.hpp"

#include "core/error.hpp"
#include "formats/json.hpp"

#include <fmt/format.h>

namespace lowrank {
namespace {

// Task models wrap the bare model under one of these attribute names.
constexpr std::string_view wrapper_prefixes[] = {"transformer.", "vit.", "model."};

std::string_view last_component(std::string_view module) {
    std::size_t dot = module.rfind('.');
    return dot == std::string_view::npos ? module : module.substr(dot + 1);
}

}  // namespace

base_architecture read_base_architecture(const safetensors_checkpoint& base) {
    base_architecture architecture;
    if (!base.config_text()) return architecture;
    architecture.config_path = base.config_path();
    architecture.config_text = *base.config_text();
    ordered_json config = parse_json_strict(architecture.config_text, architecture.config_path, "model config");
    if (!config.is_object()) throw error_in(architecture.config_path, "model config is not a JSON object");
    if (config.contains("model_type")) {
        if (!config["model_type"].is_string()) throw error_in(architecture.config_path, "'model_type' is not a string");
        architecture.model_type = config["model_type"].get<std::string>();
    }
    // transformers' PretrainedConfig ties the head unless the config says otherwise.
    architecture.tie_word_embeddings = true;
    if (config.contains("tie_word_embeddings")) {
        if (!config["tie_word_embeddings"].is_boolean())
            throw error_in(architecture.config_path, "'tie_word_embeddings' is not true or false");
        architecture.tie_word_embeddings = config["tie_word_embeddings"].get<bool>();
    }
    return architecture;
}

bool is_conv1d_module(const base_architecture& architecture, std::string_view module) {
    if (architecture.model_type != "gpt2") return false;
    std::string_view name = last_component(module);
    return name == "c_attn" || name == "c_proj" || name == "c_fc" || name == "q_attn";
}

bool lora_delta_transposed(const base_architecture& architecture, const lora_pair& pair, bool fan_in_fan_out) {
    if (pair.kind == lora_pair::layer::embedding) return true;
    if (pair.a->shape.size() == 4) return false;  // Conv2d
    if (!architecture.model_type) return fan_in_fan_out;
    return is_conv1d_module(architecture, pair.module);
}

std::optional<std::string> find_base_tensor(std::string_view name, const std::function<bool(std::string_view)>& exists) {
    if (exists(name)) return std::string(name);
    for (std::string_view prefix : wrapper_prefixes)
        if (name.starts_with(prefix) && exists(name.substr(prefix.size()))) return std::string(name.substr(prefix.size()));
    for (std::string_view prefix : wrapper_prefixes) {
        std::string prefixed = std::string(prefix) + std::string(name);
        if (exists(prefixed)) return prefixed;
    }
    return std::nullopt;
}

std::optional<std::string> tied_embedding_of(const base_architecture& architecture, std::string_view module) {
    if (!architecture.tie_word_embeddings || architecture.model_type != "gpt2" || module != "lm_head")
        return std::nullopt;
    return "transformer.wte.weight";
}

std::string untied_config_text(const base_architecture& architecture) {
    nlohmann::json config = nlohmann::json::parse(architecture.config_text);
    config["tie_word_embeddings"] = false;
    return python_style_json(config) + "\n";
}

}  // namespace lowrank
