#include "formats/safetensors.hpp"

#include "core/error.hpp"
#include "formats/json.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace lowrank {
namespace {

using json = ordered_json;

bool multiply_checked(std::uint64_t a, std::uint64_t b, std::uint64_t& product) {
    return !__builtin_mul_overflow(a, b, &product);
}

tensor_info parse_tensor_entry(const std::string& name, const json& entry, std::string_view path) {
    auto fail = [&](std::string_view what) { return error_in(path, fmt::format("tensor '{}': {}", name, what)); };
    if (!entry.is_object()) throw fail("entry is not a JSON object");
    for (const char* field : {"dtype", "shape", "data_offsets"})
        if (!entry.contains(field)) throw fail(fmt::format("no \"{}\"", field));
    const json& dtype_json = entry["dtype"];
    if (!dtype_json.is_string()) throw fail("\"dtype\" is not a string");
    tensor_info tensor;
    tensor.name = name;
    auto type = dtype_from_safetensors_name(dtype_json.get<std::string>());
    if (!type) throw fail(fmt::format("unknown dtype '{}'", dtype_json.get<std::string>()));
    tensor.type = *type;
    const json& shape = entry["shape"];
    if (!shape.is_array()) throw fail("\"shape\" is not an array");
    for (const json& dimension : shape) {
        if (!dimension.is_number_unsigned()) throw fail("\"shape\" holds something other than non-negative integers");
        tensor.shape.push_back(dimension.get<std::uint64_t>());
    }
    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
        throw fail("\"data_offsets\" is not two non-negative integers");
    tensor.begin = offsets[0].get<std::uint64_t>();
    tensor.end = offsets[1].get<std::uint64_t>();
    return tensor;
}

void check_tensor_size(const tensor_info& tensor, std::string_view path) {
    auto fail = [&](std::string_view what) { return error_in(path, fmt::format("tensor '{}': {}", tensor.name, what)); };
    std::uint64_t count = 1, bits = 0;
    for (std::uint64_t dimension : tensor.shape)
        if (!multiply_checked(count, dimension, count)) throw fail("shape overflows");
    if (!multiply_checked(count, dtype_bits(tensor.type), bits)) throw fail("shape overflows");
    if (bits % 8 != 0) throw fail("sub-byte dtype whose elements do not fill whole bytes");
    if (tensor.end - tensor.begin != bits / 8)
        throw fail(fmt::format("shape [{}] of {} needs {} bytes, data_offsets [{}, {}] give {}",
                               fmt::join(tensor.shape, ", "), safetensors_name(tensor.type), bits / 8, tensor.begin,
                               tensor.end, tensor.end - tensor.begin));
}

// The reference writer's dtype order, largest rank first.
int layout_rank(dtype type) {
    static const dtype order[] = {
        dtype::u64, dtype::i64, dtype::f64, dtype::c64, dtype::f32, dtype::u32, dtype::i32, dtype::bf16,
        dtype::f16, dtype::u16, dtype::i16, dtype::f8_e5m2fnuz, dtype::f8_e4m3fnuz, dtype::f8_e8m0,
        dtype::f8_e4m3, dtype::f8_e5m2, dtype::i8, dtype::u8, dtype::f6_e3m2, dtype::f6_e2m3, dtype::f4,
        dtype::boolean,
    };
    return static_cast<int>(std::find(std::begin(order), std::end(order), type) - std::begin(order));
}

std::string header_text(const std::vector<tensor_spec>& layout, const std::map<std::string, std::string>& metadata) {
    std::string text = "{";
    if (!metadata.empty()) {
        text += "\"__metadata__\":{";
        bool first = true;
        for (const auto& [key, value] : metadata) {
            text += fmt::format("{}{}:{}", first ? "" : ",", json(key).dump(), json(value).dump());
            first = false;
        }
        text += "}";
    }
    std::uint64_t offset = 0;
    for (const auto& tensor : layout) {
        std::uint64_t size = tensor.byte_size();
        text += fmt::format("{}{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                            text.size() > 1 ? "," : "", json(tensor.name).dump(), safetensors_name(tensor.type),
                            fmt::join(tensor.shape, ","), offset, offset + size);
        offset += size;
    }
    text += "}";
    text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
    return text;
}

}  // namespace

std::uint64_t tensor_info::element_count() const {
    std::uint64_t count = 1;
    for (std::uint64_t dimension : shape) count *= dimension;
    return count;
}

std::uint64_t tensor_spec::byte_size() const {
    std::uint64_t count = 1;
    for (std::uint64_t dimension : shape) count *= dimension;
    return count * dtype_bits(type) / 8;
}

