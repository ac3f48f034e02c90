// Fuzz target: image decoding (libjpeg-turbo, stb_image) and the clip preprocessing of what
// decodes, resize included.
#include "core/error.hpp"
#include "image/decode.hpp"
#include "image/preprocess.hpp"

#include <cstddef>
#include <cstdint>
#include <stb_image.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Images of over 2^20 pixels are left out: a few hundred bytes can declare 8192 x 8192
    // pixels, which the tools decode in half a second but take more than the 10 s timeout
    // under the sanitizers and coverage, while they run the same code as smaller ones.
    int width = 0, height = 0, channels = 0;
    if (size <= INT32_MAX && stbi_info_from_memory(data, static_cast<int>(size), &width, &height, &channels) &&
        std::int64_t{width} * height > (1 << 20))
        return 0;
    static const lowrank::preprocess_settings clip = [] {
        auto settings = lowrank::preset_settings("clip");
        settings.resize = lowrank::parse_resize_rule("40");  // small, so each input runs fast
        settings.crop = lowrank::image_size{32, 32};
        return settings;
    }();
    static const lowrank::decode_options only_the_crop = [] {
        lowrank::decode_options options;
        options.region = [](lowrank::image_size size) { return lowrank::preprocess_region(size, clip); };
        return options;
    }();
    std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    try {
        auto picture = lowrank::decode_image(bytes, "fuzz");
        if (picture.width * picture.height <= (1u << 20)) lowrank::preprocess(std::move(picture), clip, "fuzz");
    } catch (const lowrank::error&) {
    }
    try {  // the path of vit-patchify: only the part of a JPEG that the crop keeps
        auto part = lowrank::decode_part(bytes, "fuzz", only_the_crop);
        if (part.full.width * part.full.height <= (1u << 20)) lowrank::prepare_pixels(std::move(part), clip, "fuzz");
    } catch (const lowrank::error&) {
    }
    return 0;
}
