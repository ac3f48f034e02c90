// safetensors: reading through a read-only mmap (zero-copy), validated as the reference
// implementation validates, and writing with the reference writer's layout, so that files
// we write are byte-identical to Python's `safetensors.torch.save_file`.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON header, then the data.
// Header: {"__metadata__": {string: string}, "name": {"dtype", "shape", "data_offsets"}...};
// offsets are relative to the data, tensors tile the data exactly, with no gap or overlap.
#pragma once

#include "core/input.hpp"
#include "core/output.hpp"
#include "formats/dtype.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowrank {

// The header may not be longer than this (the reference's limit).
constexpr std::uint64_t safetensors_max_header = 100'000'000;

struct tensor_info {
    std::string name;
    dtype type = dtype::f32;
    std::vector<std::uint64_t> shape;
    std::uint64_t begin = 0, end = 0;  // byte offsets in the data section

    std::uint64_t element_count() const;
};

struct safetensors_header {
    std::vector<tensor_info> tensors;  // sorted by data offset
    std::map<std::string, std::string> metadata;
    std::uint64_t data_offset = 0;     // 8 + N
};

// Parses and validates the header of a whole file held in memory. `path` is for messages.
safetensors_header parse_safetensors(std::span<const std::byte> file, std::string_view path);

class safetensors_file {
public:
    // page_loading::lazy for files streamed through tensor by tensor (see release()).
    explicit safetensors_file(const std::string& path, page_loading loading = page_loading::eager);

    const std::string& path() const { return file_.path(); }
    const std::vector<tensor_info>& tensors() const { return header_.tensors; }
    const std::map<std::string, std::string>& metadata() const { return header_.metadata; }

    // nullptr when there is no such tensor.
    const tensor_info* find(std::string_view name) const;
    // The tensor, or an error naming the file and the tensor.
    const tensor_info& at(std::string_view name) const;

    // The tensor's raw little-endian bytes, straight from the mapping.
    std::span<const std::byte> bytes(const tensor_info& tensor) const;
    // The tensor's elements as float32; an error for dtypes that do not convert.
    std::vector<float> to_float(const tensor_info& tensor) const;
    // Drops the tensor's pages from resident memory (mapped_file::release).
    void release(const tensor_info& tensor) const;

    // Where the data section starts in the file (8 + header length): a tensor's bytes are at
    // data_offset() + begin.
    std::uint64_t data_offset() const { return header_.data_offset; }
    // The whole file, header included.
    std::span<const std::byte> file_bytes() const { return file_.bytes(); }

private:
    mapped_file file_;
    safetensors_header header_;
};

// What a writer needs to lay out one tensor.
struct tensor_spec {
    std::string name;
    dtype type = dtype::f32;
    std::vector<std::uint64_t> shape;

    std::uint64_t byte_size() const;
};

// The 8-byte length and the header of a file holding `tensors` in exactly this order (their
// data laid out one after the other in that order), as the reference writer formats it.
// For writers that keep another file's tensor order rather than the reference order.
std::string safetensors_header_bytes(const std::vector<tensor_spec>& tensors,
                                     const std::map<std::string, std::string>& metadata);

// Writes a safetensors file whose tensors arrive one at a time, in layout() order, so that a
// model larger than memory can be written as it is computed.
class safetensors_writer {
public:
    safetensors_writer(output_stream& out, std::vector<tensor_spec> tensors,
                       const std::map<std::string, std::string>& metadata);

    // The order in which write() must be called: the reference writer's order (larger
    // dtypes first, then by name), which keeps every tensor aligned to its element size.
    const std::vector<tensor_spec>& layout() const { return layout_; }

    // The next tensor's bytes; `name` must be layout()[number written so far].
    void write(std::string_view name, std::span<const std::byte> bytes);
    // Checks that every tensor was written.
    void finish();

private:
    output_stream& out_;
    std::vector<tensor_spec> layout_;
    std::size_t next_ = 0;
};

// One tensor held in memory, for write_safetensors.
struct tensor_data {
    tensor_spec spec;
    std::span<const std::byte> bytes;
};

void write_safetensors(output_stream& out, const std::vector<tensor_data>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace lowrank
