#include "image/preview.hpp"

#include <stb_image_write.h>

#include <climits>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

// Defined by stb_image_write (stb_image.cpp) but not declared in its header: the PNG
// encoder behind stbi_write_png, returning a malloc'ed buffer.
extern "C" unsigned char* stbi_write_png_to_mem(const unsigned char* pixels, int stride_bytes, int x, int y, int n,
                                                int* out_len);

namespace lowrank {
image draw_patches(const float* patches, const patch_shape& shape, patch_layout layout, const normalizer& normalize,
                   std::size_t gap) {
    std::vector<float> tensor(shape.elements());
    unpatchify(patches, shape, layout, tensor.data());
    const std::size_t P = shape.patch, C = shape.channels, plane = shape.height * shape.width;
    image picture(shape.width + (shape.grid_columns() - 1) * gap, shape.height + (shape.grid_rows() - 1) * gap, C);
    std::fill(picture.pixels.begin(), picture.pixels.end(), std::uint8_t{255});
    for (std::size_t y = 0; y < shape.height; ++y) {
        std::uint8_t* row = picture.row(y + y / P * gap);
        for (std::size_t x = 0; x < shape.width; ++x)
            for (std::size_t c = 0; c < C; ++c)
                row[(x + x / P * gap) * C + c] = normalize.to_sample(c, tensor[c * plane + y * shape.width + x]);
    }
    return picture;
}

void write_png(output_stream& out, const image& picture) {
    if (picture.channels != 1 && picture.channels != 3) throw std::invalid_argument("write_png: 1 or 3 channels");
    if (picture.width > INT_MAX / 4 || picture.height > INT_MAX / 4)
        throw std::invalid_argument("write_png: too large");
    int width = static_cast<int>(picture.width), height = static_cast<int>(picture.height);
    int channels = static_cast<int>(picture.channels);
    int size = 0;
    std::unique_ptr<unsigned char, void (*)(void*)> png(
        stbi_write_png_to_mem(picture.pixels.data(), width * channels, width, height, channels, &size), std::free);
    if (!png) throw std::bad_alloc();
    out.write(png.get(), static_cast<std::size_t>(size));
}

}  // namespace lowrank
