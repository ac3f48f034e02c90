// Fuzz target: a model's config.json (Hugging Face field names) for the three architectures.
#include "core/error.hpp"
#include "nn/config.hpp"

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto json = nlohmann::json::parse(data, data + size, nullptr, false);
    if (json.is_discarded()) return 0;  // what a tool reports as "not valid JSON"
    try {
        lowrank::parse_model_config(json, "fuzz");
    } catch (const lowrank::error&) {
    }
    return 0;
}
