#include "bpe/trainer.hpp"

#include "bpe/byte_level.hpp"
#include "bpe/tokenizer.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <fmt/format.h>
#include <unordered_map>

namespace lowrank {
namespace {

constexpr std::uint64_t pair_of(std::uint32_t left, std::uint32_t right) {
    return std::uint64_t{left} << 32 | right;
}

// A hash table from a pair of ids to a Value, open addressing; entries are never removed.
template <class Value>
class pair_table {
public:
    Value& operator[](std::uint64_t pair) {
        if (2 * (size_ + 1) > slots_.size()) grow();
        std::size_t index = find_slot(pair);
        if (slots_[index].pair != empty) return slots_[index].value;
        ++size_;
        slots_[index].pair = pair;
        return slots_[index].value;
    }
    const Value* find(std::uint64_t pair) const {
        if (slots_.empty()) return nullptr;
        const auto& slot = slots_[find_slot(pair)];
        return slot.pair == empty ? nullptr : &slot.value;
    }
    template <class Visit>
    void for_each(Visit visit) {
        for (auto& slot : slots_)
            if (slot.pair != empty) visit(slot.pair, slot.value);
    }
    // Empties a table that holds exactly `pairs` (cheaper than clearing every slot when
    // the table is large and few slots are used). First all slots are found, while the
    // probe sequences are intact, then emptied.
    template <class Pairs>
    void clear(const Pairs& pairs) {
        found_.clear();
        for (std::uint64_t pair : pairs) found_.push_back(find_slot(pair));
        for (std::size_t index : found_) slots_[index] = slot{};
        size_ = 0;
    }
    std::size_t size() const { return size_; }

private:
    static constexpr std::uint64_t empty = ~std::uint64_t{0};
    struct slot {
        std::uint64_t pair = empty;
        Value value{};
    };
    std::size_t find_slot(std::uint64_t pair) const {
        std::size_t mask = slots_.size() - 1;
        std::size_t index = static_cast<std::size_t>((pair * 0x9E3779B97F4A7C15ull) >> 20) & mask;
        while (slots_[index].pair != pair && slots_[index].pair != empty) index = (index + 1) & mask;
        return index;
    }
    void grow() {
        std::vector<slot> old = std::move(slots_);
        slots_.assign(std::max<std::size_t>(1024, 2 * old.size()), slot{});
        for (const auto& moved : old)
            if (moved.pair != empty) slots_[find_slot(moved.pair)] = moved;
    }

    std::vector<slot> slots_;
    std::size_t size_ = 0;
    std::vector<std::size_t> found_;
};

// A pair waiting in the queue, with its count when it was queued and the words (a slice of
// the positions arena) where it was counted.
struct queued_pair {
    std::uint64_t count, pair, positions;
    std::uint32_t length;
};

// The queue's order: the highest count first; among equal counts the smallest pair.
bool comes_later(const queued_pair& a, const queued_pair& b) {
    return a.count != b.count ? a.count < b.count : a.pair > b.pair;
}

class merge_trainer {
public:
    merge_trainer(const bpe_training_options& options, const bpe_vocabulary* start) : options_(options) {
        if (start) {
            vocabulary_.tokens = start->tokens;
            vocabulary_.ids = start->ids;
            vocabulary_.special_tokens = start->special_tokens;
            for (const auto& merge : start->merges) merges_.push_back({merge.left, merge.right, merge.result});
            for (const auto& token : start->tokens) token_count_ += !token.empty();
        }
        vocabulary_.end_of_word_suffix = options.end_of_word_suffix;
        for (const auto& token : options.special_tokens) {
            if (vocabulary_.id_of(token)) continue;
            vocabulary_.special_tokens.push_back(add_token(token));
        }
    }

    void add_alphabet(const std::vector<std::pair<std::string_view, std::uint64_t>>& words) {
        std::array<bool, 256> seen{}, seen_last{};
        for (const auto& [word, count] : words) {
            for (char byte : word) seen[static_cast<std::uint8_t>(byte)] = true;
            if (!word.empty()) seen_last[static_cast<std::uint8_t>(word.back())] = true;
        }
        // Code-point order of the byte-level characters.
        std::array<std::uint8_t, 256> by_rank{};
        for (int byte = 0; byte < 256; ++byte) by_rank[byte_level_rank(static_cast<std::uint8_t>(byte))] = static_cast<std::uint8_t>(byte);
        const std::string& suffix = options_.end_of_word_suffix;
        for (std::uint8_t byte : by_rank)
            if (options_.all_bytes || seen[byte]) add_token(to_byte_level(std::string(1, static_cast<char>(byte))));
        if (!suffix.empty())
            for (std::uint8_t byte : by_rank)
                if (options_.all_bytes || seen_last[byte])
                    add_token(to_byte_level(std::string(1, static_cast<char>(byte))) + suffix);
    }

