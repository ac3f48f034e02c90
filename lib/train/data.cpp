#include "train/data.hpp"

#include "core/error.hpp"
#include "core/text.hpp"
#include "formats/tsv.hpp"
#include "nn/gpt2.hpp"

#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <limits>

namespace lowrank {
namespace {

bool is_integer_type(dtype type) {
    switch (type) {
    case dtype::u8: case dtype::i8: case dtype::u16: case dtype::i16:
    case dtype::u32: case dtype::i32: case dtype::u64: case dtype::i64: return true;
    default: return false;
    }
}

bool is_float_type(dtype type) { return type == dtype::f16 || type == dtype::f32 || type == dtype::f64; }

std::int32_t checked_id(std::int64_t id, std::size_t vocab_size, const std::string& path, std::string_view where) {
    if (id < 0 || static_cast<std::uint64_t>(id) >= vocab_size)
        throw error_in(path, fmt::format("token id {} at {} is outside the vocabulary (0..{})", id, where,
                                         vocab_size - 1));
    return static_cast<std::int32_t>(id);
}

}  // namespace

token_stream::token_stream(const std::string& path, std::size_t vocab_size) : path_(path) {
    if (path.ends_with(".u16") || path.ends_with(".u32")) {
        const std::size_t width = path.ends_with(".u16") ? 2 : 4;
        input_text input(path);
        std::string_view bytes = input.text();
        if (bytes.size() % width != 0)
            throw error_in(path, fmt::format("{} bytes: not a whole number of {}-byte ids", bytes.size(), width));
        ids_.resize(bytes.size() / width);
        for (std::size_t i = 0; i < ids_.size(); ++i) {
            std::uint32_t id = 0;
            for (std::size_t k = 0; k < width; ++k)
                id |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i * width + k])) << (8 * k);
            ids_[i] = checked_id(id, vocab_size, path, fmt::format("position {}", i));
        }
    } else {
        npy_array array(path);
        if (!is_integer_type(array.type()))
            throw error_in(path, "a token stream needs integer ids (.u16, .u32, or an integer .npy)");
        if (array.shape().size() != 1)
            throw error_in(path, fmt::format("a token stream is one sequence of ids (a 1-D array), not {}-dimensional",
                                             array.shape().size()));
        auto values = array.to_int64();
        ids_.resize(values.size());
        for (std::size_t i = 0; i < values.size(); ++i)
            ids_[i] = checked_id(values[i], vocab_size, path, fmt::format("position {}", i));
    }
    if (ids_.empty()) throw error_in(path, "no token ids");
}

void token_stream::copy(std::size_t begin, std::size_t count, std::int32_t* out) const {
    std::memcpy(out, ids_.data() + begin, count * sizeof(std::int32_t));
}

token_rows read_token_rows(const std::string& path, const text_tower_config& config,
                           std::optional<std::int32_t> pad_id) {
    npy_array array(path);
    if (!is_integer_type(array.type()))
        throw error_in(path, "token ids must be an integer array (N, T), as bpe-encode writes them");
    if (array.shape().size() != 2)
        throw error_in(path, fmt::format("token ids must be an array (N, T), not {}-dimensional", array.shape().size()));
    token_rows rows;
    rows.path = path;
    rows.rows = array.shape()[0];
    rows.time = array.shape()[1];
    if (rows.rows == 0 || rows.time == 0) throw error_in(path, "no rows of token ids");
    if (rows.time > config.max_positions)
        throw error_in(path, fmt::format("{} tokens per row, but the model has {} positions", rows.time,
                                         config.max_positions));
    auto values = array.to_int64();
    rows.ids.resize(values.size());
    for (std::size_t i = 0; i < values.size(); ++i)
        rows.ids[i] = checked_id(values[i], config.vocab_size, path,
                                 fmt::format("row {}, position {}", i / rows.time, i % rows.time));
    rows.lengths = token_lengths(rows.ids, rows.time, pad_id);
    return rows;
}

