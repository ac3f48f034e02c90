// Model files: a checkpoint (one safetensors file, or a sharded Hugging Face checkpoint:
// formats/sharded.hpp) and its config, filling a model's parameters from it, and writing
// parameters as safetensors.
//
// The config is the "config" entry of the safetensors __metadata__ (what model-init and
// lora-train write), or else config.json beside the file (Hugging Face's layout).
#pragma once

#include "core/output.hpp"
#include "formats/sharded.hpp"
#include "nn/config.hpp"
#include "nn/parameters.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lowrank {

class checkpoint {
public:
    // path: a .safetensors file, or a folder holding model.safetensors or a sharded
    // checkpoint (model.safetensors.index.json and its shards).
    explicit checkpoint(const std::string& path);

    const std::string& path() const { return files_->path(); }
    const safetensors_checkpoint& files() const { return *files_; }
    // The config, or an error naming where it was looked for.
    model_config config() const;

    // Kept alive by parameters that read their values in place from the mapping.
    std::shared_ptr<const void> owner() const { return files_; }

private:
    std::shared_ptr<const safetensors_checkpoint> files_;
};

struct load_options {
    // Parameters the checkpoint may lack (a new head, adapters' branches): they are left as
    // they are and listed in load_result::missing for the caller to fill.
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
