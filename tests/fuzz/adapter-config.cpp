// Fuzz target: PEFT's adapter_config.json as lora-merge and lora-predict read it, and the
// module matching its fields drive (target_modules, rank_pattern, alpha_pattern regexes).
#include "core/error.hpp"
#include "peft/adapter_config.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        auto config = lowrank::parse_adapter_config(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
        lowrank::lora_config_refusals(config, false);
        lowrank::adapter_config_json(config);
        for (const char* module : {"transformer.h.0.attn.c_attn", "text_model.encoder.layers.1.self_attn.q_proj",
                                   "vit.encoder.layer.0.attention.attention.value", "lm_head"}) {
            if (config.selects(module)) {
                config.rank_for(module);
                config.scale_for(module);
            }
        }
    } catch (const lowrank::error&) {
    }
    return 0;
}
