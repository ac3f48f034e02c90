// AdamW, the learning-rate schedules, and gradient clipping, over a parameter_set's
// trainable parameters (their values and gradients are each one contiguous buffer).
#pragma once

#include "core/memory.hpp"
#include "nn/parameters.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace lowrank {

struct adamw_settings {
    float beta1 = 0.9f, beta2 = 0.999f;
    float epsilon = 1e-8f;
    float weight_decay = 0.01f;  // decoupled, on the parameters marked `decay`
};

// AdamW as torch.optim.AdamW computes it (Loshchilov & Hutter), step t from 1:
//   p ← p · (1 − lr·λ)                     (parameters marked `decay` only)
//   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
//   p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)
class adamw {
public:
    adamw(parameter_set& parameters, adamw_settings settings);

    void step(float learning_rate);

    std::uint64_t steps() const { return steps_; }
    // The optimizer's state, in the order of parameter_set::gradients() (for checkpoints).
    std::span<float> first_moment() { return {first_moment_.data(), first_moment_.size()}; }
    std::span<float> second_moment() { return {second_moment_.data(), second_moment_.size()}; }
    void set_steps(std::uint64_t steps) { steps_ = steps; }

private:
    parameter_set& parameters_;
    adamw_settings settings_;
    large_vector<float> first_moment_, second_moment_;
    std::uint64_t steps_ = 0;
};

enum class lr_decay { constant, linear, cosine };
std::optional<lr_decay> lr_decay_from_name(std::string_view name);

// The learning rate at `step` (0-based) of `total` steps: linear warm-up from 0 over
// `warmup` steps, then constant, or decaying to 0 at `total` linearly or along a half
// cosine (Hugging Face's get_linear/cosine_schedule_with_warmup).
float scheduled_learning_rate(float peak, std::uint64_t step, std::uint64_t warmup, std::uint64_t total,
                              lr_decay decay);

// The global L2 norm of all trainable gradients; when above max_norm (> 0), every gradient
// is scaled by max_norm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_ does. Returns
// the norm before clipping.
double clip_gradient_norm(parameter_set& parameters, double max_norm);

}  // namespace lowrank
