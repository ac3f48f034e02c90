#include "nn/clip.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lowrank {
namespace {

template <class Vector>
float* sized(Vector& buffer, std::size_t size) {
    if (buffer.size() < size) buffer.resize(size);
    return buffer.data();
}

linear projection(parameter_set& parameters, const std::string& name, std::size_t in, std::size_t out) {
    linear layer;
    layer.in = in;
    layer.out = out;
    layer.weight = &parameters.add(name, {out, in});
    return layer;
}

}  // namespace

text_tower::text_tower(parameter_set& parameters, const text_tower_config& config, const std::string& prefix)
    : config_(config),
      token_embedding_{&parameters.add(prefix + "embeddings.token_embedding.weight",
                                       {config.vocab_size, config.transformer.width}), {}},
      position_embedding_(&parameters.add(prefix + "embeddings.position_embedding.weight",
                                          {config.max_positions, config.transformer.width})),
      stack_(parameters, config.transformer, clip_block_names(prefix), {.causal = true, .pre_norm = true}) {
    final_norm_ = {&parameters.add(prefix + "final_layer_norm.weight", {width()}, false),
                   &parameters.add(prefix + "final_layer_norm.bias", {width()}, false), config.transformer.epsilon};
}

void text_tower::initialize(float factor, std::uint64_t seed, std::uint64_t& stream) {
    fill_normal(*token_embedding_.table, 0.02f * factor, seed, ++stream);
    fill_normal(*position_embedding_, 0.02f * factor, seed, ++stream);
    initialize_clip_blocks(stack_, factor, seed, stream);
    fill_constant(*final_norm_.weight, 1);
    fill_constant(*final_norm_.bias, 0);
}

std::size_t text_tower::pooled_position(std::span<const std::int32_t> row) const {
    if (config_.eos_token_id == 2)  // legacy configs: the end-of-text token has the largest id
        return static_cast<std::size_t>(std::max_element(row.begin(), row.end()) - row.begin());
    auto eos = std::find(row.begin(), row.end(), config_.eos_token_id.value_or(-1));
    return eos == row.end() ? 0 : static_cast<std::size_t>(eos - row.begin());
}

const float* text_tower::forward(const std::int32_t* ids, std::size_t batch, std::size_t time, bool training) {
    const std::size_t rows = batch * time, D = width();
    batch_ = batch;
    time_ = time;
    ids_.assign(ids, ids + rows);
    positions_.resize(rows);
    for (std::size_t r = 0; r < rows; ++r) positions_[r] = static_cast<std::int32_t>(r % time);
    float* x = stack_.input(batch, time, training);
    embedding_forward(token_embedding_, ids, rows, x, {.routes = stack_.routes(), .item_rows = time});
    embedding_forward(*position_embedding_, positions_.data(), rows, x, true);
    const float* out = stack_.forward(nullptr);
    // final_layer_norm at the pooled positions only (it works row by row)
    pooled_rows_.resize(batch);
    float* eos = sized(eos_, batch * D);
    for (std::size_t b = 0; b < batch; ++b) {
        pooled_rows_[b] = static_cast<std::int32_t>(b * time + pooled_position({ids + b * time, time}));
        std::memcpy(eos + b * D, out + static_cast<std::size_t>(pooled_rows_[b]) * D, D * sizeof(float));
    }
    float* pooled = sized(pooled_, batch * D);
    layer_norm_forward(final_norm_, eos, batch, pooled, sized(mean_, batch), sized(rstd_, batch));
    return pooled;
}

void text_tower::backward(const float* d_pooled) {
    const std::size_t batch = batch_, rows = batch * time_, D = width();
    float* d_eos = sized(d_eos_, batch * D);
    std::fill(d_eos, d_eos + batch * D, 0.0f);
    layer_norm_backward(final_norm_, eos_.data(), mean_.data(), rstd_.data(), d_pooled, batch, d_eos);
    float* d_stack = sized(d_stack_, rows * D);
    std::fill(d_stack, d_stack + rows * D, 0.0f);
    for (std::size_t b = 0; b < batch; ++b)
        std::memcpy(d_stack + static_cast<std::size_t>(pooled_rows_[b]) * D, d_eos + b * D, D * sizeof(float));
    stack_.backward(d_stack, token_embedding_.trains() || position_embedding_->trainable);
    embedding_backward(token_embedding_, ids_.data(), rows, d_stack, {.routes = stack_.routes(), .item_rows = time_});
    embedding_backward(*position_embedding_, positions_.data(), rows, d_stack);
}

