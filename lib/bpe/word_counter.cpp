#include "bpe/word_counter.hpp"

#include "bpe/string_hash.hpp"
#include "core/threads.hpp"

#include <atomic>
#include <cstring>

namespace lowrank {

void word_counts::add(std::string_view word, std::uint64_t count) {
    if (10 * (size_ + 1) > 7 * slots_.size()) grow();
    std::uint64_t hash = string_hash(word);
    std::size_t mask = slots_.size() - 1;
    for (std::size_t index = hash & mask;; index = (index + 1) & mask) {
        slot& candidate = slots_[index];
        if (candidate.hash == 0) {
            candidate = {hash, count, arena_.size(), word.size()};
            arena_.append(word);
            ++size_;
            return;
        }
        if (candidate.hash == hash && candidate.length == word.size() &&
            std::memcmp(arena_.data() + candidate.offset, word.data(), word.size()) == 0) {
            candidate.count += count;
            return;
        }
    }
}

void word_counts::add(const word_counts& other) {
    other.for_each([&](std::string_view word, std::uint64_t count) { add(word, count); });
}

void word_counts::grow() {
    std::vector<slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : 2 * old.size(), slot{});
    std::size_t mask = slots_.size() - 1;
    for (const slot& moved : old) {
        if (moved.hash == 0) continue;
        std::size_t index = moved.hash & mask;
        while (slots_[index].hash != 0) index = (index + 1) & mask;
        slots_[index] = moved;
    }
}

word_counter::word_counter(split_pattern pattern) : pretokenizer_(pattern) {
    auto threads = static_cast<std::size_t>(thread_count());
    counts_.resize(threads);
    scratches_.resize(threads);
    pieces_.resize(threads);
}

void word_counter::add_block(std::string_view block) {
    // One part per thread, cut after a newline.
    std::size_t parts = counts_.size();
    std::vector<std::size_t> starts{0};
    for (std::size_t part = 1; part < parts; ++part) {
        std::size_t cut = std::max(starts.back(), block.size() * part / parts);
        std::size_t newline = block.find('\n', cut);
        starts.push_back(newline == std::string_view::npos ? block.size() : newline + 1);
    }
    starts.push_back(block.size());
    std::atomic<std::uint64_t> words{0};
    parallel_for(parts, [&](std::size_t begin, std::size_t end) {
        for (std::size_t part = begin; part < end; ++part) {
            std::string_view text = block.substr(starts[part], starts[part + 1] - starts[part]);
            auto& pieces = pieces_[part];
            std::uint64_t seen = 0;
            while (!text.empty()) {
                std::size_t newline = text.find('\n');
                std::size_t length = newline == std::string_view::npos ? text.size() : newline + 1;
                pieces.clear();
                pretokenizer_.split(text.substr(0, length), pieces, scratches_[part]);
                for (std::string_view piece : pieces) counts_[part].add(piece);
                seen += pieces.size();
                text.remove_prefix(length);
            }
            words += seen;
        }
    });
    words_seen_ += words;
}

word_counts word_counter::take() {
    word_counts all = std::move(counts_[0]);
    for (std::size_t part = 1; part < counts_.size(); ++part) {
        all.add(counts_[part]);
        counts_[part] = word_counts();
    }
    counts_[0] = word_counts();
    return all;
}

}  // namespace lowrank
