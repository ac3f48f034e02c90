#include "nn/gpt2.hpp"

#include "core/error.hpp"
#include "nn/matmul.hpp"
#include "nn/partition.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace lowrank {
namespace {

block_names gpt2_block_names() {
    block_names names;
    names.prefix = "transformer.h.{}.";
    names.ln1 = "ln_1";
    names.ln2 = "ln_2";
    names.qkv = "attn.c_attn";
    names.attention_output = "attn.c_proj";
    names.fc1 = "mlp.c_fc";
    names.fc2 = "mlp.c_proj";
    names.layout = weight_layout::in_out;
    return names;
}

// The LM head's logits are computed this many at a time (rows × vocabulary floats).
constexpr std::size_t logits_per_block = std::size_t{1} << 22;

}  // namespace

gpt2_model::gpt2_model(const model_config& config)
    : config_(config),
      wte_{&parameters_.add("transformer.wte.weight", {config.text.vocab_size, config.text.transformer.width}), {}},
      wpe_(&parameters_.add("transformer.wpe.weight", {config.text.max_positions, config.text.transformer.width})),
      stack_(parameters_, config.text.transformer, gpt2_block_names(), {.causal = true, .pre_norm = true}) {
    const std::size_t C = width();
    final_norm_ = {&parameters_.add("transformer.ln_f.weight", {C}, false),
                   &parameters_.add("transformer.ln_f.bias", {C}, false), config.text.transformer.epsilon};
    if (config.head != head_kind::language_model) score_ = &parameters_.add("score.weight", {config.label_count(), C});
}

void gpt2_model::initialize(std::uint64_t seed) {
    const float std = config_.initializer_range;
    const float projection_std = std / std::sqrt(2.0f * static_cast<float>(config_.text.transformer.layers));
    std::uint64_t stream = 0;
    for (parameter& p : parameters_) {
        ++stream;
        if (p.name.ends_with(".bias")) {
            fill_constant(p, 0);
        } else if (p.name.find(".ln_") != std::string::npos) {
            fill_constant(p, 1);
        } else {
            fill_normal(p, p.name.ends_with("c_proj.weight") ? projection_std : std, seed, stream);
        }
    }
}

void gpt2_model::add_prefix(std::size_t prefix, std::size_t infix, bool every_block) {
    stack_.add_prefix(parameters_, prefix, infix, every_block);
    prefix_length_ = prefix;
    infix_length_ = infix;
}

void gpt2_model::extend_rows(const std::int32_t* ids, std::size_t batch, std::size_t time,
                             const std::int32_t* lengths, const std::int32_t* infix_at) {
    const std::size_t P = prefix_length_, I = infix_length_, extended = time + P + I;
    extended_ids_.assign(batch * extended, 0);
    extended_lengths_.resize(batch);
    gathered_rows_.resize(batch * time);
    std::vector<replaced_row> replaced;
    for (std::size_t b = 0; b < batch; ++b) {
        const std::size_t length = lengths ? std::min<std::size_t>(static_cast<std::size_t>(lengths[b]), time) : time;
        const std::size_t split =
            std::min<std::size_t>(infix_at ? static_cast<std::size_t>(std::max(infix_at[b], 0)) : length, time);
        const std::size_t row = b * extended;
        for (std::size_t t = 0; t < time; ++t) {
            std::size_t position = t < split ? P + t : P + I + t;
            extended_ids_[row + position] = ids[b * time + t];
            gathered_rows_[b * time + t] = row + (t + 1 == split ? P + split + I - 1 : position);
        }
        for (std::size_t j = 0; j < P; ++j) replaced.push_back({row + j, j, false});
        for (std::size_t j = 0; j < I; ++j) replaced.push_back({row + P + split + j, j, true});
        extended_lengths_[b] = static_cast<std::int32_t>(std::max(length, split) + P + I);
    }
    stack_.replace_rows(std::move(replaced));
}

