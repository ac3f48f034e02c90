#include "nn/transformer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/format.h>

namespace lowrank {

std::vector<linear*> transformer_block::linears() {
    std::vector<linear*> all;
    if (fused()) {
        all.push_back(&qkv);
    } else {
        all.insert(all.end(), {&q, &k, &v});
    }
    all.insert(all.end(), {&attention_output, &fc1, &fc2});
    return all;
}

namespace {

linear declare_linear(parameter_set& parameters, const std::string& name, std::size_t in, std::size_t out,
                      weight_layout layout) {
    linear layer;
    layer.in = in;
    layer.out = out;
    layer.layout = layout;
    std::vector<std::size_t> shape = layout == weight_layout::in_out ? std::vector<std::size_t>{in, out}
                                                                     : std::vector<std::size_t>{out, in};
    layer.weight = &parameters.add(name + ".weight", shape);
    layer.bias = &parameters.add(name + ".bias", {out}, false);
    return layer;
}

layer_norm declare_layer_norm(parameter_set& parameters, const std::string& name, std::size_t width, float epsilon) {
    return {&parameters.add(name + ".weight", {width}, false), &parameters.add(name + ".bias", {width}, false),
            epsilon};
}

// Whether a linear layer's backward pass reads its input: for its weight's gradient or its
// LoRA branches'.
bool keeps_input(const linear& layer) {
    if (layer.weight->trainable) return true;
    return std::any_of(layer.lora.begin(), layer.lora.end(), [](const lora_branch& b) { return b.a->trainable; });
}

void zero(float* values, std::size_t count) { std::fill(values, values + count, 0.0f); }
void copy(const float* from, float* to, std::size_t count) { std::memcpy(to, from, count * sizeof(float)); }

}  // namespace

transformer_stack::transformer_stack(parameter_set& parameters, const transformer_config& config,
                                     const block_names& names, stack_options options)
    : config_(config), options_(options) {
    const std::size_t C = config.width;
    for (std::size_t i = 0; i < config.layers; ++i) {
        std::string prefix = fmt::format(fmt::runtime(names.prefix), i);
        transformer_block block;
        block.ln1 = declare_layer_norm(parameters, prefix + names.ln1, C, config.epsilon);
        if (!names.qkv.empty()) {
            block.qkv = declare_linear(parameters, prefix + names.qkv, C, 3 * C, names.layout);
        } else {
            block.q = declare_linear(parameters, prefix + names.q, C, C, names.layout);
            block.k = declare_linear(parameters, prefix + names.k, C, C, names.layout);
            block.v = declare_linear(parameters, prefix + names.v, C, C, names.layout);
        }
        block.attention_output = declare_linear(parameters, prefix + names.attention_output, C, C, names.layout);
        block.ln2 = declare_layer_norm(parameters, prefix + names.ln2, C, config.epsilon);
        block.fc1 = declare_linear(parameters, prefix + names.fc1, C, config.inner, names.layout);
        block.fc2 = declare_linear(parameters, prefix + names.fc2, config.inner, C, names.layout);
        blocks_.push_back(std::move(block));
    }
}

void transformer_stack::allocate(std::size_t batch, std::size_t time, bool training) {
    const std::size_t rows = batch * time, C = config_.width, inner = config_.inner;
    const std::size_t layers = blocks_.size(), kept_blocks = training ? layers : std::min<std::size_t>(layers, 1);
    // Lay out every buffer as an offset first, then point into one allocation.
    std::size_t total = 0;
    std::vector<std::pair<float**, std::size_t>> plan;
    auto take = [&](float*& pointer, std::size_t count) {
        plan.emplace_back(&pointer, total);
        total += (count + 15) / 16 * 16;
    };
    activations_.assign(kept_blocks, block_activations{});
    std::size_t adapter_scratch = 0;
    // Buffers a block does not keep for its backward pass are shared by all blocks.
    block_activations shared;
    take(shared.ln2, rows * C);
    take(shared.attention, rows * C);
    take(shared.activated, rows * inner);
    for (std::size_t i = 0; i < kept_blocks; ++i) {
        block_activations& a = activations_[i];
        transformer_block& block = blocks_[i];
        bool keep_all = !training;  // inference: one block's set, reused
        take(a.ln1, rows * C);
        take(a.ln1_mean, rows);
        take(a.ln1_rstd, rows);
        take(a.qkv, rows * 3 * C);
        take(a.probabilities, batch * config_.heads * time * time);
        if (keep_all || keeps_input(block.attention_output)) take(a.attention, rows * C);
        take(a.residual, rows * C);
        if (options_.pre_norm && (keep_all || keeps_input(block.fc1))) take(a.ln2, rows * C);
        take(a.ln2_mean, rows);
        take(a.ln2_rstd, rows);
        take(a.hidden, rows * inner);
        if (keep_all || keeps_input(block.fc2)) take(a.activated, rows * inner);
        if (!options_.pre_norm) take(a.mlp_sum, rows * C);
        // In inference one set of buffers serves every block: the largest rank any block
        // has at each branch (an adapter may leave out some layers).
        auto blocks_served = training ? std::span(blocks_).subspan(i, 1) : std::span(blocks_);
        // Adapters: their input and what they keep, sized for the largest adapter of the
        // blocks the buffers serve.
        auto take_adapter = [&](std::optional<bottleneck_adapter> transformer_block::*member, float*& projected,
                                adapter_activations& kept) {
            std::size_t size = 0;
            bool norm = false;
            for (transformer_block& served : blocks_served)
                if (const auto& adapter = served.*member) {
                    size = std::max(size, adapter->size());
                    norm = norm || adapter->norm.has_value();
                    if (training) adapter_scratch = std::max(adapter_scratch, adapter_scratch_size(*adapter, rows));
                }
            if (size == 0) return;
            take(projected, rows * C);
            if (norm) {
                take(kept.normed, rows * C);
                take(kept.mean, rows);
                take(kept.rstd, rows);
            }
            take(kept.hidden, rows * size);
        };
        take_adapter(&transformer_block::attention_adapter, a.attention_projected, a.attention_adapter);
        take_adapter(&transformer_block::mlp_adapter, a.mlp_projected, a.mlp_adapter);
        auto linears = block.linears();
        for (std::size_t l = 0; l < linears.size(); ++l) {
            std::vector<std::size_t> ranks;
            for (transformer_block& served : blocks_served) {
                const auto& branches = served.linears()[l]->lora;
                ranks.resize(std::max(ranks.size(), branches.size()), 0);
                for (std::size_t b = 0; b < branches.size(); ++b) ranks[b] = std::max(ranks[b], branches[b].rank());
            }
            auto& buffers = a.lora.emplace_back(ranks.size(), nullptr);
            for (std::size_t b = 0; b < ranks.size(); ++b) take(buffers[b], rows * ranks[b]);
        }
    }
    outputs_.assign(layers + 1, nullptr);
    std::size_t distinct_outputs = training ? layers + 1 : 2;  // inference: ping-pong
    std::vector<float*> output_buffers(distinct_outputs);
    for (auto& buffer : output_buffers) take(buffer, rows * C);
    if (training) {
        take(wide_gradient_, rows * std::max(C, inner));
        take(narrow_gradient_, rows * C);
        take(qkv_gradient_, rows * 3 * C);
        if (adapter_scratch > 0) {
            take(adapter_gradient_, rows * C);
            take(adapter_scratch_, adapter_scratch);
        }
    }
    if (arena_.size() < total) arena_.resize(total);
    for (auto [pointer, offset] : plan) *pointer = arena_.data() + offset;
    for (block_activations& a : activations_) {
        if (!a.attention) a.attention = shared.attention;
        if (!a.ln2) a.ln2 = shared.ln2;
        if (!a.activated) a.activated = shared.activated;
    }
    for (std::size_t i = 0; i <= layers; ++i) outputs_[i] = output_buffers[training ? i : i % 2];
}

float* transformer_stack::input(std::size_t batch, std::size_t time, bool training) {
    batch_ = batch;
    time_ = time;
    training_ = training;
    allocate(batch, time, training);
    return outputs_[0];
}

const float* transformer_stack::forward(const std::int32_t* lengths, std::uint64_t dropout_seed) {
    lengths_ = lengths;
    dropout_seed_ = dropout_seed;
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
        replace_input(i, outputs_[i]);
        forward_block(i, outputs_[i], outputs_[i + 1]);
    }
    return outputs_.back();
}

