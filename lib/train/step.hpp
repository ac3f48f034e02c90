// A training step of a GPT-2 language model: forward, the LM loss, backward, gradient
// clipping, AdamW. What lora-train's loop repeats for the `lm` objective, and what the
// training-step benchmark times.
#pragma once

#include "nn/gpt2.hpp"
#include "nn/optimizer.hpp"

#include <cstdint>

namespace lowrank {

struct lm_batch {
    const std::int32_t* ids = nullptr;      // (batch, time)
    const std::int32_t* targets = nullptr;  // (batch, time): the next token, or ignore_index
    const std::int32_t* lengths = nullptr;  // (batch) tokens before the padding, or null
    std::size_t batch = 0, time = 0;
};

struct step_result {
    double loss = 0;           // mean over the counted targets
    double gradient_norm = 0;  // before clipping
    std::size_t counted = 0;   // targets that counted
};

class lm_trainer {
public:
    // The model's trainable parameters must be allocated and loaded.
    lm_trainer(gpt2_model& model, adamw_settings settings);

    // One step at this learning rate; max_norm > 0 clips the gradients' global norm.
    step_result step(const lm_batch& batch, float learning_rate, double max_norm, std::uint64_t dropout_seed = 0);

    adamw& optimizer() { return optimizer_; }

private:
    gpt2_model& model_;
    adamw optimizer_;
    large_vector<float> d_hidden_;
};

}  // namespace lowrank