const float* gpt2_model::forward(const std::int32_t* ids, std::size_t batch, std::size_t time,
                                 const std::int32_t* lengths, bool training, std::uint64_t dropout_seed,
                                 const std::int32_t* infix_at) {
    const bool prefixed = prefix_length_ + infix_length_ > 0;
    const std::size_t stack_time = time + prefix_length_ + infix_length_;
    if (stack_time > config_.text.max_positions) {
        if (!prefixed)
            throw error(fmt::format("{} tokens per row, but the model has {} positions", time,
                                    config_.text.max_positions));
        throw error(fmt::format("{} tokens per row and {} prefix and infix vectors need {} positions, but the model "
                                "has {}", time, prefix_length_ + infix_length_, stack_time,
                                config_.text.max_positions));
    }
    const std::size_t rows = batch * time, C = width();
    rows_ = rows;
    stack_rows_ = batch * stack_time;
    stack_time_ = stack_time;
    if (prefixed) {
        extend_rows(ids, batch, time, lengths, infix_at);
        ids = extended_ids_.data();
        lengths = extended_lengths_.data();
    }
    ids_.assign(ids, ids + stack_rows_);
    positions_.resize(stack_rows_);
    for (std::size_t r = 0; r < stack_rows_; ++r) positions_[r] = static_cast<std::int32_t>(r % stack_time);
    float* x = stack_.input(batch, stack_time, training);
    embedding_forward(wte_, ids, stack_rows_, x, {.routes = stack_.routes(), .item_rows = stack_time});
    embedding_forward(*wpe_, positions_.data(), stack_rows_, x, true);
    stack_output_ = stack_.forward(lengths, dropout_seed);
    if (prefixed) {  // h is taken at the rows of the ids' tokens
        if (gathered_.size() < rows * C) gathered_.resize(rows * C);
        for (std::size_t r = 0; r < rows; ++r)
            std::copy_n(stack_output_ + gathered_rows_[r] * C, C, gathered_.data() + r * C);
        stack_output_ = gathered_.data();
    }
    if (hidden_.size() < rows * C) {
        hidden_.resize(rows * C);
        mean_.resize(rows);
        rstd_.resize(rows);
    }
    layer_norm_forward(final_norm_, stack_output_, rows, hidden_.data(), mean_.data(), rstd_.data());
    return hidden_.data();
}

const float* gpt2_model::decode(kv_cache& cache, const std::int32_t* tokens, const std::int32_t* positions) {
    if (prefix_length_ + infix_length_ > 0) throw error("generation with prefix vectors is not supported");
    const std::size_t batch = cache.batch, C = width();
    float* x = stack_.input(batch, 1, false);
    embedding_forward(wte_, tokens, batch, x, {.routes = stack_.routes(), .item_rows = 1});
    embedding_forward(*wpe_, positions, batch, x, true);
    const float* out = stack_.decode(cache, positions);
    if (hidden_.size() < batch * C) {
        hidden_.resize(batch * C);
        mean_.resize(batch);
        rstd_.resize(batch);
    }
    layer_norm_forward(final_norm_, out, batch, hidden_.data(), mean_.data(), rstd_.data());
    return hidden_.data();
}

void gpt2_model::backward(float* d_hidden) {
    const std::size_t rows = rows_, stack_rows = stack_rows_, C = width();
    const bool prefixed = prefix_length_ + infix_length_ > 0;
    if (d_stack_.size() < stack_rows * C) d_stack_.resize(stack_rows * C);
    std::fill(d_stack_.begin(), d_stack_.begin() + static_cast<std::ptrdiff_t>(stack_rows * C), 0.0f);
    float* d_norm = d_stack_.data();
    if (prefixed) {
        if (d_gathered_.size() < rows * C) d_gathered_.resize(rows * C);
        d_norm = d_gathered_.data();
        std::fill(d_norm, d_norm + rows * C, 0.0f);
    }
    layer_norm_backward(final_norm_, stack_output_, mean_.data(), rstd_.data(), d_hidden, rows, d_norm);
    if (prefixed)  // back to the rows h was taken from (each one once)
        for (std::size_t r = 0; r < rows; ++r) std::copy_n(d_norm + r * C, C, d_stack_.data() + gathered_rows_[r] * C);
    stack_.backward(d_stack_.data(), wte_.trains() || wpe_->trainable);
    embedding_backward(wte_, ids_.data(), stack_rows, d_stack_.data(), {.routes = stack_.routes(), .item_rows = stack_time_});
    embedding_backward(*wpe_, positions_.data(), stack_rows, d_stack_.data());
}

void gpt2_model::lm_logits(const float* hidden, std::size_t rows, float* logits) {
    const std::size_t C = width(), V = config_.text.vocab_size;
    matmul({.m = rows, .n = V, .k = C, .a = hidden, .lda = C, .b = wte_.table->value, .ldb = C, .transpose_b = true,
            .c = logits, .ldc = V});
}

