// Pictures for people: patches drawn back as images, and PNG files.
#pragma once

#include "core/output.hpp"
#include "image/patchify.hpp"

#include <cstddef>
#include <string>

namespace lowrank {

// The image of one row of patches (N, C·P·P): unpatchified, un-normalised to 8-bit samples
// through `normalize` (rounded, clipped), with `gap` white pixels between neighbouring
// patches (0: the image the patches were cut from).
image draw_patches(const float* patches, const patch_shape& shape, patch_layout layout, const normalizer& normalize,
                   std::size_t gap);

// A gray (1 channel) or RGB (3 channels) image as PNG, encoded by stb_image_write.
void write_png(output_stream& out, const image& picture);

}  // namespace lowrank
