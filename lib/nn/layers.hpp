// The layers of the transformers, each a pair of functions as in llm.c: `<layer>_forward`
// computes the output and keeps what the backward pass needs in buffers the caller owns;
// `<layer>_backward` takes the gradient of the output and adds the gradients of the inputs
// and of the trainable parameters (parameter gradients always accumulate: `+=`; a frozen
// parameter has no gradient buffer and gets nothing). Shapes are in the comments:
// B batch, T time (tokens or patches), C width, rows = B·T.
//
// Every function splits its rows over thread_count() threads; reductions over rows (the
// gradients of LayerNorm's γ and β, of biases) are summed per block of rows and the blocks
// added in order, so results depend only on the inputs and the thread count.
#pragma once

#include "nn/parameters.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace lowrank {

// ------------------------------------------------------------------------------ LayerNorm
// y = γ ⊙ (x − μ) / σ + β over the last dimension; σ = sqrt(var + ε), biased variance.
struct layer_norm {
    parameter* weight = nullptr;  // γ: (C)
    parameter* bias = nullptr;    // β: (C)
    float epsilon = 1e-5f;
};

// x: (rows, C) -> y: (rows, C); mean, rstd: (rows), kept for the backward pass.
void layer_norm_forward(const layer_norm& norm, const float* x, std::size_t rows, float* y, float* mean, float* rstd);
// dy: (rows, C) -> dx: (rows, C) +=; dγ, dβ +=.
void layer_norm_backward(const layer_norm& norm, const float* x, const float* mean, const float* rstd,
                         const float* dy, std::size_t rows, float* dx);

// ----------------------------------------------------------------------------- Activations
enum class activation {
    gelu,        // x·Φ(x), Φ the normal CDF (exact, with erf): Hugging Face "gelu"
    gelu_tanh,   // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): "gelu_new", GPT-2's
    quick_gelu,  // x·σ(1.702·x): CLIP's
};

// Hugging Face's `activation_function` / `hidden_act` names; nothing for an unknown one.
std::optional<activation> activation_from_name(std::string_view name);
std::string_view activation_name(activation kind);

// x: (count) -> y: (count). y may be x.
void activation_forward(activation kind, const float* x, float* y, std::size_t count);
// dx = dy ⊙ f'(x) (written, not added; dx may be dy).
void activation_backward(activation kind, const float* x, const float* dy, float* dx, std::size_t count);

// ----------------------------------------------------------------------- Linear with LoRA
// y = x·Wᵀ + b (nn.Linear, W stored (out, in)) or y = x·W + b (GPT-2's Conv1D, W stored
// (in, out)), plus optional low-rank branches (LoRA): y[:, slice] += s · B · A · drop(x),
// with A: (r, in), B: (width, r), s = alpha / r. A branch adds to a slice of the output
// columns, so that LoRA can sit on the q and v parts of a fused q/k/v projection.
enum class weight_layout {
    out_in,  // nn.Linear: (out, in)
    in_out,  // GPT-2's Conv1D: (in, out)
};

struct lora_branch {
    static constexpr std::size_t every_row = SIZE_MAX;

    parameter* a = nullptr;  // A: (r, in)
    parameter* b = nullptr;  // B: (width, r)
    float scale = 1;         // alpha / r, or alpha / √r (rsLoRA)
    float dropout = 0;       // probability of dropping an input element, in training
    std::size_t column = 0;  // first output column the branch adds to
    // The rows it adds to: every row, or, for one of several adapters serving one batch,
    // the rows of route number `route` (linear_state::routes).
    std::size_t route = every_row;

    std::size_t rank() const { return a->shape[0]; }
    std::size_t width() const { return b->shape[0]; }
};

struct linear {
    parameter* weight = nullptr;
    parameter* bias = nullptr;  // (out), or none
    std::size_t in = 0, out = 0;
    weight_layout layout = weight_layout::out_in;
    std::vector<lora_branch> lora;
};

// The items of a batch (sequences, images) that one route serves: [begin, end). A batch
// served by several adapters is put in route order, so that each route's rows follow one
// another and its branches' products are matrix products over that slice of rows.
struct item_range {
    std::size_t begin = 0, end = 0;
};

// What one call of a linear layer keeps for its backward pass: each LoRA branch's x·Aᵀ,
// (rows, r), in buffers the caller provides; and the seed of its dropout mask (0: no
// dropout, as at inference). The mask is recomputed from the seed in the backward pass
// rather than stored. A routed branch adds only to the rows of its route: items
// routes[route], each item_rows rows of x (a sequence's tokens, an image's patches).
struct linear_state {
    std::span<float* const> lora_hidden = {};
    std::uint64_t dropout_seed = 0;
    std::span<const item_range> routes = {};
    std::size_t item_rows = 1;
};

