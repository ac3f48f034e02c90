// The CLIP vision tower, and the `vit` classifier built on it, with Hugging Face's names
// (CLIPVisionModel's `vision_model.*`, plus `classifier.*`).
//
//   patches (B, N, C·P·P), as vit-patchify writes them: each patch flattened in (C, P, P)
//   order, so the Conv2d patch embedding is a matrix product with its weight (D, C, P, P)
//   seen as (D, C·P·P).
//   x = [class_embedding ; patches·Wᵀ] + position_embedding[0..N];  x = pre_layrnorm(x)
//   x = blocks(x)  (pre-LN, no mask);  pooled = post_layernorm(x[:, 0])
//   vit: logits = classifier(pooled)
#pragma once

#include "nn/config.hpp"
#include "nn/transformer.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace lowrank {

// CLIP's encoder-layer names under `tower` ("vision_model." or "text_model.").
block_names clip_block_names(const std::string& tower);

// CLIP's initialisation of a tower's blocks (CLIPPreTrainedModel._init_weights): q, k, v,
// fc2 ~ N(0, D^-½·(2L)^-½·f), out_proj ~ N(0, D^-½·f), fc1 ~ N(0, (2D)^-½·f), biases 0,
// LayerNorms 1 and 0. Each parameter draws from its own stream: `stream` counts them.
void initialize_clip_blocks(transformer_stack& stack, float factor, std::uint64_t seed, std::uint64_t& stream);

// Checks that patches of shape (N, count, features) fit the tower: an error naming `path`
// and the shape the tower takes otherwise.
void check_patch_shape(std::size_t count, std::size_t features, const vision_tower_config& config,
                       std::string_view path);

class vision_tower {
public:
    // Declares the tower's parameters under `prefix` ("vision_model.").
    vision_tower(parameter_set& parameters, const vision_tower_config& config, const std::string& prefix);
    vision_tower(const vision_tower&) = delete;
    vision_tower& operator=(const vision_tower&) = delete;

    const vision_tower_config& config() const { return config_; }
    transformer_stack& stack() { return stack_; }
    std::size_t width() const { return config_.transformer.width; }

    void initialize(float initializer_range, float factor, std::uint64_t seed, std::uint64_t& stream);

    // patches: (batch, N, C·P·P), kept by the caller until backward(). Returns pooled:
    // (batch, D), valid until the next forward().
    const float* forward(const float* patches, std::size_t batch, bool training);
    // d_pooled: (batch, D), the gradient of pooled.
    void backward(const float* d_pooled);

private:
    // Declared in Hugging Face's order.
    vision_tower_config config_;
    parameter* class_embedding_;
    linear patch_embedding_;  // the Conv2d weight as (D, C·P·P), no bias
    parameter* position_embedding_;
    layer_norm pre_norm_;
    transformer_stack stack_;
    layer_norm post_norm_;
    const float* patches_ = nullptr;
    std::size_t batch_ = 0;
    std::vector<std::int32_t> positions_;
    large_vector<float> embeddings_, pre_mean_, pre_rstd_, cls_, pooled_, post_mean_, post_rstd_, d_cls_,
        d_stack_, d_embeddings_;
};

class vit_model {
public:
    explicit vit_model(const model_config& config);
    vit_model(const vit_model&) = delete;
    vit_model& operator=(const vit_model&) = delete;

    const model_config& config() const { return config_; }
    parameter_set& parameters() { return parameters_; }
    vision_tower& tower() { return tower_; }

    // CLIP's initialisation, and the head's: N(0, D^-½·f), bias 0.
    void initialize(std::uint64_t seed);

    // patches: (batch, N, C·P·P) -> logits: (batch, labels), valid until the next forward().
    const float* forward(const float* patches, std::size_t batch, bool training);
    // The tower's pooled features of the last forward(): (batch, D).
    const float* pooled() const { return pooled_; }
    // The classifier alone: pooled (batch, D) -> logits (batch, labels), written.
    void head_forward(const float* pooled, std::size_t batch, float* logits) const;
    // d_logits: (batch, labels).
    void backward(const float* d_logits);

private:
    model_config config_;
    parameter_set parameters_;
    vision_tower tower_;
    linear classifier_;
    large_vector<float> logits_, d_pooled_;
    const float* pooled_ = nullptr;
    std::size_t batch_ = 0;
};

}  // namespace lowrank
