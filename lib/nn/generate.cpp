#include "nn/generate.hpp"

#include "core/error.hpp"
#include "core/random.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <numeric>

namespace lowrank {

std::int32_t choose_token(const float* logits, std::size_t vocab, const generation_settings& settings,
                          random_generator& random) {
    if (settings.top_k == 1) return static_cast<std::int32_t>(std::max_element(logits, logits + vocab) - logits);
    std::size_t k = settings.top_k == 0 ? vocab : std::min(settings.top_k, vocab);
    std::vector<std::int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    auto larger = [&](std::int32_t a, std::int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), larger);
    std::vector<double> weights(k);
    const double top = logits[order[0]];
    for (std::size_t i = 0; i < k; ++i) weights[i] = std::exp((logits[order[i]] - top) / settings.temperature);
    double pick = random.uniform() * std::accumulate(weights.begin(), weights.end(), 0.0);
    for (std::size_t i = 0; i < k; ++i) {
        if (pick < weights[i]) return order[i];
        pick -= weights[i];
    }
    return order[k - 1];
}

std::vector<std::vector<std::int32_t>> generate(gpt2_model& model, const std::int32_t* ids, std::size_t batch,
                                                std::size_t time, const std::int32_t* lengths,
                                                const generation_settings& settings,
                                                std::span<const std::size_t> row_numbers) {
    std::vector<std::vector<std::int32_t>> sequences(batch);
    std::size_t longest = 0;
    for (std::size_t b = 0; b < batch; ++b) {
        std::size_t length = lengths ? static_cast<std::size_t>(lengths[b]) : time;
        if (length == 0) throw error(fmt::format("row {}: an empty prompt", row_numbers[b]));
        sequences[b].assign(ids + b * time, ids + b * time + length);
        longest = std::max(longest, length);
    }
    const std::size_t capacity = longest + settings.new_tokens, vocab = model.config().text.vocab_size;
    if (capacity > model.config().text.max_positions)
        throw error(fmt::format("{} prompt tokens and {} new ones need {} positions, the model has {}", longest,
                                settings.new_tokens, capacity, model.config().text.max_positions));
    if (settings.new_tokens == 0) return sequences;
    kv_cache cache;
    model.stack().start_decoding(cache, batch, capacity);
    std::vector<random_generator> randoms;
    for (std::size_t b = 0; b < batch; ++b) randoms.emplace_back(settings.seed, row_numbers[b]);
    std::vector<std::size_t> prompt_lengths(batch);
    for (std::size_t b = 0; b < batch; ++b) prompt_lengths[b] = sequences[b].size();
    std::vector<bool> finished(batch, false);
    std::vector<std::int32_t> tokens(batch), positions(batch);
    std::vector<float> logits(batch * vocab);
    // Step t feeds each row's token at position t; a row whose sequence ends at t then
    // chooses its next token from the output. Finished rows feed a placeholder.
    for (std::size_t t = 0; t < capacity; ++t) {
        for (std::size_t b = 0; b < batch; ++b) {
            bool feeding = !finished[b] && t < sequences[b].size();
            tokens[b] = feeding ? sequences[b][t] : 0;
            positions[b] = static_cast<std::int32_t>(std::min(t, capacity - 1));
        }
        const float* hidden = model.decode(cache, tokens.data(), positions.data());
        model.lm_logits(hidden, batch, logits.data());
        bool active = false;
        for (std::size_t b = 0; b < batch; ++b) {
            if (finished[b] || t + 1 != sequences[b].size()) {
                active = active || !finished[b];
                continue;
            }
            std::int32_t next = choose_token(logits.data() + b * vocab, vocab, settings, randoms[b]);
            sequences[b].push_back(next);
            finished[b] = sequences[b].size() - prompt_lengths[b] >= settings.new_tokens || next == settings.stop_id;
            active = active || !finished[b];
        }
        if (!active) break;
    }
    return sequences;
}

}  // namespace lowrank