patch_rows::patch_rows(const std::string& path, const vision_tower_config& config) : array_(path) {
    const auto& shape = array_.shape();
    if (!is_float_type(array_.type()))
        throw error_in(path, "patches must be a float array (N, patches, C·P·P), as vit-patchify writes them");
    if (shape.size() != 3)
        throw error_in(path, fmt::format("patches must be an array (N, patches, C·P·P), not {}-dimensional",
                                         shape.size()));
    if (shape[1] != config.patches() || shape[2] != config.patch_features())
        throw error_in(path, fmt::format("patches of shape ({}, {}), the model takes ({}, {}): {} patches of {}×{}×{}",
                                         shape[1], shape[2], config.patches(), config.patch_features(),
                                         config.patches(), config.channels, config.patch_size, config.patch_size));
    if (shape[0] == 0) throw error_in(path, "no rows of patches");
    row_size_ = shape[1] * shape[2];
}

void patch_rows::copy(std::span<const std::size_t> indices, float* out) const {
    const std::size_t element = dtype_size(array_.type());
    for (std::size_t i = 0; i < indices.size(); ++i) {
        float* target = out + i * row_size_;
        convert_to_float(array_.type(), array_.data().data() + indices[i] * row_size_ * element, row_size_, target);
        for (std::size_t j = 0; j < row_size_; ++j)
            if (!std::isfinite(target[j]))
                throw error_in(path(), fmt::format("row {} holds a NaN or an infinity", indices[i]));
    }
}

namespace {

std::int32_t class_id(std::int64_t id, const std::vector<std::string>& names, const std::string& where) {
    if (id < 0 || static_cast<std::uint64_t>(id) >= names.size())
        throw error(fmt::format("{}: label {} is outside the model's {} classes (0..{})", where, id, names.size(),
                                names.size() - 1));
    return static_cast<std::int32_t>(id);
}

label_column read_npy_labels(const std::string& path, bool regression, const std::vector<std::string>& names) {
    npy_array array(path);
    const auto& shape = array.shape();
    if (shape.empty() || shape.size() > 2 || (shape.size() == 2 && shape[1] != 1))
        throw error_in(path, fmt::format("labels must be an array (N) or (N, 1), not of shape ({})",
                                         fmt::join(shape, ", ")));
    label_column labels;
    labels.path = path;
    if (regression) {
        labels.values = array.to_float();
        for (std::size_t i = 0; i < labels.values.size(); ++i)
            if (!std::isfinite(labels.values[i]))
                throw error_in(path, fmt::format("row {}: the target is not a finite number", i));
        return labels;
    }
    if (!is_integer_type(array.type()))
        throw error_in(path, fmt::format("class labels must be integers, not {}", npy_descr(array.type())));
    auto values = array.to_int64();
    for (std::size_t i = 0; i < values.size(); ++i)
        labels.classes.push_back(class_id(values[i], names, fmt::format("{}: row {}", display_name(path), i)));
    return labels;
}

}  // namespace

label_column read_labels(const std::string& path, const std::string& column, bool regression,
                         const std::vector<std::string>& class_names) {
    label_column labels;
    if (column.empty()) labels = read_npy_labels(path, regression, class_names);
    else {
        tsv_file file(path, true);
        labels.path = path;
        const std::size_t index = file.column(column);
        std::vector<std::string_view> fields;
        while (file.next(fields)) {
            std::string_view text = trim(file.field(fields, index));
            const std::string where = fmt::format("{}:{}", display_name(path), file.line_number());
            if (regression) {
                auto value = parse_double(text);
                if (!value || !std::isfinite(*value))
                    throw error(fmt::format("{}: '{}' is not a finite number", where, text));
                labels.values.push_back(static_cast<float>(*value));
                continue;
            }
            auto named = std::find(class_names.begin(), class_names.end(), text);
            if (named != class_names.end()) {
                labels.classes.push_back(static_cast<std::int32_t>(named - class_names.begin()));
                continue;
            }
            auto id = parse_integer(text);
            if (!id)
                throw error(fmt::format("{}: label '{}' is neither a class id nor one of the model's labels ({})", where,
                                        text, join(class_names, ", ")));
            labels.classes.push_back(class_id(*id, class_names, where));
        }
    }
    if (labels.size() == 0) throw error_in(path, "no labels");
    return labels;
}

}  // namespace lowrank
