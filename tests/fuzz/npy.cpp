// Fuzz target: the .npy header parser and the conversion of the data it accepts.
#include "core/error.hpp"
#include "formats/npy.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
    try {
        auto header = lowrank::parse_npy_header(file, "fuzz");
        std::vector<float> values(header.element_count());
        lowrank::convert_to_float(header.type, file.data() + header.data_offset, values.size(), values.data());
    } catch (const lowrank::error&) {
    }
    return 0;
}
