#include "bpe/tokenizer.hpp"

#include "bpe/byte_level.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <bit>
#include <filesystem>
#include <fmt/format.h>

namespace lowrank {

merge_table::merge_table(const std::vector<bpe_merge>& merges) {
    // At most half full: short probe sequences.
    std::size_t slots = std::bit_ceil(std::max<std::size_t>(2 * merges.size(), 2));
    entries_.assign(slots, entry{});
    mask_ = slots - 1;
    shift_ = 64 - std::countr_zero(slots);
    for (const auto& merge : merges) {
        std::uint64_t pair = std::uint64_t{merge.left} << 32 | merge.right;
        std::size_t slot = slot_of(pair);
        while (entries_[slot].pair != empty_pair && entries_[slot].pair != pair) slot = (slot + 1) & mask_;
        entries_[slot] = {pair, merge.priority, merge.result};
    }
}

bpe_tokenizer::bpe_tokenizer(bpe_vocabulary vocabulary, split_pattern pattern)
    : vocabulary_(std::move(vocabulary)), pretokenizer_(pattern), merges_(vocabulary_.merges) {
    const std::string& suffix = vocabulary_.end_of_word_suffix;
    for (int byte = 0; byte < 256; ++byte) {
        std::string character = to_byte_level(std::string(1, static_cast<char>(byte)));
        auto alone = vocabulary_.id_of(character);
        byte_tokens_[byte] = alone.value_or(no_token);
        auto final = suffix.empty() ? alone : vocabulary_.id_of(character + suffix);
        final_byte_tokens_[byte] = final.value_or(no_token);
    }
    special_.assign(vocabulary_.tokens.size(), false);
    for (std::uint32_t id : vocabulary_.special_tokens) {
        special_[id] = true;
        special_names_.emplace_back(vocabulary_.tokens[id], id);
    }
    std::stable_sort(special_names_.begin(), special_names_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    token_bytes_.resize(vocabulary_.tokens.size());
    for (std::uint32_t id = 0; id < vocabulary_.tokens.size(); ++id) {
        std::string_view token = vocabulary_.tokens[id];
        if (token.empty() || special_[id]) {
            token_bytes_[id] = token;
            continue;
        }
        bool word_end = !suffix.empty() && token.size() > suffix.size() && token.ends_with(suffix);
        if (word_end) token.remove_suffix(suffix.size());
        auto bytes = from_byte_level(token);
        token_bytes_[id] = bytes ? *bytes : std::string(token);
        if (word_end) token_bytes_[id] += ' ';
    }
}

std::optional<std::uint32_t> bpe_tokenizer::special_id(std::string_view name_or_number) const {
    for (const auto& [name, id] : special_names_)
        if (name == name_or_number) return id;
    auto number = parse_integer(name_or_number);
    if (number && *number >= 0 && *number < static_cast<std::int64_t>(id_limit()) &&
        has_id(static_cast<std::uint32_t>(*number)))
        return static_cast<std::uint32_t>(*number);
    return std::nullopt;
}

std::uint32_t bpe_tokenizer::whole_token(std::string_view piece) const {
    auto id = vocabulary_.id_of(to_byte_level(piece));
    return id ? *id : no_token;
}

void bpe_tokenizer::decode(std::span<const std::uint32_t> ids, std::string& out, bool skip_special) const {
    for (std::uint32_t id : ids) {
        if (!has_id(id)) {
            if (id_limit() == 0) throw error(fmt::format("unknown id {}", id));
            throw error(fmt::format("unknown id {} (ids are 0 to {})", id, id_limit() - 1));
        }
        if (skip_special && special_[id]) continue;
        out += token_bytes_[id];
    }
}

namespace {

bool is_folder(const std::string& path) {
    std::error_code ignored;
    return std::filesystem::is_directory(path, ignored);
}

bool is_file(const std::string& path) {
    std::error_code ignored;
    return std::filesystem::is_regular_file(path, ignored);
}

bpe_vocabulary read_vocab_and_merges(const std::string& vocab, const std::string& merges, std::string_view suffix) {
    bpe_vocabulary vocabulary = read_vocab_json(vocab);
    vocabulary.end_of_word_suffix = suffix;
    read_merges_txt(merges, vocabulary);
    find_special_tokens(vocabulary);
    return vocabulary;
}

bool looks_like_json(const std::string& path) {
    input_text input(path);
    std::string_view text = trim(input.text());
    while (!text.empty() && (text.front() == '\n' || text.front() == '\r')) text = trim(text.substr(1));
    return text.starts_with("{");
}

}  // namespace

bpe_tokenizer load_tokenizer(const tokenizer_files& files, split_pattern pattern) {
    std::string suffix = pattern == split_pattern::clip ? "</w>" : "";
    if (!files.vocab.empty() || !files.merges.empty()) {
        if (files.vocab.empty() || files.merges.empty()) throw usage_error("--vocab and --merges go together");
        if (!files.path.empty()) throw usage_error("give --tokenizer, or --vocab and --merges, not both");
        return bpe_tokenizer(read_vocab_and_merges(files.vocab, files.merges, suffix), pattern);
    }
    if (files.path.empty()) throw usage_error("no tokenizer: give --tokenizer PATH, or --vocab and --merges");
    if (is_folder(files.path)) {
        auto in_folder = [&](const char* name) { return (std::filesystem::path(files.path) / name).string(); };
        for (auto [vocab, merges] : {std::pair{"vocab.json", "merges.txt"}, std::pair{"encoder.json", "vocab.bpe"}})
            if (is_file(in_folder(vocab)) && is_file(in_folder(merges)))
                return bpe_tokenizer(read_vocab_and_merges(in_folder(vocab), in_folder(merges), suffix), pattern);
        if (is_file(in_folder("tokenizer.json"))) {
            bpe_vocabulary vocabulary = read_tokenizer_json(in_folder("tokenizer.json"));
            if (vocabulary.end_of_word_suffix.empty()) vocabulary.end_of_word_suffix = suffix;
            return bpe_tokenizer(std::move(vocabulary), pattern);
        }
        throw error_in(files.path, "holds neither vocab.json and merges.txt, encoder.json and vocab.bpe, nor tokenizer.json");
    }
    if (looks_like_json(files.path)) {
        bpe_vocabulary vocabulary = read_tokenizer_json(files.path);
        if (vocabulary.end_of_word_suffix.empty()) vocabulary.end_of_word_suffix = suffix;
        return bpe_tokenizer(std::move(vocabulary), pattern);
    }
    return bpe_tokenizer(read_tiktoken_ranks(files.path), pattern);
}

}  // namespace lowrank
