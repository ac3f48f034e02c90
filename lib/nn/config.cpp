#include "nn/config.hpp"

#include "core/error.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>

namespace lowrank {

using json = nlohmann::json;

std::optional<architecture> architecture_from_name(std::string_view name) {
    if (name == "gpt2") return architecture::gpt2;
    if (name == "vit") return architecture::vit;
    if (name == "clip") return architecture::clip;
    return std::nullopt;
}

std::string_view architecture_name(architecture arch) {
    switch (arch) {
    case architecture::gpt2: return "gpt2";
    case architecture::vit: return "vit";
    case architecture::clip: return "clip";
    }
    return "?";
}

namespace {

// The fields each configuration object is read with, and their Hugging Face defaults.
const json& gpt2_defaults() {
    static const json defaults = {
        {"vocab_size", 50257}, {"n_positions", 1024}, {"n_embd", 768}, {"n_layer", 12}, {"n_head", 12},
        {"n_inner", nullptr}, {"activation_function", "gelu_new"}, {"layer_norm_epsilon", 1e-5},
        {"initializer_range", 0.02}, {"bos_token_id", 50256}, {"eos_token_id", 50256}, {"pad_token_id", nullptr},
        {"scale_attn_weights", true}, {"scale_attn_by_inverse_layer_idx", false}, {"reorder_and_upcast_attn", false},
        {"add_cross_attention", false}, {"tie_word_embeddings", true}};
    return defaults;
}

const json& text_defaults() {
    static const json defaults = {
        {"vocab_size", 49408}, {"hidden_size", 512}, {"intermediate_size", 2048}, {"num_hidden_layers", 12},
        {"num_attention_heads", 8}, {"max_position_embeddings", 77}, {"hidden_act", "quick_gelu"},
        {"layer_norm_eps", 1e-5}, {"initializer_range", 0.02}, {"initializer_factor", 1.0}, {"pad_token_id", 1},
        {"bos_token_id", 49406}, {"eos_token_id", 49407}, {"projection_dim", 512}};
    return defaults;
}

const json& vision_defaults() {
    static const json defaults = {
        {"hidden_size", 768}, {"intermediate_size", 3072}, {"num_hidden_layers", 12}, {"num_attention_heads", 12},
        {"num_channels", 3}, {"image_size", 224}, {"patch_size", 32}, {"hidden_act", "quick_gelu"},
        {"layer_norm_eps", 1e-5}, {"initializer_range", 0.02}, {"initializer_factor", 1.0}, {"projection_dim", 512}};
    return defaults;
}

const json& clip_defaults() {
    static const json defaults = {{"projection_dim", 512}, {"logit_scale_init_value", 2.6592}, {"initializer_factor", 1.0}};
    return defaults;
}

// Fields every config may carry and that are read (or written) here besides the above.
const std::set<std::string>& common_fields() {
    static const std::set<std::string> fields = {"model_type", "architectures", "id2label", "label2id", "num_labels",
                                                 "problem_type"};
    return fields;
}

// Reads fields of one JSON object, falling back to defaults, with messages naming the field.
class field_reader {
public:
    field_reader(const json& object, const json& defaults, std::string source, std::string prefix)
        : object_(object), defaults_(defaults), source_(std::move(source)), prefix_(std::move(prefix)) {}

