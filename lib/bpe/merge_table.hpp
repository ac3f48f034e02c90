// The merges of a BPE model as a hash table from a pair of adjacent token ids to the
// merge's priority and the token it gives: the encoder's innermost lookup, so open
// addressing over one flat array, a multiplicative hash, no pointers to chase.
#pragma once

#include "bpe/vocabulary.hpp"

#include <cstdint>
#include <vector>

namespace lowrank {

class merge_table {
public:
    static constexpr std::uint32_t no_merge = 0xFFFFFFFFu;

    struct entry {
        std::uint64_t pair = empty_pair;  // left << 32 | right
        std::uint32_t priority = no_merge;
        std::uint32_t result = 0;
    };

    merge_table() = default;
    // When a pair is given twice, the later merge counts (as in Hugging Face tokenizers).
    explicit merge_table(const std::vector<bpe_merge>& merges);

    // The merge of `left` then `right`; priority no_merge when there is none.
    const entry& find(std::uint32_t left, std::uint32_t right) const {
        std::uint64_t pair = std::uint64_t{left} << 32 | right;
        std::size_t slot = slot_of(pair);
        while (entries_[slot].pair != pair) {
            if (entries_[slot].pair == empty_pair) return none_;
            slot = (slot + 1) & mask_;
        }
        return entries_[slot];
    }

private:
    static constexpr std::uint64_t empty_pair = ~std::uint64_t{0};
    std::size_t slot_of(std::uint64_t pair) const {
        return static_cast<std::size_t>((pair * 0x9E3779B97F4A7C15ull) >> shift_);
    }

    std::vector<entry> entries_ = std::vector<entry>(2);
    std::size_t mask_ = 1;
    int shift_ = 63;
    entry none_;
};

}  // namespace lowrank