clip_model::clip_model(const model_config& config)
    : config_(config),
      text_(parameters_, config.text, "text_model."),
      vision_(parameters_, config.vision, "vision_model."),
      visual_projection_(projection(parameters_, "visual_projection.weight", config.vision.transformer.width,
                                    config.projection_dim)),
      text_projection_(projection(parameters_, "text_projection.weight", config.text.transformer.width,
                                  config.projection_dim)),
      logit_scale_(&parameters_.add("logit_scale", {}, false)) {}

void clip_model::initialize(std::uint64_t seed) {
    std::uint64_t stream = 0;
    const float factor = config_.initializer_factor;
    text_.initialize(factor, seed, stream);
    vision_.initialize(config_.initializer_range, factor, seed, stream);
    fill_normal(*visual_projection_.weight, std::pow(static_cast<float>(vision_.width()), -0.5f) * factor, seed,
                ++stream);
    fill_normal(*text_projection_.weight, std::pow(static_cast<float>(text_.width()), -0.5f) * factor, seed, ++stream);
    fill_constant(*logit_scale_, config_.logit_scale_init);
}

const float* clip_model::encode_text(const std::int32_t* ids, std::size_t batch, std::size_t time, bool training) {
    text_batch_ = batch;
    text_pooled_ = text_.forward(ids, batch, time, training);
    float* embeds = sized(text_embeds_, batch * config_.projection_dim);
    linear_forward(text_projection_, text_pooled_, batch, embeds, config_.projection_dim, false, {});
    return embeds;
}

const float* clip_model::encode_image(const float* patches, std::size_t batch, bool training) {
    image_batch_ = batch;
    image_pooled_ = vision_.forward(patches, batch, training);
    float* embeds = sized(image_embeds_, batch * config_.projection_dim);
    linear_forward(visual_projection_, image_pooled_, batch, embeds, config_.projection_dim, false, {});
    return embeds;
}

void clip_model::backward_text(const float* d_embeds) {
    float* d_pooled = sized(d_text_pooled_, text_batch_ * text_.width());
    std::fill(d_pooled, d_pooled + text_batch_ * text_.width(), 0.0f);
    linear_backward(text_projection_, text_pooled_, text_batch_, d_embeds, config_.projection_dim, d_pooled, {});
    text_.backward(d_pooled);
}

void clip_model::backward_image(const float* d_embeds) {
    float* d_pooled = sized(d_image_pooled_, image_batch_ * vision_.width());
    std::fill(d_pooled, d_pooled + image_batch_ * vision_.width(), 0.0f);
    linear_backward(visual_projection_, image_pooled_, image_batch_, d_embeds, config_.projection_dim, d_pooled, {});
    vision_.backward(d_pooled);
}

void clip_model::embed_images(const float* patches, std::size_t batch, float* out) {
    const float* embeds = encode_image(patches, batch, false);
    l2_normalize_forward(embeds, batch, config_.projection_dim, out, sized(norms_, batch));
}

void clip_model::embed_texts(const std::int32_t* ids, std::size_t batch, std::size_t time, float* out) {
    std::size_t used = 1;
    for (std::size_t b = 0; b < batch; ++b) used = std::max(used, text_.pooled_position({ids + b * time, time}) + 1);
    if (used < time) {  // the rows' first `used` tokens, contiguous
        trimmed_ids_.resize(batch * used);
        for (std::size_t b = 0; b < batch; ++b) std::copy_n(ids + b * time, used, trimmed_ids_.data() + b * used);
        ids = trimmed_ids_.data();
        time = used;
    }
    const float* embeds = encode_text(ids, batch, time, false);
    l2_normalize_forward(embeds, batch, config_.projection_dim, out, sized(norms_, batch));
}

}  // namespace lowrank
