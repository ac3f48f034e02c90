#include "nn/optimizer.hpp"

#include "nn/partition.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>
#include <vector>

namespace lowrank {

adamw::adamw(parameter_set& parameters, adamw_settings settings)
    : parameters_(parameters),
      settings_(settings),
      first_moment_(parameters.gradients().size(), 0.0f),
      second_moment_(parameters.gradients().size(), 0.0f) {
    if (!parameters.allocated()) throw std::logic_error("adamw needs allocated parameters");
}

void adamw::step(float learning_rate) {
    ++steps_;
    const double t = static_cast<double>(steps_);
    const auto step_size = static_cast<float>(learning_rate / (1 - std::pow(settings_.beta1, t)));
    const auto correction2 = static_cast<float>(std::sqrt(1 - std::pow(settings_.beta2, t)));
    const float beta1 = settings_.beta1, beta2 = settings_.beta2, epsilon = settings_.epsilon;
    for (parameter& p : parameters_) {
        if (!p.trainable) continue;
        float* value = p.value;
        const float* gradient = p.gradient;
        float* m = first_moment_.data() + p.offset;
        float* v = second_moment_.data() + p.offset;
        const float decay = p.decay ? 1 - learning_rate * settings_.weight_decay : 1.0f;
        for_rows(p.size(), 1 << 15, [&](std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) {
                float g = gradient[i];
                m[i] = beta1 * m[i] + (1 - beta1) * g;
                v[i] = beta2 * v[i] + (1 - beta2) * g * g;
                value[i] = value[i] * decay - step_size * m[i] / (std::sqrt(v[i]) / correction2 + epsilon);
            }
        });
    }
}

std::optional<lr_decay> lr_decay_from_name(std::string_view name) {
    if (name == "constant") return lr_decay::constant;
    if (name == "linear") return lr_decay::linear;
    if (name == "cosine") return lr_decay::cosine;
    return std::nullopt;
}

float scheduled_learning_rate(float peak, std::uint64_t step, std::uint64_t warmup, std::uint64_t total,
                              lr_decay decay) {
    if (step < warmup) return peak * static_cast<float>(step) / static_cast<float>(warmup);
    if (decay == lr_decay::constant || total <= warmup) return peak;
    double progress = static_cast<double>(step - warmup) / static_cast<double>(total - warmup);
    if (progress >= 1) return 0;
    if (decay == lr_decay::linear) return static_cast<float>(peak * (1 - progress));
    return static_cast<float>(peak * 0.5 * (1 + std::cos(std::numbers::pi * progress)));
}

double clip_gradient_norm(parameter_set& parameters, double max_norm) {
    std::span<float> gradients = parameters.gradients();
    std::size_t parts = part_count(gradients.size(), 1 << 16);
    std::vector<double> sums(parts, 0.0);
    for_each_part(gradients.size(), parts, [&](std::size_t part, std::size_t begin, std::size_t end) {
        double sum = 0;
        for (std::size_t i = begin; i < end; ++i) sum += static_cast<double>(gradients[i]) * gradients[i];
        sums[part] = sum;
    });
    double total = 0;
    for (double sum : sums) total += sum;
    double norm = std::sqrt(total);
    if (max_norm > 0 && norm > max_norm) {
        auto factor = static_cast<float>(max_norm / (norm + 1e-6));
        for_rows(gradients.size(), 1 << 16, [&](std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) gradients[i] *= factor;
        });
    }
    return norm;
}

}  // namespace lowrank
