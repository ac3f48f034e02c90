// Fuzz target: the safetensors header parser and the dtype conversions of what it accepts.
#include "core/error.hpp"
#include "formats/safetensors.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
    try {
        auto header = lowrank::parse_safetensors(file, "fuzz");
        for (const auto& tensor : header.tensors) {
            if (!lowrank::converts_to_float(tensor.type)) continue;
            auto bytes = file.subspan(header.data_offset + tensor.begin, tensor.end - tensor.begin);
            std::vector<float> values(tensor.element_count());
            lowrank::convert_to_float(tensor.type, bytes.data(), values.size(), values.data());
        }
    } catch (const lowrank::error&) {
    }
    return 0;
}
