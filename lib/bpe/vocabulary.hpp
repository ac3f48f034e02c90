// The files a byte-level BPE tokenizer lives in, read and written:
//
//   vocab.json    {"token": id, ...}, tokens spelled in byte-level characters (byte_level.hpp);
//                 GPT-2's encoder.json is the same file.
//   merges.txt    "#version: 0.2", then one merge per line, "left right", highest priority
//                 first; GPT-2's vocab.bpe is the same file.
//   tokenizer.json  Hugging Face's single file: model.vocab, model.merges (as "left right"
//                 strings or [left, right] pairs), added_tokens.
//   *.tiktoken    tiktoken's rank files: "base64(token bytes) rank" per line; rank = id.
//                 There are no merges: two adjacent tokens merge when their concatenation
//                 is a token, the lowest rank first.
//
// Readers check what they read and name the file and line (or key) of the first problem.
#pragma once

#include "core/output.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lowrank {

// Two adjacent tokens that become one. Lower priority merges first.
struct bpe_merge {
    std::uint32_t left, right, result, priority;
};

// Token ids are below this: a vocabulary is a dense table by id, and a stray huge id would
// ask for gigabytes. The largest real vocabularies have a few hundred thousand tokens.
constexpr std::size_t max_vocabulary_size = std::size_t{1} << 24;

struct bpe_vocabulary {
    // By id, the token as vocab.json spells it; "" where no token has that id.
    std::vector<std::string> tokens;
    std::unordered_map<std::string, std::uint32_t> ids;
    // In priority order (ties, possible in tiktoken files, apply leftmost first).
    std::vector<bpe_merge> merges;
    // Tokens that stand for themselves in text (with --allow-special), such as
    // <|endoftext|>: in vocab.json, those that are neither one byte nor made by a merge.
    std::vector<std::uint32_t> special_tokens;
    // Marks the last symbol of a word (CLIP's "</w>"); empty for GPT-2-style tokenizers.
    std::string end_of_word_suffix;
    // tokenizer.json's model.ignore_merges: a piece that is a token is that token.
    bool ignore_merges = false;

    std::optional<std::uint32_t> id_of(std::string_view token) const;
    // Adds a token with the next free id, or returns the id it has.
    std::uint32_t add(std::string_view token);
    // One more than the largest id.
    std::size_t id_limit() const { return tokens.size(); }
};

// vocab.json (or encoder.json).
bpe_vocabulary read_vocab_json(const std::string& path);

// Appends the merges of merges.txt (or vocab.bpe) to a vocabulary read before; each
// merge's two tokens and their concatenation must be in it. Then marks special tokens.
void read_merges_txt(const std::string& path, bpe_vocabulary& vocabulary);

// A Hugging Face tokenizer.json whose model is BPE.
bpe_vocabulary read_tokenizer_json(const std::string& path);

// A tiktoken rank file.
bpe_vocabulary read_tiktoken_ranks(const std::string& path);

// Marks as special the tokens that are neither one byte-level character (with the
// end-of-word suffix or without) nor the result of a merge.
void find_special_tokens(bpe_vocabulary& vocabulary);

// vocab.json as Hugging Face writes it: one line, tokens in id order, no final newline.
void write_vocab_json(output_stream& out, const std::vector<std::string>& tokens);

// merges.txt as Hugging Face writes it: "#version: 0.2" and one "left right" line each.
void write_merges_txt(output_stream& out, const std::vector<std::pair<std::string_view, std::string_view>>& merges);

}  // namespace lowrank