cross_entropy_result gpt2_model::lm_loss(const float* hidden, const std::int32_t* targets, std::size_t rows,
                                         float* d_hidden, float scale) {
    const std::size_t C = width(), V = config_.text.vocab_size;
    const std::size_t block = std::clamp<std::size_t>(logits_per_block / V, 16, std::max<std::size_t>(rows, 16));
    std::vector<float> logits(std::min(block, rows) * V);
    cross_entropy_result total;
    for (std::size_t begin = 0; begin < rows; begin += block) {
        std::size_t count = std::min(block, rows - begin);
        const float* h = hidden + begin * C;
        lm_logits(h, count, logits.data());
        // In place: logits become scale · (softmax − onehot)
        auto part = cross_entropy(logits.data(), targets + begin, count, V, d_hidden ? logits.data() : nullptr, scale);
        total.sum += part.sum;
        total.counted += part.counted;
        if (!d_hidden) continue;
        // dh += dlogits·wte;  dwte += dlogitsᵀ·h
        matmul({.m = count, .n = C, .k = V, .a = logits.data(), .lda = V, .b = wte_.table->value, .ldb = C,
                .c = d_hidden + begin * C, .ldc = C, .beta = 1});
        if (wte_.table->gradient)
            matmul({.m = V, .n = C, .k = count, .a = logits.data(), .lda = V, .transpose_a = true, .b = h, .ldb = C,
                    .c = wte_.table->gradient, .ldc = C, .beta = 1});
    }
    return total;
}

namespace {

std::size_t pooled_position(const std::int32_t* lengths, std::size_t b, std::size_t time) {
    if (!lengths) return time - 1;
    return lengths[b] > 0 ? std::min<std::size_t>(static_cast<std::size_t>(lengths[b]), time) - 1 : 0;
}

}  // namespace

void gpt2_model::score_forward(const float* hidden, std::size_t batch, std::size_t time, const std::int32_t* lengths,
                               float* logits) {
    const std::size_t C = width(), labels = config_.label_count();
    for (std::size_t b = 0; b < batch; ++b) {
        const float* h = hidden + (b * time + pooled_position(lengths, b, time)) * C;
        for (std::size_t l = 0; l < labels; ++l) {
            float sum = 0;
            for (std::size_t j = 0; j < C; ++j) sum += h[j] * score_->value[l * C + j];
            logits[b * labels + l] = sum;
        }
    }
}

void gpt2_model::score_backward(const float* hidden, std::size_t batch, std::size_t time,
                                const std::int32_t* lengths, const float* d_logits, float* d_hidden) {
    const std::size_t C = width(), labels = config_.label_count();
    for (std::size_t b = 0; b < batch; ++b) {
        std::size_t row = b * time + pooled_position(lengths, b, time);
        for (std::size_t l = 0; l < labels; ++l) {
            float d = d_logits[b * labels + l];
            for (std::size_t j = 0; j < C; ++j) {
                d_hidden[row * C + j] += d * score_->value[l * C + j];
                if (score_->gradient) score_->gradient[l * C + j] += d * hidden[row * C + j];
            }
        }
    }
}

void check_token_ids(std::span<const std::int32_t> ids, std::size_t time, const text_tower_config& config,
                     std::string_view source) {
    if (time > config.max_positions)
        throw error_in(source, fmt::format("{} tokens per row, but the model has {} positions", time,
                                           config.max_positions));
    for (std::size_t i = 0; i < ids.size(); ++i)
        if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= config.vocab_size)
            throw error_in(source, fmt::format("token id {} at row {}, position {} is outside the vocabulary (0..{})",
                                               ids[i], i / time, i % time, config.vocab_size - 1));
}

std::vector<std::int32_t> token_lengths(std::span<const std::int32_t> ids, std::size_t time,
                                        std::optional<std::int32_t> pad_id) {
    std::size_t batch = time ? ids.size() / time : 0;
    std::vector<std::int32_t> lengths(batch, static_cast<std::int32_t>(time));
    if (!pad_id) return lengths;
    for (std::size_t b = 0; b < batch; ++b) {
        std::size_t length = time;
        while (length > 0 && ids[b * time + length - 1] == *pad_id) --length;
        lengths[b] = static_cast<std::int32_t>(length);
    }
    return lengths;
}

}  // namespace lowrank
