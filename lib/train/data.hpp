// Training and evaluation data as the other tools write it: token streams (.u16/.u32/.npy
// from bpe-encode) for language modelling, rows of token ids (N, T) for sequence tasks,
// image patches (N, patches, C·P·P from vit-patchify), and labels (.npy, or a column of a
// TSV file with a header row). Readers check what they read against the model and name
// the file (and line, row or position) of what does not fit.
#pragma once

#include "core/input.hpp"
#include "formats/npy.hpp"
#include "nn/config.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace lowrank {

// One stream of token ids: raw little-endian uint16 (.u16) or uint32 (.u32), or a 1-D
// integer .npy. Every id is checked against the vocabulary when it is read in.
class token_stream {
public:
    token_stream(const std::string& path, std::size_t vocab_size);

    const std::string& path() const { return path_; }
    std::size_t size() const { return ids_.size(); }
    // ids [begin, begin + count) into out.
    void copy(std::size_t begin, std::size_t count, std::int32_t* out) const;

private:
    std::string path_;
    std::vector<std::int32_t> ids_;
};

// Rows of token ids (N, T), right-padded: any integer .npy of two dimensions. lengths[b]
// counts the row's tokens up to its last one that is not the pad id (all T without one).
struct token_rows {
    std::string path;
    std::size_t rows = 0, time = 0;
    std::vector<std::int32_t> ids, lengths;

    const std::int32_t* row(std::size_t b) const { return ids.data() + b * time; }
};

// Checks every id against the model's text tower (vocabulary, positions) and that there are rows.
token_rows read_token_rows(const std::string& path, const text_tower_config& config, std::optional<std::int32_t> pad_id);

// A float array (N, ...) of image patches, read row by row from the mapped file.
class patch_rows {
public:
    // Checks the shape against the vision tower: (N, patches, C·P·P).
    patch_rows(const std::string& path, const vision_tower_config& config);

    const std::string& path() const { return array_.path(); }
    std::size_t rows() const { return array_.shape()[0]; }
    std::size_t row_size() const { return row_size_; }
    // Rows `indices` one after another into out (indices.size() · row_size() floats);
    // a NaN or an infinity is an error naming the row.
    void copy(std::span<const std::size_t> indices, float* out) const;

private:
    npy_array array_;
    std::size_t row_size_ = 0;
};

// Labels, one per example: class ids for classification, numbers for regression.
struct label_column {
    std::string path;
    std::vector<std::int32_t> classes;
    std::vector<float> values;

    std::size_t size() const { return classes.empty() ? values.size() : classes.size(); }
};

// A .npy of one dimension (or (N, 1)), or with `column` a TSV column (header name or
// 1-based number). Classification: integers in [0, classes), or in a TSV also the class
// names (class_names, by id); regression: finite numbers.
label_column read_labels(const std::string& path, const std::string& column, bool regression,
                         const std::vector<std::string>& class_names);

}  // namespace lowrank