    // The words as symbols: their bytes' tokens, merged by the merges there are already.
    void set_words(const std::vector<std::pair<std::string_view, std::uint64_t>>& words) {
        bpe_vocabulary current = vocabulary_;
        for (std::uint32_t i = 0; i < merges_.size(); ++i)
            current.merges.push_back({merges_[i][0], merges_[i][1], merges_[i][2], i});
        bpe_tokenizer tokenizer(std::move(current), split_pattern::none);
        bpe_encoder encoder(tokenizer);
        std::vector<std::uint32_t> ids;
        word_start_.reserve(words.size() + 1);
        for (const auto& [word, count] : words) {
            ids.clear();
            encoder.encode(word, ids);
            word_start_.push_back(symbols_.size());
            word_length_.push_back(static_cast<std::uint32_t>(ids.size()));
            word_count_.push_back(count);
            symbols_.insert(symbols_.end(), ids.begin(), ids.end());
        }
    }

    // Every adjacent pair, its count and the words it is in (each word once, in order).
    void count_pairs() {
        struct pair_words {
            std::uint64_t count = 0, offset = 0;
            std::uint32_t length = 0, last_word = none;
        };
        pair_table<pair_words> pairs;
        auto visit_pairs = [&](auto visit) {
            for (std::uint32_t word = 0; word < word_count_.size(); ++word) {
                const std::uint32_t* symbol = symbols_.data() + word_start_[word];
                for (std::uint32_t i = 0; i + 1 < word_length_[word]; ++i) visit(word, pair_of(symbol[i], symbol[i + 1]));
            }
        };
        visit_pairs([&](std::uint32_t word, std::uint64_t pair) {
            pair_words& entry = pairs[pair];
            entry.count += word_count_[word];
            if (entry.last_word != word) entry.last_word = word, ++entry.length;
        });
        std::uint64_t offset = 0;
        pairs.for_each([&](std::uint64_t, pair_words& entry) {
            entry.offset = offset;
            offset += entry.length;
            entry.length = 0;
            entry.last_word = none;
        });
        positions_.resize(offset);
        visit_pairs([&](std::uint32_t word, std::uint64_t pair) {
            pair_words& entry = pairs[pair];
            if (entry.last_word == word) return;
            entry.last_word = word;
            positions_[entry.offset + entry.length++] = word;
        });
        queue_.reserve(pairs.size());
        pairs.for_each([&](std::uint64_t pair, pair_words& entry) {
            pair_counts_[pair] = static_cast<std::int64_t>(entry.count);
            if (entry.count > 0) queue_.push_back({entry.count, pair, entry.offset, entry.length});
        });
        std::make_heap(queue_.begin(), queue_.end(), comes_later);
    }

    void run(const std::function<void(std::size_t)>& merged) {
        std::size_t merges_done = 0;
        while (token_count_ < options_.vocab_size && !queue_.empty()) {
            std::pop_heap(queue_.begin(), queue_.end(), comes_later);
            queued_pair top = queue_.back();
            queue_.pop_back();
            auto current = static_cast<std::uint64_t>(std::max<std::int64_t>(0, *pair_counts_.find(top.pair)));
            if (top.count != current) {
                top.count = current;
                push(top);
                continue;
            }
            if (top.count < 1 || options_.min_frequency > top.count) break;
            auto left = static_cast<std::uint32_t>(top.pair >> 32), right = static_cast<std::uint32_t>(top.pair);
            std::uint32_t result = add_token(vocabulary_.tokens[left] + vocabulary_.tokens[right]);
            merges_.push_back({left, right, result});
            for (std::uint64_t i = 0; i < top.length; ++i)
                merge_in_word(positions_[top.positions + i], left, right, result);
            queue_new_pairs();
            merged(++merges_done);
        }
    }

    bpe_vocabulary result() {
        // A pair merged twice is kept once, at its last place (as Hugging Face's merge map).
        pair_table<std::uint32_t> last;
        for (std::uint32_t i = 0; i < merges_.size(); ++i) last[pair_of(merges_[i][0], merges_[i][1])] = i;
        for (std::uint32_t i = 0; i < merges_.size(); ++i)
            if (*last.find(pair_of(merges_[i][0], merges_[i][1])) == i)
                vocabulary_.merges.push_back({merges_[i][0], merges_[i][1], merges_[i][2],
                                              static_cast<std::uint32_t>(vocabulary_.merges.size())});
        return std::move(vocabulary_);
    }

private:
    static constexpr std::uint32_t none = 0xFFFFFFFFu;

