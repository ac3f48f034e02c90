// Decoding image files. JPEG goes through libjpeg-turbo, the library Pillow decodes JPEG
// with, called with Pillow's settings, so the pixels are Pillow's to the last bit (and
// about twice as fast as stb_image's decoder). Everything else stb_image reads (PNG, BMP,
// GIF, TGA, PSD, HDR, PNM) goes through stb_image.
//
// Samples come out as the file stores them, 1 to 4 channels (image.hpp), reduced to 8 bits:
// 16-bit samples keep their high byte, as Pillow's RGB;16B and LA;16B unpackers do (Pillow
// clips 16-bit grayscale to 255 instead; we keep the high byte there too), HDR is
// tone-mapped by stb_image (gamma 2.2). CMYK JPEGs become RGB as Pillow's
// convert("RGB") makes them, with Adobe's inverted CMYK convention.
#pragma once

#include "image/image.hpp"

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace lowrank {

struct decode_options {
    // JPEG only: given the stored width and height, the size the image will be resized to.
    // When set, a JPEG at least twice that size is decoded at 1/2, 1/4 or 1/8 of its size by
    // scaling in the DCT domain, the largest reduction that still covers it, as Pillow's
    // Image.draft does: much faster for large photographs, slightly different pixels.
    std::function<void(std::size_t& width, std::size_t& height)> draft_target;
    // JPEG only, for decode_part: given the size the image decodes to, the pixels that will
    // be used. Only they (and a margin) are decoded: much faster when a crop keeps a part.
    // The pixels of the region are exactly those of a full decode.
    std::function<pixel_box(image_size size)> region;
};

// Decodes an image held in memory. `path` names it in error messages. `stored`, when given,
// receives the size stored in the file (larger than the image's under a draft).
image decode_image(std::span<const std::byte> bytes, std::string_view path, const decode_options& options = {},
                   image_size* stored = nullptr);

// Reads and decodes a file ("-" is standard input).
image read_image(const std::string& path, const decode_options& options = {}, image_size* stored = nullptr);

// Decodes the part of a JPEG that options.region asks for, or a whole image.
image_part decode_part(std::span<const std::byte> bytes, std::string_view path, const decode_options& options,
                       image_size* stored = nullptr);
image_part read_image_part(const std::string& path, const decode_options& options, image_size* stored = nullptr);

// Whether the bytes start like a JPEG file (SOI marker).
bool is_jpeg(std::span<const std::byte> bytes);

}  // namespace lowrank
