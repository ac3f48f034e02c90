// Counting the words of a corpus for training: the distinct pieces the pre-tokenizer cuts
// and how often each occurs. The corpus streams through in blocks, each block split among
// the threads, each thread counting into its own table; memory grows with the number of
// distinct words, not with the size of the corpus.
#pragma once

#include "bpe/pretokenizer.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

// Words and counts: open addressing, the words' bytes in one arena.
class word_counts {
public:
    void add(std::string_view word, std::uint64_t count = 1);
    void add(const word_counts& other);
    std::size_t size() const { return size_; }
    // Calls visit(word, count) for each word, in no particular order.
    template <class Visit>
    void for_each(Visit visit) const {
        for (const auto& slot : slots_)
            if (slot.hash != 0) visit(std::string_view(arena_.data() + slot.offset, slot.length), slot.count);
    }

private:
    struct slot {
        std::uint64_t hash = 0;  // 0: empty
        std::uint64_t count = 0;
        std::uint64_t offset = 0;
        std::uint64_t length = 0;
    };
    void grow();

    std::vector<slot> slots_;
    std::string arena_;
    std::size_t size_ = 0;
};

class word_counter {
public:
    explicit word_counter(split_pattern pattern);

    // Counts the pieces of each line of `block`, the line with its newline (as Hugging
    // Face's trainer reads files), on all threads.
    void add_block(std::string_view block);
    // All counts, gathered in one table (the counter is empty afterwards).
    word_counts take();

    std::uint64_t words_seen() const { return words_seen_; }

private:
    pretokenizer pretokenizer_;
    std::vector<word_counts> counts_;  // one per thread
    std::vector<split_scratch> scratches_;
    std::vector<std::vector<std::string_view>> pieces_;
    std::uint64_t words_seen_ = 0;
};

}  // namespace lowrank
