// Fuzz target: token ids as bpe-decode and lora-predict read them: text lines of ids, .npy
// arrays of ids, raw u16 and u32 streams.
#include "bpe/id_streams.hpp"
#include "core/error.hpp"
#include "scratch_file.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    scratch_file file("ids", std::string_view(reinterpret_cast<const char*>(data), size));
    for (const char* format : {"text", "npy", "u16", "u32"}) {
        try {
            std::size_t total = 0;
            lowrank::read_id_sequences(file.path(), *lowrank::id_format_from_name(format),
                                       [&](std::span<const std::uint32_t> ids, const std::string&, bool) {
                                           total += ids.size();
                                       });
        } catch (const lowrank::error&) {
        }
    }
    return 0;
}
