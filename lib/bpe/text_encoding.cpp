#include "bpe/text_encoding.hpp"

#include "core/error.hpp"
#include "core/threads.hpp"

#include <algorithm>
#include <atomic>
#include <fmt/format.h>

namespace lowrank {
namespace {

constexpr std::size_t chunk_bytes = std::size_t{1} << 20;

std::size_t line_number_at(std::string_view text, std::size_t offset) {
    return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

bool is_printable_ascii(char c) {
    return c > ' ' && c < 0x7F;
}

// Where the next chunk after `start` ends. Line mode: after a newline. Document mode:
// after a newline that has a printable ASCII character on each side: every pattern cuts
// there (no piece holds a newline and then a printable character), and the newline is a
// piece of its own whether or not the text goes on (with a space before it, " \n" at the
// end of a chunk would be one piece, but " " and "\n" in the whole text), so the pieces
// are those of the whole text.
std::size_t chunk_end(std::string_view text, std::size_t start, bool document, split_pattern pattern) {
    if (text.size() - start <= chunk_bytes || (document && pattern == split_pattern::none)) return text.size();
    std::size_t position = start + chunk_bytes;
    while (position < text.size()) {
        std::size_t newline = text.find('\n', position);
        if (newline == std::string_view::npos) return text.size();
        position = newline + 1;
        if (!document) return position;
        if (position < text.size() && is_printable_ascii(text[position]) && newline > start &&
            is_printable_ascii(text[newline - 1]))
            return position;
    }
    return text.size();
}

// Encodes the lines of one chunk; the chunk ends after a newline, or with the text.
void encode_lines(std::string_view chunk, bool text_ends_here, const text_encoding_options& options,
                  bpe_encoder& encoder, id_batch& batch) {
    std::size_t position = 0;
    while (position < chunk.size()) {
        std::size_t newline = chunk.find('\n', position);
        std::size_t end = newline == std::string_view::npos ? chunk.size() : newline;
        if (options.bos) batch.ids.push_back(*options.bos);
        encoder.encode(chunk.substr(position, end - position), batch.ids, options.allow_special);
        if (options.eos) batch.ids.push_back(*options.eos);
        batch.ends.push_back(batch.ids.size());
        if (newline == std::string_view::npos) batch.unterminated = text_ends_here;
        position = end + 1;
    }
}

// A failure inside a chunk, placed on its line: the chunk is encoded again line by line
// until the line that fails.
[[noreturn]] void report(const error& failure, std::string_view text, std::size_t chunk_start, std::size_t chunk_size,
                         const std::string& path, const text_encoding_options& options, bpe_encoder& encoder) {
    std::size_t position = chunk_start, end = chunk_start + chunk_size;
    std::vector<std::uint32_t> ids;
    while (position < end) {
        std::size_t newline = std::min(text.find('\n', position), end);
        try {
            ids.clear();
            encoder.encode(text.substr(position, newline - position), ids, options.allow_special);
        } catch (const error& line_failure) {
            throw error_at(path, line_number_at(text, position), line_failure.what());
        }
        position = newline + 1;
    }
    throw error_at(path, line_number_at(text, chunk_start), failure.what());
}

}  // namespace

void encode_text(std::string_view text, const std::string& path, const text_encoding_options& options,
                 std::vector<bpe_encoder>& encoders, const std::function<void(const id_batch&)>& consume) {
    if (encoders.empty()) throw std::logic_error("encode_text: no encoders");
    split_pattern pattern = encoders.front().tokenizer().splitter().pattern();
    std::vector<std::size_t> starts;
    std::vector<id_batch> batches;
    std::size_t position = 0;
    bool first = true;
    // A round: two chunks per thread, encoded at once, then handed on in order.
    const std::size_t round_chunks = 2 * encoders.size();
    do {
        starts.clear();
        while (starts.size() < round_chunks && (position < text.size() || (first && starts.empty()))) {
            starts.push_back(position);
            position = chunk_end(text, position, options.document, pattern);
        }
        starts.push_back(position);
        std::size_t chunks = starts.size() - 1;
        batches.assign(chunks, id_batch{});
        std::atomic<std::size_t> next_encoder{0};  // one per worker
        parallel_for(chunks, [&](std::size_t begin, std::size_t end) {
            bpe_encoder& encoder = encoders[next_encoder++ % encoders.size()];
            for (std::size_t chunk = begin; chunk < end; ++chunk) {
                std::string_view piece = text.substr(starts[chunk], starts[chunk + 1] - starts[chunk]);
                id_batch& batch = batches[chunk];
                batch.input_bytes = piece.size();
                try {
                    if (!options.document) {
                        encode_lines(piece, starts[chunk + 1] == text.size(), options, encoder, batch);
                        if (options.format_text) format_ids_as_text(batch);
                        continue;
                    }
                    if (first && chunk == 0 && options.bos) batch.ids.push_back(*options.bos);
                    encoder.encode(piece, batch.ids, options.allow_special);
                    if (starts[chunk + 1] == text.size()) {
                        if (options.eos) batch.ids.push_back(*options.eos);
                        batch.ends.push_back(batch.ids.size());
                    }
                    if (options.format_text) format_ids_as_text(batch);
                } catch (const error& failure) {
                    report(failure, text, starts[chunk], piece.size(), path, options, encoder);
                }
            }
        });
        for (const auto& batch : batches) consume(batch);
        first = false;
    } while (position < text.size());
}

}  // namespace lowrank
