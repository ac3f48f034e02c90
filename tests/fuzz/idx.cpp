// Fuzz target: the IDX reader (headers, gzip streams, records), as vit-patchify reads it.
#include "core/error.hpp"
#include "formats/idx.hpp"
#include "scratch_file.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    scratch_file file("idx", std::string_view(reinterpret_cast<const char*>(data), size));
    try {
        lowrank::idx_reader reader(file.path());
        if (reader.record_bytes() > (1u << 20)) return 0;
        std::vector<std::byte> record(reader.record_bytes());
        for (std::size_t i = 0; i < reader.record_count() && i < 64; ++i) reader.read_record(record);
    } catch (const lowrank::error&) {
    }
    try {
        lowrank::read_idx_labels(file.path());
    } catch (const lowrank::error&) {
    }
    return 0;
}
