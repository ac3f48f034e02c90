// bpe_encoder: text -> pieces -> ids, with a cache of pieces already seen.
#include "bpe/tokenizer.hpp"

#include "bpe/string_hash.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <functional>

namespace lowrank {

// Pieces seen before and their ids, as a CPU cache keeps memory: direct-mapped, one
// 128-byte slot per piece (its hash, bytes and ids together, so a lookup touches one or two
// cache lines), a new piece overwriting whatever was in its slot. Natural text repeats its words
// (Zipf), so most pieces are found here and never merged again; rare ones come and go.
// Pieces longer than a line holds are merged each time.
struct bpe_encoder::piece_cache {
    static constexpr std::size_t slot_count = std::size_t{1} << 16;  // 8 MB
    static constexpr std::size_t max_key_length = 46;
    static constexpr std::size_t max_ids = 18;

    struct alignas(64) slot {
        std::uint64_t hash = 0;  // 0: empty
        std::uint8_t key_length = 0, id_count = 0;
        char key[max_key_length] = {};
        std::uint32_t ids[max_ids] = {};
    };
    static_assert(sizeof(slot) == 128);

    std::vector<slot> slots = std::vector<slot>(slot_count);

    const slot* find(std::string_view piece, std::uint64_t hash) const {
        const slot& candidate = slots[hash & (slot_count - 1)];
        if (candidate.hash != hash || candidate.key_length != piece.size() ||
            std::memcmp(candidate.key, piece.data(), piece.size()) != 0)
            return nullptr;
        return &candidate;
    }

