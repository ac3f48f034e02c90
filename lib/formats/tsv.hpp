// Tab-separated files, as GLUE distributes them and as the tools write them. Fields are
// split at tabs only: nothing is quoted or unquoted (GLUE's sentences hold quote
// characters that are part of the text, so CSV-style unquoting would corrupt them). A
// UTF-8 byte order mark at the start and CR before LF are dropped.
#pragma once

#include "core/input.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

class tsv_file {
public:
    // "-" reads stdin. With has_header, the first line names the columns.
    tsv_file(const std::string& path, bool has_header);

    const std::string& path() const { return input_.path(); }
    const std::vector<std::string>& header() const { return header_; }

    // The 0-based index of a column given by its header name or its 1-based number.
    std::size_t column(std::string_view name_or_number) const;
    // A column's name for messages: its header name, or "column N".
    std::string column_name(std::size_t column) const;

    // Reads the next data row into `fields`; false at the end of the file.
    bool next(std::vector<std::string_view>& fields);
    // How many rows next() will still read.
    std::size_t rows_left() const { return lines_.lines_left(); }
    // 1-based line number of the row last read.
    std::size_t line_number() const { return lines_.line_number(); }

    // fields[column], or an error naming the file, line and column when the row is short.
    std::string_view field(const std::vector<std::string_view>& fields, std::size_t column) const;

private:
    input_text input_;
    line_cursor lines_;
    std::vector<std::string> header_;
};

// A TSV field as text for a TSV file we write: tabs and newlines inside would break the
// row apart, so they become spaces.
std::string tsv_safe(std::string_view text);

}  // namespace lowrank
