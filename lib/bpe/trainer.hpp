// Learning the merges of a byte-level BPE tokenizer from word counts, the way Hugging
// Face's BpeTrainer does it, so that the same corpus gives the same merges.txt and ids:
//
//   ids      the special tokens first, in the order given; then the alphabet (all 256
//            byte-level characters, or the bytes the corpus holds) in code-point order
//            (GPT-2's order of its first 256 ids); then each merge's new token.
//   counts   every adjacent pair of symbols in every word, times the word's count.
//   merging  repeatedly the pair with the highest count; among equal counts the pair whose
//            (left id, right id) is smallest. It merges, left to right, in the words where
//            the pair was counted, and only the counts of the pairs around it change. A
//            priority queue hands out the next pair; its entries are checked against the
//            current count when they come out, and put back if they went stale.
//   stop     at the vocabulary size, when no pair is left, or when the best count is
//            below the minimum frequency.
//
// A merge can give a token that exists already (the same bytes reached by another cut);
// then no id is added, and merges.txt keeps that pair once, at its last place.
#pragma once

#include "bpe/vocabulary.hpp"
#include "bpe/word_counter.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lowrank {

struct bpe_training_options {
    std::size_t vocab_size = 30000;
    std::uint64_t min_frequency = 0;
    std::vector<std::string> special_tokens;
    // The alphabet: all 256 bytes (true), or the bytes the corpus holds.
    bool all_bytes = true;
    // Appended to the last symbol of every word ("</w>" for CLIP); empty for GPT-2 style.
    std::string end_of_word_suffix;
};

// Learns merges from `words`. With `start` (an existing tokenizer), its tokens keep their
// ids and its merges come first, applied to the words before new ones are learned.
// `merged(count)` is told after each merge.
bpe_vocabulary train_bpe(const word_counts& words, const bpe_training_options& options, const bpe_vocabulary* start,
                         const std::function<void(std::size_t merges)>& merged);

}  // namespace lowrank
