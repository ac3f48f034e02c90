#include "formats/tsv.hpp"

#include "core/error.hpp"
#include "core/text.hpp"

#include <fmt/format.h>

namespace lowrank {

tsv_file::tsv_file(const std::string& path, bool has_header)
    : input_(path), lines_(strip_byte_order_mark(input_.text())) {
    if (!has_header) return;
    std::string_view line;
    if (!lines_.next(line)) throw error_in(path, "empty file: expected a header row");
    for (std::string_view name : split(line, '\t')) header_.emplace_back(name);
}

std::size_t tsv_file::column(std::string_view name_or_number) const {
    for (std::size_t i = 0; i < header_.size(); ++i)
        if (header_[i] == name_or_number) return i;
    if (auto number = parse_integer(name_or_number); number && *number >= 1) {
        auto index = static_cast<std::size_t>(*number - 1);
        if (header_.empty() || index < header_.size()) return index;
        throw error_in(path(), fmt::format("has {} columns, no column {}", header_.size(), *number));
    }
    if (header_.empty()) throw error_in(path(), fmt::format("no header row to find column '{}' in", name_or_number));
    throw error_in(path(), fmt::format("no column '{}' (columns: {})", name_or_number, join(header_, ", ")));
}

std::string tsv_file::column_name(std::size_t column) const {
    if (column < header_.size()) return fmt::format("column '{}'", header_[column]);
    return fmt::format("column {}", column + 1);
}

bool tsv_file::next(std::vector<std::string_view>& fields) {
    std::string_view line;
    if (!lines_.next(line)) return false;
    split_into(line, '\t', fields);
    return true;
}

std::string_view tsv_file::field(const std::vector<std::string_view>& fields, std::size_t column) const {
    if (column < fields.size()) return fields[column];
    throw error_at(path(), line_number(),
                   fmt::format("{} field{}, but {} is field {}", fields.size(), fields.size() == 1 ? "" : "s",
                               column_name(column), column + 1));
}

std::string tsv_safe(std::string_view text) {
    std::string safe(text);
    for (char& c : safe)
        if (c == '\t' || c == '\n' || c == '\r') c = ' ';
    return safe;
}

}  // namespace lowrank
