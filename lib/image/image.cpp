#include "image/image.hpp"

#include <stdexcept>

namespace lowrank {
namespace {

// PIL's L24: luma in 16-bit fixed point, rounded.
std::uint8_t luma(const std::uint8_t* rgb) {
    return static_cast<std::uint8_t>((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

}  // namespace

image convert_channels(image source, std::size_t channels) {
    if (channels != 1 && channels != 3) throw std::invalid_argument("convert_channels: channels must be 1 or 3");
    if (source.channels < 1 || source.channels > 4) throw std::invalid_argument("convert_channels: 1 to 4 channels");
    if (source.channels == channels) return source;
    image target(source.width, source.height, channels);
    const std::size_t pixels = source.width * source.height, from = source.channels;
    const std::uint8_t* in = source.pixels.data();
    std::uint8_t* out = target.pixels.data();
    bool gray_source = from <= 2;  // gray, or gray and alpha
    for (std::size_t i = 0; i < pixels; ++i, in += from) {
        if (channels == 1) {
            *out++ = gray_source ? in[0] : luma(in);
        } else if (gray_source) {
            out[0] = out[1] = out[2] = in[0];
            out += 3;
        } else {
            out[0] = in[0], out[1] = in[1], out[2] = in[2];
            out += 3;
        }
    }
    return target;
}

}  // namespace lowrank
