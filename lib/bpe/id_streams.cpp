#include "bpe/id_streams.hpp"

#include "core/error.hpp"
#include "core/input.hpp"
#include "formats/npy.hpp"

#include <charconv>
#include <cstring>
#include <fmt/format.h>

namespace lowrank {

std::optional<id_format> id_format_from_name(std::string_view name) {
    if (name == "text") return id_format::text;
    if (name == "npy") return id_format::npy;
    if (name == "u16") return id_format::u16;
    if (name == "u32") return id_format::u32;
    return std::nullopt;
}

id_writer::id_writer(output_stream& out, id_format format, std::size_t rows_of, std::uint32_t pad_id)
    : out_(out), format_(format), rows_of_(rows_of), pad_id_(pad_id) {}

void format_ids_as_text(id_batch& batch) {
    std::string& text = batch.text;
    text.clear();
    text.reserve(batch.ids.size() * 6);
    char number[16];
    std::size_t next_end = 0;
    for (std::size_t i = 0; i <= batch.ids.size(); ++i) {
        // Sequence ends before id i (several, for empty sequences).
        bool ended = false;
        while (next_end < batch.ends.size() && batch.ends[next_end] == i) {
            bool last = next_end + 1 == batch.ends.size();
            if (!(last && batch.unterminated)) text += '\n';
            ended = true;
            ++next_end;
        }
        if (i == batch.ids.size()) break;
        if (i > 0 && !ended) text += ' ';
        text.append(number, std::to_chars(number, number + sizeof number, batch.ids[i]).ptr);
    }
    batch.formatted = true;
}

void id_writer::write(const id_batch& batch) {
    if (batch.formatted && format_ == id_format::text && rows_of_ == 0) {
        // Join with what came before: a space when a sequence goes on from the last
        // batch, the newline an unterminated line of an earlier file still owes.
        bool has_content = !batch.ids.empty() || !batch.ends.empty();
        if (has_content && newline_owed_) out_.write("\n"), newline_owed_ = false;
        if (in_sequence_ > 0 && !batch.ids.empty() && (batch.ends.empty() || batch.ends.front() > 0)) out_.write(" ");
        out_.write(batch.text);
        sequences_ += batch.ends.size();
        if (!batch.ends.empty()) newline_owed_ = batch.unterminated;
        in_sequence_ = batch.ends.empty() ? in_sequence_ + batch.ids.size() : batch.ids.size() - batch.ends.back();
        return;
    }
    std::size_t start = 0;
    for (std::size_t end : batch.ends) {
        write_ids(batch.ids.data() + start, end - start);
        end_sequence(batch.unterminated && end == batch.ends.back());
        start = end;
    }
    write_ids(batch.ids.data() + start, batch.ids.size() - start);
    if (format_ == id_format::text || format_ == id_format::u16 || format_ == id_format::u32) {
        out_.write(text_);
        text_.clear();
    }
}

void id_writer::write_ids(const std::uint32_t* ids, std::size_t count) {
    if (rows_of_ > 0) {
        row_.insert(row_.end(), ids, ids + count);
        return;
    }
    switch (format_) {
    case id_format::text: {
        if (count > 0 && newline_owed_) text_ += '\n', newline_owed_ = false;
        char number[16];
        for (std::size_t i = 0; i < count; ++i) {
            if (in_sequence_++ > 0) text_ += ' ';
            auto end = std::to_chars(number, number + sizeof number, ids[i]).ptr;
            text_.append(number, end);
        }
        break;
    }
    case id_format::npy:
        for (std::size_t i = 0; i < count; ++i) values_.push_back(static_cast<std::int32_t>(ids[i]));
        break;
    case id_format::u16:
        for (std::size_t i = 0; i < count; ++i) {
            auto value = static_cast<std::uint16_t>(ids[i]);
            text_.append(reinterpret_cast<const char*>(&value), 2);  // little-endian hosts (x86, ARM)
        }
        break;
    case id_format::u32: text_.append(reinterpret_cast<const char*>(ids), count * 4); break;
    }
}

void id_writer::end_sequence(bool unterminated) {
    ++sequences_;
    if (rows_of_ > 0) {
        if (row_.size() > rows_of_) ++truncated_;
        row_.resize(rows_of_, pad_id_);
        std::size_t saved = rows_of_;
        rows_of_ = 0;  // write the row as plain ids
        write_ids(row_.data(), row_.size());
        rows_of_ = saved;
        row_.clear();
    }
    if (format_ == id_format::text) {
        if (newline_owed_) text_ += '\n';
        newline_owed_ = unterminated;
        if (!unterminated) text_ += '\n';
        in_sequence_ = 0;
    }
}

void id_writer::finish() {
    if (format_ == id_format::npy) {
        std::vector<std::size_t> shape = rows_of_ > 0 ? std::vector<std::size_t>{sequences_, rows_of_}
                                                      : std::vector<std::size_t>{values_.size()};
        write_npy(out_, dtype::i32, shape, values_.data());
    } else {
        out_.write(text_);
        text_.clear();
    }
    out_.commit();
}

namespace {

using sequence_callback =
    std::function<void(std::span<const std::uint32_t>, const std::string&, bool)>;

std::uint32_t checked_id(std::int64_t value, const std::string& where) {
    if (value < 0 || value > 0xFFFFFFFFll) throw error(fmt::format("{}: id {} is out of range", where, value));
    return static_cast<std::uint32_t>(value);
}

void read_text_ids(const std::string& path, const sequence_callback& sequence) {
    input_text input(path);
    std::string_view text = input.text();
    std::vector<std::uint32_t> ids;
    std::size_t line_number = 0;
    while (!text.empty()) {
        std::size_t end = text.find('\n');
        bool unterminated = end == std::string_view::npos;
        std::string_view line = text.substr(0, unterminated ? text.size() : end);
        text.remove_prefix(unterminated ? text.size() : end + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        ++line_number;
        ids.clear();
        const char* cursor = line.data();
        const char* line_end = line.data() + line.size();
        while (cursor < line_end) {
            if (*cursor == ' ' || *cursor == '\t') {
                ++cursor;
                continue;
            }
            std::uint32_t id = 0;
            auto [after, status] = std::from_chars(cursor, line_end, id);
            if (status != std::errc() || (after < line_end && *after != ' ' && *after != '\t')) {
                const char* word_end = cursor;
                while (word_end < line_end && *word_end != ' ' && *word_end != '\t') ++word_end;
                throw error_at(path, line_number,
                               fmt::format("'{}' is not a token id", std::string_view(cursor, word_end - cursor)));
            }
            ids.push_back(id);
            cursor = after;
        }
        sequence(ids, fmt::format("{}:{}", display_name(path), line_number), unterminated);
    }
}

void read_npy_ids(const std::string& path, const sequence_callback& sequence) {
    npy_array array(path);
    if (array.shape().size() != 1 && array.shape().size() != 2)
        throw error_in(path, fmt::format("an array of {} dimensions; token ids are 1-D or 2-D", array.shape().size()));
    std::vector<std::int64_t> values = array.to_int64();
    std::size_t rows = array.shape().size() == 1 ? 1 : array.shape()[0];
    std::size_t columns = array.shape().size() == 1 ? values.size() : array.shape()[1];
    std::vector<std::uint32_t> ids(columns);
    for (std::size_t row = 0; row < rows; ++row) {
        std::string where = array.shape().size() == 1 ? display_name(path) : fmt::format("{}: row {}", display_name(path), row);
        for (std::size_t column = 0; column < columns; ++column)
            ids[column] = checked_id(values[row * columns + column], where);
        sequence(ids, where, false);
    }
}

void read_raw_ids(const std::string& path, std::size_t width, const sequence_callback& sequence) {
    input_text input(path);
    std::string_view bytes = input.text();
    if (bytes.size() % width != 0)
        throw error_in(path, fmt::format("{} bytes is not a whole number of {}-byte ids", bytes.size(), width));
    std::vector<std::uint32_t> ids(bytes.size() / width);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (width == 2) {
            std::uint16_t value;
            std::memcpy(&value, bytes.data() + 2 * i, 2);
            ids[i] = value;
        } else {
            std::memcpy(&ids[i], bytes.data() + 4 * i, 4);
        }
    }
    sequence(ids, display_name(path), false);
}

}  // namespace

void read_id_sequences(const std::string& path, id_format format, const sequence_callback& sequence) {
    switch (format) {
    case id_format::text: read_text_ids(path, sequence); break;
    case id_format::npy: read_npy_ids(path, sequence); break;
    case id_format::u16: read_raw_ids(path, 2, sequence); break;
    case id_format::u32: read_raw_ids(path, 4, sequence); break;
    }
}

}  // namespace lowrank
