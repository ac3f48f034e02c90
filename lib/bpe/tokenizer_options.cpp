#include "bpe/tokenizer_options.hpp"

#include "core/error.hpp"

#include <fmt/format.h>

namespace lowrank {

void tokenizer_options::add_to(command_line& cli) {
    cli.options().add_options()
        ("tokenizer", value(&files.path, "PATH"),
         "the tokenizer: a folder holding vocab.json and merges.txt (or encoder.json and vocab.bpe, or "
         "tokenizer.json), a Hugging Face tokenizer.json, or a tiktoken rank file")
        ("vocab", value(&files.vocab, "FILE"), "the tokenizer's vocab.json (with --merges)")
        ("merges", value(&files.merges, "FILE"), "the tokenizer's merges.txt (with --vocab)")
        ("pattern", value(&pattern, "NAME")->default_value("gpt2"),
         "pre-tokenization: gpt2, cl100k, clip or none");
}

bpe_tokenizer tokenizer_options::load() const {
    auto split = split_pattern_from_name(pattern);
    if (!split) throw usage_error(fmt::format("unknown pattern '{}' (patterns: gpt2, cl100k, clip, none)", pattern));
    return load_tokenizer(files, *split);
}

std::string tokenizer_options::name() const {
    return display_name(files.path.empty() ? files.vocab : files.path);
}

}  // namespace lowrank
