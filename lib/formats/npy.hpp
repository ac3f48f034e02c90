// NumPy .npy files (format versions 1.0, 2.0 and 3.0), little-endian and C order: the
// format arrays travel in between the tools. Readers refuse what they cannot read exactly
// (big-endian data, Fortran order, structured dtypes, lying shapes) with a clear message.
#pragma once

#include "core/input.hpp"
#include "core/output.hpp"
#include "formats/dtype.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

struct npy_header {
    dtype type = dtype::f32;
    std::vector<std::size_t> shape;  // empty: a scalar
    std::size_t data_offset = 0;     // bytes from the start of the file to the data

    std::size_t element_count() const;
};

// NumPy's descr for a dtype ("<f4", "|u1"), for the types .npy files here may hold:
// f2 f4 f8, i1 i2 i4 i8, u1 u2 u4 u8, b1.
std::string npy_descr(dtype type);

// Parses and checks the header at the start of `file`. `path` is for messages.
npy_header parse_npy_header(std::span<const std::byte> file, std::string_view path);

// The bytes of a complete header (magic, version, length, dict, padding) for an array of
// `type` and `shape`, exactly as numpy.save writes them: the dict, room for the first
// dimension to grow to 21 digits (so a streaming writer can rewrite the row count in
// place), spaces up to a multiple of 64 bytes, and a newline.
std::string npy_header_bytes(dtype type, const std::vector<std::size_t>& shape);

// A whole .npy file: a regular file is mapped, stdin ("-") is read into memory.
class npy_array {
public:
    explicit npy_array(const std::string& path);

    const std::string& path() const { return input_.path(); }
    dtype type() const { return header_.type; }
    const std::vector<std::size_t>& shape() const { return header_.shape; }
    std::size_t element_count() const { return header_.element_count(); }
    std::span<const std::byte> data() const { return data_; }

    // The elements as float32 or int64 (converted from whatever the file holds).
    std::vector<float> to_float() const;
    std::vector<std::int64_t> to_int64() const;

private:
    input_text input_;
    npy_header header_;
    std::span<const std::byte> data_;
};

// Writes an .npy to an output as rows arrive. With the row count known in advance the
// header is final at once; otherwise it is rewritten at finish(), which needs a file
// (standard output cannot seek: give the count, or write to a file).
class npy_writer {
public:
    npy_writer(output_stream& out, dtype type, std::vector<std::size_t> row_shape,
               std::optional<std::size_t> rows = std::nullopt);

    // `count` rows of row_shape elements each, as raw little-endian bytes of `type`.
    void write_rows(const void* data, std::size_t count);
    void finish();

    std::size_t rows_written() const { return rows_written_; }

private:
    output_stream& out_;
    dtype type_;
    std::vector<std::size_t> row_shape_;
    std::optional<std::size_t> declared_rows_;
    std::size_t row_bytes_ = 0;
    std::size_t rows_written_ = 0;
    std::size_t header_size_ = 0;
};

// Writes a whole array at once.
void write_npy(output_stream& out, dtype type, const std::vector<std::size_t>& shape, const void* data);

}  // namespace lowrank
