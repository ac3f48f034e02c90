// One of the three models, chosen by a config's architecture: what tools that take "a
// model" (model-init, lora-predict) hold.
#pragma once

#include "nn/checkpoint.hpp"
#include "nn/clip.hpp"
#include "nn/gpt2.hpp"
#include "nn/vision.hpp"

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lowrank {

struct model {
    explicit model(const model_config& config);

    architecture arch() const { return config.arch; }
    parameter_set& parameters();
    // Hugging Face's initialisation of the architecture, seeded.
    void initialize(std::uint64_t seed);
    // Routes for every transformer stack of the model (transformer_stack::set_routes).
    void set_routes(std::span<const item_range> routes);
    // The parameters of the classification head, which reads the pooled features (gpt2's
    // score, vit's classifier): none for a language model or clip.
    std::vector<parameter*> head_parameters();

    model_config config;
    std::unique_ptr<gpt2_model> gpt2;  // exactly one of the three is set
    std::unique_ptr<vit_model> vit;
    std::unique_ptr<clip_model> clip;
};

// Where LoRA branches attach, by module path: the linear layers of the transformer blocks
// ("transformer.h.0.attn.c_attn") and the token embeddings ("transformer.wte",
// "text_model.embeddings.token_embedding"; none for vit).
struct lora_sites {
    std::map<std::string, linear*> linears;
    std::map<std::string, embedding*> embeddings;
};
lora_sites lora_sites_of(model& target);

}  // namespace lowrank
