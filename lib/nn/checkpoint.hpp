// Model files: reading a checkpoint (one safetensors file, or a sharded Hugging Face
// checkpoint: model.safetensors.index.json and its shards) and its config, filling a
// model's parameters from it, and writing parameters as safetensors.
//
// The config is the "config" entry of the safetensors __metadata__ (what model-init and
// lora-train write), or else config.json beside the file (Hugging Face's layout).
#pragma once

#include "core/output.hpp"
#include "formats/safetensors.hpp"
#include "nn/config.hpp"
#include "nn/parameters.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lowrank {

class checkpoint {
public:
    // path: a .safetensors file, a model.safetensors.index.json, or a folder holding
    // model.safetensors or model.safetensors.index.json.
    explicit checkpoint(const std::string& path);

    // The path as given, for messages.
    const std::string& path() const { return path_; }
    // The config, or an error naming where it was looked for.
    model_config config() const;

    struct located {
        const safetensors_file* file = nullptr;
        const tensor_info* tensor = nullptr;
    };
    std::optional<located> find(const std::string& name) const;
    std::vector<std::string> tensor_names() const;
    // The file holding a tensor, to keep alive while parameters alias its mapping.
    std::shared_ptr<const safetensors_file> owner(const safetensors_file* file) const;

private:
    std::string path_, config_source_;
    std::optional<nlohmann::json> config_json_;
    std::vector<std::shared_ptr<const safetensors_file>> files_;
    std::map<std::string, std::pair<std::size_t, const tensor_info*>> tensors_;
};

struct load_options {
    // Parameters the checkpoint may lack (a new head): they are left as they are and listed
    // in load_result::missing for the caller to initialise.
    std::function<bool(const parameter&)> may_be_missing;
};

struct load_result {
    std::vector<const parameter*> missing;
    std::vector<std::string> warnings;  // tensors of the checkpoint the model does not use
};

// Fills every parameter from the tensor of its name (for gpt2 also without the
// "transformer." prefix, as the hub's files have it), checking shape and dtype: F32, F16,
// BF16 (and F64) are converted to float32; a frozen F32 tensor is read in place from the
// mapping. The model's buffers that checkpoints carry (GPT-2's attn.bias masks, CLIP's
// position_ids, a tied lm_head.weight) are skipped. Errors name the file and the tensor.
// The parameters must be allocated.
load_result load_parameters(parameter_set& parameters, const checkpoint& source, architecture arch,
                            const load_options& options = {});

// Writes parameters (those `select` accepts; all by default) as float32 safetensors with
// __metadata__ {"format": "pt", "config": the config's JSON}.
void save_parameters(output_stream& out, const parameter_set& parameters, const nlohmann::json& config,
                     const std::function<bool(const parameter&)>& select = {});

}  // namespace lowrank
