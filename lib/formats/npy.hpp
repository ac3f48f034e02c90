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

// Parses and checks the header at the start of `file`. `path` is for messages. With
// whole_file, `file` must hold exactly the data the header declares; without, it may hold
// the header only (the start of a stream).
npy_header parse_npy_header(std::span<const std::byte> file, std::string_view path, bool whole_file = true);

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

// Reads an .npy row by row (rows: the first dimension), for arrays larger than memory:
// a file ("-": standard input, a pipe) is read block by block, never whole.
class npy_row_reader {
public:
    explicit npy_row_reader(const std::string& path);
    ~npy_row_reader();
    npy_row_reader(const npy_row_reader&) = delete;
    npy_row_reader& operator=(const npy_row_reader&) = delete;

    const std::string& path() const { return path_; }
    dtype type() const { return header_.type; }
    const std::vector<std::size_t>& shape() const { return header_.shape; }
    std::size_t rows() const { return header_.shape.empty() ? 0 : header_.shape[0]; }
    // Bytes of one row (the product of the other dimensions times the element size).
    std::size_t row_bytes() const { return row_bytes_; }

    // The next up to `count` rows as raw bytes into `out` (resized); how many were read (0
    // at the end). A file that ends before its shape says is an error.
    std::size_t read_rows(std::size_t count, std::vector<std::byte>& out);
    // The same converted to float32 (a type that converts).
    std::size_t read_rows(std::size_t count, std::vector<float>& out);

private:
    std::string path_;
    int fd_ = -1;
    npy_header header_;
    std::size_t row_bytes_ = 0, rows_read_ = 0;
    std::vector<std::byte> buffer_;
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

// Joins .npy files of the same dtype and row shape along their first dimension, in order,
// streaming: numpy.concatenate's result, byte for byte. Errors name the file that differs.
void concatenate_npy(const std::vector<std::string>& inputs, output_stream& out);

// Writes a whole array at once.
void write_npy(output_stream& out, dtype type, const std::vector<std::size_t>& shape, const void* data);

}  // namespace lowrank
