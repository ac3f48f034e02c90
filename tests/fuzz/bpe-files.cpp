// Fuzz target: the tokenizer files bpe-encode, bpe-decode and clip-embed read: vocab.json
// with merges.txt (the input split at its first NUL), tokenizer.json, tiktoken rank files;
// and, when a tokenizer loads, encoding and decoding with it.
#include "bpe/tokenizer.hpp"
#include "bpe/vocabulary.hpp"
#include "core/error.hpp"
#include "scratch_file.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto parts = split_at_nul(input);
    std::string_view first = parts.first, second = parts.second;
    scratch_file vocab("vocab.json", first), merges("merges.txt", second), whole("tokenizer", input);
    auto attempt = [](auto&& read) {
        try {
            read();
        } catch (const lowrank::error&) {
        }
    };
    attempt([&] {
        auto vocabulary = lowrank::read_vocab_json(vocab.path());
        lowrank::read_merges_txt(merges.path(), vocabulary);
    });
    attempt([&] { lowrank::read_tokenizer_json(whole.path()); });
    attempt([&] { lowrank::read_tiktoken_ranks(whole.path()); });
    attempt([&] {
        lowrank::tokenizer_files files;
        files.vocab = vocab.path();
        files.merges = merges.path();
        auto tokenizer = lowrank::load_tokenizer(files, lowrank::split_pattern::gpt2);
        lowrank::bpe_encoder encoder(tokenizer);
        auto ids = encoder.encode_sequence(second.substr(0, 256), {});
        std::vector<std::uint32_t> unsigned_ids(ids.begin(), ids.end());
        std::string text;
        tokenizer.decode(unsigned_ids, text);
    });
    return 0;
}
