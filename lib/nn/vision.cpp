#include "nn/vision.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/format.h>

namespace lowrank {

block_names clip_block_names(const std::string& tower) {
    block_names names;
    names.prefix = tower + "encoder.layers.{}.";
    names.ln1 = "layer_norm1";
    names.ln2 = "layer_norm2";
    names.q = "self_attn.q_proj";
    names.k = "self_attn.k_proj";
    names.v = "self_attn.v_proj";
    names.attention_output = "self_attn.out_proj";
    names.fc1 = "mlp.fc1";
    names.fc2 = "mlp.fc2";
    names.layout = weight_layout::out_in;
    return names;
}

void initialize_clip_blocks(transformer_stack& stack, float factor, std::uint64_t seed, std::uint64_t& stream) {
    const auto width = static_cast<float>(stack.config().width);
    const auto layers = static_cast<float>(stack.config().layers);
    const float in_std = std::pow(width, -0.5f) * std::pow(2 * layers, -0.5f) * factor;
    const float out_std = std::pow(width, -0.5f) * factor;
    const float fc_std = std::pow(2 * width, -0.5f) * factor;
    for (transformer_block& block : stack.blocks()) {
        for (layer_norm* norm : {&block.ln1, &block.ln2}) {
            fill_constant(*norm->weight, 1);
            fill_constant(*norm->bias, 0);
        }
        for (linear* layer : block.linears()) {
            float std = layer == &block.attention_output ? out_std : layer == &block.fc1 ? fc_std : in_std;
            fill_normal(*layer->weight, std, seed, ++stream);
            fill_constant(*layer->bias, 0);
        }
    }
}

void check_patch_shape(std::size_t count, std::size_t features, const vision_tower_config& config,
                       std::string_view path) {
    if (count == config.patches() && features == config.patch_features()) return;
    throw error_in(path, fmt::format("patches of shape ({}, {}), the model takes ({}, {}): {} patches of {}×{}×{}", count,
                                     features, config.patches(), config.patch_features(), config.patches(),
                                     config.channels, config.patch_size, config.patch_size));
}

namespace {

parameter* declare(parameter_set& parameters, const std::string& name, std::vector<std::size_t> shape,
                   bool decay = true) {
    return &parameters.add(name, std::move(shape), decay);
}

linear declare_patch_embedding(parameter_set& parameters, const vision_tower_config& config,
                               const std::string& prefix) {
    linear layer;
    layer.in = config.patch_features();
    layer.out = config.transformer.width;
    layer.weight = declare(parameters, prefix + "embeddings.patch_embedding.weight",
                           {config.transformer.width, config.channels, config.patch_size, config.patch_size});
    return layer;
}

layer_norm declare_norm(parameter_set& parameters, const std::string& name, std::size_t width, float epsilon) {
    return {declare(parameters, name + ".weight", {width}, false), declare(parameters, name + ".bias", {width}, false),
            epsilon};
}

template <class Vector>
float* sized(Vector& buffer, std::size_t size) {
    if (buffer.size() < size) buffer.resize(size);
    return buffer.data();
}

}  // namespace

vision_tower::vision_tower(parameter_set& parameters, const vision_tower_config& config, const std::string& prefix)
    : config_(config),
      class_embedding_(declare(parameters, prefix + "embeddings.class_embedding", {config.transformer.width})),
      patch_embedding_(declare_patch_embedding(parameters, config, prefix)),
      position_embedding_(declare(parameters, prefix + "embeddings.position_embedding.weight",
                                  {config.patches() + 1, config.transformer.width})),
      pre_norm_(declare_norm(parameters, prefix + "pre_layrnorm", config.transformer.width, config.transformer.epsilon)),
      stack_(parameters, config.transformer, clip_block_names(prefix), {.causal = false, .pre_norm = true}),
      post_norm_(declare_norm(parameters, prefix + "post_layernorm", config.transformer.width,
                              config.transformer.epsilon)) {}

void vision_tower::initialize(float initializer_range, float factor, std::uint64_t seed, std::uint64_t& stream) {
    fill_normal(*class_embedding_, std::pow(static_cast<float>(width()), -0.5f) * factor, seed, ++stream);
    fill_normal(*patch_embedding_.weight, initializer_range * factor, seed, ++stream);
    fill_normal(*position_embedding_, initializer_range * factor, seed, ++stream);
    for (layer_norm* norm : {&pre_norm_, &post_norm_}) {
        fill_constant(*norm->weight, 1);
        fill_constant(*norm->bias, 0);
    }
    initialize_clip_blocks(stack_, factor, seed, stream);
}

const float* vision_tower::forward(const float* patches, std::size_t batch, bool training) {
    const std::size_t N = config_.patches(), T = N + 1, D = width(), features = config_.patch_features();
    const std::size_t rows = batch * T;
    patches_ = patches;
    batch_ = batch;
    float* embeddings = sized(embeddings_, rows * D);
    // [class ; patches·Wᵀ] + positions
    for (std::size_t b = 0; b < batch; ++b) {
        std::memcpy(embeddings + b * T * D, class_embedding_->value, D * sizeof(float));
        linear_forward(patch_embedding_, patches + b * N * features, N, embeddings + (b * T + 1) * D, D, false, {});
    }
    positions_.resize(rows);
    for (std::size_t r = 0; r < rows; ++r) positions_[r] = static_cast<std::int32_t>(r % T);
    embedding_forward(*position_embedding_, positions_.data(), rows, embeddings, true);
    float* x = stack_.input(batch, T, training);
    layer_norm_forward(pre_norm_, embeddings, rows, x, sized(pre_mean_, rows), sized(pre_rstd_, rows));
    const float* out = stack_.forward(nullptr);
    // pooled = post_layernorm(x[:, 0])
    float* cls = sized(cls_, batch * D);
    for (std::size_t b = 0; b < batch; ++b) std::memcpy(cls + b * D, out + b * T * D, D * sizeof(float));
    float* pooled = sized(pooled_, batch * D);
    layer_norm_forward(post_norm_, cls, batch, pooled, sized(post_mean_, batch), sized(post_rstd_, batch));
    return pooled;
}

void vision_tower::backward(const float* d_pooled) {
    const std::size_t batch = batch_, N = config_.patches(), T = N + 1, D = width(),
                      features = config_.patch_features(), rows = batch * T;
    float* d_cls = sized(d_cls_, batch * D);
    std::fill(d_cls, d_cls + batch * D, 0.0f);
    layer_norm_backward(post_norm_, cls_.data(), post_mean_.data(), post_rstd_.data(), d_pooled, batch, d_cls);
    float* d_stack = sized(d_stack_, rows * D);
    std::fill(d_stack, d_stack + rows * D, 0.0f);
    for (std::size_t b = 0; b < batch; ++b) std::memcpy(d_stack + b * T * D, d_cls + b * D, D * sizeof(float));
    bool below = pre_norm_.weight->trainable || pre_norm_.bias->trainable || class_embedding_->trainable ||
                 position_embedding_->trainable || patch_embedding_.weight->trainable;
    stack_.backward(d_stack, below);
    if (!below) return;
    float* d_embeddings = sized(d_embeddings_, rows * D);
    std::fill(d_embeddings, d_embeddings + rows * D, 0.0f);
    layer_norm_backward(pre_norm_, embeddings_.data(), pre_mean_.data(), pre_rstd_.data(), d_stack, rows,
                        d_embeddings);
    embedding_backward(*position_embedding_, positions_.data(), rows, d_embeddings);
    if (float* d_class = class_embedding_->gradient)
        for (std::size_t b = 0; b < batch; ++b)
            for (std::size_t j = 0; j < D; ++j) d_class[j] += d_embeddings[b * T * D + j];
    for (std::size_t b = 0; b < batch; ++b)
        linear_backward(patch_embedding_, patches_ + b * N * features, N, d_embeddings + (b * T + 1) * D, D, nullptr,
                        {});
}

vit_model::vit_model(const model_config& config)
    : config_(config), tower_(parameters_, config.vision, "vision_model.") {
    const std::size_t D = config.vision.transformer.width, labels = config.label_count();
    classifier_.in = D;
    classifier_.out = labels;
    classifier_.weight = &parameters_.add("classifier.weight", {labels, D});
    classifier_.bias = &parameters_.add("classifier.bias", {labels}, false);
}

void vit_model::initialize(std::uint64_t seed) {
    std::uint64_t stream = 0;
    tower_.initialize(config_.initializer_range, config_.initializer_factor, seed, stream);
    const float std = std::pow(static_cast<float>(tower_.width()), -0.5f) * config_.initializer_factor;
    fill_normal(*classifier_.weight, std, seed, ++stream);
    fill_constant(*classifier_.bias, 0);
}

const float* vit_model::forward(const float* patches, std::size_t batch, bool training) {
    batch_ = batch;
    pooled_ = tower_.forward(patches, batch, training);
    float* logits = sized(logits_, batch * classifier_.out);
    head_forward(pooled_, batch, logits);
    return logits;
}

void vit_model::head_forward(const float* pooled, std::size_t batch, float* logits) const {
    linear_forward(classifier_, pooled, batch, logits, classifier_.out, false, {});
}

void vit_model::backward(const float* d_logits) {
    float* d_pooled = sized(d_pooled_, batch_ * tower_.width());
    std::fill(d_pooled, d_pooled + batch_ * tower_.width(), 0.0f);
    linear_backward(classifier_, pooled_, batch_, d_logits, classifier_.out, d_pooled, {});
    tower_.backward(d_pooled);
}

}  // namespace lowrank
