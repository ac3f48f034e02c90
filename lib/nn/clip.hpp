// CLIP (CLIPModel, Hugging Face's names): a text tower and a vision tower (vision.hpp)
// whose pooled outputs are projected into one space, and the learnable logit scale.
//
//   text:  x = token_embedding[ids] + position_embedding[0..T−1];  x = blocks(x) (pre-LN,
//          causal);  pooled = final_layer_norm(x[b, eos_b]);  text_embeds = pooled·text_projectionᵀ
//   image: image_embeds = vision_tower(patches)·visual_projectionᵀ
//   logits_per_text = e^{logit_scale} · normalize(text_embeds)·normalize(image_embeds)ᵀ
//
// eos_b is the first position of eos_token_id in row b, or with the legacy eos_token_id 2
// of old hub configs, the position of the row's largest id (as transformers does).
#pragma once

#include "nn/vision.hpp"

#include <cstdint>
#include <span>

namespace lowrank {

class text_tower {
public:
    text_tower(parameter_set& parameters, const text_tower_config& config, const std::string& prefix);
    text_tower(const text_tower&) = delete;
    text_tower& operator=(const text_tower&) = delete;

    const text_tower_config& config() const { return config_; }
    transformer_stack& stack() { return stack_; }
    // token_embedding, with its LoRA branches (nn/lora.hpp: add_embedding_lora), if any.
    embedding& token_embedding() { return token_embedding_; }
    std::size_t width() const { return config_.transformer.width; }

    void initialize(float factor, std::uint64_t seed, std::uint64_t& stream);

    // ids: (batch, time) -> pooled: (batch, D), valid until the next forward().
    const float* forward(const std::int32_t* ids, std::size_t batch, std::size_t time, bool training);
    void backward(const float* d_pooled);

    // The pooled position of a row of ids.
    std::size_t pooled_position(std::span<const std::int32_t> row) const;

private:
    text_tower_config config_;
    embedding token_embedding_;
    parameter* position_embedding_;
    transformer_stack stack_;
    layer_norm final_norm_;
    std::vector<std::int32_t> ids_, positions_, pooled_rows_;
    std::size_t batch_ = 0, time_ = 0;
    large_vector<float> eos_, mean_, rstd_, pooled_, d_eos_, d_stack_;
};

class clip_model {
public:
    explicit clip_model(const model_config& config);
    clip_model(const clip_model&) = delete;
    clip_model& operator=(const clip_model&) = delete;

    const model_config& config() const { return config_; }
    parameter_set& parameters() { return parameters_; }
    text_tower& text() { return text_; }
    vision_tower& vision() { return vision_; }
    parameter& logit_scale() { return *logit_scale_; }

    // CLIPPreTrainedModel's initialisation; logit_scale = logit_scale_init_value.
    void initialize(std::uint64_t seed);

    // Projected, not normalised (get_text_features, get_image_features): (batch, P),
    // valid until the next call. Each tower keeps its own activations, so both can run
    // before either backward pass.
    const float* encode_text(const std::int32_t* ids, std::size_t batch, std::size_t time, bool training);
    const float* encode_image(const float* patches, std::size_t batch, bool training);
    void backward_text(const float* d_embeds);
    void backward_image(const float* d_embeds);

    // Inference: the L2-normalised embeddings (CLIPModel's text_embeds, image_embeds) into
    // out: (batch, projection_dim). Texts run only up to the batch's last pooled position:
    // under the causal mask the tokens after it cannot change the pooled ones.
    void embed_images(const float* patches, std::size_t batch, float* out);
    void embed_texts(const std::int32_t* ids, std::size_t batch, std::size_t time, float* out);

private:
    model_config config_;
    parameter_set parameters_;
    text_tower text_;
    vision_tower vision_;
    linear visual_projection_, text_projection_;
    parameter* logit_scale_;
    const float *text_pooled_ = nullptr, *image_pooled_ = nullptr;
    std::size_t text_batch_ = 0, image_batch_ = 0;
    large_vector<float> text_embeds_, image_embeds_, d_text_pooled_, d_image_pooled_, norms_;
    std::vector<std::int32_t> trimmed_ids_;
};

}  // namespace lowrank
