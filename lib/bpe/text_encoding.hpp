// Encoding whole inputs on all threads: the text is cut into chunks of about a megabyte at
// places where the pre-tokenizer is sure to cut too, each thread encodes its chunks with
// its own encoder, and the ids come back in input order.
#pragma once

#include "bpe/id_streams.hpp"
#include "bpe/tokenizer.hpp"

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace lowrank {

struct text_encoding_options {
    // Line mode (false): each line is a sequence, its newline not encoded (a carriage
    // return before it is, as any other byte). Document mode: the whole text is one.
    bool document = false;
    bool allow_special = false;
    std::optional<std::uint32_t> bos, eos;
    // Format each batch as text on the thread that encoded it (format_ids_as_text).
    bool format_text = false;
};

// Encodes `text` (the contents of `path`, which names it in messages), handing the batches
// to `consume` in input order. One encoder per thread, made by the caller and reused from
// one input to the next (their caches stay warm).
void encode_text(std::string_view text, const std::string& path, const text_encoding_options& options,
                 std::vector<bpe_encoder>& encoders, const std::function<void(const id_batch&)>& consume);

}  // namespace lowrank
