// bpe-train: learn a byte-level BPE tokenizer (vocab.json + merges.txt) from text, the
// merges Hugging Face tokenizers would learn, faster.
#include "bpe/pretokenizer.hpp"
#include "bpe/tokenizer.hpp"
#include "bpe/trainer.hpp"
#include "bpe/word_counter.hpp"
#include "core/cli.hpp"
#include "core/error.hpp"
#include "core/input.hpp"
#include "core/output.hpp"
#include "core/progress.hpp"
#include "core/text.hpp"

#include <filesystem>
#include <fmt/format.h>

using namespace lowrank;

namespace {

struct settings {
    std::size_t vocab_size = 0;
    std::uint64_t min_frequency = 0;
    std::string special_tokens, pattern = "gpt2", alphabet = "all", continue_from;
};

word_counts count_words(const command_line& cli, split_pattern pattern, const std::vector<std::string>& files) {
    word_counter counter(pattern);
    for (const auto& file : files) {
        line_block_reader reader(file);
        progress shown(fmt::format("counting words in {}", display_name(file)), "bytes", reader.size(), cli.common().quiet);
        std::string_view block;
        while (reader.next(block)) {
            counter.add_block(block);
            shown.advance(block.size());
        }
    }
    return counter.take();
}

void write_tokenizer(const std::string& folder, const bpe_vocabulary& vocabulary) {
    std::error_code failure;
    std::filesystem::create_directories(folder, failure);
    if (failure) throw error_in(folder, fmt::format("cannot create the folder: {}", failure.message()));
    output_stream vocab(folder + "/vocab.json", output_kind::text);
    write_vocab_json(vocab, vocabulary.tokens);
    output_stream merges(folder + "/merges.txt", output_kind::text);
    std::vector<std::pair<std::string_view, std::string_view>> pairs;
    for (const auto& merge : vocabulary.merges) pairs.emplace_back(vocabulary.tokens[merge.left], vocabulary.tokens[merge.right]);
    write_merges_txt(merges, pairs);
    vocab.commit();
    merges.commit();
}

void train(const command_line& cli, const settings& options, std::vector<std::string> files) {
    if (!cli.given("output")) throw usage_error("give the output folder with -o DIR");
    if (cli.common().output == "-") throw usage_error("the output is a folder (vocab.json and merges.txt), not standard output");
    auto pattern = split_pattern_from_name(options.pattern);
    if (!pattern) throw usage_error(fmt::format("unknown pattern '{}' (patterns: gpt2, cl100k, clip, none)", options.pattern));
    if (options.alphabet != "all" && options.alphabet != "seen")
        throw usage_error(fmt::format("unknown alphabet '{}' (alphabets: all, seen)", options.alphabet));
    if (options.vocab_size > max_vocabulary_size)
        throw usage_error(fmt::format("--vocab-size {}: at most {} tokens", options.vocab_size, max_vocabulary_size));
    bpe_training_options training;
    training.vocab_size = options.vocab_size;
    training.min_frequency = options.min_frequency;
    training.all_bytes = options.alphabet == "all";
    if (*pattern == split_pattern::clip) training.end_of_word_suffix = "</w>";
    if (!options.special_tokens.empty())
        for (std::string_view token : split(options.special_tokens, ','))
            if (!token.empty()) training.special_tokens.emplace_back(token);
    std::optional<bpe_vocabulary> start;
    if (!options.continue_from.empty()) {
        start = load_tokenizer({.path = options.continue_from}, *pattern).vocabulary();
        if (start->ignore_merges) throw error_in(options.continue_from, "a tiktoken rank file has no merges to continue");
    }
    if (files.empty()) files.push_back("-");

    word_counts words = count_words(cli, *pattern, files);
    progress shown("learning merges", "merges", 0, cli.common().quiet);
    bpe_vocabulary vocabulary =
        train_bpe(words, training, start ? &*start : nullptr, [&](std::size_t) { shown.advance(); });
    shown.finish();
    std::size_t tokens = 0;
    for (const auto& token : vocabulary.tokens) tokens += !token.empty();
    if (tokens < options.vocab_size)
        cli.warn(fmt::format("the vocabulary has {} tokens, fewer than --vocab-size {}: no pair {}", tokens,
                             options.vocab_size,
                             options.min_frequency > 1 ? fmt::format("occurs {} times or more", options.min_frequency)
                                                       : std::string("is left to merge")));
    write_tokenizer(cli.common().output, vocabulary);
}

}  // namespace

int main(int argc, char** argv) {
    command_line cli("bpe-train", "[FILE]...",
                     "Learn a byte-level BPE tokenizer from text and write DIR/vocab.json and DIR/merges.txt, which "
                     "bpe-encode and Hugging Face tokenizers load. The merges and ids are those Hugging Face's BPE "
                     "trainer learns from the same text. The input streams through: memory grows with the number of "
                     "distinct words, not with the size of the text. No FILE, or '-': standard input.",
                     output_option | threads_option);
    settings options;
    std::vector<std::string> files;
    cli.options().add_options()
        ("vocab-size", value(&options.vocab_size, "N"), "the size of the vocabulary to learn, special tokens and "
                                                         "alphabet included (required)")
        ("min-frequency", value(&options.min_frequency, "F")->default_value(0),
         "stop when the most frequent pair occurs fewer than F times")
        ("special-tokens", value(&options.special_tokens, "LIST"),
         "comma-separated special tokens, given the first ids (such as '<|endoftext|>')")
        ("pattern", value(&options.pattern, "NAME")->default_value("gpt2"), "pre-tokenization: gpt2, cl100k, clip or none")
        ("alphabet", value(&options.alphabet, "NAME")->default_value("all"),
         "the tokens to start from: all (the 256 bytes, so that any text encodes) or seen (the bytes the text holds)")
        ("continue", value(&options.continue_from, "DIR"),
         "extend the tokenizer in DIR: its tokens keep their ids, its merges come first, new ones follow");
    cli.operands(files, 0, static_cast<std::size_t>(-1));
    cli.epilog("Examples:\n"
               "  bpe-train --vocab-size 32000 --special-tokens '<|endoftext|>' -o tokenizer corpus/*.txt\n"
               "  bpe-train --vocab-size 40000 --continue tokenizer -o tokenizer-40k more.txt");
    return cli.run(argc, argv, [&] {
        if (!cli.given("vocab-size")) throw usage_error("give the vocabulary size with --vocab-size N");
        train(cli, options, files);
    });
}