void transformer_stack::replace_input(std::size_t index, float* x) const {
    const transformer_block& block = blocks_[index];
    if (!block.prefix && !block.infix) return;
    const std::size_t C = config_.width;
    for (const replaced_row& replaced : replaced_) {
        const parameter* table = replaced.infix ? block.infix : block.prefix;
        copy(table->value + replaced.index * C, x + replaced.row * C, C);
    }
}

// d: the gradient of block `index`'s input. A replaced row's goes to its vector, in the
// order of the rows (the same sums whatever the thread count), and no further down.
void transformer_stack::replaced_gradient(std::size_t index, float* d) const {
    const transformer_block& block = blocks_[index];
    if (!block.prefix && !block.infix) return;
    const std::size_t C = config_.width;
    for (const replaced_row& replaced : replaced_) {
        const parameter* table = replaced.infix ? block.infix : block.prefix;
        float* row = d + replaced.row * C;
        if (table->gradient)
            for (std::size_t j = 0; j < C; ++j) table->gradient[replaced.index * C + j] += row[j];
        zero(row, C);
    }
}

namespace {

// The module a linear layer belongs to: "transformer.h.0.attn" for "transformer.h.0.attn.c_proj".
std::string parent_module(const linear& layer) {
    const std::string& name = layer.weight->name;
    std::string module = name.substr(0, name.rfind('.'));  // without ".weight"
    return module.substr(0, module.rfind('.'));
}

}  // namespace

