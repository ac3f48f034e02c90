// The options that name a tokenizer, shared by bpe-encode and bpe-decode:
// --tokenizer PATH, --vocab FILE, --merges FILE, --pattern NAME.
#pragma once

#include "bpe/tokenizer.hpp"
#include "core/cli.hpp"

#include <string>

namespace lowrank {

struct tokenizer_options {
    tokenizer_files files;
    std::string pattern = "gpt2";

    void add_to(command_line& cli);
    // The tokenizer the options name (usage errors for missing or conflicting options).
    bpe_tokenizer load() const;
    // How the tokenizer is named in messages.
    std::string name() const;
};

}  // namespace lowrank
