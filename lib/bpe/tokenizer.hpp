// A byte-level BPE tokenizer: load it from its files, encode text to token ids, decode ids
// back to bytes. What bpe-encode and bpe-decode do, and what another tool needs to turn a
// caption into ids:
//
//     auto tokenizer = lowrank::load_tokenizer({.path = "clip-folder"}, lowrank::split_pattern::clip);
//     lowrank::bpe_encoder encoder(tokenizer);
//     auto ids = encoder.encode_sequence("a photo of a cat",
//         {.bos = tokenizer.special_id("<|startoftext|>"), .eos = tokenizer.special_id("<|endoftext|>"),
//          .context_length = 77, .pad_id = tokenizer.special_id("<|endoftext|>")});
//
// Encoding a piece: its bytes become their byte-level tokens (the last one with the
// end-of-word suffix, for CLIP), then the adjacent pair whose merge has the lowest priority
// is merged, the leftmost first among equals, until no adjacent pair has a merge. This is
// tiktoken's and Hugging Face's algorithm; their ids come out.
#pragma once

#include "bpe/merge_table.hpp"
#include "bpe/pretokenizer.hpp"
#include "bpe/vocabulary.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

// Where a tokenizer is: `path` is a folder (holding vocab.json and merges.txt, or GPT-2's
// encoder.json and vocab.bpe, or tokenizer.json), a tokenizer.json or a tiktoken rank
// file; or `vocab` and `merges` name the two files.
struct tokenizer_files {
    std::string path{}, vocab{}, merges{};
};

class bpe_tokenizer {
public:
    bpe_tokenizer(bpe_vocabulary vocabulary, split_pattern pattern);

    const bpe_vocabulary& vocabulary() const { return vocabulary_; }
    const pretokenizer& splitter() const { return pretokenizer_; }
    // One more than the largest id.
    std::size_t id_limit() const { return vocabulary_.id_limit(); }
    bool has_id(std::uint32_t id) const { return id < token_bytes_.size() && !vocabulary_.tokens[id].empty(); }
    bool is_special(std::uint32_t id) const { return id < special_.size() && special_[id]; }

    // A special token's id, by its name ("<|endoftext|>") or by its number ("50256").
    std::optional<std::uint32_t> special_id(std::string_view name_or_number) const;
    // The bytes a token stands for: a special token's name, CLIP's "</w>" as a space.
    std::string_view token_bytes(std::uint32_t id) const { return token_bytes_[id]; }

    // Appends the bytes of `ids`; an id with no token is an error ("unknown id N").
    void decode(std::span<const std::uint32_t> ids, std::string& out, bool skip_special = false) const;

    // For bpe_encoder.
    const merge_table& merges() const { return merges_; }
    // The token of a byte alone, and at the end of a word; no_token when there is none.
    static constexpr std::uint32_t no_token = 0xFFFFFFFFu;
    std::uint32_t byte_token(std::uint8_t byte) const { return byte_tokens_[byte]; }
    std::uint32_t final_byte_token(std::uint8_t byte) const { return final_byte_tokens_[byte]; }
    // The id of a piece that is a whole token (for ignore_merges), or no_token.
    std::uint32_t whole_token(std::string_view piece) const;
    const std::vector<std::pair<std::string, std::uint32_t>>& special_names() const { return special_names_; }

private:
    bpe_vocabulary vocabulary_;
    pretokenizer pretokenizer_;
    merge_table merges_;
    std::array<std::uint32_t, 256> byte_tokens_{}, final_byte_tokens_{};
    std::vector<std::string> token_bytes_;
    std::vector<bool> special_;
    std::vector<std::pair<std::string, std::uint32_t>> special_names_;  // longest first
};

// Reads a tokenizer's files (see tokenizer_files). The clip pattern sets the end-of-word
// suffix "</w>". Errors name the file and line.
bpe_tokenizer load_tokenizer(const tokenizer_files& files, split_pattern pattern);

struct sequence_options {
    std::optional<std::uint32_t> bos{}, eos{};
    // 0: no limit. Otherwise the content is cut so that BOS + content + EOS fits.
    std::size_t context_length = 0;
    // With a context length: pad to it with this id.
    std::optional<std::uint32_t> pad_id{};
    bool allow_special = false;
};

// Encodes text with one tokenizer, on one thread (each thread has its own encoder). Keeps a
// cache of the pieces it has seen, so frequent words are merged once.
class bpe_encoder {
public:
    explicit bpe_encoder(const bpe_tokenizer& tokenizer);
    ~bpe_encoder();
    bpe_encoder(bpe_encoder&&) noexcept;
    bpe_encoder(const bpe_encoder&) = delete;
    bpe_encoder& operator=(const bpe_encoder&) = delete;

    // Appends the ids of `text` (any bytes). With allow_special, the names of special tokens
    // in the text are those tokens; otherwise they are text like any other. A byte with no
    // token (a vocabulary trained on fewer bytes) is an error.
    void encode(std::string_view text, std::vector<std::uint32_t>& ids, bool allow_special = false);

    // BOS, the ids of `text`, EOS, cut and padded as the options say.
    std::vector<std::int32_t> encode_sequence(std::string_view text, const sequence_options& options);
    // The same, telling whether the content was cut.
    std::vector<std::int32_t> encode_sequence(std::string_view text, const sequence_options& options, bool& truncated);

    const bpe_tokenizer& tokenizer() const { return *tokenizer_; }

private:
    void encode_ordinary(std::string_view text, std::vector<std::uint32_t>& ids);
    void encode_piece(std::string_view piece, std::vector<std::uint32_t>& ids);
    void merge_short(std::vector<std::uint32_t>& ids, std::size_t start);
    void merge_long(std::vector<std::uint32_t>& ids, std::size_t start);

    struct piece_cache;
    const bpe_tokenizer* tokenizer_;
    split_scratch scratch_;
    std::vector<std::string_view> pieces_;
    std::unique_ptr<piece_cache> cache_;
    std::vector<std::uint32_t> priorities_, results_;
};

}  // namespace lowrank