    std::uint32_t add_token(const std::string& token) {
        if (auto id = vocabulary_.id_of(token)) return *id;
        ++token_count_;
        return vocabulary_.add(token);
    }

    void push(const queued_pair& entry) {
        queue_.push_back(entry);
        std::push_heap(queue_.begin(), queue_.end(), comes_later);
    }

    // Merges every `left right` in one word, left to right, and records how the counts of
    // the pairs around each merge change: (before, left) and (right, after) lose the
    // word's count, (before, result) and (result, after) gain it.
    void merge_in_word(std::uint32_t word, std::uint32_t left, std::uint32_t right, std::uint32_t result) {
        std::uint32_t* symbol = symbols_.data() + word_start_[word];
        const std::uint32_t length = word_length_[word];
        auto count = static_cast<std::int64_t>(word_count_[word]);
        std::uint32_t kept = 0;
        for (std::uint32_t read = 0; read < length;) {
            if (read + 1 < length && symbol[read] == left && symbol[read + 1] == right) {
                if (kept > 0) {
                    pair_counts_[pair_of(symbol[kept - 1], left)] -= count;
                    gained(pair_of(symbol[kept - 1], result), word, count);
                }
                symbol[kept++] = result;
                read += 2;
                if (read < length) {
                    pair_counts_[pair_of(right, symbol[read])] -= count;
                    gained(pair_of(result, symbol[read]), word, count);
                }
            } else {
                symbol[kept++] = symbol[read++];
            }
        }
        word_length_[word] = kept;
    }

    void gained(std::uint64_t pair, std::uint32_t word, std::int64_t count) {
        pair_counts_[pair] += count;
        std::uint32_t& list = new_pairs_[pair];
        if (list == 0) {
            if (lists_used_ == lists_.size()) lists_.emplace_back();
            lists_[lists_used_].first = pair;
            lists_[lists_used_].second.clear();
            list = static_cast<std::uint32_t>(++lists_used_);
        }
        auto& words = lists_[list - 1].second;
        if (words.empty() || words.back() != word) words.push_back(word);
    }

    // The pairs a merge made, queued with the words they are in.
    void queue_new_pairs() {
        used_pairs_.clear();
        for (std::size_t i = 0; i < lists_used_; ++i) {
            used_pairs_.push_back(lists_[i].first);
            const auto& [pair, words] = lists_[i];
            std::int64_t count = *pair_counts_.find(pair);
            if (count <= 0) continue;
            push({static_cast<std::uint64_t>(count), pair, positions_.size(), static_cast<std::uint32_t>(words.size())});
            positions_.insert(positions_.end(), words.begin(), words.end());
        }
        lists_used_ = 0;
        new_pairs_.clear(used_pairs_);
    }

    const bpe_training_options& options_;
    bpe_vocabulary vocabulary_;
    std::size_t token_count_ = 0;
    std::vector<std::array<std::uint32_t, 3>> merges_;  // left, right, result
    std::vector<std::uint32_t> symbols_;
    std::vector<std::uint64_t> word_start_;
    std::vector<std::uint32_t> word_length_;
    std::vector<std::uint64_t> word_count_;
    pair_table<std::int64_t> pair_counts_;
    std::vector<std::uint32_t> positions_;
    std::vector<queued_pair> queue_;
    pair_table<std::uint32_t> new_pairs_;  // pair -> 1 + index in lists_
    std::vector<std::pair<std::uint64_t, std::vector<std::uint32_t>>> lists_;
    std::size_t lists_used_ = 0;
    std::vector<std::uint64_t> used_pairs_;
};

}  // namespace

bpe_vocabulary train_bpe(const word_counts& words, const bpe_training_options& options, const bpe_vocabulary* start,
                         const std::function<void(std::size_t)>& merged) {
    // Sorted, so that the result does not depend on how the counting was split among threads.
    std::vector<std::pair<std::string_view, std::uint64_t>> sorted;
    sorted.reserve(words.size());
    words.for_each([&](std::string_view word, std::uint64_t count) { sorted.emplace_back(word, count); });
    std::sort(sorted.begin(), sorted.end());
    merge_trainer trainer(options, start);
    trainer.add_alphabet(sorted);
    trainer.set_words(sorted);
    trainer.count_pairs();
    trainer.run(merged);
    return trainer.result();
}

}  // namespace lowrank