safetensors_header parse_safetensors(std::span<const std::byte> file, std::string_view path) {
    if (file.size() < 8)
        throw error_in(path, fmt::format("too short for a safetensors file ({} bytes)", file.size()));
    std::uint64_t header_length = 0;
    for (int i = 0; i < 8; ++i) header_length |= static_cast<std::uint64_t>(file[i]) << (8 * i);
    if (header_length > safetensors_max_header)
        throw error_in(path, fmt::format("safetensors header length {} is over the {} byte limit", header_length,
                                         safetensors_max_header));
    if (header_length > file.size() - 8)
        throw error_in(path, fmt::format("safetensors header length {} runs past the end of the file ({} bytes)",
                                         header_length, file.size()));

    safetensors_header result;
    result.data_offset = 8 + header_length;
    json header = parse_json_strict(
        std::string_view(reinterpret_cast<const char*>(file.data()) + 8, header_length), path, "safetensors header");
    if (!header.is_object()) throw error_in(path, "safetensors header is not a JSON object");
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") {
            if (!entry.is_object()) throw error_in(path, "__metadata__ is not a JSON object");
            for (const auto& [key, value] : entry.items()) {
                if (!value.is_string())
                    throw error_in(path, fmt::format("__metadata__ value of '{}' is not a string", key));
                result.metadata[key] = value.get<std::string>();
            }
            continue;
        }
        result.tensors.push_back(parse_tensor_entry(name, entry, path));
    }

    // Walk the tensors in data order: they must tile the data section exactly.
    std::sort(result.tensors.begin(), result.tensors.end(), [](const tensor_info& a, const tensor_info& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t expected_begin = 0;
    for (const auto& tensor : result.tensors) {
        if (tensor.begin != expected_begin || tensor.end < tensor.begin)
            throw error_in(path, fmt::format("tensor '{}': data_offsets [{}, {}] do not start where the previous "
                                             "tensor ends ({}): gap or overlap",
                                             tensor.name, tensor.begin, tensor.end, expected_begin));
        check_tensor_size(tensor, path);
        expected_begin = tensor.end;
    }
    std::uint64_t data_size = file.size() - result.data_offset;
    if (expected_begin != data_size)
        throw error_in(path, fmt::format("the tensors cover {} bytes of data, the file holds {}{}", expected_begin,
                                         data_size, expected_begin > data_size ? " (truncated file?)" : ""));
    return result;
}

safetensors_file::safetensors_file(const std::string& path, page_loading loading)
    : file_(path, loading), header_(parse_safetensors(file_.bytes(), path)) {}

const tensor_info* safetensors_file::find(std::string_view name) const {
    for (const auto& tensor : header_.tensors)
        if (tensor.name == name) return &tensor;
    return nullptr;
}

const tensor_info& safetensors_file::at(std::string_view name) const {
    if (const tensor_info* tensor = find(name)) return *tensor;
    throw error_in(path(), fmt::format("no tensor '{}'", name));
}

std::span<const std::byte> safetensors_file::bytes(const tensor_info& tensor) const {
    return file_.bytes().subspan(header_.data_offset + tensor.begin, tensor.end - tensor.begin);
}

std::vector<float> safetensors_file::to_float(const tensor_info& tensor) const {
    if (!converts_to_float(tensor.type))
        throw error_in(path(), fmt::format("tensor '{}': dtype {} is not supported", tensor.name,
                                           safetensors_name(tensor.type)));
    std::vector<float> values(tensor.element_count());
    convert_to_float(tensor.type, bytes(tensor).data(), values.size(), values.data());
    return values;
}

void safetensors_file::release(const tensor_info& tensor) const {
    file_.release(header_.data_offset + tensor.begin, tensor.end - tensor.begin);
}

std::string safetensors_header_bytes(const std::vector<tensor_spec>& tensors,
                                     const std::map<std::string, std::string>& metadata) {
    std::string text = header_text(tensors, metadata);
    if (text.size() > safetensors_max_header)
        throw error(fmt::format("safetensors header would be over the {} byte limit", safetensors_max_header));
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((text.size() >> (8 * i)) & 0xFF);
    return bytes + text;
}

safetensors_writer::safetensors_writer(output_stream& out, std::vector<tensor_spec> tensors,
                                       const std::map<std::string, std::string>& metadata)
    : out_(out), layout_(std::move(tensors)) {
    std::sort(layout_.begin(), layout_.end(), [](const tensor_spec& a, const tensor_spec& b) {
        int rank_a = layout_rank(a.type), rank_b = layout_rank(b.type);
        return rank_a != rank_b ? rank_a < rank_b : a.name < b.name;
    });
    for (std::size_t i = 1; i < layout_.size(); ++i)
        if (layout_[i].name == layout_[i - 1].name)
            throw error(fmt::format("{}: two tensors named '{}'", out_.path(), layout_[i].name));
    std::string bytes;
    try {
        bytes = safetensors_header_bytes(layout_, metadata);
    } catch (const error& failure) {
        throw error_in(out_.path(), failure.what());
    }
    out_.write(bytes);
}

void safetensors_writer::write(std::string_view name, std::span<const std::byte> bytes) {
    if (next_ >= layout_.size() || layout_[next_].name != name)
        throw error(fmt::format("internal error: tensor '{}' written out of layout order", name));
    if (bytes.size() != layout_[next_].byte_size())
        throw error(fmt::format("internal error: tensor '{}' has {} bytes, its shape needs {}", name, bytes.size(),
                                layout_[next_].byte_size()));
    out_.write(bytes.data(), bytes.size());
    ++next_;
}

void safetensors_writer::finish() {
    if (next_ != layout_.size())
        throw error(fmt::format("internal error: {} of {} tensors written", next_, layout_.size()));
}

void write_safetensors(output_stream& out, const std::vector<tensor_data>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    std::vector<tensor_spec> specs;
    for (const auto& tensor : tensors) specs.push_back(tensor.spec);
    safetensors_writer writer(out, specs, metadata);
    for (const auto& spec : writer.layout())
        for (const auto& tensor : tensors)
            if (tensor.spec.name == spec.name) {
                writer.write(spec.name, tensor.bytes);
                break;
            }
    writer.finish();
}

}  // namespace lowrank
