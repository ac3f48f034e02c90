// Model configurations, read from and written as Hugging Face config.json objects (their
// field names and defaults), for the three architectures:
//   gpt2  GPT2Config (model_type "gpt2"): GPT2LMHeadModel, or GPT2ForSequenceClassification
//         when `architectures` names it (classification, or regression with one label)
//   vit   CLIPVisionConfig (model_type "clip_vision_model") with `id2label`: the CLIP vision
//         tower and a linear classifier on its pooled output
//   clip  CLIPConfig (model_type "clip"): text_config, vision_config, projection_dim
// Fields a config.json leaves out take Hugging Face's defaults (save_pretrained writes only
// the fields that differ from them).
#pragma once

#include "nn/layers.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

enum class architecture { gpt2, vit, clip };

std::optional<architecture> architecture_from_name(std::string_view name);  // "gpt2", "vit", "clip"
std::string_view architecture_name(architecture arch);

// A stack of transformer blocks.
struct transformer_config {
    std::size_t width = 0, layers = 0, heads = 0, inner = 0;  // inner: the MLP's hidden width
    activation act = activation::gelu_tanh;
    float epsilon = 1e-5f;  // LayerNorm's ε

    std::size_t head_dim() const { return width / heads; }
};

// GPT-2, or the CLIP text tower.
struct text_tower_config {
    std::size_t vocab_size = 0, max_positions = 0;
    transformer_config transformer;
    std::optional<std::int32_t> eos_token_id, pad_token_id;
};

// The CLIP vision tower.
struct vision_tower_config {
    std::size_t image_size = 0, patch_size = 0, channels = 0;
    transformer_config transformer;

    std::size_t patches() const { return (image_size / patch_size) * (image_size / patch_size); }
    std::size_t patch_features() const { return channels * patch_size * patch_size; }  // C·P·P
};

enum class head_kind { language_model, classification, regression };

struct model_config {
    architecture arch = architecture::gpt2;
    text_tower_config text;      // gpt2, clip
    vision_tower_config vision;  // vit, clip
    head_kind head = head_kind::language_model;  // gpt2; vit: classification
    std::vector<std::string> labels;             // id2label, in id order (classification heads)
    std::size_t projection_dim = 0;              // clip
    float logit_scale_init = 2.6592f;            // clip: ln(1/0.07)
    float initializer_range = 0.02f, initializer_factor = 1.0f;
    nlohmann::json json;  // the Hugging Face config as read, written back as it is

    std::size_t label_count() const { return head == head_kind::regression ? 1 : labels.size(); }
};

// Checks and reads a Hugging Face config. `source` names it in messages ("model.safetensors
// metadata", "config.json"); errors name the field.
model_config parse_model_config(const nlohmann::json& json, std::string_view source);

// The config of a preset: "tiny", "small", or real shapes: "gpt2", "gpt2-medium" (gpt2),
// "clip-vit-b-32" (clip and vit). Nothing for a name the architecture lacks.
std::optional<nlohmann::json> preset_config(architecture arch, std::string_view preset);
std::vector<std::string> preset_names(architecture arch);

// Sets a field from `key=value` text (model-init --set): the value is read as JSON (a
// number, true/false, null, an array...) or else taken as a string; "text_config.hidden_size"
// reaches into a nested object. `num_labels=N` writes id2label/label2id as transformers
// does. Refuses fields the architecture does not read, naming those it does.
void set_config_field(nlohmann::json& json, architecture arch, std::string_view assignment);

}  // namespace lowrank
