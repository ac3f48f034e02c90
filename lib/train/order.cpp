#include "train/order.hpp"

#include "core/random.hpp"

#include <numeric>
#include <stdexcept>
#include <utility>

namespace lowrank {

data_order::data_order(std::size_t examples, std::uint64_t seed, bool shuffle)
    : examples_(examples), seed_(seed), shuffle_(shuffle) {
    if (examples == 0) throw std::logic_error("data_order of no examples");
}

std::vector<std::size_t> data_order::permutation(std::size_t examples, std::uint64_t seed, std::uint64_t epoch) {
    std::vector<std::size_t> order(examples);
    std::iota(order.begin(), order.end(), std::size_t{0});
    random_generator random(seed, epoch);
    for (std::size_t i = examples; i > 1; --i) std::swap(order[i - 1], order[random.below(i)]);
    return order;
}

std::size_t data_order::example(std::uint64_t position) {
    const std::size_t index = position % examples_;
    if (!shuffle_) return index;
    const std::uint64_t e = epoch(position);
    if (e != cached_epoch_) {
        cached_ = permutation(examples_, seed_, e);
        cached_epoch_ = e;
    }
    return cached_[index];
}

std::uint64_t batch_start(const step_shape& shape, std::uint64_t step, std::size_t micro, std::size_t rank) {
    return step * shape.examples_per_step() + (micro * shape.ranks + rank) * shape.batch_size;
}

}  // namespace lowrank
