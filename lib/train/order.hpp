// The order in which training examples are seen. The epochs follow one another as one
// endless stream of positions: position p is example order(p / N)[p mod N] of N, where
// order(e) is epoch e's permutation, drawn from random_generator(seed, e) (the identity
// without shuffling). Step s of a run whose steps take G examples (batch size × micro-batches
// × ranks) reads positions s·G .. s·G + G − 1, so what a step sees is a pure function of
// (seed, step): a resumed run sees what an uninterrupted one would, and a data-parallel run
// splits each step's positions between its ranks (step_positions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lowrank {

class data_order {
public:
    data_order(std::size_t examples, std::uint64_t seed, bool shuffle);

    std::size_t examples() const { return examples_; }
    // The example at a position of the stream (epochs' permutations are made as needed).
    std::size_t example(std::uint64_t position);
    // The epoch a position falls in.
    std::uint64_t epoch(std::uint64_t position) const { return position / examples_; }

    // Epoch e's permutation of 0..N-1: Fisher-Yates with random_generator(seed, e).
    static std::vector<std::size_t> permutation(std::size_t examples, std::uint64_t seed, std::uint64_t epoch);

private:
    std::size_t examples_;
    std::uint64_t seed_;
    bool shuffle_;
    std::uint64_t cached_epoch_ = UINT64_MAX;
    std::vector<std::size_t> cached_;
};

struct step_shape {
    std::size_t batch_size = 1;     // examples per forward pass
    std::size_t micro_batches = 1;  // forward passes whose gradients one step adds up
    std::size_t ranks = 1;          // data-parallel processes

    std::size_t examples_per_step() const { return batch_size * micro_batches * ranks; }
};

// The first stream position of micro-batch `micro` of step `step` for rank `rank`: its
// batch_size examples follow one another from there. Rank k takes the k-th share of each
// micro-batch's positions, so that the ranks together see what one process would.
std::uint64_t batch_start(const step_shape& shape, std::uint64_t step, std::size_t micro, std::size_t rank = 0);

}  // namespace lowrank