    const json& get(const std::string& key) const {
        if (object_.is_object() && object_.contains(key)) return object_[key];
        return defaults_.at(key);
    }
    error fail(const std::string& key, std::string_view what) const {
        return error(fmt::format("{}: config field '{}{}' {}", source_, prefix_, key, what));
    }
    std::size_t size(const std::string& key) const {
        const json& value = get(key);
        if (!value.is_number_integer() || value.get<std::int64_t>() <= 0)
            throw fail(key, fmt::format("must be a positive integer, not {}", value.dump()));
        return value.get<std::size_t>();
    }
    float positive_number(const std::string& key) const {
        const json& value = get(key);
        if (!value.is_number() || value.get<double>() <= 0)
            throw fail(key, fmt::format("must be a positive number, not {}", value.dump()));
        return value.get<float>();
    }
    float number(const std::string& key) const {
        const json& value = get(key);
        if (!value.is_number()) throw fail(key, fmt::format("must be a number, not {}", value.dump()));
        return value.get<float>();
    }
    std::optional<std::int32_t> token(const std::string& key) const {
        const json& value = get(key);
        if (value.is_null()) return std::nullopt;
        if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() > INT32_MAX)
            throw fail(key, fmt::format("must be a token id or null, not {}", value.dump()));
        return value.get<std::int32_t>();
    }
    activation act(const std::string& key) const {
        const json& value = get(key);
        auto kind = value.is_string() ? activation_from_name(value.get<std::string>()) : std::nullopt;
        if (!kind) throw fail(key, fmt::format("names an unsupported activation {} (supported: gelu, gelu_new, "
                                               "gelu_pytorch_tanh, quick_gelu)", value.dump()));
        return *kind;
    }
    bool flag(const std::string& key) const {
        const json& value = get(key);
        if (!value.is_boolean()) throw fail(key, fmt::format("must be true or false, not {}", value.dump()));
        return value.get<bool>();
    }

private:
    const json& object_;
    const json& defaults_;
    std::string source_, prefix_;
};

void check_heads(const field_reader& read, const transformer_config& config, const std::string& width_key,
                 const std::string& heads_key) {
    if (config.width % config.heads != 0)
        throw read.fail(heads_key, fmt::format("({}) must divide {} ({})", config.heads, width_key, config.width));
}

transformer_config clip_tower_transformer(const field_reader& read) {
    transformer_config config;
    config.width = read.size("hidden_size");
    config.layers = read.size("num_hidden_layers");
    config.heads = read.size("num_attention_heads");
    config.inner = read.size("intermediate_size");
    config.act = read.act("hidden_act");
    config.epsilon = read.positive_number("layer_norm_eps");
    check_heads(read, config, "hidden_size", "num_attention_heads");
    return config;
}

vision_tower_config read_vision(const field_reader& read) {
    vision_tower_config vision;
    vision.transformer = clip_tower_transformer(read);
    vision.image_size = read.size("image_size");
    vision.patch_size = read.size("patch_size");
    vision.channels = read.size("num_channels");
    if (vision.image_size % vision.patch_size != 0)
        throw read.fail("patch_size", fmt::format("({}) must divide image_size ({})", vision.patch_size,
                                                  vision.image_size));
    return vision;
}

// id2label in id order; Hugging Face's default is two labels.
std::vector<std::string> read_labels(const json& object, std::string_view source) {
    if (!object.contains("id2label")) return {"LABEL_0", "LABEL_1"};
    const json& map = object["id2label"];
    if (!map.is_object() || map.empty())
        throw error(fmt::format("{}: config field 'id2label' must be a non-empty object", source));
    std::vector<std::string> labels(map.size());
    for (const auto& [key, value] : map.items()) {
        auto id = parse_integer(key);
        if (!id || *id < 0 || static_cast<std::size_t>(*id) >= labels.size() || !value.is_string() ||
            !labels[static_cast<std::size_t>(*id)].empty())
            throw error(fmt::format("{}: config field 'id2label' must map the ids 0..{} to strings", source,
                                    labels.size() - 1));
        labels[static_cast<std::size_t>(*id)] = value.get<std::string>();
    }
    return labels;
}

bool names_architecture(const json& object, std::string_view name) {
    if (!object.contains("architectures") || !object["architectures"].is_array()) return false;
    for (const json& entry : object["architectures"])
        if (entry.is_string() && entry.get<std::string>() == name) return true;
    return false;
}

void parse_gpt2(const json& object, std::string_view source, model_config& config) {
    field_reader read(object, gpt2_defaults(), std::string(source), "");
    text_tower_config& text = config.text;
    text.vocab_size = read.size("vocab_size");
    text.max_positions = read.size("n_positions");
    transformer_config& t = text.transformer;
    t.width = read.size("n_embd");
    t.layers = read.size("n_layer");
    t.heads = read.size("n_head");
    t.inner = read.get("n_inner").is_null() ? 4 * t.width : read.size("n_inner");
    t.act = read.act("activation_function");
    t.epsilon = read.positive_number("layer_norm_epsilon");
    check_heads(read, t, "n_embd", "n_head");
    text.eos_token_id = read.token("eos_token_id");
    text.pad_token_id = read.token("pad_token_id");
    config.initializer_range = read.positive_number("initializer_range");
    if (!read.flag("scale_attn_weights")) throw read.fail("scale_attn_weights", "false is not supported");
    if (read.flag("scale_attn_by_inverse_layer_idx"))
        throw read.fail("scale_attn_by_inverse_layer_idx", "true is not supported");
    if (read.flag("add_cross_attention")) throw read.fail("add_cross_attention", "true is not supported");
    if (!read.flag("tie_word_embeddings")) throw read.fail("tie_word_embeddings", "false is not supported");
    if (names_architecture(object, "GPT2ForSequenceClassification")) {
        config.labels = read_labels(object, source);
        bool regression = config.labels.size() == 1 ||
                          (object.contains("problem_type") && object["problem_type"] == "regression");
        if (regression && config.labels.size() != 1)
            throw read.fail("problem_type", "is regression, but id2label has more than one label");
        config.head = regression ? head_kind::regression : head_kind::classification;
    }
}

}  // namespace