    void insert(std::string_view piece, std::uint64_t hash, const std::uint32_t* piece_ids, std::size_t count) {
        if (count > max_ids) return;
        slot& target = slots[hash & (slot_count - 1)];
        target.hash = hash;
        target.key_length = static_cast<std::uint8_t>(piece.size());
        target.id_count = static_cast<std::uint8_t>(count);
        std::memcpy(target.key, piece.data(), piece.size());
        std::memcpy(target.ids, piece_ids, count * sizeof *piece_ids);
    }
};

bpe_encoder::bpe_encoder(const bpe_tokenizer& tokenizer)
    : tokenizer_(&tokenizer), cache_(std::make_unique<piece_cache>()) {}

bpe_encoder::~bpe_encoder() = default;
bpe_encoder::bpe_encoder(bpe_encoder&&) noexcept = default;

void bpe_encoder::encode(std::string_view text, std::vector<std::uint32_t>& ids, bool allow_special) {
    const auto& specials = tokenizer_->special_names();
    if (!allow_special || specials.empty()) {
        encode_ordinary(text, ids);
        return;
    }
    // Where each special token's name next occurs (npos: nowhere); the earliest wins, the
    // longest among those that start at the same place (special_names is longest first).
    std::vector<std::size_t> next(specials.size());
    for (std::size_t k = 0; k < specials.size(); ++k) next[k] = text.find(specials[k].first);
    std::size_t position = 0;
    while (position < text.size()) {
        std::size_t best = std::string_view::npos, best_index = 0;
        for (std::size_t k = 0; k < specials.size(); ++k) {
            if (next[k] != std::string_view::npos && next[k] < position) next[k] = text.find(specials[k].first, position);
            if (next[k] < best) best = next[k], best_index = k;
        }
        if (best == std::string_view::npos) break;
        encode_ordinary(text.substr(position, best - position), ids);
        ids.push_back(specials[best_index].second);
        position = best + specials[best_index].first.size();
    }
    if (position < text.size()) encode_ordinary(text.substr(position), ids);
}

void bpe_encoder::encode_ordinary(std::string_view text, std::vector<std::uint32_t>& ids) {
    pieces_.clear();
    tokenizer_->splitter().split(text, pieces_, scratch_);
    for (std::string_view piece : pieces_) encode_piece(piece, ids);
}

void bpe_encoder::encode_piece(std::string_view piece, std::vector<std::uint32_t>& ids) {
    const bpe_tokenizer& tokenizer = *tokenizer_;
    auto missing = [](std::uint8_t byte) {
        return error(fmt::format("byte 0x{:02X} has no token in the vocabulary", byte));
    };
    if (piece.size() == 1) {
        std::uint32_t id = tokenizer.final_byte_token(static_cast<std::uint8_t>(piece[0]));
        if (id == bpe_tokenizer::no_token) throw missing(static_cast<std::uint8_t>(piece[0]));
        ids.push_back(id);
        return;
    }
    bool cacheable = piece.size() <= piece_cache::max_key_length;
    std::uint64_t hash = 0;
    if (cacheable) {
        hash = string_hash(piece);
        if (const auto* hit = cache_->find(piece, hash)) {
            for (std::size_t i = 0; i < hit->id_count; ++i) ids.push_back(hit->ids[i]);
            return;
        }
    }
    std::size_t start = ids.size();
    std::uint32_t whole = tokenizer.vocabulary().ignore_merges ? tokenizer.whole_token(piece) : bpe_tokenizer::no_token;
    if (whole != bpe_tokenizer::no_token) {
        ids.push_back(whole);
    } else {
        for (std::size_t i = 0; i + 1 < piece.size(); ++i) {
            std::uint32_t id = tokenizer.byte_token(static_cast<std::uint8_t>(piece[i]));
            if (id == bpe_tokenizer::no_token) throw missing(static_cast<std::uint8_t>(piece[i]));
            ids.push_back(id);
        }
        std::uint32_t last = tokenizer.final_byte_token(static_cast<std::uint8_t>(piece.back()));
        if (last == bpe_tokenizer::no_token) throw missing(static_cast<std::uint8_t>(piece.back()));
        ids.push_back(last);
        // Short pieces (nearly all) merge fastest in plain arrays; long ones through a heap,
        // so that a word of n bytes costs O(n log n), never O(n^2).
        if (piece.size() <= 48) merge_short(ids, start);
        else merge_long(ids, start);
    }
    if (cacheable) cache_->insert(piece, hash, ids.data() + start, ids.size() - start);
}

// symbols[0..n) and, for each adjacent pair i, its merge's priority and result. Each step
// merges the leftmost pair of lowest priority and updates its two neighbours' pairs.
void bpe_encoder::merge_short(std::vector<std::uint32_t>& ids, std::size_t start) {
    const merge_table& merges = tokenizer_->merges();
    std::uint32_t* symbols = ids.data() + start;
    std::size_t n = ids.size() - start;
    priorities_.resize(n);
    results_.resize(n);
    std::uint32_t* priority = priorities_.data();
    std::uint32_t* result = results_.data();
    auto look_up = [&](std::size_t i) {
        const auto& merge = merges.find(symbols[i], symbols[i + 1]);
        priority[i] = merge.priority;
        result[i] = merge.result;
    };
    for (std::size_t i = 0; i + 1 < n; ++i) look_up(i);
    while (n > 1) {
        std::size_t best = 0;
        for (std::size_t i = 1; i + 1 < n; ++i)
            if (priority[i] < priority[best]) best = i;
        if (priority[best] == merge_table::no_merge) break;
        symbols[best] = result[best];
        // Drop symbol best+1 and pair best+1; the pairs after it move down by one.
        std::memmove(symbols + best + 1, symbols + best + 2, (n - best - 2) * sizeof *symbols);
        if (best + 2 < n) {
            std::memmove(priority + best + 1, priority + best + 2, (n - best - 3) * sizeof *priority);
            std::memmove(result + best + 1, result + best + 2, (n - best - 3) * sizeof *result);
        }
        --n;
        if (best + 1 < n) look_up(best);
        if (best > 0) look_up(best - 1);
    }
    ids.resize(start + n);
}

// The same merges for long pieces: a doubly linked list of symbols and a min-heap of
// (priority, position of the pair's left symbol). Entries go stale as their neighbours
// merge; a popped entry counts only if its pair is still there with that priority.
void bpe_encoder::merge_long(std::vector<std::uint32_t>& ids, std::size_t start) {
    const merge_table& merges = tokenizer_->merges();
    std::uint32_t* symbols = ids.data() + start;
    const std::size_t n = ids.size() - start;
    constexpr std::uint32_t none = 0xFFFFFFFFu;
    std::vector<std::uint32_t> next(n), previous(n);
    std::vector<bool> alive(n, true);
    std::vector<std::uint64_t> heap;
    auto push = [&](std::uint32_t left) {
        const auto& merge = merges.find(symbols[left], symbols[next[left]]);
        if (merge.priority == merge_table::no_merge) return;
        heap.push_back(std::uint64_t{merge.priority} << 32 | left);
        std::push_heap(heap.begin(), heap.end(), std::greater<>());
    };
    for (std::size_t i = 0; i < n; ++i) {
        next[i] = i + 1 < n ? static_cast<std::uint32_t>(i + 1) : none;
        previous[i] = i > 0 ? static_cast<std::uint32_t>(i - 1) : none;
    }
    for (std::uint32_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<>());
        std::uint64_t key = heap.back();
        heap.pop_back();
        auto left = static_cast<std::uint32_t>(key & 0xFFFFFFFFu);
        auto priority = static_cast<std::uint32_t>(key >> 32);
        if (!alive[left] || next[left] == none) continue;
        std::uint32_t right = next[left];
        const auto& merge = merges.find(symbols[left], symbols[right]);
        if (merge.priority != priority) continue;
        symbols[left] = merge.result;
        alive[right] = false;
        next[left] = next[right];
        if (next[right] != none) previous[next[right]] = left;
        if (previous[left] != none) push(previous[left]);
        if (next[left] != none) push(left);
    }
    std::size_t kept = 0;
    for (std::uint32_t i = 0; i != none; i = next[i]) symbols[kept++] = symbols[i];
    ids.resize(start + kept);
}

std::vector<std::int32_t> bpe_encoder::encode_sequence(std::string_view text, const sequence_options& options) {
    bool truncated = false;
    return encode_sequence(text, options, truncated);
}

std::vector<std::int32_t> bpe_encoder::encode_sequence(std::string_view text, const sequence_options& options,
                                                        bool& truncated) {
    std::vector<std::uint32_t> content;
    encode(text, content, options.allow_special);
    std::size_t markers = (options.bos ? 1 : 0) + (options.eos ? 1 : 0);
    truncated = false;
    if (options.context_length > 0) {
        if (options.context_length < markers)
            throw usage_error(fmt::format("a context length of {} has no room for the sequence markers", options.context_length));
        if (content.size() > options.context_length - markers) {
            content.resize(options.context_length - markers);
            truncated = true;
        }
    }
    std::vector<std::int32_t> sequence;
    sequence.reserve(std::max(options.context_length, content.size() + markers));
    if (options.bos) sequence.push_back(static_cast<std::int32_t>(*options.bos));
    for (std::uint32_t id : content) sequence.push_back(static_cast<std::int32_t>(id));
    if (options.eos) sequence.push_back(static_cast<std::int32_t>(*options.eos));
    if (options.context_length > 0 && options.pad_id)
        sequence.resize(options.context_length, static_cast<std::int32_t>(*options.pad_id));
    return sequence;
}

}  // namespace lowrank