void transformer_stack::add_adapters(parameter_set& parameters, adapter_placement placement, std::size_t size) {
    const std::size_t C = config_.width;
    for (transformer_block& block : blocks_) {
        if (placement == adapter_placement::houlsby)
            block.attention_adapter =
                declare_adapter(parameters, parent_module(block.attention_output), C, size, false, config_.epsilon);
        block.mlp_adapter = declare_adapter(parameters, parent_module(block.fc2), C, size,
                                            placement == adapter_placement::lin, config_.epsilon);
    }
}

void transformer_stack::add_prefix(parameter_set& parameters, std::size_t prefix, std::size_t infix,
                                   bool every_block) {
    const std::size_t C = config_.width;
    for (std::size_t i = 0; i < (every_block ? blocks_.size() : std::min<std::size_t>(1, blocks_.size())); ++i) {
        transformer_block& block = blocks_[i];
        // The block's own name: its first LayerNorm's without the last component.
        const std::string& norm = block.ln1.weight->name;
        std::string module = norm.substr(0, norm.rfind('.'));
        module = module.substr(0, module.rfind('.'));
        if (prefix > 0) block.prefix = &parameters.add(module + ".prefix", {prefix, C}, false);
        if (infix > 0) block.infix = &parameters.add(module + ".infix", {infix, C}, false);
    }
}

namespace {

// The LoRA state of linear `index` of a block: its hidden buffers, its dropout seed, and
// the routes of the batch's items (`time` rows each).
linear_state lora_state(const std::vector<std::vector<float*>>& lora, std::size_t block, std::size_t index,
                        std::uint64_t seed, std::span<const item_range> routes, std::size_t time) {
    std::uint64_t mixed = seed == 0 ? 0 : seed ^ (0x9E3779B97F4A7C15ull * (block * 16 + index + 1));
    return {lora[index], mixed, routes, time};
}

}  // namespace

