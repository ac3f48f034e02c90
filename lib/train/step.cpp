#include "train/step.hpp"

#include <algorithm>

namespace lowrank {

step_result lm_pass::accumulate(const lm_batch& batch, float scale, std::uint64_t dropout_seed) {
    const std::size_t rows = batch.batch * batch.time;
    const float* hidden = model_.forward(batch.ids, batch.batch, batch.time, batch.lengths, true, dropout_seed,
                                         batch.infix_at);
    std::size_t counted = static_cast<std::size_t>(
        std::count_if(batch.targets, batch.targets + rows, [](std::int32_t t) { return t != ignore_index; }));
    if (d_hidden_.size() < rows * model_.width()) d_hidden_.resize(rows * model_.width());
    std::fill(d_hidden_.begin(), d_hidden_.begin() + static_cast<std::ptrdiff_t>(rows * model_.width()), 0.0f);
    auto loss = model_.lm_loss(hidden, batch.targets, rows, d_hidden_.data(),
                               counted ? scale / static_cast<float>(counted) : 0.0f);
    model_.backward(d_hidden_.data());
    step_result result;
    result.counted = loss.counted;
    result.loss = counted ? loss.sum / static_cast<double>(counted) : 0.0;
    return result;
}

cross_entropy_result lm_pass::evaluate(const lm_batch& batch) {
    const float* hidden = model_.forward(batch.ids, batch.batch, batch.time, batch.lengths, false, 0, batch.infix_at);
    return model_.lm_loss(hidden, batch.targets, batch.batch * batch.time, nullptr, 0);
}

lm_trainer::lm_trainer(gpt2_model& model, adamw_settings settings)
    : model_(model), pass_(model), optimizer_(model.parameters(), settings) {}

step_result lm_trainer::step(const lm_batch& batch, float learning_rate, double max_norm,
                             std::uint64_t dropout_seed) {
    model_.parameters().zero_gradients();
    step_result result = pass_.accumulate(batch, 1, dropout_seed);
    result.gradient_norm = clip_gradient_norm(model_.parameters(), max_norm);
    optimizer_.step(learning_rate);
    return result;
}

}  // namespace lowrank
