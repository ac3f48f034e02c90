// GPT-2 with Hugging Face's names: GPT2LMHeadModel (tied LM head) or
// GPT2ForSequenceClassification (`score`, pooled at the last token that is not padding).
//
//   x = wte[ids] + wpe[0..T−1];  x = blocks(x)  (pre-LN, causal, fused c_attn in Conv1D
//   layout, gelu_new);  h = ln_f(x);  logits = h·wteᵀ  or  score(h[b, last_b])
//
// A pass: forward() to the final hidden states h, then a head on h: lm_loss() (fused with
// its gradient), lm_logits(), or score_forward()/score_backward(); then backward() with the
// gradient of h.
//
// Prefix tuning (add_prefix): each row of ids runs as [prefix][x[0:s]][infix][x[s:T]]
// (T + l_p + l_i positions; s = where the infix goes, by default after the row's tokens),
// the prefix and infix rows of the block inputs replaced by trained vectors. h keeps the
// shape of the ids: h[b, t] is the output at token t, except that the last token before the
// infix takes the output at the infix's end (which has read the infix, and predicts the
// token after it, or is what the classification head pools).
#pragma once

#include "nn/config.hpp"
#include "nn/loss.hpp"
#include "nn/transformer.hpp"

#include <cstdint>
#include <memory>
#include <span>

namespace lowrank {

class gpt2_model {
public:
    // Declares the parameters (frozen until a training method marks them).
    explicit gpt2_model(const model_config& config);
    gpt2_model(const gpt2_model&) = delete;
    gpt2_model& operator=(const gpt2_model&) = delete;

    const model_config& config() const { return config_; }
    parameter_set& parameters() { return parameters_; }
    transformer_stack& stack() { return stack_; }
    std::size_t width() const { return config_.text.transformer.width; }

    // Hugging Face's initialisation: normal(0, initializer_range) for the embeddings and
    // the linear layers, normal(0, initializer_range/√(2·n_layer)) for the c_proj weights,
    // zero biases, LayerNorm 1 and 0. Each parameter draws from its own stream of `seed`.
    void initialize(std::uint64_t seed);

    // ids: (batch, time), every id < vocab_size, time ≤ n_positions; lengths: (batch) tokens
    // before the padding (null: no padding). Returns h: (batch, time, C), valid until the
    // next forward(). With training, keeps what backward() needs.
    // With prefix vectors, infix_at: (batch) where each row's infix goes (null: at lengths).
    const float* forward(const std::int32_t* ids, std::size_t batch, std::size_t time, const std::int32_t* lengths,
                         bool training, std::uint64_t dropout_seed = 0, const std::int32_t* infix_at = nullptr);
    // d_hidden: (batch, time, C), the gradient of h (overwritten).
    void backward(float* d_hidden);

    // Incremental decoding, one token per row (for generation): tokens and positions (batch)
    // -> h: (batch, C) after ln_f. The cache is the stack's (transformer_stack::start_decoding).
    const float* decode(kv_cache& cache, const std::int32_t* tokens, const std::int32_t* positions);

    // logits = h·wteᵀ: (rows, vocab).
    void lm_logits(const float* hidden, std::size_t rows, float* logits);
    // Cross-entropy of the LM head's logits against targets (rows; ignore_index counts for
    // nothing), computed a block of rows at a time without keeping the logits. With
    // d_hidden, adds scale · its gradient there (and to wte's gradient, when it trains).
    cross_entropy_result lm_loss(const float* hidden, const std::int32_t* targets, std::size_t rows,
                                 float* d_hidden, float scale);

    // The sequence-classification head: logits (batch, labels) = score(h[b, lengths[b] − 1])
    // (the last position when lengths is null).
    void score_forward(const float* hidden, std::size_t batch, std::size_t time, const std::int32_t* lengths,
                       float* logits);
    // d_logits: (batch, labels) -> d_hidden (batch, time, C) += at the pooled positions.
    void score_backward(const float* hidden, std::size_t batch, std::size_t time, const std::int32_t* lengths,
                        const float* d_logits, float* d_hidden);

    // wte, with its LoRA branches (nn/lora.hpp: add_embedding_lora), if any.
    embedding& token_embedding() { return wte_; }
    parameter& position_embedding() { return *wpe_; }
    // The classification head (score.weight), or null for an LM.
    parameter* score() { return score_; }

    // Declares prefix vectors (transformer_stack::add_prefix): for the first block only
    // (prefix-embedding tuning) or for every block (prefix-layer tuning).
    void add_prefix(std::size_t prefix, std::size_t infix, bool every_block);
    std::size_t prefix_length() const { return prefix_length_; }
    std::size_t infix_length() const { return infix_length_; }

private:
    model_config config_;
    parameter_set parameters_;
    embedding wte_;
    parameter *wpe_ = nullptr, *score_ = nullptr;
    transformer_stack stack_;
    layer_norm final_norm_;
    // Lays out the rows with their prefix and infix (see above).
    void extend_rows(const std::int32_t* ids, std::size_t batch, std::size_t time, const std::int32_t* lengths,
                     const std::int32_t* infix_at);

    // What backward() needs: the ids and positions, ln_f's input statistics and output.
    std::vector<std::int32_t> ids_, positions_;
    large_vector<float> hidden_, mean_, rstd_, d_stack_, gathered_, d_gathered_;
    const float* stack_output_ = nullptr;  // ln_f's input
    std::size_t rows_ = 0, stack_rows_ = 0, stack_time_ = 0;
    // Prefix tuning: the vectors' lengths; the rows of the extended pass that h is taken from.
    std::size_t prefix_length_ = 0, infix_length_ = 0;
    std::vector<std::size_t> gathered_rows_;
    std::vector<std::int32_t> extended_ids_, extended_lengths_;
};

// Checks token ids for a GPT-2-shaped model: every id in [0, vocab_size), time ≤ the
// maximum positions. `source` names the input in the error.
void check_token_ids(std::span<const std::int32_t> ids, std::size_t time, const text_tower_config& config,
                     std::string_view source);

// Per row, the count of tokens up to and including the last one that is not `pad_id`
// (right padding); with no pad id, the full time.
std::vector<std::int32_t> token_lengths(std::span<const std::int32_t> ids, std::size_t time,
                                        std::optional<std::int32_t> pad_id);

}  // namespace lowrank