void transformer_stack::forward_block(std::size_t index, const float* x, float* out) {
    transformer_block& block = blocks_[index];
    block_activations& a = activations_[training_ ? index : 0];
    const std::size_t rows = batch_ * time_, C = config_.width, inner = config_.inner;
    auto state = [&](std::size_t linear_index) {
        return lora_state(a.lora, index, linear_index, dropout_seed_, routes_, time_);
    };
    const std::size_t output_index = block.fused() ? 1 : 3;  // linears(): qkv or q,k,v first
    attention_shape shape{batch_, time_, config_.heads, config_.head_dim(), options_.causal, lengths_,
                          1.0f / std::sqrt(static_cast<float>(config_.head_dim()))};

    // The attention half: x (pre-LN: LN1(x)) -> qkv -> attention -> residual = x + projection
    const float* attention_input = x;
    if (options_.pre_norm) {
        layer_norm_forward(block.ln1, x, rows, a.ln1, a.ln1_mean, a.ln1_rstd);
        attention_input = a.ln1;
    }
    if (block.fused()) {
        linear_forward(block.qkv, attention_input, rows, a.qkv, 3 * C, false, state(0));
    } else {
        linear_forward(block.q, attention_input, rows, a.qkv, 3 * C, false, state(0));
        linear_forward(block.k, attention_input, rows, a.qkv + C, 3 * C, false, state(1));
        linear_forward(block.v, attention_input, rows, a.qkv + 2 * C, 3 * C, false, state(2));
    }
    if (cache_) {
        shape.time = cache_->capacity;
        attention_decode(shape, a.qkv, positions_, cache_->keys[index].data(), cache_->values[index].data(),
                         a.attention);
    } else {
        attention_forward(shape, a.qkv, a.probabilities, a.attention);
    }
    copy(x, a.residual, rows * C);
    if (block.attention_adapter) {
        linear_forward(block.attention_output, a.attention, rows, a.attention_projected, C, false,
                       state(output_index));
        adapter_forward(*block.attention_adapter, a.attention_projected, rows, a.residual, a.attention_adapter);
    } else {
        linear_forward(block.attention_output, a.attention, rows, a.residual, C, true, state(output_index));
    }

    // The MLP half: pre-LN: out = residual + MLP(LN2(residual)); post-LN: r = LN1(residual),
    // out = LN2(r + MLP(r)).
    const float* mlp_input = a.residual;
    float* sum = out;
    if (options_.pre_norm) {
        layer_norm_forward(block.ln2, a.residual, rows, a.ln2, a.ln2_mean, a.ln2_rstd);
        mlp_input = a.ln2;
        copy(a.residual, out, rows * C);
    } else {
        layer_norm_forward(block.ln1, a.residual, rows, a.ln1, a.ln1_mean, a.ln1_rstd);
        mlp_input = a.ln1;
        copy(a.ln1, a.mlp_sum, rows * C);
        sum = a.mlp_sum;
    }
    linear_forward(block.fc1, mlp_input, rows, a.hidden, inner, false, state(output_index + 1));
    activation_forward(config_.act, a.hidden, a.activated, rows * inner);
    if (block.mlp_adapter) {
        linear_forward(block.fc2, a.activated, rows, a.mlp_projected, C, false, state(output_index + 2));
        adapter_forward(*block.mlp_adapter, a.mlp_projected, rows, sum, a.mlp_adapter);
    } else {
        linear_forward(block.fc2, a.activated, rows, sum, C, true, state(output_index + 2));
    }
    if (!options_.pre_norm) layer_norm_forward(block.ln2, a.mlp_sum, rows, out, a.ln2_mean, a.ln2_rstd);
}

void transformer_stack::start_decoding(kv_cache& cache, std::size_t batch, std::size_t capacity) const {
    if (!options_.causal || !options_.pre_norm)
        throw std::logic_error("incremental decoding needs a causal pre-LN stack");
    cache.batch = batch;
    cache.capacity = capacity;
    cache.keys.assign(blocks_.size(), large_vector<float>(batch * capacity * config_.width));
    cache.values.assign(blocks_.size(), large_vector<float>(batch * capacity * config_.width));
}

const float* transformer_stack::decode(kv_cache& cache, const std::int32_t* positions) {
    if (training_ || time_ != 1 || batch_ != cache.batch)
        throw std::logic_error("transformer_stack::decode needs input(cache.batch, 1, false)");
    cache_ = &cache;
    positions_ = positions;
    if (!replaced_.empty()) throw std::logic_error("transformer_stack::decode with replaced rows");
    lengths_ = nullptr;
    dropout_seed_ = 0;
    for (std::size_t i = 0; i < blocks_.size(); ++i) forward_block(i, outputs_[i], outputs_[i + 1]);
    cache_ = nullptr;
    return outputs_.back();
}

void transformer_stack::backward(float* d_output, bool input_gradient) {
    if (!training_) throw std::logic_error("transformer_stack::backward after a forward pass without training");
    for (std::size_t i = blocks_.size(); i-- > 0;) {
        bool replaced = blocks_[i].prefix || blocks_[i].infix;
        backward_block(i, d_output, input_gradient || i > 0 || replaced);
        replaced_gradient(i, d_output);
    }
}

