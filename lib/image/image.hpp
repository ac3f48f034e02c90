// Images in memory, and the path from an image file to what a ViT or CLIP model eats:
//
//     image photo = read_image("cat.jpg");                        // decode.hpp
//     preprocess_settings clip = preset_settings("clip");         // preprocess.hpp
//     image_tensor x = preprocess(photo, clip);                   // (C, H, W) float32
//     std::vector<float> patches = patchify(x, 16, patch_layout::conv);  // patchify.hpp
//
// The fast path, as patchify_collection (collection.hpp) takes it for each of many images:
// decode_part (only the pixels the crop keeps) -> prepare_pixels -> patchify_pixels.
//
// Every step reproduces Pillow + NumPy (the Hugging Face CLIPImageProcessor path) exactly:
// the same pixels from the decoders, the same channel conversions, the same fixed-point
// resampling, the same float32 arithmetic for scaling and normalising.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lowrank {

struct image_size {
    std::size_t width = 0, height = 0;
    bool operator==(const image_size&) const = default;
};

// An 8-bit image: `height` rows of `width` pixels of `channels` interleaved samples
// (1 gray, 2 gray and alpha, 3 RGB, 4 RGBA), rows packed without padding.
struct image {
    std::size_t width = 0, height = 0, channels = 0;
    std::vector<std::uint8_t> pixels;

    image() = default;
    image(std::size_t width_, std::size_t height_, std::size_t channels_)
        : width(width_), height(height_), channels(channels_), pixels(width_ * height_ * channels_) {}

    std::size_t row_size() const { return width * channels; }
    std::uint8_t* row(std::size_t y) { return pixels.data() + y * row_size(); }
    const std::uint8_t* row(std::size_t y) const { return pixels.data() + y * row_size(); }
};

// A rectangle of an image: columns [left, left + width), rows [top, top + height).
struct pixel_box {
    std::size_t left = 0, top = 0, width = 0, height = 0;
};

// An image, or the part of a larger one that was decoded: `pixels` holds the columns
// [left, left + pixels.width) and rows [top, top + pixels.height) of an image of size `full`.
struct image_part {
    image pixels;
    std::size_t left = 0, top = 0;
    image_size full;
};

// The image with `channels` samples per pixel, 1 (gray, PIL's "L") or 3 (PIL's "RGB"), as
// PIL's Image.convert does: alpha is dropped, not composited; gray is copied to R, G and B;
// RGB becomes gray as (19595 R + 38470 G + 7471 B + 2^15) >> 16, ITU-R 601-2 luma in 16-bit
// fixed point. An image that already has `channels` is returned as it is.
image convert_channels(image source, std::size_t channels);

}  // namespace lowrank
