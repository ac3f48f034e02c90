// The parameters of a model: named tensors (Hugging Face names), each trainable or frozen.
//
// A model declares its parameters, a training method chooses which of them train (full
// fine-tuning: all; LoRA: the A and B matrices; BitFit: the biases...), then allocate()
// lays them out as llm.c does: the values of all trainable parameters in one contiguous
// buffer, their gradients in another in the same order (so AdamW is one loop and a
// data-parallel all-reduce is one call), and frozen parameters apart, with no gradient
// memory. Frozen float32 parameters may instead point into a mapped checkpoint (no copy).
#pragma once

#include "core/memory.hpp"

#include <cstddef>
#include <deque>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

struct parameter {
    std::string name;
    std::vector<std::size_t> shape;
    bool trainable = false;
    // AdamW's decoupled weight decay applies to it (Hugging Face's Trainer exempts biases
    // and LayerNorm parameters).
    bool decay = true;
    float* value = nullptr;     // after allocate(); read-only when it aliases a checkpoint
    float* gradient = nullptr;  // after allocate(), trainable parameters only
    std::size_t offset = 0;     // in trainable_values() (trainable) or in the frozen buffer

    std::size_t size() const;
};

// "[768, 2304]"
std::string shape_text(std::span<const std::size_t> shape);

// The module path of a layer's weight: its name without ".weight" ("transformer.wte").
std::string module_of(const parameter& weight);

// Initialisation: values drawn from N(0, std²) by random_generator(seed, stream) (the
// stream is usually the parameter's number, so that each parameter's values do not depend
// on the others'), or a constant.
void fill_normal(parameter& p, float std, std::uint64_t seed, std::uint64_t stream);
void fill_constant(parameter& p, float value);

// The first of `count` values that is NaN or infinite, if any (loaders refuse such weights).
std::optional<std::size_t> first_non_finite(const float* values, std::size_t count);

class parameter_set {
public:
    parameter_set() = default;
    parameter_set(const parameter_set&) = delete;
    parameter_set& operator=(const parameter_set&) = delete;

    // Declares a parameter (frozen until marked trainable). Addresses stay valid.
    parameter& add(std::string name, std::vector<std::size_t> shape, bool decay = true);

    // Lays out values and gradients; values start at zero. Call once, after choosing the
    // trainable parameters. `gradient_extras` floats follow the gradients in their buffer,
    // for figures that a data-parallel step sums across processes with them in one call
    // (the loss, the token count): gradients_and_extras().
    void allocate(std::size_t gradient_extras = 0);
    bool allocated() const { return allocated_; }

    parameter* find(std::string_view name);
    const parameter* find(std::string_view name) const;

    std::deque<parameter>::iterator begin() { return parameters_.begin(); }
    std::deque<parameter>::iterator end() { return parameters_.end(); }
    std::deque<parameter>::const_iterator begin() const { return parameters_.begin(); }
    std::deque<parameter>::const_iterator end() const { return parameters_.end(); }
    std::size_t size() const { return parameters_.size(); }

    // The values of the trainable parameters and their gradients, in the same order.
    std::span<float> trainable_values() { return {trainable_values_.data(), trainable_values_.size()}; }
    std::span<float> gradients() { return {gradients_.data(), gradients_.size() - gradient_extras_}; }
    // The gradients, then allocate()'s extras: one contiguous buffer.
    std::span<float> gradients_and_extras() { return {gradients_.data(), gradients_.size()}; }
    // Zeroes the gradients and the extras.
    void zero_gradients();

    std::size_t count() const;            // elements of all parameters
    std::size_t trainable_count() const;  // elements of the trainable ones

    // Makes a frozen parameter read its values from memory owned elsewhere (a mapped
    // checkpoint); `owner` is kept alive as long as this set.
    void alias(parameter& target, const float* values, std::shared_ptr<const void> owner);

private:
    std::deque<parameter> parameters_;
    large_vector<float> trainable_values_, gradients_;
    std::size_t gradient_extras_ = 0;
    // Frozen values: zero pages mapped on first touch, so aliased ones cost no memory.
    struct zero_pages {
        void* data = nullptr;
        std::size_t bytes = 0;
        ~zero_pages();
    } frozen_values_;
    std::vector<std::shared_ptr<const void>> owners_;
    bool allocated_ = false;
};

}  // namespace lowrank
