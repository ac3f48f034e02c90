// A training step of a GPT-2 language model: forward, the LM loss, backward, gradient
// clipping, AdamW. lm_pass is the forward and backward part, which lora-train's loop runs
// once per micro-batch for the lm and lm-pairs objectives; lm_trainer adds the optimizer
// step, as the training-step benchmark times it.
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
    const std::int32_t* infix_at = nullptr;  // (batch) where prefix tuning's infix goes, or null
};

struct step_result {
    double loss = 0;           // mean over the counted targets
    double gradient_norm = 0;  // before clipping
    std::size_t counted = 0;   // targets that counted
};

class lm_pass {
public:
    explicit lm_pass(gpt2_model& model) : model_(model) {}

    // Adds scale · the gradient of the batch's mean loss to the trainable parameters'
    // gradients (scale = 1/micro-batches when several make a step). gradient_norm is not set.
    step_result accumulate(const lm_batch& batch, float scale, std::uint64_t dropout_seed = 0);
    // The loss alone (no activations kept): Σ −log p over the counted targets, and their count.
    cross_entropy_result evaluate(const lm_batch& batch);

private:
    gpt2_model& model_;
    large_vector<float> d_hidden_;
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
    lm_pass pass_;
    adamw optimizer_;
};

}  // namespace lowrank
