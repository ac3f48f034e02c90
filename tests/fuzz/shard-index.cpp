// Fuzz target: model.safetensors.index.json, the index of a sharded checkpoint.
#include "core/error.hpp"
#include "formats/sharded.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        auto index = lowrank::parse_shard_index(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
        lowrank::shard_index_text(index);
    } catch (const lowrank::error&) {
    }
    return 0;
}
