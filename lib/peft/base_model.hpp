// What an adapter needs to know of its base model: the architecture (config model_type),
// whether the LM head is tied to the token embedding, which modules store their weight
// [in, out] (GPT-2's Conv1D), and which tensor holds a module's weight when the base's
// names and the adapter's differ by a wrapper prefix.
#pragma once

#include "formats/sharded.hpp"
#include "peft/adapter.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace lowrank {

struct base_architecture {
    std::optional<std::string> model_type;  // "gpt2", "vit", "clip"...; none without a config
    bool tie_word_embeddings = false;       // the LM head is the token embedding (GPT-2's default)
    std::string config_path;                // where the config came from, for messages
    std::string config_text;                // the config as read ("" when there is none)
};

// The base's config: __metadata__ "config" or config.json beside it (see
// safetensors_checkpoint::config_text). A config that is not a JSON object is an error.
base_architecture read_base_architecture(const safetensors_checkpoint& base);

// Whether `module` is a Conv1D layer, whose weight is [in, out]: c_attn, c_proj, c_fc (and
// the cross-attention q_attn) of a GPT-2 model. Other architectures use Linear [out, in].
bool is_conv1d_module(const base_architecture& architecture, std::string_view module);

// Whether a LoRA pair's B A lands on its module's weight transposed, as (B A)ᵀ: Conv1D
// weights are [in, out] and embeddings [num, dim]; Linear and Conv2d take B A as it is. The
// architecture decides where it is known, as in PEFT (which overrides fan_in_fan_out from
// the layer's type, with a warning); otherwise the adapter's fan_in_fan_out does.
bool lora_delta_transposed(const base_architecture& architecture, const lora_pair& pair, bool fan_in_fan_out);

// The base tensor that holds `name` ("transformer.h.0.attn.c_attn.weight"), where names may
// differ by the wrapper prefix of a task model: GPT-2 files from the hub have "h.0..." where
// GPT2LMHeadModel says "transformer.h.0...", ViTModel "encoder..." where
// ViTForImageClassification says "vit.encoder..." (CLIP has no wrapper). Tries the name as
// it is, then without its wrapper prefix, then with each one; `exists` says whether the base
// has a tensor.
std::optional<std::string> find_base_tensor(std::string_view name, const std::function<bool(std::string_view)>& exists);

// For a model whose LM head is tied to its token embedding: the module name of the head
// ("lm_head") and the embedding tensor it shares ("transformer.wte.weight" for GPT-2).
// nullopt when the architecture has no tied head.
std::optional<std::string> tied_embedding_of(const base_architecture& architecture, std::string_view module);

// The config text with tie_word_embeddings set to false, for a model whose LM head gets a
// tensor of its own. Written as transformers writes config.json (sorted keys, indent 2).
std::string untied_config_text(const base_architecture& architecture);

}  // namespace lowrank
