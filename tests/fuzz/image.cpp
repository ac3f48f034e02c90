// Fuzz target: image decoding (libjpeg-turbo, stb_image) and the clip preprocessing of what
// decodes, resize included.
#include "core/error.hpp"
#include "image/decode.hpp"
#include "image/preprocess.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const lowrank::preprocess_settings clip = [] {
        auto settings = lowrank::preset_settings("clip");
        settings.resize = lowrank::parse_resize_rule("40");  // small, so each input runs fast
        settings.crop = lowrank::image_size{32, 32};
        return settings;
    }();
    try {
        auto picture = lowrank::decode_image({reinterpret_cast<const std::byte*>(data), size}, "fuzz");
        if (picture.width * picture.height <= (1u << 20)) lowrank::preprocess(std::move(picture), clip, "fuzz");
    } catch (const lowrank::error&) {
    }
    return 0;
}
