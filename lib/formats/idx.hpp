// IDX files, the format of MNIST and Fashion-MNIST, gzip-compressed or not.
//
// Layout: a 4-byte magic 00 00 TYPE NDIM, then NDIM big-endian uint32 dimensions, then the
// elements, big-endian, in C order. TYPE: 0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
// 0x0C int32, 0x0D float32, 0x0E float64. Images are (N, rows, columns) unsigned bytes, or
// (N, rows, columns, channels); labels are (N) unsigned bytes.
//
// The reader streams records one at a time, so a file of millions of images is never held
// in memory; gzip is recognised by its magic, not by the name.
#pragma once

#include "formats/dtype.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

// Whether a path names an IDX file by the usual conventions: a name ending in ".gz" or
// ".idx" (".idx.gz"), or containing "idx" followed by a digit ("train-images-idx3-ubyte").
bool looks_like_idx(std::string_view path);

class idx_reader {
public:
    // "-" reads standard input.
    explicit idx_reader(const std::string& path);
    ~idx_reader();
    idx_reader(const idx_reader&) = delete;
    idx_reader& operator=(const idx_reader&) = delete;

    const std::string& path() const { return path_; }
    dtype type() const { return type_; }
    const std::vector<std::size_t>& shape() const { return shape_; }
    std::size_t record_count() const { return shape_[0]; }
    // Elements in one record: the product of the dimensions after the first.
    std::size_t record_elements() const { return record_elements_; }
    std::size_t record_bytes() const { return record_elements_ * dtype_size(type_); }

    // Reads the next record's bytes, as stored (big-endian). An error naming the file and
    // the record when the data ends early or is corrupt.
    void read_record(std::span<std::byte> into);
    // Records read so far (the number of the next one, from 0).
    std::size_t records_read() const { return records_read_; }

private:
    void read_header();

    std::string path_;
    void* stream_ = nullptr;  // zlib's gzFile: reads plain and gzip-compressed data alike
    dtype type_ = dtype::u8;
    std::vector<std::size_t> shape_;
    std::size_t record_elements_ = 1;
    std::size_t records_read_ = 0;
};

// A whole one-dimensional IDX file of integers (labels) as int64.
std::vector<std::int64_t> read_idx_labels(const std::string& path);

}  // namespace lowrank
