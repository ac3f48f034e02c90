// Text generation with a GPT-2 language model: greedy, or sampling from the top-k tokens
// at a temperature, with a cache of keys and values so each new token costs one position.
#pragma once

#include "core/random.hpp"
#include "nn/gpt2.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace lowrank {

struct generation_settings {
    std::size_t new_tokens = 0;
    std::size_t top_k = 1;    // 1: greedy (the most likely token); 0: the whole vocabulary
    float temperature = 1;    // logits are divided by it before sampling
    std::optional<std::int32_t> stop_id = std::nullopt;  // a row ends after generating it
    std::uint64_t seed = 0;
};

// Continues each row of ids (batch, time), whose prompt is its first lengths[b] tokens
// (at least one), by up to new_tokens tokens. Returns each row's prompt followed by what
// was generated. Row b is row row_numbers[b] of the whole input: it draws from
// random_generator(seed, row_numbers[b]), so the result does not depend on how rows are
// batched or ordered, nor on the thread count; errors name it. The prompt plus the new
// tokens must fit the model's positions.
std::vector<std::vector<std::int32_t>> generate(gpt2_model& model, const std::int32_t* ids, std::size_t batch,
                                                std::size_t time, const std::int32_t* lengths,
                                                const generation_settings& settings,
                                                std::span<const std::size_t> row_numbers);

// The next token from a row of logits: the largest (ties: the lowest id) when top_k is 1,
// else drawn from softmax(logits/temperature) over the top_k largest.
std::int32_t choose_token(const float* logits, std::size_t vocab, const generation_settings& settings,
                          random_generator& random);

}  // namespace lowrank
