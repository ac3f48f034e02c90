// Token ids on their way in and out of the tools: text (one sequence per line, ids
// separated by spaces), NumPy .npy (int32), and raw little-endian u16 or u32 streams (the
// nanoGPT .bin convention).
#pragma once

#include "core/output.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

enum class id_format { text, npy, u16, u32 };

std::optional<id_format> id_format_from_name(std::string_view name);

// Encoded sequences as they come out of the encoder, in input order: ids, and where in
// them each sequence ends. A sequence may begin in one batch and end in a later one.
struct id_batch {
    std::vector<std::uint32_t> ids{};
    std::vector<std::size_t> ends{};
    // The last sequence ended with the input and its line had no newline.
    bool unterminated = false;
    // Input bytes this batch covers (for progress).
    std::size_t input_bytes = 0;
    // The batch as text, made by format_ids_as_text (on the thread that encoded it).
    std::string text{};
    bool formatted = false;
};

// Formats a batch as the text format has it: ids separated by spaces, a newline after
// each sequence but an unterminated last one. id_writer joins such batches.
void format_ids_as_text(id_batch& batch);

// Writes batches of sequences in a format. Text: one line per sequence (the last without a
// newline when its input line had none). npy: a 1-D int32 array of all ids, or with
// `rows_of` T an (N, T) array, one row per sequence, cut or padded to T. u16/u32: all ids
// one after another, or T per sequence with rows_of.
// The longest rows an id_writer makes (`rows_of`): 2^24 ids, 64 MiB of int32 a row.
constexpr std::size_t max_row_length = std::size_t{1} << 24;

class id_writer {
public:
    id_writer(output_stream& out, id_format format, std::size_t rows_of = 0, std::uint32_t pad_id = 0);

    void write(const id_batch& batch);
    // Writes what is kept back (an .npy array) and makes the output final.
    void finish();

    // Sequences written, and how many of them were cut to rows_of.
    std::size_t sequences() const { return sequences_; }
    std::size_t truncated() const { return truncated_; }

private:
    void write_ids(const std::uint32_t* ids, std::size_t count);
    void end_sequence(bool unterminated);

    output_stream& out_;
    id_format format_;
    std::size_t rows_of_;
    std::uint32_t pad_id_;
    std::string text_;
    std::vector<std::int32_t> values_;  // npy, kept until finish
    std::vector<std::uint32_t> row_;    // the sequence being written, with rows_of
    std::size_t in_sequence_ = 0;       // ids written of the current sequence (text)
    bool newline_owed_ = false;
    std::size_t sequences_ = 0, truncated_ = 0;
};

// Reads sequences of ids. Text: one sequence per line, ids separated by spaces. npy: a 1-D
// array is one sequence, a 2-D array one per row (any integer dtype). u16/u32: the whole
// file is one sequence. `sequence(ids, where, unterminated)`: `where` places the sequence
// in messages ("FILE:LINE", "FILE: row N"); `unterminated` for a last text line that had
// no newline.
void read_id_sequences(const std::string& path, id_format format,
                       const std::function<void(std::span<const std::uint32_t> ids, const std::string& where,
                                                bool unterminated)>& sequence);

}  // namespace lowrank