// d: the gradient of the block's output on entry, of its input on return (unless
// !input_gradient: then only parameter gradients are computed past the attention).
void transformer_stack::backward_block(std::size_t index, float* d, bool input_gradient) {
    transformer_block& block = blocks_[index];
    block_activations& a = activations_[index];
    const float* x = outputs_[index];
    const std::size_t rows = batch_ * time_, C = config_.width, inner = config_.inner;
    auto state = [&](std::size_t linear_index) {
        return lora_state(a.lora, index, linear_index, dropout_seed_, routes_, time_);
    };
    const std::size_t output_index = block.fused() ? 1 : 3;
    attention_shape shape{batch_, time_, config_.heads, config_.head_dim(), options_.causal, lengths_,
                          1.0f / std::sqrt(static_cast<float>(config_.head_dim()))};

    // The MLP half. Pre-LN: d stays the residual's gradient and gains LN2's.
    // Post-LN: d becomes the gradient of r = LN1(residual).
    const float* d_sum = d;
    if (!options_.pre_norm) {
        zero(narrow_gradient_, rows * C);
        layer_norm_backward(block.ln2, a.mlp_sum, a.ln2_mean, a.ln2_rstd, d, rows, narrow_gradient_);
        copy(narrow_gradient_, d, rows * C);  // r reaches the output through the residual too
        d_sum = narrow_gradient_;
    }
    if (block.mlp_adapter) {
        adapter_backward(*block.mlp_adapter, a.mlp_projected, rows, d_sum, adapter_gradient_, a.mlp_adapter,
                         adapter_scratch_);
        d_sum = adapter_gradient_;
    }
    float* d_activated = wide_gradient_;
    zero(d_activated, rows * inner);
    linear_backward(block.fc2, a.activated, rows, d_sum, C, d_activated, state(output_index + 2));
    activation_backward(config_.act, a.hidden, d_activated, d_activated, rows * inner);
    if (options_.pre_norm) {
        zero(narrow_gradient_, rows * C);
        linear_backward(block.fc1, a.ln2, rows, d_activated, inner, narrow_gradient_, state(output_index + 1));
        layer_norm_backward(block.ln2, a.residual, a.ln2_mean, a.ln2_rstd, narrow_gradient_, rows, d);
    } else {
        linear_backward(block.fc1, a.ln1, rows, d_activated, inner, d, state(output_index + 1));
        zero(narrow_gradient_, rows * C);
        layer_norm_backward(block.ln1, a.residual, a.ln1_mean, a.ln1_rstd, d, rows, narrow_gradient_);
        copy(narrow_gradient_, d, rows * C);
    }

    // The attention half: d is the residual's gradient; it flows to x directly and through
    // the projection, attention, and q/k/v (pre-LN: and LN1).
    float* d_attention = wide_gradient_;
    zero(d_attention, rows * C);
    const float* d_projected = d;
    if (block.attention_adapter) {
        adapter_backward(*block.attention_adapter, a.attention_projected, rows, d, adapter_gradient_,
                         a.attention_adapter, adapter_scratch_);
        d_projected = adapter_gradient_;
    }
    linear_backward(block.attention_output, a.attention, rows, d_projected, C, d_attention, state(output_index));
    attention_backward(shape, a.qkv, a.probabilities, d_attention, qkv_gradient_);
    const float* attention_input = options_.pre_norm ? a.ln1 : x;
    float* d_input = d;
    if (options_.pre_norm) {
        // LN1's weights need the gradient of its output when they train
        bool needed = input_gradient || block.ln1.weight->trainable || block.ln1.bias->trainable;
        d_input = needed ? narrow_gradient_ : nullptr;
        if (d_input) zero(d_input, rows * C);
    }
    if (block.fused()) {
        linear_backward(block.qkv, attention_input, rows, qkv_gradient_, 3 * C, d_input, state(0));
    } else {
        linear_backward(block.q, attention_input, rows, qkv_gradient_, 3 * C, d_input, state(0));
        linear_backward(block.k, attention_input, rows, qkv_gradient_ + C, 3 * C, d_input, state(1));
        linear_backward(block.v, attention_input, rows, qkv_gradient_ + 2 * C, 3 * C, d_input, state(2));
    }
    if (options_.pre_norm && d_input)
        layer_norm_backward(block.ln1, x, a.ln1_mean, a.ln1_rstd, d_input, rows, input_gradient ? d : nullptr);
}

}  // namespace lowrank
