// One of the three models, chosen by a config's architecture: what tools that take "a
// model" (model-init, lora-predict) hold.
#pragma once

#include "nn/checkpoint.hpp"
#include "nn/clip.hpp"
#include "nn/gpt2.hpp"
#include "nn/vision.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lowrank {

struct model {
    explicit model(const model_config& config);

    architecture arch() const { return config.arch; }
    parameter_set& parameters();
    // Hugging Face's initialisation of the architecture, seeded.
    void initialize(std::uint64_t seed);

    model_config config;
    std::unique_ptr<gpt2_model> gpt2;  // exactly one of the three is set
    std::unique_ptr<vit_model> vit;
    std::unique_ptr<clip_model> clip;
};

// The linear layers of the model's transformer blocks by module path
// ("transformer.h.0.attn.c_attn"): where adapters attach.
std::map<std::string, linear*> linear_layers(model& target);

}  // namespace lowrank