model_config parse_model_config(const json& object, std::string_view source) {
    if (!object.is_object()) throw error(fmt::format("{}: the config is not a JSON object", source));
    if (!object.contains("model_type") || !object["model_type"].is_string())
        throw error(fmt::format("{}: the config has no \"model_type\"", source));
    std::string type = object["model_type"].get<std::string>();
    model_config config;
    config.json = object;
    if (type == "gpt2") {
        config.arch = architecture::gpt2;
        parse_gpt2(object, source, config);
    } else if (type == "clip_vision_model") {
        config.arch = architecture::vit;
        field_reader read(object, vision_defaults(), std::string(source), "");
        config.vision = read_vision(read);
        config.initializer_range = read.positive_number("initializer_range");
        config.initializer_factor = read.positive_number("initializer_factor");
        config.head = head_kind::classification;
        config.labels = read_labels(object, source);
    } else if (type == "clip") {
        config.arch = architecture::clip;
        field_reader read(object, clip_defaults(), std::string(source), "");
        // Old hub configs carry *_config_dict objects, which override *_config (as in transformers).
        auto tower = [&](const char* name) -> const json& {
            std::string legacy = std::string(name) + "_dict";
            if (object.contains(legacy) && object[legacy].is_object()) return object[legacy];
            static const json empty = json::object();
            return object.contains(name) ? object[name] : empty;
        };
        field_reader text_read(tower("text_config"), text_defaults(), std::string(source), "text_config.");
        field_reader vision_read(tower("vision_config"), vision_defaults(), std::string(source), "vision_config.");
        config.text.transformer = clip_tower_transformer(text_read);
        config.text.vocab_size = text_read.size("vocab_size");
        config.text.max_positions = text_read.size("max_position_embeddings");
        config.text.eos_token_id = text_read.token("eos_token_id");
        config.text.pad_token_id = text_read.token("pad_token_id");
        config.vision = read_vision(vision_read);
        config.projection_dim = read.size("projection_dim");
        config.logit_scale_init = read.number("logit_scale_init_value");
        config.initializer_factor = read.positive_number("initializer_factor");
        config.initializer_range = text_read.positive_number("initializer_range");
    } else {
        throw error(fmt::format("{}: model_type '{}' is not supported (supported: gpt2, clip, clip_vision_model)",
                                source, type));
    }
    return config;
}

namespace {

json gpt2_preset(int vocab, int positions, int width, int layers, int heads) {
    return {{"model_type", "gpt2"}, {"architectures", {"GPT2LMHeadModel"}}, {"vocab_size", vocab},
            {"n_positions", positions}, {"n_embd", width}, {"n_layer", layers},
            {"n_head", heads}, {"n_inner", nullptr}, {"activation_function", "gelu_new"},
            {"layer_norm_epsilon", 1e-5}, {"initializer_range", 0.02}, {"bos_token_id", vocab - 1},
            {"eos_token_id", vocab - 1}, {"scale_attn_weights", true}, {"tie_word_embeddings", true}};
}

json vision_preset(int image, int patch, int channels, int width, int layers, int heads, int inner) {
    return {{"image_size", image}, {"patch_size", patch}, {"num_channels", channels}, {"hidden_size", width},
            {"num_hidden_layers", layers}, {"num_attention_heads", heads}, {"intermediate_size", inner},
            {"hidden_act", "quick_gelu"}, {"layer_norm_eps", 1e-5}, {"initializer_range", 0.02},
            {"initializer_factor", 1.0}};
}

json text_preset(int vocab, int positions, int width, int layers, int heads, int inner) {
    return {{"vocab_size", vocab}, {"max_position_embeddings", positions}, {"hidden_size", width},
            {"num_hidden_layers", layers}, {"num_attention_heads", heads}, {"intermediate_size", inner},
            {"hidden_act", "quick_gelu"}, {"layer_norm_eps", 1e-5}, {"initializer_range", 0.02},
            {"initializer_factor", 1.0}, {"bos_token_id", vocab - 2}, {"eos_token_id", vocab - 1},
            {"pad_token_id", vocab - 1}};
}

json with_labels(json config, int count) {
    json id2label = json::object(), label2id = json::object();
    for (int i = 0; i < count; ++i) {
        id2label[std::to_string(i)] = fmt::format("LABEL_{}", i);
        label2id[fmt::format("LABEL_{}", i)] = i;
    }
    config["id2label"] = id2label;
    config["label2id"] = label2id;
    return config;
}

json vit_preset(json vision) {
    vision["model_type"] = "clip_vision_model";
    return with_labels(vision, 10);
}

json clip_preset(json text, json vision, int projection) {
    return {{"model_type", "clip"}, {"architectures", {"CLIPModel"}}, {"text_config", text},
            {"vision_config", vision}, {"projection_dim", projection}, {"logit_scale_init_value", 2.6592},
            {"initializer_factor", 1.0}};
}

}  // namespace

