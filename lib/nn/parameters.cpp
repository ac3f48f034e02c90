#include "nn/parameters.hpp"

#include "core/random.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <new>
#include <sys/mman.h>

namespace lowrank {

std::size_t parameter::size() const {
    std::size_t count = 1;
    for (std::size_t dimension : shape) count *= dimension;
    return count;
}

std::string shape_text(std::span<const std::size_t> shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::string module_of(const parameter& weight) {
    constexpr std::string_view suffix = ".weight";
    const std::string& name = weight.name;
    return name.ends_with(suffix) ? name.substr(0, name.size() - suffix.size()) : name;
}

void fill_normal(parameter& p, float std, std::uint64_t seed, std::uint64_t stream) {
    random_generator random(seed, stream);
    for (std::size_t i = 0; i < p.size(); ++i) p.value[i] = static_cast<float>(random.normal() * std);
}

void fill_constant(parameter& p, float value) { std::fill(p.value, p.value + p.size(), value); }

// x·0 is 0 for every finite x and NaN otherwise, so one vectorized sum tells whether all are
// finite; only then is the culprit looked for.
std::optional<std::size_t> first_non_finite(const float* values, std::size_t count) {
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (std::size_t i = 0; i < count; ++i) sum += values[i] * 0.0f;
    if (sum == 0) return std::nullopt;
    for (std::size_t i = 0; i < count; ++i)
        if (!std::isfinite(values[i])) return i;
    return std::nullopt;
}

parameter_set::zero_pages::~zero_pages() {
    if (data) munmap(data, bytes);
}

parameter& parameter_set::add(std::string name, std::vector<std::size_t> shape, bool decay) {
    if (allocated_) throw std::logic_error("parameter '" + name + "' declared after allocate()");
    if (find(name)) throw std::logic_error("parameter '" + name + "' declared twice");
    auto& added = parameters_.emplace_back();
    added.name = std::move(name);
    added.shape = std::move(shape);
    added.decay = decay;
    return added;
}

void parameter_set::allocate(std::size_t gradient_extras) {
    if (allocated_) throw std::logic_error("parameter_set::allocate() called twice");
    std::size_t trainable = 0, frozen = 0;
    for (auto& p : parameters_) {
        std::size_t& next = p.trainable ? trainable : frozen;
        p.offset = next;
        next += (p.size() + 15) / 16 * 16;  // each parameter starts 64-byte aligned
    }
    trainable_values_.assign(trainable, 0.0f);
    gradients_.assign(trainable + gradient_extras, 0.0f);
    gradient_extras_ = gradient_extras;
    if (frozen > 0) {
        frozen_values_.bytes = frozen * sizeof(float);
        void* pages = mmap(nullptr, frozen_values_.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (pages == MAP_FAILED) throw std::bad_alloc();
        frozen_values_.data = pages;
    }
    for (auto& p : parameters_) {
        if (p.trainable) {
            p.value = trainable_values_.data() + p.offset;
            p.gradient = gradients_.data() + p.offset;
        } else {
            p.value = static_cast<float*>(frozen_values_.data) + p.offset;
        }
    }
    allocated_ = true;
}

parameter* parameter_set::find(std::string_view name) {
    for (auto& p : parameters_)
        if (p.name == name) return &p;
    return nullptr;
}

const parameter* parameter_set::find(std::string_view name) const {
    for (const auto& p : parameters_)
        if (p.name == name) return &p;
    return nullptr;
}

void parameter_set::zero_gradients() { std::fill(gradients_.begin(), gradients_.end(), 0.0f); }

std::size_t parameter_set::count() const {
    std::size_t total = 0;
    for (const auto& p : parameters_) total += p.size();
    return total;
}

std::size_t parameter_set::trainable_count() const {
    std::size_t total = 0;
    for (const auto& p : parameters_)
        if (p.trainable) total += p.size();
    return total;
}

void parameter_set::alias(parameter& target, const float* values, std::shared_ptr<const void> owner) {
    if (target.trainable) throw std::logic_error("trainable parameter '" + target.name + "' cannot alias");
    target.value = const_cast<float*>(values);  // frozen: read, never written
    owners_.push_back(std::move(owner));
}

}  // namespace lowrank
