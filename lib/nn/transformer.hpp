// A stack of transformer blocks: the part GPT-2, the CLIP text tower and the CLIP vision
// tower share. A block is
//   pre-LN (GPT-2, CLIP):  x = x + Attn(LN1(x));   x = x + MLP(LN2(x))
//   post-LN (BERT):        x = LN1(x + Attn(x));   x = LN2(x + MLP(x))
// with MLP(x) = fc2(act(fc1(x))) and Attn the multi-head self-attention of layers.hpp
// behind a fused q/k/v projection (GPT-2's c_attn) or three separate ones (CLIP's
// q_proj, k_proj, v_proj) and an output projection.
//
// The stack owns the activations of a pass: in training, every block keeps what its
// backward pass needs (and no more: the input of a linear layer is kept only when its
// weight trains or it has LoRA branches); for inference, one block's worth is reused by
// every block.
#pragma once

#include "core/memory.hpp"
#include "nn/adapter.hpp"
#include "nn/config.hpp"
#include "nn/layers.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lowrank {

// How an architecture names a block's parameters: "{}" is the block's number.
struct block_names {
    std::string prefix;  // "transformer.h.{}." or "text_model.encoder.layers.{}."
    std::string ln1, ln2;
    std::string qkv;      // the fused projection (GPT-2: "attn.c_attn"), or empty:
    std::string q, k, v;  // separate projections (CLIP: "self_attn.q_proj"...)
    std::string attention_output, fc1, fc2;
    weight_layout layout = weight_layout::out_in;
};

struct transformer_block {
    layer_norm ln1, ln2;
    linear qkv;      // fused: (C -> 3C); unused (no weight) with separate projections
    linear q, k, v;  // separate: (C -> C) each
    linear attention_output, fc1, fc2;
    // Bottleneck adapters on the attention's and the MLP's outputs (nn/adapter.hpp), if any.
    std::optional<bottleneck_adapter> attention_adapter, mlp_adapter;
    // Prefix tuning: trained vectors that replace rows of the block's input (see
    // transformer_stack::replace_rows): (prefix length, C) and (infix length, C), or none.
    parameter *prefix = nullptr, *infix = nullptr;

    bool fused() const { return qkv.weight != nullptr; }
    // Every linear layer of the block, for walking them (LoRA, counting).
    std::vector<linear*> linears();
};

// The keys and values of the positions decoded so far, per block: (batch, capacity, C) each.
struct kv_cache {
    std::size_t batch = 0, capacity = 0;
    std::vector<large_vector<float>> keys, values;
};

// A row of a pass whose input to every block that has prefix vectors is replaced by one of
// them: row `row` (of batch·time) takes row `index` of the block's prefix or infix table.
struct replaced_row {
    std::size_t row = 0, index = 0;
    bool infix = false;
};

enum class adapter_placement {
    houlsby,  // after the attention projection and after the MLP
    lin,      // after the MLP, with a LayerNorm of its own
};

struct stack_options {
    bool causal = false;
    bool pre_norm = true;
};

class transformer_stack {
public:
    // Declares the blocks' parameters in `parameters` (LayerNorm weights and all biases
    // without weight decay).
    transformer_stack(parameter_set& parameters, const transformer_config& config, const block_names& names,
                      stack_options options);

    std::vector<transformer_block>& blocks() { return blocks_; }
    const transformer_config& config() const { return config_; }

    // Declares bottleneck adapters of `size` in every block, named after the sub-layer they
    // follow ("transformer.h.0.attn.adapter.down.weight"). Before allocation.
    void add_adapters(parameter_set& parameters, adapter_placement placement, std::size_t size);
    // Declares prefix vectors ("<block>.prefix" (prefix, C), "<block>.infix" (infix, C); a
    // length of 0 declares none) for the first block only (prefix-embedding tuning: they
    // replace the embeddings) or for every block (prefix-layer tuning). Before allocation.
    void add_prefix(parameter_set& parameters, std::size_t prefix, std::size_t infix, bool every_block);
    // The rows whose block inputs the next passes replace (empty: none). The gradient of a
    // replaced row goes to its vector and stops there.
    void replace_rows(std::vector<replaced_row> rows) { replaced_ = std::move(rows); }

