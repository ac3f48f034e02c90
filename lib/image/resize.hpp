// Resizing exactly as Pillow's Image.resize does it, pixel for pixel.
//
// Bilinear and bicubic (Keys' kernel, a = -0.5) are Pillow's ImagingResample: two separable
// passes, horizontal then vertical, each output sample a weighted sum of the input samples
// within the filter's support around its centre, (x + 0.5)·scale. When shrinking, the
// support grows by the scale (scale = input / output), so every input pixel contributes:
// this is the antialiasing. The weights of each output sample are normalised to sum to 1,
// rounded to 22-bit fixed point, accumulated in 32-bit integers with rounding, and clipped
// to 8 bits after each pass. Nearest is Pillow's affine nearest neighbour: input index
// floor(x·scale + scale/2), the position accumulated in double precision.
#pragma once

#include "image/image.hpp"

#include <cstddef>
#include <optional>
#include <string_view>

namespace lowrank {

enum class resize_filter { nearest, bilinear, bicubic };

// "nearest", "bilinear", "bicubic" (and the reverse).
std::optional<resize_filter> resize_filter_from_name(std::string_view name);
std::string_view resize_filter_name(resize_filter filter);

// `source` resized to width × height, then cropped to `box`. Only the pixels inside the box
// are computed, and they are exactly those of the full resize.
image resize_and_crop(const image& source, std::size_t width, std::size_t height, resize_filter filter,
                      const pixel_box& box);

// The same from a part of the source: it must hold resize_region()'s pixels.
image resize_and_crop(const image_part& source, std::size_t width, std::size_t height, resize_filter filter,
                      const pixel_box& box);

// The pixels of an image of size `source` that resize_and_crop reads for `box`.
pixel_box resize_region(image_size source, std::size_t width, std::size_t height, resize_filter filter,
                        const pixel_box& box);

// `source` resized to width × height.
image resize(const image& source, std::size_t width, std::size_t height, resize_filter filter);

}  // namespace lowrank