std::optional<json> preset_config(architecture arch, std::string_view preset) {
    switch (arch) {
    case architecture::gpt2:
        if (preset == "tiny") return gpt2_preset(1024, 128, 64, 2, 2);
        if (preset == "small") return gpt2_preset(8192, 128, 256, 4, 4);
        if (preset == "gpt2") return gpt2_preset(50257, 1024, 768, 12, 12);
        if (preset == "gpt2-medium") return gpt2_preset(50257, 1024, 1024, 24, 16);
        break;
    case architecture::vit:
        if (preset == "tiny") return vit_preset(vision_preset(32, 8, 3, 64, 2, 2, 256));
        if (preset == "small") return vit_preset(vision_preset(32, 4, 3, 256, 4, 4, 1024));
        if (preset == "clip-vit-b-32") return vit_preset(vision_preset(224, 32, 3, 768, 12, 12, 3072));
        break;
    case architecture::clip:
        if (preset == "tiny")
            return clip_preset(text_preset(1024, 32, 64, 2, 2, 256), vision_preset(32, 8, 3, 64, 2, 2, 256), 32);
        if (preset == "small")
            return clip_preset(text_preset(8192, 77, 256, 4, 4, 1024), vision_preset(32, 4, 3, 256, 4, 4, 1024), 256);
        if (preset == "clip-vit-b-32") {
            json text = text_preset(49408, 77, 512, 12, 8, 2048);
            text["bos_token_id"] = 49406, text["eos_token_id"] = 49407, text["pad_token_id"] = 1;
            return clip_preset(text, vision_preset(224, 32, 3, 768, 12, 12, 3072), 512);
        }
        break;
    }
    return std::nullopt;
}

std::vector<std::string> preset_names(architecture arch) {
    switch (arch) {
    case architecture::gpt2: return {"tiny", "small", "gpt2", "gpt2-medium"};
    case architecture::vit:
    case architecture::clip: return {"tiny", "small", "clip-vit-b-32"};
    }
    return {};
}

void set_config_field(json& config, architecture arch, std::string_view assignment) {
    auto equals = assignment.find('=');
    if (equals == std::string_view::npos || equals == 0)
        throw usage_error(fmt::format("--set '{}': expected KEY=VALUE", assignment));
    std::string key(trim(assignment.substr(0, equals)));
    std::string text(assignment.substr(equals + 1));
    json value = json::parse(text, nullptr, false);
    if (value.is_discarded()) value = text;  // not JSON: a string

    json* target = &config;
    std::string field = key;
    const json* defaults = nullptr;
    auto dot = key.find('.');
    if (arch == architecture::clip && dot != std::string::npos) {
        std::string tower = key.substr(0, dot);
        field = key.substr(dot + 1);
        if (tower != "text_config" && tower != "vision_config")
            throw usage_error(fmt::format("--set {}: unknown config object '{}' (clip has text_config and "
                                          "vision_config)", key, tower));
        target = &config[tower];
        defaults = tower == "text_config" ? &text_defaults() : &vision_defaults();
    } else {
        defaults = arch == architecture::gpt2 ? &gpt2_defaults()
                   : arch == architecture::vit ? &vision_defaults()
                                               : &clip_defaults();
    }
    bool known = defaults->contains(field) || (target == &config && common_fields().contains(field));
    if (!known) {
        std::vector<std::string> names;
        for (const auto& [name, unused] : defaults->items()) names.push_back(name);
        throw usage_error(fmt::format("--set {}: {} has no config field '{}' (fields: {})", key,
                                      architecture_name(arch), field, join(names, ", ")));
    }
    if (field == "num_labels") {
        if (!value.is_number_integer() || value.get<std::int64_t>() < 1)
            throw usage_error(fmt::format("--set {}: expected a positive integer", key));
        json labelled = with_labels(*target, value.get<int>());
        *target = labelled;
        return;
    }
    (*target)[field] = value;
}

}  // namespace lowrank