    // Prepares the activation buffers for a pass over (batch, time) rows; `training` keeps
    // every block's activations for backward(). Returns where the caller writes the input
    // (batch, time, C).
    float* input(std::size_t batch, std::size_t time, bool training);
    // Runs the blocks over the input; returns the output (batch, time, C), valid until the
    // next input(). lengths: (batch) valid tokens per row (keys beyond are padding), or
    // null. dropout_seed seeds the LoRA dropout masks (0: none).
    const float* forward(const std::int32_t* lengths, std::uint64_t dropout_seed = 0);
    // d_output: (batch, time, C), the gradient of the output; it is overwritten with the
    // gradient of the input, unless input_gradient is false (nothing below the stack trains:
    // the first block then skips what only that gradient needs). Parameter gradients are
    // added.
    void backward(float* d_output, bool input_gradient = true);

    // Several adapters serving one batch: a routed LoRA branch (lora_branch::route) adds
    // only to the items of the batch routes[route] covers, in every later pass (forward,
    // backward, decode) until routes change. Empty: no routes.
    void set_routes(std::span<const item_range> routes) { routes_.assign(routes.begin(), routes.end()); }
    std::span<const item_range> routes() const { return routes_; }

    // Incremental decoding (causal stacks, inference): one new token per row at a time,
    // attending to the keys and values the cache holds for the row's earlier positions.
    // Start with an empty cache for (batch, capacity positions); then, per step, write the
    // new tokens' inputs at input(batch, 1, false) and call decode() with each row's position.
    void start_decoding(kv_cache& cache, std::size_t batch, std::size_t capacity) const;
    const float* decode(kv_cache& cache, const std::int32_t* positions);

private:
    // One block's activations (pointers into arena_; in inference every block shares one).
    struct block_activations {
        float *ln1 = nullptr, *ln1_mean = nullptr, *ln1_rstd = nullptr;
        float* qkv = nullptr;            // (rows, 3C)
        float* probabilities = nullptr;  // (B, heads, T, T)
        float* attention = nullptr;      // (rows, C), before the output projection
        float* residual = nullptr;       // (rows, C): x + attention projected
        float *ln2 = nullptr, *ln2_mean = nullptr, *ln2_rstd = nullptr;
        float* hidden = nullptr;     // (rows, inner): fc1's output
        float* activated = nullptr;  // (rows, inner): act(hidden)
        float* mlp_sum = nullptr;    // post-LN: LN2's input
        // Adapters: their input, the sub-layer's output (rows, C), and what they keep.
        float *attention_projected = nullptr, *mlp_projected = nullptr;
        adapter_activations attention_adapter, mlp_adapter;
        std::vector<std::vector<float*>> lora;  // per linear (linears() order), per branch: (rows, r)
    };

    void allocate(std::size_t batch, std::size_t time, bool training);
    void forward_block(std::size_t index, const float* x, float* out);
    void backward_block(std::size_t index, float* d, bool input_gradient);
    void replace_input(std::size_t index, float* x) const;
    void replaced_gradient(std::size_t index, float* d) const;

    transformer_config config_;
    stack_options options_;
    std::vector<transformer_block> blocks_;
    std::vector<block_activations> activations_;
    large_vector<float> arena_;
    std::vector<float*> outputs_;  // input of block i = outputs_[i]; outputs_[layers] = output
    std::size_t batch_ = 0, time_ = 0;
    bool training_ = false;
    const std::int32_t* lengths_ = nullptr;
    std::uint64_t dropout_seed_ = 0;
    std::vector<item_range> routes_;
    std::vector<replaced_row> replaced_;
    kv_cache* cache_ = nullptr;                 // while decoding
    const std::int32_t* positions_ = nullptr;  // while decoding
    // Gradient scratch for the backward pass: (rows, max(C, inner)), (rows, C), (rows, 3C).
    float *wide_gradient_ = nullptr, *narrow_gradient_ = nullptr, *qkv_gradient_ = nullptr;
    // For adapters: the gradient of an adapter's input (rows, C), and adapter_backward's scratch.
    float *adapter_gradient_ = nullptr, *adapter_scratch_ = nullptr;
};

}  // namespace lowrank