// x: (rows, in) -> y: (rows, out), rows y_stride apart; y = ... or, with accumulate, y += ...
void linear_forward(const linear& layer, const float* x, std::size_t rows, float* y, std::size_t y_stride,
                    bool accumulate, const linear_state& state);
// dy: (rows, out), rows dy_stride apart -> dx: (rows, in) += (nullptr: not wanted);
// dW, db, dA, dB += for those that train.
void linear_backward(const linear& layer, const float* x, std::size_t rows, const float* dy, std::size_t dy_stride,
                     float* dx, const linear_state& state);

// The rows of a call that a branch adds to: [first, first + count), all of them or those of
// its route's items.
struct row_slice {
    std::size_t first = 0, count = 0;
};
row_slice lora_rows(const lora_branch& branch, std::size_t rows, const linear_state& state);

// ------------------------------------------------------------------------------ Embedding
// ids: (rows) -> y: (rows, C) = table[ids] (or += with accumulate: position embeddings
// added to token embeddings). Ids must be in range (the models check their inputs).
void embedding_forward(const parameter& table, const std::int32_t* ids, std::size_t rows, float* y, bool accumulate);
// dtable[ids[r]] += dy[r]. Each row of the table sums its rows of dy in order, whatever the
// thread count.
void embedding_backward(const parameter& table, const std::int32_t* ids, std::size_t rows, const float* dy);

// A token embedding with LoRA branches (PEFT's LoRA on nn.Embedding):
//   y = table[ids] + s · Aᵀ[ids] · Bᵀ,  table: (entries, C), A: (r, entries), B: (C, r)
// A branch's column is 0 and it has no dropout (ids have none); routed branches add to their
// route's rows only, as on linear layers. PEFT starts A at 0 and B random (initialize_embedding_lora).
struct embedding {
    parameter* table = nullptr;
    std::vector<lora_branch> lora;

    // Whether anything of it trains: the table or a branch (its input gradient is then needed).
    bool trains() const;
};

// ids: (rows) -> y: (rows, C) = table[ids] + the branches. state: the routes and item_rows
// of routed branches (nothing is kept for the backward pass, which looks A's columns up again).
void embedding_forward(const embedding& layer, const std::int32_t* ids, std::size_t rows, float* y,
                       const linear_state& state);
// dy: (rows, C) -> dtable, dA, dB += for those that train.
void embedding_backward(const embedding& layer, const std::int32_t* ids, std::size_t rows, const float* dy,
                        const linear_state& state);

// ------------------------------------------------------------------------ L2 normalisation
// x: (rows, C) -> y = x / ‖x‖ per row; norms: (rows), kept for the backward pass.
void l2_normalize_forward(const float* x, std::size_t rows, std::size_t width, float* y, float* norms);
// dy: (rows, C) -> dx += (dy − y·(y·dy)) / ‖x‖
void l2_normalize_backward(const float* y, const float* norms, const float* dy, std::size_t rows, std::size_t width,
                           float* dx);

// ------------------------------------------------------------------------------ Attention
// Multi-head scaled dot-product attention on a fused q/k/v buffer. Each head h owns
// columns h·D..h·D+D−1 of q, of k and of v (D = head_dim). Scores q·kᵀ·scale; with causal,
// query t sees keys 0..t; with lengths, keys at positions ≥ lengths[b] are padding and seen
// by no query. A query that sees no key outputs zeros.
struct attention_shape {
    std::size_t batch = 0, time = 0, heads = 0, head_dim = 0;
    bool causal = false;
    const std::int32_t* lengths = nullptr;  // (B), or null: no padding
    float scale = 1;                         // usually 1/√head_dim

    std::size_t width() const { return heads * head_dim; }
};

// qkv: (B, T, 3C), each row [q | k | v] -> y: (B, T, C);
// probabilities: (B, heads, T, T), the softmax weights, kept for the backward pass.
void attention_forward(const attention_shape& shape, const float* qkv, float* probabilities, float* y);
// dy: (B, T, C) -> dqkv: (B, T, 3C), written (not added).
void attention_backward(const attention_shape& shape, const float* qkv, const float* probabilities, const float* dy,
                        float* dqkv);

// Incremental decoding: one new query per row against the keys and values of the row's
// earlier positions and its own. qkv: (B, 3C), the new tokens' projections, whose k and v
// are stored at positions[b] of keys, values: (B, capacity, C) first; query b then sees
// positions 0..positions[b]. -> y: (B, C). shape.time is the capacity.
void attention_decode(const attention_shape& shape, const float* qkv, const std::int32_t* positions, float* keys,
                      float* values, float* y);

}  // namespace lowrank
